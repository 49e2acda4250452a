package clustermount

import "testing"

// TestScannedTellsTheScansLock: a lock the lock manager showed between two
// reads of the scan state is the scan's when a scan ran at either read,
// or began (and ended) between them; else it is another holder's.
func TestScannedTellsTheScansLock(t *testing.T) {
	for _, c := range []struct {
		what          string
		before, after scanLockState
		want          bool
	}{
		{"no scan", scanLockState{false, 3}, scanLockState{false, 3}, false},
		{"a scan all along", scanLockState{true, 4}, scanLockState{true, 4}, true},
		{"a scan that began after the first read", scanLockState{false, 3}, scanLockState{true, 4}, true},
		{"a scan that ended before the second read", scanLockState{true, 4}, scanLockState{false, 4}, true},
		{"a whole scan in between", scanLockState{false, 3}, scanLockState{false, 4}, true},
	} {
		if got := scanned(c.before, c.after); got != c.want {
			t.Errorf("%s: scanned = %v, want %v", c.what, got, c.want)
		}
	}
}
