package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"o2go/internal/node"
	"o2go/internal/testutil"
)

// TestSystemdUnitsVerify checks the units of dist/systemd with systemd's
// own parser (systemd-analyze verify prints every unknown key, bad value
// or missing file), and that they are what the agent's notify and watchdog
// support is written for.
func TestSystemdUnitsVerify(t *testing.T) {
	testutil.RequireTools(t, "systemd-analyze")
	bin := o2goBinary(t)
	dir := t.TempDir()
	units, err := filepath.Glob("../../dist/systemd/*.service")
	if err != nil || len(units) != 2 {
		t.Fatalf("units in dist/systemd: %v %v", units, err)
	}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, want := range []string{"\nType=notify\n", "\nNotifyAccess=main\n", "\nWatchdogSec=", "\nExecStart=/usr/sbin/o2go agent"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q", u, strings.TrimSpace(want))
			}
		}
		// The binary is installed as /usr/sbin/o2go; verify checks that
		// ExecStart is executable, so point it at the one just built.
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "/usr/sbin/o2go", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestAgentNotifiesSystemd runs an agent as systemd runs the unit
// (Type=notify, WatchdogSec): it must say READY=1 once its control socket
// answers, ping the watchdog at half of WATCHDOG_USEC while it runs, and
// stop cleanly on SIGTERM (systemd's stop signal).
func TestAgentNotifiesSystemd(t *testing.T) {
	pc := newProcCluster(t, 1, loopbackIPs(1))
	sock := filepath.Join(pc.dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const watchdog = 2 * time.Second
	pc.env = []string{"NOTIFY_SOCKET=" + sock, fmt.Sprintf("WATCHDOG_USEC=%d", watchdog.Microseconds())}
	a := pc.start(0)
	read := func(within time.Duration) (string, time.Time) {
		buf := make([]byte, 512)
		_ = ln.SetReadDeadline(time.Now().Add(within))
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("no notification within %v: %v\nagent log:\n%s", within, err, a.logText())
		}
		return string(buf[:n]), time.Now()
	}
	msg, _ := read(30 * time.Second)
	if !strings.HasPrefix(msg, "READY=1\n") || !strings.Contains(msg, "STATUS=cluster proc: node "+pc.names[0]) {
		t.Fatalf("first notification %q, want READY=1 and a STATUS line", msg)
	}
	var st node.Status
	if err := pc.call(0, "status", &st); err != nil {
		t.Fatalf("READY=1 sent, but the control socket does not answer: %v", err)
	}
	// Watchdog pings: half of WATCHDOG_USEC apart, give or take the
	// watchdog's own period (a quarter heartbeat interval).
	var last time.Time
	for i := 0; i < 3; i++ {
		msg, at := read(2 * watchdog)
		if msg != "WATCHDOG=1" {
			t.Fatalf("notification %q, want WATCHDOG=1", msg)
		}
		if !last.IsZero() {
			if gap := at.Sub(last); gap < watchdog/2-testInterval || gap > watchdog {
				t.Errorf("watchdog pings %v apart, want about %v (WatchdogSec/2)", gap, watchdog/2)
			}
		}
		last = at
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not stop on SIGTERM")
	}
	if a.exit != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\n%s", a.exit, a.logText())
	}
}
