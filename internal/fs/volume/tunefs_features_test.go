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
	{features: "norefcount", refused: "refcount trees"},
	{features: "usrquota", refused: "cannot turn usrquota on"},
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
