package volume

import (
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// featureStep is one --fs-features change of a toggling sequence.
type featureStep struct {
	features string
	refused  string // a substring of the refusal expected ("" = must work)
	noXattrs bool   // the step removes every xattr
}

var toggleSequence = []featureStep{
	{features: "noinline-data"},
	{features: "inline-data"},
	{features: "nounwritten"},
	{features: "nosparse"},
	{features: "sparse,unwritten"},
	{features: "metaecc"},
	{features: "noindexed-dirs"},
	{features: "indexed-dirs"},
	{features: "nometaecc"},
	{features: "nodiscontig-bg"},
	{features: "discontig-bg"},
	{features: "noextended-slotmap"},
	{features: "extended-slotmap"},
	{features: "noappend-dio,append-dio", refused: "both sets and clears"},
	{features: "noappend-dio"},
	{features: "append-dio"},
	{features: "norefcount"},
	{features: "refcount"},
	{features: "usrquota,grpquota"},
	{features: "nousrquota,nogrpquota"},
	{features: "noxattr", noXattrs: true},
	{features: "xattr"},
	{features: "nolocal"},
	{features: "local"},
}

// TestTunefsFeatureToggles turns every feature o2go can change off and on
// again on populated volumes of several geometries; after each step the
// volume must pass fsck.ocfs2 -fn and read back the same tree (names,
// modes, sizes, contents, symlinks, xattrs).
func TestTunefsFeatureToggles(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	geos := []struct {
		name string
		size int64
		args []string     // mkfs.ocfs2's, or
		o    *MkfsOptions // o2go mkfs's
	}{
		{"4k-4k", 600 << 20, []string{"-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local"}, nil},
		{"1k-4k-o2go", 400 << 20, nil, &MkfsOptions{BlockSize: 1024, ClusterSize: 4096, Slots: 3, Features: "local"}},
		{"2k-32k", 600 << 20, []string{"-b", "2048", "-C", "32768", "-N", "2", "--fs-features=local"}, nil},
	}
	for _, g := range geos {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			var img string
			if g.o != nil {
				img = mkfsO2go(t, g.size, *g.o)
			} else {
				img = realtools.MkfsImage(t, g.size, g.args...)
			}
			populate(t, img)
			requireClean(t, img, "populate")
			want := readTree(t, img)
			for _, st := range toggleSequence {
				out, err := tunefsO2goErr(img, TunefsOptions{Features: st.features})
				if st.refused != "" {
					if err == nil || !strings.Contains(err.Error(), st.refused) {
						t.Fatalf("--fs-features=%s: want a refusal with %q, got %v\n%s", st.features, st.refused, err, out)
					}
					continue
				}
				if err != nil {
					t.Fatalf("--fs-features=%s: %v\n%s", st.features, err, out)
				}
				requireClean(t, img, "--fs-features="+st.features)
				on, off, _ := parseFeatureChanges(st.features)
				if f := superWith(t, img).Super.Features; !overlapsAll(f, on) || overlaps(f, off) {
					t.Fatalf("after --fs-features=%s the superblock has features %s", st.features, featureNames(f))
				}
				if st.noXattrs {
					want = withoutXattrs(want)
				}
				if d := diffTrees(want, readTree(t, img)); d != "" {
					t.Fatalf("after --fs-features=%s the tree differs:\n%s", st.features, d)
				}
			}
		})
	}
}

// overlapsAll reports whether f has every bit of want.
func overlapsAll(f, want FeatureSet) bool {
	return f.Compat&want.Compat == want.Compat && f.Incompat&want.Incompat == want.Incompat && f.RoCompat&want.RoCompat == want.RoCompat
}

