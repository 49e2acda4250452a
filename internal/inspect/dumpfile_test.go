package inspect

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// failingWriter accepts n bytes, then fails.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

// TestCopyFileData checks the pipelined copy: the bytes equal a plain
// read, a failing output stops it with the output's error, and the reader
// goroutine never outlives the call.
func TestCopyFileData(t *testing.T) {
	defer goleak.VerifyNone(t)
	realtools.Require(t)
	img := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-N", "2", "-J", "size=24M", "--fs-features=local")
	v, err := volume.Open(img, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	blk, err := v.SystemFile(ondisk.SysJournal, 0)
	if err != nil {
		t.Fatal(err)
	}
	ino, err := v.FS.Inode(blk)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, ino.Size)
	if _, err := v.FS.ReadAt(ino, want, 0); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if n, err := copyFileData(v, ino, &got, nil); err != nil || n != int64(ino.Size) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("copy: %d bytes, %v, equal=%v", n, err, bytes.Equal(got.Bytes(), want))
	}
	out := filepath.Join(t.TempDir(), "j")
	f, _ := os.Create(out)
	if _, err := copyFileData(v, ino, f, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, _ := os.ReadFile(out); !bytes.Equal(b, want) {
		t.Fatal("copy to a file differs")
	}
	if n, err := copyFileData(v, ino, &failingWriter{n: 5 << 20}, nil); err == nil || err.Error() != "disk full" || n != 4<<20 {
		t.Fatalf("failing output: %d bytes, %v; want the output's error after the first chunk", n, err)
	}
}
