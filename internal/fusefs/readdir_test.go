package fusefs

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"o2go/internal/fs/inode"
	"o2go/internal/fs/volume"
	"o2go/internal/testutil/realtools"
)

// TestReadDirPlusWithWriters lists a directory with READDIRPLUS while
// another request changes the volume. Listing holds the volume's
// metadata lock shared; it must not take it again for each entry's
// attributes, or a writer queued in between deadlocks both (a Go RWMutex
// blocks new readers once a writer waits) — what stress-ng's dentry and
// dir stressors hit.
func TestReadDirPlusWithWriters(t *testing.T) {
	img := realtools.MkfsImage(t, 256<<20, defaultMkfs...)
	m, err := volume.Mount(img, volume.DefaultMountOptions())
	if err != nil {
		t.Fatal(err)
	}
	f := New(m.FS, Options{})
	root := m.FS.RootBlkno()
	var victim uint64
	for i := range 300 {
		ino, err := m.FS.Create(inode.Ref{Ino: root}, fmt.Sprintf("entry-%03d", i), inode.NewNode{Mode: 0o100644}, inode.Caller{})
		if err != nil {
			t.Fatal(err)
		}
		victim = ino
	}
	var stop atomic.Bool
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; !stop.Load(); i++ {
			mode := uint32(0o600 + i%0o100)
			if err := m.FS.Setattr(inode.Ref{Ino: victim}, inode.AttrChange{Mode: &mode}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	listed := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for range 400 {
			out := fuse.NewDirEntryList(buf, 0)
			in := &fuse.ReadIn{InHeader: fuse.InHeader{NodeId: fuse.FUSE_ROOT_ID}, Size: uint32(len(buf))}
			if s := f.ReadDirPlus(nil, in, out); !s.Ok() {
				listed <- fmt.Errorf("READDIRPLUS: %v", s)
				return
			}
		}
		listed <- nil
	}()
	select {
	case err := <-listed:
		stop.Store(true)
		<-writerDone
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("READDIRPLUS and a writer deadlocked on the metadata lock") // (the mount is left behind)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	realtools.RequireFsckClean(t, img)
}
