package node

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotifyTalksToSystemd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	notify("READY=1")
	buf := make([]byte, 64)
	_ = ln.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := ln.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := sdWatchdogInterval(); d != 15*time.Second {
		t.Fatalf("watchdog interval %v", d)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if d := sdWatchdogInterval(); d != 0 {
		t.Fatalf("watchdog meant for pid 1 used: %v", d)
	}
}

func TestControlSocketRefusesOthersAndServesMethods(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	s, err := ListenControl(path, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Register("echo", func(_ context.Context, r *ControlRequest) (any, error) {
		var p map[string]string
		if err := r.Decode(&p); err != nil {
			return nil, err
		}
		return map[string]any{"got": p["x"], "pid": r.Cred.PID}, nil
	})
	cl, err := DialControl(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var res map[string]any
	if err := cl.Call("echo", map[string]string{"x": "hi"}, &res); err != nil || res["got"] != "hi" {
		t.Fatalf("echo: %v %v", res, err)
	}
	if res["pid"].(float64) != float64(os.Getpid()) {
		t.Fatalf("peer pid %v, want %d", res["pid"], os.Getpid())
	}
	if err := cl.Call("nope", nil, nil); err == nil || !strings.Contains(err.Error(), "unknown method") {
		t.Fatalf("unknown method: %v", err)
	}
	if _, err := ListenControl(path, t.Logf); err == nil {
		t.Fatal("a second server took a socket in use")
	}
	if _, err := DialControl(filepath.Join(t.TempDir(), "none.sock")); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("no agent: %v", err)
	}
}
