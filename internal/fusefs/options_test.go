package fusefs

import (
	"strings"
	"testing"
)

// TestPreferredSlotAsTheKernelReadsIt: preferred_slot= takes any 32-bit
// number, as the kernel's ocfs2 does; 0 asks for nothing, the rest is kept
// as a signed 16-bit slot (a slot past the volume's count is ignored at
// mount time, not refused here). Anything but a 32-bit number is refused
// with the option named.
func TestPreferredSlotAsTheKernelReadsIt(t *testing.T) {
	for _, c := range []struct {
		opt  string
		want int
	}{
		{"", -1},
		{"preferred_slot=0", -1},
		{"preferred_slot=1", 1},
		{"preferred_slot=3", 3},
		{"preferred_slot=254", 254},
		{"preferred_slot=255", 255},
		{"preferred_slot=1000", 1000},
		{"preferred_slot=32767", 32767},
		{"preferred_slot=32768", -32768},
		{"preferred_slot=65535", -1},
		{"preferred_slot=65537", 1},
		{"preferred_slot=4294967295", -1},
	} {
		o, err := ParseMountOptions(c.opt)
		if err != nil {
			t.Errorf("%q: %v", c.opt, err)
			continue
		}
		if o.PreferSlot != c.want {
			t.Errorf("%q: preferred slot %d, want %d", c.opt, o.PreferSlot, c.want)
		}
	}
	for _, bad := range []string{"preferred_slot", "preferred_slot=", "preferred_slot=-1", "preferred_slot=x", "preferred_slot=4294967296"} {
		if _, err := ParseMountOptions(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "slot number") {
			t.Errorf("%q: %v, want an error naming the option", bad, err)
		}
	}
}

// TestHeartbeatOptionValues: heartbeat= (which mount.ocfs2 passes on)
// takes the kernel's three modes; anything else is refused, naming it.
func TestHeartbeatOptionValues(t *testing.T) {
	for _, ok := range []string{"heartbeat=local", "heartbeat=global", "heartbeat=none", "rw,_netdev,heartbeat=local"} {
		if _, err := ParseMountOptions(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"heartbeat", "heartbeat=", "heartbeat=bogus", "heartbeat=Local"} {
		if _, err := ParseMountOptions(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "local, global or none") {
			t.Errorf("%q: %v, want an error naming the option", bad, err)
		}
	}
}
