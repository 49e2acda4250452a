package fusefs

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestPageDropperOrderAndRequeue: inodes are dropped in the order asked,
// once each while waiting; one asked for again while its pages are being
// dropped is dropped again after; wait returns once an inode's turn is
// over, and at once for an inode nobody asked for.
func TestPageDropperOrderAndRequeue(t *testing.T) {
	var mu sync.Mutex
	var got []uint64
	block := make(chan struct{})
	started := make(chan uint64, 10)
	d := newPageDropper(func(ino uint64) {
		started <- ino
		if ino == 1 {
			<-block // the first drop waits for a page read in
		}
		mu.Lock()
		got = append(got, ino)
		mu.Unlock()
	})
	d.drop(1)
	if ino := <-started; ino != 1 {
		t.Fatalf("first drop: inode %d, want 1", ino)
	}
	d.drop(2)
	d.drop(3)
	d.drop(2) // waiting already: not twice
	d.drop(1) // being dropped: again after
	ctx := context.Background()
	if err := d.wait(ctx, 4); err != nil { // nobody asked: no wait
		t.Fatal(err)
	}

	waited := make(chan struct{})
	go func() { d.wait(ctx, 3); close(waited) }()
	select {
	case <-waited:
		t.Fatal("wait(3) returned while inode 3 was still queued")
	case <-time.After(50 * time.Millisecond):
	}
	close(block)
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("wait(3) still waiting 5 s after the queue could run")
	}
	d.wait(ctx, 1)
	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{1, 2, 3, 1}; !slices.Equal(got, want) {
		t.Fatalf("dropped %v, want %v", got, want)
	}
}

// TestPageDropperStop: after stop nothing more is dropped, and a waiter
// is let go; a waiter whose context ends is let go with its error.
func TestPageDropperStop(t *testing.T) {
	calls := 0
	block := make(chan struct{})
	started := make(chan struct{})
	d := newPageDropper(func(ino uint64) {
		calls++
		close(started)
		<-block
	})
	d.drop(1)
	d.drop(2)
	<-started // inode 1 is being dropped, 2 waits

	ctx, cancel := context.WithCancel(context.Background())
	interrupted := make(chan error, 1)
	go func() { interrupted <- d.wait(ctx, 2) }()
	cancel()
	select {
	case err := <-interrupted:
		if err != context.Canceled {
			t.Fatalf("an interrupted wait returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter stays blocked after its context ended")
	}

	waited := make(chan struct{})
	go func() { d.wait(context.Background(), 2); close(waited) }()
	d.stop()
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter stays blocked after stop")
	}
	close(block)
	d.drop(3)
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.running {
		d.cond.Wait()
	}
	if calls != 1 {
		t.Fatalf("%d drops after stop, want only the one under way", calls)
	}
}
