package clustermount

import (
	"testing"

	"o2go/internal/dlm"
)

// TestFlockRows: every handle's flock is its own row, matched with its
// lock at the lock manager by ID, or (a first request under way) with a
// pending one; what no handle accounts for is untracked; held flocks are
// busy (fs_locks -B lists them) and unlocked ones are not.
func TestFlockRows(t *testing.T) {
	name := flockName(77)
	r := &dlm.ResourceState{Name: name, Master: 1, Local: []dlm.LocalLock{
		{ID: 10, Mode: dlm.ModePR},
		{ID: 11, Mode: dlm.ModeNone, Pending: dlm.OpLock, Requested: dlm.ModeEX},
		{ID: 12, Mode: dlm.ModeEX}, // nobody's: o2go lock, or a leak
		{ID: 13, Mode: dlm.ModePR},
	}}
	byName := map[string]*dlm.ResourceState{name: r}
	flocks := []flockState{
		{fh: 1, ino: 77, id: 10, held: true, mode: dlm.ModePR},
		{fh: 2, ino: 77, pending: "lock", requested: dlm.ModeEX},
		{fh: 3, ino: 77}, // unlocked, still open
		{fh: 4, ino: 77, id: 13, held: true, mode: dlm.ModePR, blocked: true, blocking: dlm.ModeEX},
	}
	rows := flockRows(flocks, byName, 0)
	if _, ok := byName[name]; ok {
		t.Error("the flock resource is left for the untracked rows")
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 4 handles and 1 untracked: %+v", len(rows), rows)
	}
	for i, want := range []struct {
		handle    uint64
		mode      string
		holders   int
		pending   string
		requested string
		blocked   string
		busy      bool
	}{
		{1, "PR", 1, "", "", "", true},
		{2, "none", 0, "lock", "EX", "", true},
		{3, "none", 0, "", "", "", false},
		{4, "PR", 1, "", "", "EX", true},
	} {
		l := rows[i]
		if l.Type != "Flock" || l.Inode != 77 || l.Handle != want.handle || l.Mode != want.mode || l.Holders != want.holders ||
			l.Pending != want.pending || l.Requested != want.requested || l.BlockingMode != want.blocked || l.Untracked ||
			l.IsBusy() != want.busy || l.Stats == nil || l.Master != 1 {
			t.Errorf("row %d: %+v, want %+v", i, l, want)
		}
	}
	if u := rows[4]; !u.Untracked || u.Mode != "EX" || u.Handle != 0 {
		t.Errorf("the lock no handle holds: %+v, want an untracked EX row", u)
	}

	// A byte-range mutex used by two requests: both its locks are theirs.
	mname := posixMutexName(77)
	byName[mname] = &dlm.ResourceState{Name: mname, Local: []dlm.LocalLock{{ID: 20, Mode: dlm.ModeEX}, {ID: 21, Pending: dlm.OpLock, Requested: dlm.ModeEX}}}
	mrows := mutexRows(map[uint64]int{77: 2}, byName, 0)
	if len(mrows) != 1 || mrows[0].Type != "ByteRange" || mrows[0].Inode != 77 || mrows[0].Holders != 2 || mrows[0].Mode != "EX" || mrows[0].Untracked || !mrows[0].Busy {
		t.Errorf("byte-range mutex rows: %+v", mrows)
	}
}