// TestTunefsFeaturesAgainstTunefsOcfs2 changes one feature at a time on
// twin volumes, fresh and populated, with o2go tunefs and tunefs.ocfs2:
// o2go's volume must pass fsck.ocfs2 -fn and keep the tree; on fresh
// volumes the two must match block for block (inode times aside). On
// populated volumes tunefs.ocfs2 1.8.7 has defects o2go departs from on
// purpose, and the test checks that they are still what it documents:
// noinline-data leaves converted directories unindexed (DX_TREE_MISSING,
// the root and system directories of a fresh volume too)
// and empty files with a cluster (INODE_SPARSE_SIZE), metaecc leaves dx
// roots without checks (DX_TREE_CORRUPT), noxattr crashes (segmentation
// fault) on bucket-indexed attributes.
func TestTunefsFeaturesAgainstTunefsOcfs2(t *testing.T) {
	realtools.Require(t)
	fastFsck(t)
	changes := []struct {
		features string
		// realDefects are the fsck.ocfs2 codes tunefs.ocfs2's populated
		// volume shows, freshDefects those of a fresh one; realFails says
		// tunefs.ocfs2 fails on a populated volume.
		realDefects, freshDefects []string
		realFails                 bool
	}{
		{features: "noinline-data", realDefects: []string{"DX_TREE_MISSING", "INODE_SPARSE_SIZE"}, freshDefects: []string{"DX_TREE_MISSING"}},
		{features: "metaecc", realDefects: []string{"DX_TREE_CORRUPT"}},
		{features: "noindexed-dirs"},
		{features: "nosparse"},
		{features: "nounwritten"},
		{features: "noxattr", realFails: true},
		{features: "nodiscontig-bg"},
		{features: "noextended-slotmap"},
		{features: "noappend-dio"},
		{features: "nobackup-super"},
		{features: "norefcount"},
	}
	for _, populated := range []bool{false, true} {
		for _, c := range changes {
			name := c.features
			if populated {
				name += "/populated"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				base := realtools.MkfsImage(t, 1100<<20, "-b", "4096", "-N", "2", "--fs-features=local")
				if populated {
					populate(t, base)
				}
				want := readTree(t, base)
				mine, real := copyImage(t, base), copyImage(t, base)
				tunefsO2go(t, mine, TunefsOptions{Features: c.features})
				requireClean(t, mine, "--fs-features="+c.features)
				got := readTree(t, mine)
				if c.features == "noxattr" {
					want, got = withoutXattrs(want), withoutXattrs(got)
				}
				if d := diffTrees(want, got); d != "" {
					t.Errorf("o2go's tree differs:\n%s", d)
				}
				out, err := runTool("tunefs.ocfs2", "-y", "--fs-features="+c.features, real)
				if populated && c.realFails {
					if err == nil {
						t.Errorf("tunefs.ocfs2 --fs-features=%s no longer fails on a populated volume: drop the note", c.features)
					}
					t.Logf("tunefs.ocfs2 fails: %v %s", err, strings.TrimSpace(out))
					return
				}
				if err != nil {
					t.Fatalf("tunefs.ocfs2 --fs-features=%s: %v\n%s", c.features, err, out)
				}
				r := realtools.Fsck(t, real, "-fn")
				defects := c.freshDefects
				if populated {
					defects = c.realDefects
				}
				if len(defects) > 0 {
					problems := strings.Join(r.Problems, "\n")
					for _, code := range defects {
						if !strings.Contains(problems, "["+code+"]") {
							t.Errorf("tunefs.ocfs2's volume no longer shows %s: drop the note\n%s", code, problems)
						}
					}
					t.Logf("tunefs.ocfs2's volume fails fsck.ocfs2 with %d problems (e.g. %s); o2go's passes", len(r.Problems), r.Problems[0])
					return
				}
				if !r.Clean() {
					t.Fatalf("tunefs.ocfs2's volume fails fsck.ocfs2:\n%s", strings.Join(r.Problems, "\n"))
				}
				if !populated {
					if bad := onlyTimes(t, mine, diffBlocks(t, mine, real, 4096)); bad != "" {
						t.Errorf("o2go and tunefs.ocfs2 differ beyond inode times at %s", bad)
					}
				}
			})
		}
	}
}
