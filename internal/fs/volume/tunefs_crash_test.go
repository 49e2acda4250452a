package volume

import (
	"errors"
	"fmt"
	"maps"
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

// TestTunefsInterruptedFeatureChanges stops the feature changes that
// rewrite the volume (quotas on, norefcount, nodiscontig-bg) at each of
// their steps, as a crash there would. Every interrupted volume must still
// read back the tree it had; where the step leaves nothing to repair
// (quota files the volume does not use yet, narrow bitmaps without the
// feature) it must pass fsck.ocfs2 -fn as it is; where it leaves leaks
// (norefcount's copies not yet mapped, runs still counted) fsck.ocfs2 -fy
// must repair it into a volume that passes fsck.ocfs2 -fn with the same
// tree. Then the change run again must complete: the feature as asked,
// fsck.ocfs2 -fn clean, the tree the same. The change may also be run
// again first, fsck.ocfs2 -fy then reclaiming what both runs leaked.
func TestTunefsInterruptedFeatureChanges(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	cases := []struct {
		name      string
		features  string
		point     string
		n         int
		leaks     bool // fsck.ocfs2 -fn may report problems, -fy repairs them
		rerun     bool // run the change again before fsck.ocfs2 repairs
		completed func(t *testing.T, img string)
	}{
		{"usrquota-files", "usrquota", "quota-files", 1, false, false, checkQuotaUsage},
		{"grpquota-before-super", "grpquota", "quota-before-super", 1, false, false, checkQuotaUsage},
		{"norefcount-copied", "norefcount", "refcount-copied", 3, true, false, checkUnshared},
		{"norefcount-remapped", "norefcount", "refcount-remapped", 2, true, false, checkUnshared},
		{"norefcount-remapped-rerun", "norefcount", "refcount-remapped", 2, true, true, checkUnshared},
		{"norefcount-inode", "norefcount", "refcount-inode", 1, true, false, checkUnshared},
		{"norefcount-last-inode", "norefcount", "refcount-inode", 2, true, false, checkUnshared},
		{"norefcount-last-inode-rerun", "norefcount", "refcount-inode", 2, true, true, checkUnshared},
		{"norefcount-before-super", "norefcount", "refcount-before-super", 1, false, false, checkUnshared},
		{"nodiscontig-bg", "nodiscontig-bg", "discontig-bg-off", 1, false, false, func(t *testing.T, img string) {
			full := superWith(t, img).Super.BlockSize() - ondisk.GroupDescBitmapOffset
			if got := suballocBitmapSizes(t, img); len(got) != 1 || got[full] == 0 {
				t.Errorf("suballocator bitmap sizes %v, want all %d", got, full)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img, _ := twin(t, 500<<20, "-b", "2048", "-C", "4096", "-N", "2", "--fs-features=local")
			populate(t, img)
			populateShared(t, img, false)
			populateOwners(t, img)
			want := readTree(t, img)
			o := TunefsOptions{Features: tc.features, interrupt: stopAt(tc.point, tc.n)}
			if _, err := tunefsO2goErr(img, o); !errors.Is(err, errTunefsStop) {
				t.Fatalf("the interrupted operation returned %v", err)
			}
			if d := diffTrees(want, readTree(t, img)); d != "" {
				t.Fatalf("the interrupted volume reads back another tree:\n%s", d)
			}
			if tc.rerun {
				tunefsO2go(t, img, TunefsOptions{Features: tc.features})
			}
			r := realtools.Fsck(t, img, "-fn")
			switch {
			case !tc.leaks && !r.Clean():
				t.Fatalf("fsck.ocfs2 -fn of the interrupted volume: exit %d\n%s", r.ExitCode, strings.Join(r.Problems, "\n"))
			case tc.leaks:
				t.Logf("fsck.ocfs2 -fn of the interrupted volume: %s", strings.Join(r.Problems, "; "))
				realtools.Fsck(t, img, "-fy")
				requireClean(t, img, "fsck.ocfs2 -fy of the interrupted volume")
				if d := diffTrees(want, readTree(t, img)); d != "" {
					t.Fatalf("after fsck.ocfs2 -fy the tree differs:\n%s", d)
				}
			}
			if !tc.rerun {
				tunefsO2go(t, img, TunefsOptions{Features: tc.features})
			}
			requireClean(t, img, "the change run again")
			on, off, _ := parseFeatureChanges(tc.features)
			if f := superWith(t, img).Super.Features; !overlapsAll(f, on) || overlaps(f, off) {
				t.Fatalf("after --fs-features=%s the superblock has features %s", tc.features, featureNames(f))
			}
			if d := diffTrees(want, readTree(t, img)); d != "" {
				t.Errorf("the tree changed:\n%s", d)
			}
			tc.completed(t, img)
		})
	}
}

// checkQuotaUsage checks that every quota file img uses holds what every
// id uses.
func checkQuotaUsage(t *testing.T, img string) {
	t.Helper()
	sb := superWith(t, img).Super
	for typ, path := range []string{"//aquota.user", "//aquota.group"} {
		if sb.Features.RoCompat&[]uint32{ondisk.RoCompatUsrQuota, ondisk.RoCompatGrpQuota}[typ] == 0 {
			continue
		}
		got := globalQuotaUsage(t, catFile(t, img, path), sb.BlockSize())
		if exp := expectedQuotaUsage(t, img, typ); !maps.Equal(got, exp) {
			t.Errorf("%s holds%s\nthe inodes use%s", path, usageString(got), usageString(exp))
		}
	}
}

// checkUnshared checks that nothing on img is shared any more.
func checkUnshared(t *testing.T, img string) {
	t.Helper()
	if left := sharingLeft(t, img); left != "" {
		t.Errorf("sharing left: %s", left)
	}
}
