package inode

import (
	"errors"
	"syscall"
	"testing"

	"o2go/internal/ondisk"
)

func sampleDinode() *ondisk.Dinode {
	return &ondisk.Dinode{Blkno: 4242, Flags: ondisk.InodeValid, Mode: syscall.S_IFREG | 0o640, Generation: 77,
		Size: 1 << 33, Clusters: 9, Links: 3, UID: 1000, GID: 100,
		Ctime: ondisk.DiskTime{Sec: 1700000000, Nsec: 5}, Mtime: ondisk.DiskTime{Sec: 1700000001, Nsec: 999999999},
		Atime: ondisk.DiskTime{Sec: 1700000002}}
}

func TestLockValueRoundTripAndCheck(t *testing.T) {
	d := sampleDinode()
	b := LockValueOf(d).Encode()
	v, ok := DecodeLockValue(b)
	if !ok || v != LockValueOf(d) {
		t.Fatalf("decoded %+v ok %v, want %+v", v, ok, LockValueOf(d))
	}
	if err := checkLockValue(b, d); err != nil {
		t.Fatalf("the inode the value was made from fails the check: %v", err)
	}
	stale := *d
	stale.Size -= 4096
	err := checkLockValue(b, &stale)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("a stale inode block (size off) passed the check: %v", err)
	}
	sys := stale
	sys.Flags |= ondisk.InodeSystem
	if err := checkLockValue(b, &sys); err != nil {
		t.Fatalf("a system inode is checked: %v", err)
	}
	if err := checkLockValue(LockValueOf(nil).Encode(), &stale); err != nil {
		t.Fatalf("a value of an inode not in use is checked: %v", err)
	}
	if _, ok := DecodeLockValue([LockValueLen]byte{}); ok {
		t.Fatal("a value block never written decodes as a value")
	}
}

func FuzzDecodeLockValue(f *testing.F) {
	sample := LockValueOf(sampleDinode()).Encode()
	f.Add(sample[:])
	f.Add(make([]byte, LockValueLen))
	f.Fuzz(func(t *testing.T, p []byte) {
		var b [LockValueLen]byte
		copy(b[:], p)
		v, ok := DecodeLockValue(b)
		if !ok {
			return
		}
		if v.Encode() != b {
			t.Fatalf("value %+v does not encode back to %x", v, b)
		}
	})
}
