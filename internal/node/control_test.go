package node

import (
	"path/filepath"
	"testing"
	"time"
)

// TestControlClientHangup: a client notices at once when the agent's end of
// its connection goes, without reading; calls still work until then.
func TestControlClientHangup(t *testing.T) {
	cs, err := ListenControl(filepath.Join(t.TempDir(), "c.sock"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	cl, err := DialControl(cs.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	hup := cl.Hangup(10 * time.Millisecond)
	var pong string
	if err := cl.Call("ping", nil, &pong); err != nil || pong != "pong" {
		t.Fatalf("ping: %q %v", pong, err)
	}
	select {
	case <-hup:
		t.Fatal("hangup while the agent is there")
	case <-time.After(100 * time.Millisecond):
	}
	if err := cl.Call("ping", nil, &pong); err != nil {
		t.Fatalf("ping after watching: %v", err)
	}
	gone := time.Now()
	go cs.Close()
	select {
	case <-hup:
		t.Logf("hangup seen %v after the agent closed", time.Since(gone))
	case <-time.After(2 * time.Second):
		t.Fatal("no hangup 2 s after the agent closed the connection")
	}
}
