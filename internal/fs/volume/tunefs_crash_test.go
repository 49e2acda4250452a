package volume

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// stopAt returns an interrupt hook that stops the operation at the n-th
// time it reaches point, as a crash there would.
func stopAt(point string, n int) func(string) error {
	seen := 0
	return func(p string) error {
		if p != point {
			return nil
		}
		if seen++; seen == n {
			return errTunefsStop
		}
		return nil
	}
}

// TestTunefsInterruptedOperations stops -N and -S half way, as a crash
// would: the volume then carries the in-progress mark, the kernel and o2go
// refuse to mount it and o2go tunefs to change it, -Q shows the mark,
// fsck.ocfs2 says so plainly and repairs it (-fy), and the operation run
// again completes into a volume fsck.ocfs2 accepts.
func TestTunefsInterruptedOperations(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	cases := []struct {
		name      string
		size      int64
		grow      int64
		args      []string
		o         TunefsOptions
		point     string
		n         int
		flag      uint32
		fsckSays  string
		openSays  string
		completed func(t *testing.T, img string)
	}{
		{"slots-files", 600 << 20, 0, []string{"-b", "4096", "-N", "2", "--fs-features=local"},
			TunefsOptions{Slots: 4}, "slot-file", 5, ondisk.IncompatTunefsInProg,
			"incomplete tunefs operation detected", "tunefs operation was interrupted",
			func(t *testing.T, img string) { checkSlots(t, img, 4) }},
		{"slots-journals", 400 << 20, 0, []string{"-b", "1024", "-C", "4096", "-N", "2", "--fs-features=local"},
			TunefsOptions{Slots: 3}, "journal-allocated", 1, ondisk.IncompatTunefsInProg,
			"incomplete tunefs operation detected", "tunefs operation was interrupted",
			func(t *testing.T, img string) { checkSlots(t, img, 3) }},
		{"resize", 900 << 20, 1500 << 20, []string{"-b", "4096", "-N", "2", "--fs-features=local"},
			TunefsOptions{Resize: true}, "resize-first-group", 1, ondisk.IncompatResizeInProg,
			"incomplete volume resize detected", "resize was interrupted",
			func(t *testing.T, img string) {
				if c := superWith(t, img).Clusters; c != 1500<<20/4096 {
					t.Errorf("the volume has %d clusters after the resize, want %d", c, 1500<<20/4096)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, _ := twin(t, tc.size, tc.args...)
			if tc.grow > 0 {
				if err := os.Truncate(img, tc.grow); err != nil {
					t.Fatal(err)
				}
			}
			o := tc.o
			o.interrupt = stopAt(tc.point, tc.n)
			if _, err := tunefsO2goErr(img, o); !errors.Is(err, errTunefsStop) {
				t.Fatalf("the interrupted operation returned %v", err)
			}
			sb := superWith(t, img).Super
			if sb.Features.Incompat&tc.flag == 0 {
				t.Fatalf("no in-progress mark after the interruption: incompat %s", featureNames(FeatureSet{Incompat: sb.Features.Incompat}))
			}
			if _, err := Open(img, OpenOptions{}); err == nil || !strings.Contains(err.Error(), tc.openSays) {
				t.Errorf("opening the interrupted volume: %v", err)
			}
			if _, err := Mount(img, DefaultMountOptions()); err == nil {
				t.Error("o2go mounted an interrupted volume")
			}
			if _, err := tunefsO2goErr(img, TunefsOptions{SetLabel: true, Label: "x"}); err == nil || !strings.Contains(err.Error(), "fsck.ocfs2 -f") {
				t.Errorf("tunefs on the interrupted volume: %v", err)
			}
			q, err := tunefsO2goErr(img, TunefsOptions{SetQuery: true, Query: "%H"})
			if want := map[uint32]string{ondisk.IncompatTunefsInProg: "aborted-tunefs", ondisk.IncompatResizeInProg: "aborted-resize"}[tc.flag]; err != nil || !strings.Contains(q, want) {
				t.Errorf("-Q %%H: %q %v, want %s", q, err, want)
			}
			// Without -f, fsck.ocfs2 gives its reason for checking.
			r := realtools.Fsck(t, img, "-n")
			if !strings.Contains(r.Output, tc.fsckSays) {
				t.Errorf("fsck.ocfs2 -n does not say %q:\n%s", tc.fsckSays, r.Output)
			}
			realtools.Fsck(t, img, "-fy")
			requireClean(t, img, "fsck.ocfs2 -fy of the interrupted volume")
			tunefsO2go(t, img, tc.o)
			requireClean(t, img, "the operation run again")
			tc.completed(t, img)
		})
	}
}

// checkSlots checks that img has n slots, each with its system files.
func checkSlots(t *testing.T, img string, n int) {
	t.Helper()
	if got := int(superWith(t, img).Super.MaxSlots); got != n {
		t.Fatalf("%d slots, want %d", got, n)
	}
	ls := realtools.Debugfs(t, img, "ls //")
	for slot := 0; slot < n; slot++ {
		for _, k := range []string{"orphan_dir", "extent_alloc", "inode_alloc", "journal", "local_alloc", "truncate_log"} {
			if name := fmt.Sprintf("%s:%04d", k, slot); !strings.Contains(ls, name) {
				t.Errorf("no %s in the system directory", name)
			}
		}
	}
}
