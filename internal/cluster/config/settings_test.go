package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultTimeouts(t *testing.T) {
	d := DefaultTimeouts()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := DefaultSettings().Validate(); err != nil {
		t.Fatal(err)
	}
	// O2CB's documented defaults.
	if d.HeartbeatThreshold != 31 || d.IdleTimeout != 30*time.Second || d.KeepaliveDelay != 2*time.Second ||
		d.ReconnectDelay != 2*time.Second || d.HeartbeatInterval != 2*time.Second {
		t.Fatalf("defaults %+v", d)
	}
	if d.DeadTime() != 60*time.Second {
		t.Errorf("dead time %v, want o2cb.sysconfig(5)'s 60 s", d.DeadTime())
	}
	if d.MaxWriteStall() != 58*time.Second {
		t.Errorf("max write stall %v, want one interval under the dead time", d.MaxWriteStall())
	}
	if !d.KillBlocks() || d.KillAckTimeout != 6*time.Second {
		t.Errorf("kill ack timeout %v", d.KillAckTimeout)
	}
	// o2cb.sysconfig(5): threshold = timeout/2 + 1; 61 is 120 s.
	d.HeartbeatThreshold = 61
	if d.DeadTime() != 120*time.Second {
		t.Errorf("threshold 61: %v", d.DeadTime())
	}
}

func TestTimeoutsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Timeouts)
		want   string // "" = valid
	}{
		{"threshold minimum", func(x *Timeouts) { x.HeartbeatThreshold = 7 }, ""},
		{"threshold low", func(x *Timeouts) { x.HeartbeatThreshold = 6 }, "O2CB_HEARTBEAT_THRESHOLD=6 is out of range 7..65535"},
		{"threshold high", func(x *Timeouts) { x.HeartbeatThreshold = 65536 }, "O2CB_HEARTBEAT_THRESHOLD=65536 is out of range"},
		{"sub-millisecond", func(x *Timeouts) { x.IdleTimeout += time.Microsecond }, "O2CB_IDLE_TIMEOUT_MS=30.000001s is not a whole number of milliseconds"},
		{"keepalive equal to idle", func(x *Timeouts) { x.KeepaliveDelay = x.IdleTimeout }, "must be less than O2CB_IDLE_TIMEOUT_MS"},
		{"keepalive just under idle", func(x *Timeouts) { x.IdleTimeout = 5000 * time.Millisecond; x.KeepaliveDelay = 4999 * time.Millisecond }, ""},
		{"network max", func(x *Timeouts) { x.ReconnectDelay = MaxNetworkTimeout }, ""},
		{"network over max", func(x *Timeouts) { x.ReconnectDelay = MaxNetworkTimeout + time.Millisecond }, "O2CB_RECONNECT_DELAY_MS=4294967295 is out of range 2000..4294967294"},
		{"fast heartbeat", func(x *Timeouts) {
			x.HeartbeatInterval = 100 * time.Millisecond
			x.KillAckTimeout = 200 * time.Millisecond
		}, ""},
		{"slow heartbeat", func(x *Timeouts) { x.HeartbeatInterval = 31 * time.Second }, "O2GO_HEARTBEAT_INTERVAL_MS=31000 is out of range 100..30000"},
		{"kill ack just below dead time", func(x *Timeouts) { x.KillAckTimeout = x.DeadTime() - time.Millisecond }, ""},
		{"kill ack disabled", func(x *Timeouts) { x.KillAckTimeout = 0 }, ""},
		{"kill ack negative", func(x *Timeouts) { x.KillAckTimeout = -time.Second }, "is negative"},
		{"kill ack too short for a shorter interval's default", func(x *Timeouts) { x.HeartbeatInterval = time.Second; x.KillAckTimeout = 1999 * time.Millisecond }, "from 2000 (2 heartbeat intervals)"},
		{"several problems", func(x *Timeouts) { x.HeartbeatThreshold = 1; x.IdleTimeout = 0 }, "O2CB_HEARTBEAT_THRESHOLD=1 is out of range 7..65535\nO2CB_IDLE_TIMEOUT_MS=0 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := DefaultTimeouts()
			tc.change(&x)
			err := x.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid timeouts refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckPeer(t *testing.T) {
	mine := DefaultTimeouts()
	if err := mine.CheckPeer("b", mine); err != nil {
		t.Fatal(err)
	}
	theirs := mine
	theirs.IdleTimeout = 20 * time.Second
	err := mine.CheckPeer("b", theirs)
	want := "node 'b' has O2CB_IDLE_TIMEOUT_MS=20000, this node 30000"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, ErrTimeoutsDiffer) {
		t.Fatalf("CheckPeer = %v, want %q", err, want)
	}
	theirs.HeartbeatThreshold = 61
	theirs.HeartbeatInterval = time.Second
	ms := mine.Mismatches(theirs)
	if len(ms) != 3 || ms[0] != (Mismatch{VarHeartbeatThreshold, "31", "61"}) ||
		ms[1] != (Mismatch{VarIdleTimeout, "30000", "20000"}) || ms[2] != (Mismatch{VarHeartbeatInterval, "2000", "1000"}) {
		t.Fatalf("mismatches %+v", ms)
	}
	err = mine.CheckPeer("b", theirs)
	if err == nil || !strings.Contains(err.Error(), "O2CB_HEARTBEAT_THRESHOLD=61, this node 31; O2CB_IDLE_TIMEOUT_MS=20000, this node 30000; O2GO_HEARTBEAT_INTERVAL_MS=1000, this node 2000") {
		t.Fatalf("CheckPeer = %v", err)
	}
	// Every timing field is compared: changing any one is a mismatch.
	for i, change := range []func(*Timeouts){
		func(x *Timeouts) { x.HeartbeatThreshold++ },
		func(x *Timeouts) { x.HeartbeatInterval += time.Millisecond },
		func(x *Timeouts) { x.IdleTimeout += time.Millisecond },
		func(x *Timeouts) { x.KeepaliveDelay += time.Millisecond },
		func(x *Timeouts) { x.ReconnectDelay += time.Millisecond },
		func(x *Timeouts) { x.KillAckTimeout = 0 },
	} {
		other := mine
		change(&other)
		if len(mine.Mismatches(other)) != 1 {
			t.Errorf("change %d is not reported", i)
		}
	}
}

func TestParseFenceMethod(t *testing.T) {
	for in, want := range map[string]FenceMethod{"reset": FenceReset, "PANIC": FencePanic, "Exit": FenceExit, "halt": "", "": ""} {
		got, err := ParseFenceMethod(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("ParseFenceMethod(%q) = %q, %v", in, got, err)
		}
	}
}
