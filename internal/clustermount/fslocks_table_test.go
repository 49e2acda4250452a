package clustermount

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/lockglue"
)

// soloDLM is the lock manager of a node alone in its domain: it grants
// everything and records the order of the requests and unlocks.
type soloDLM struct {
	mu       sync.Mutex
	requests []string
	unlocked []string
}

type soloHeld struct {
	d    *soloDLM
	name string
}

func (d *soloDLM) Lock(_ context.Context, name string, _ lockglue.Request, _ func(lockglue.Mode)) (lockglue.Held, error) {
	d.mu.Lock()
	d.requests = append(d.requests, name)
	d.mu.Unlock()
	return &soloHeld{d: d, name: name}, nil
}

func (h *soloHeld) Convert(context.Context, lockglue.Request) error { return nil }

func (h *soloHeld) Unlock() error {
	h.d.mu.Lock()
	h.d.unlocked = append(h.d.unlocked, h.name)
	h.d.mu.Unlock()
	return nil
}

func newTestTable(limit int) (*lockTable, *soloDLM) {
	d := &soloDLM{}
	mt := &Mount{mg: &Manager{Log: slog.New(slog.DiscardHandler)}, gone: true}
	mt.lock = lockglue.NewLock(d, superLockName(), func(lockglue.Mode, lockglue.Mode) error { return nil })
	t := newLockTable(mt, d)
	t.limit = limit
	return t, d
}

// TestLockTableOrder: a set is taken in the order every node uses —
// the rename lock, the inodes by block, the refcount trees — and the
// volume lock last, whatever order the set was built in.
func TestLockTableOrder(t *testing.T) {
	tab, d := newTestTable(100)
	set := inode.LockSet{
		{Kind: inode.LockRefcount, Blkno: 5}: true,
		inode.InodeLock(900):                 false,
		inode.InodeLock(17):                  true,
		{Kind: inode.LockRename}:             true,
	}
	release, err := tab.Lock(set)
	if err != nil {
		t.Fatal(err)
	}
	release()
	release() // a second call is harmless
	var want []string
	for _, id := range []inode.LockID{{Kind: inode.LockRename}, inode.InodeLock(17), inode.InodeLock(900), {Kind: inode.LockRefcount, Blkno: 5}} {
		want = append(want, lockName(id))
	}
	want = append(want, superLockName())
	if !slices.Equal(d.requests, want) {
		t.Fatalf("requests %q, want %q", d.requests, want)
	}
	for _, s := range tab.states() {
		if s.Users != 0 {
			t.Fatalf("%s still has %d users after release", s.Name, s.Users)
		}
	}
}

// TestLockTableTryLock: TryLock serves only what this node holds already
// at the level asked, and never asks the lock manager.
func TestLockTableTryLock(t *testing.T) {
	tab, d := newTestTable(100)
	if _, ok := tab.TryLock(inode.InodeLock(40), false); ok {
		t.Fatal("TryLock of a lock never taken succeeded")
	}
	release, err := tab.Lock(inode.LockSet{inode.InodeLock(40): false})
	if err != nil {
		t.Fatal(err)
	}
	release()
	asked := len(d.requests)
	if _, ok := tab.TryLock(inode.InodeLock(40), true); ok {
		t.Fatal("TryLock EX of a lock held PR succeeded")
	}
	r, ok := tab.TryLock(inode.InodeLock(40), false)
	if !ok {
		t.Fatal("TryLock PR of a lock held PR failed")
	}
	r()
	if len(d.requests) != asked {
		t.Fatalf("TryLock asked the lock manager: %q", d.requests[asked:])
	}
}

// TestLockTableGivesUpIdleLocks: past its bound the table gives up the
// least recently used idle locks (unlocking them), never one in use, and
// a lock asked for again afterwards is taken anew.
func TestLockTableGivesUpIdleLocks(t *testing.T) {
	tab, d := newTestTable(4)
	busy, err := tab.Lock(inode.LockSet{inode.InodeLock(1): true})
	if err != nil {
		t.Fatal(err)
	}
	for b := uint64(2); b <= 10; b++ {
		r, err := tab.Lock(inode.LockSet{inode.InodeLock(b): false})
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tab.mu.Lock()
		n, evicting := len(tab.locks), tab.evicting
		tab.mu.Unlock()
		if n <= 4 && !evicting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the table still holds %d locks (bound 4)", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.mu.Lock()
	unlocked := slices.Clone(d.unlocked)
	d.mu.Unlock()
	if slices.Contains(unlocked, lockName(inode.InodeLock(1))) {
		t.Fatal("the lock in use was given up")
	}
	if !slices.Contains(unlocked, lockName(inode.InodeLock(2))) {
		t.Fatalf("the least recently used idle lock was kept; unlocked %q", unlocked)
	}
	busy()
	r, err := tab.Lock(inode.LockSet{inode.InodeLock(2): false})
	if err != nil {
		t.Fatal(err)
	}
	r()
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := countOf(d.requests, lockName(inode.InodeLock(2))); n != 2 {
		t.Fatalf("a given-up lock asked again was requested %d times, want 2", n)
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
