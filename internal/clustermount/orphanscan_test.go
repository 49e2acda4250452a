package clustermount

import "testing"

// TestScannedTellsTheScansLock: a lock the lock manager showed between two
// reads of the scan sequence is the scan's when a scan ran at either read
// (odd), or began (and perhaps ended) between them; else it is another
// holder's.
func TestScannedTellsTheScansLock(t *testing.T) {
	for _, c := range []struct {
		what          string
		before, after uint64
		want          bool
	}{
		{"no scan", 6, 6, false},
		{"a scan all along", 7, 7, true},
		{"a scan that began after the first read", 6, 7, true},
		{"a scan that ended before the second read", 7, 8, true},
		{"a whole scan in between", 6, 8, true},
	} {
		if got := scanned(c.before, c.after); got != c.want {
			t.Errorf("%s: scanned = %v, want %v", c.what, got, c.want)
		}
	}
}
