package clustermount

import (
	"bytes"
	"log/slog"
	"testing"

	"o2go/internal/fs/lockglue"
)

func FuzzPosixQuery(f *testing.F) {
	f.Add(encodePosixQuery(posixQuery{ino: 4242, start: 0, end: 9, typ: lockglue.PosixWrite}))
	f.Add(encodePosixQuery(posixQuery{ino: 7, start: 5, end: lockglue.ToEOF, typ: lockglue.PosixRead}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		q, err := decodePosixQuery(p)
		if err != nil {
			return
		}
		if !bytes.Equal(encodePosixQuery(q), p) {
			t.Fatalf("query %+v does not encode back to %x", q, p)
		}
		// The handler answers any valid query from an empty or full table.
		fl := &fileLocks{log: slog.New(slog.DiscardHandler), posix: map[uint64]*lockglue.PosixTable{}}
		if st := fl.onQuery(1, 0, p); st != posixFree {
			t.Fatalf("no locks, answer %d", st)
		}
		tab := &lockglue.PosixTable{}
		tab.Set(1, 1, 0, lockglue.ToEOF, lockglue.PosixWrite)
		fl.posix[q.ino] = tab
		if st := fl.onQuery(1, 0, p); st != posixWriteHeld {
			t.Fatalf("a write lock on the whole file, answer %d", st)
		}
	})
}
