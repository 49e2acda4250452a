package inspect

import (
	"os"
	"testing"

	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// writeSystemFileData writes data at byte off of the system file name of
// the volume in img (the way a node writes its heartbeat sector or the
// slot map), through the file's extents.
func writeSystemFileData(t testing.TB, img, name string, off int64, data []byte) {
	t.Helper()
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	blk, err := v.SystemFileByName(name)
	if err != nil {
		t.Fatal(err)
	}
	ino, err := v.FS.Inode(blk)
	if err != nil {
		t.Fatal(err)
	}
	cs, bs := int64(v.SB.ClusterSize()), int64(v.SB.BlockSize())
	var writes [][2]int64 // device offset, length, in order of data
	pos := off
	end := off + int64(len(data))
	err = v.FS.Extents(ino, func(r ondisk.ExtentRec) error {
		start, stop := int64(r.Cpos)*cs, int64(r.Cpos+r.Clusters)*cs
		for pos < end && pos >= start && pos < stop {
			n := min(end, stop) - pos
			writes = append(writes, [2]int64{int64(r.Blkno)*bs + pos - start, n})
			pos += n
		}
		return nil
	})
	v.Close()
	if err != nil || pos != end {
		t.Fatalf("system file %s does not map bytes [%d,%d): %v", name, off, end, err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := 0
	for _, w := range writes {
		if _, err := f.WriteAt(data[done:done+int(w[1])], w[0]); err != nil {
			t.Fatal(err)
		}
		done += int(w[1])
	}
}

// systemFileDeviceOffset is the device byte offset of byte off of system
// file name.
func systemFileDeviceOffset(t testing.TB, img, name string, off int64) int64 {
	t.Helper()
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	blk, err := v.SystemFileByName(name)
	if err != nil {
		t.Fatal(err)
	}
	ino, err := v.FS.Inode(blk)
	if err != nil {
		t.Fatal(err)
	}
	cs, bs := int64(v.SB.ClusterSize()), int64(v.SB.BlockSize())
	at := int64(-1)
	v.FS.Extents(ino, func(r ondisk.ExtentRec) error {
		if start := int64(r.Cpos) * cs; off >= start && off < start+int64(r.Clusters)*cs {
			at = int64(r.Blkno)*bs + off - start
		}
		return nil
	})
	if at < 0 {
		t.Fatalf("system file %s does not map byte %d", name, off)
	}
	return at
}

// patchBytes overwrites bytes of img at off and returns what was there.
func patchBytes(t testing.TB, img string, off int64, b []byte) []byte {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := make([]byte, len(b))
	if _, err := f.ReadAt(old, off); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	return old
}
