package volume

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

func TestResolveFeatures(t *testing.T) {
	def := levelFeatures[LevelDefault]
	tests := []struct {
		level   FeatureLevel
		list    string
		want    FeatureSet
		wantErr string
	}{
		{LevelDefault, "", def, ""},
		{LevelDefault, "local", union(def, FeatureSet{Incompat: ondisk.IncompatLocalMount}), ""},
		{LevelMaxCompat, "", FeatureSet{Compat: 3}, ""},
		{LevelMaxFeatures, "", FeatureSet{Compat: 3, Incompat: 0xBF50, RoCompat: 7}, ""},
		// unwritten needs sparse: asking for it brings sparse along...
		{LevelMaxCompat, "unwritten", FeatureSet{Compat: 3, Incompat: ondisk.IncompatSparseAlloc, RoCompat: ondisk.RoCompatUnwritten}, ""},
		// ...and turning sparse off turns unwritten off too.
		{LevelDefault, "nosparse", FeatureSet{Compat: def.Compat, Incompat: def.Incompat &^ ondisk.IncompatSparseAlloc}, ""},
		{LevelDefault, "noinline-data,metaecc", FeatureSet{Compat: def.Compat, Incompat: def.Incompat&^ondisk.IncompatInlineData | ondisk.IncompatMetaECC, RoCompat: def.RoCompat}, ""},
		{LevelDefault, "nobackup-super", FeatureSet{Compat: ondisk.CompatJBD2SB, Incompat: def.Incompat, RoCompat: def.RoCompat}, ""},
		{LevelDefault, "clusterinfo", union(def, FeatureSet{Incompat: ondisk.IncompatClusterInfo}), ""},
		{LevelDefault, "sparse,nosparse", FeatureSet{}, "both sets and clears"},
		{LevelDefault, "unwritten,nosparse", FeatureSet{}, "both sets and clears"},
		{LevelDefault, "bogus", FeatureSet{}, `unknown feature "bogus"`},
		{LevelDefault, "strict-journal-super", FeatureSet{}, "unknown feature"},
	}
	for _, tc := range tests {
		got, err := ResolveFeatures(tc.level, tc.list)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v %q: error %v, want %q", tc.level, tc.list, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v %q: got %+v, %v; want %+v", tc.level, tc.list, got, err, tc.want)
		}
	}
}

func TestMkfsOptionParsers(t *testing.T) {
	for in, want := range map[string]uint64{"4096": 4096, "4k": 4096, "4K": 4096, "64M": 64 << 20, "2g": 2 << 30, "0x1000": 4096, "512b": 512, "0x1b": 27} {
		if got, err := ParseMkfsSize(in); err != nil || got != want {
			t.Errorf("ParseMkfsSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "12q", "-1"} {
		if _, err := ParseMkfsSize(in); err == nil {
			t.Errorf("ParseMkfsSize(%q) succeeded", in)
		}
	}
	if bs, err := RoundBlockSize(3000); err != nil || bs != 2048 {
		t.Errorf("RoundBlockSize(3000) = %d, %v; want 2048 as mkfs.ocfs2", bs, err)
	}
	if _, err := RoundBlockSize(8192); err == nil || !strings.Contains(err.Error(), "between 512 and 4096") {
		t.Errorf("RoundBlockSize(8192): %v", err)
	}
	if _, err := RoundClusterSize(2 << 20); err == nil || !strings.Contains(err.Error(), "between 4096 and 1048576") {
		t.Errorf("RoundClusterSize(2M): %v", err)
	}
	size, b64, err := ParseJournalOptions("size=64M,block64")
	if err != nil || size != 64<<20 || !b64 {
		t.Errorf("ParseJournalOptions = %d %v %v", size, b64, err)
	}
	if _, b64, _ := ParseJournalOptions("block64,noblock64"); b64 {
		t.Error("noblock64 after block64 left block64 on")
	}
	for in, want := range map[string]string{"size=1M": "at least 4194304", "size": "bad journal option", "bogus": "bad journal option", "nosize=8M": "bad journal option"} {
		if _, _, err := ParseJournalOptions(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseJournalOptions(%q): %v, want %q", in, err, want)
		}
	}
	u, err := ParseUUID("178BDC83-D502-41EF-94EB-474A677D498B")
	u2, err2 := ParseUUID("178bdc83d50241ef94eb474a677d498b")
	if err != nil || err2 != nil || u != u2 || u[0] != 0x17 || u[15] != 0x8B {
		t.Errorf("ParseUUID: %x %v / %x %v", u, err, u2, err2)
	}
	for _, in := range []string{"178BDC83D502", "178BDC83+D502-41EF-94EB-474A677D498B", "zz8BDC83D50241EF94EB474A677D498B"} {
		if _, err := ParseUUID(in); err == nil {
			t.Errorf("ParseUUID(%q) succeeded", in)
		}
	}
	if m, err := ParseMountType("LOCALhost"); err != nil || m != MountLocal {
		t.Errorf("ParseMountType: %v %v", m, err)
	}
}

func TestQuotaTreeDepth(t *testing.T) {
	// (blocksize-8)/4 references per block; levels until 2^32 ids fit.
	for bs, want := range map[int]int{512: 5, 1024: 5, 2048: 4, 4096: 4} {
		if got := ondisk.QuotaTreeDepth(bs); got != want {
			t.Errorf("QuotaTreeDepth(%d) = %d, want %d", bs, got, want)
		}
	}
}

// TestMkfsRefusesImpossibleGeometry checks that every limit the format or
// mkfs.ocfs2 imposes is refused before anything is written, with the limit
// in the message.
func TestMkfsRefusesImpossibleGeometry(t *testing.T) {
	tests := []struct {
		name string
		size int64
		o    MkfsOptions
		want string
	}{
		{"block size", 1 << 30, MkfsOptions{BlockSize: 8192}, "between 512 and 4096"},
		{"cluster size", 1 << 30, MkfsOptions{ClusterSize: 2 << 20}, "between 4096 and 1048576"},
		{"slots", 1 << 30, MkfsOptions{Slots: 256}, "1 to 255 slots"},
		{"label", 1 << 30, MkfsOptions{Label: strings.Repeat("x", 64)}, "less than 64"},
		{"cluster count", 20 << 40, MkfsOptions{ClusterSize: 4096, Journal64: true}, "limit of 4294967294"},
		{"32-bit journal", 3 << 40, MkfsOptions{BlockSize: 512, ClusterSize: 65536}, "-J block64"},
		{"journal too big", 1 << 30, MkfsOptions{JournalSize: 512 << 20, Slots: 4}, "too big for the volume"},
		{"journal too small for clusters", 1 << 30, MkfsOptions{JournalSize: 4 << 20, ClusterSize: 1 << 20}, "9 clusters"},
		{"journal below minimum", 64 << 20, MkfsOptions{BlockSize: 512}, "4 MiB minimum"},
		{"volume too small for journals", 1 << 30, MkfsOptions{Slots: 32}, "too small for 32 slots"},
		{"volume too small", 512 << 10, MkfsOptions{}, "too small for a journal"},
		{"datafiles needs 2G", 1 << 30, MkfsOptions{Type: FSTypeDatafiles}, "at least 2 GiB"},
		{"unknown stack", 1 << 30, MkfsOptions{ClusterStack: "corosync", ClusterName: "c"}, "unknown cluster stack"},
		{"missing name", 1 << 30, MkfsOptions{ClusterStack: "pcmk"}, "missing --cluster-name"},
		{"o2cb name", 1 << 30, MkfsOptions{ClusterStack: "o2cb", ClusterName: "my-cluster"}, "letters and digits"},
		{"long name", 1 << 30, MkfsOptions{ClusterStack: "pcmk", ClusterName: strings.Repeat("c", 17)}, "at most 16"},
		{"global hb pcmk", 1 << 30, MkfsOptions{ClusterStack: "pcmk", ClusterName: "c", GlobalHeartbeat: true}, "only applicable to the o2cb"},
		{"local with stack", 1 << 30, MkfsOptions{Mount: MountLocal, ClusterStack: "o2cb", ClusterName: "c"}, "local volume cannot"},
		{"features", 1 << 30, MkfsOptions{Features: "sparse,nosparse"}, "both sets and clears"},
		{"blocks beyond device", 1 << 30, MkfsOptions{BlockSize: 4096, Blocks: 1 << 20}, "greater than the 262144 blocks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := planAndBuild(tc.o, tc.size, 512)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if !IsMkfsRefusal(err) {
				t.Errorf("error %v is not a refusal", err)
			}
		})
	}
	// The same through Mkfs on a file, which must stay untouched.
	img := filepath.Join(t.TempDir(), "vol.img")
	if err := truncateFile(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	if _, err := Mkfs(img, MkfsOptions{Slots: 32, NoPrompt: true}); err == nil || !strings.Contains(err.Error(), "too small for 32 slots") {
		t.Fatalf("Mkfs: %v", err)
	}
	if fi, err := os.Stat(img); err != nil || fi.Size() != 1<<30 {
		t.Fatalf("image changed: %v %v", fi, err)
	}
	if st, ok := fiSys(img); !ok || st.Blocks != 0 {
		t.Fatalf("a refused mkfs wrote to the image (%d blocks allocated)", st.Blocks)
	}
}

// planAndBuild runs everything Mkfs decides before touching a device of
// size bytes.
func planAndBuild(o MkfsOptions, size int64, sector int) error {
	p, err := planMkfs(&o, size, sector)
	if err != nil {
		return err
	}
	if err := p.check32(); err != nil {
		return err
	}
	r, err := newMkfsRandom(o.UUID)
	if err != nil {
		return err
	}
	_, err = newMkfsBuilder(p, r).build()
	return err
}

// TestMkfsDryRunMatchesMkfsOcfs2 compares the geometry summary of `o2go
// mkfs -n` with `mkfs.ocfs2 -n` for many sizes and options (dry runs
// write nothing, so sizes up to terabytes cost nothing).
func TestMkfsDryRunMatchesMkfsOcfs2(t *testing.T) {
	realtools.Require(t)
	cases := []struct {
		size   int64
		args   []string
		o      MkfsOptions
		blocks string // the BLOCKS argument
	}{
		{4 << 20, nil, MkfsOptions{}, ""},
		{64 << 20, nil, MkfsOptions{}, ""},
		{300 << 20, nil, MkfsOptions{}, ""},
		{600 << 20, nil, MkfsOptions{}, ""},
		{1 << 30, nil, MkfsOptions{}, ""},
		{3 << 30, nil, MkfsOptions{}, ""},
		{11 << 30, nil, MkfsOptions{}, ""},
		{200 << 30, nil, MkfsOptions{}, ""},
		{1100 << 30, nil, MkfsOptions{}, ""},
		{3 << 40, []string{"-b", "512", "-C", "65536"}, MkfsOptions{BlockSize: 512, ClusterSize: 65536}, ""},
		{1 << 30, []string{"--fs-features=local"}, MkfsOptions{Features: "local"}, ""},
		{1 << 30, []string{"-M", "local"}, MkfsOptions{Mount: MountLocal}, ""},
		{5 << 30, []string{"-T", "mail"}, MkfsOptions{Type: FSTypeMail}, ""},
		{3 << 30, []string{"-T", "datafiles"}, MkfsOptions{Type: FSTypeDatafiles}, ""},
		{100 << 30, []string{"-T", "vmstore"}, MkfsOptions{Type: FSTypeVMStore}, ""},
		{200 << 30, []string{"-T", "datafiles"}, MkfsOptions{Type: FSTypeDatafiles}, ""},
		{2 << 30, []string{"-b", "1024", "-C", "65536", "-N", "7"}, MkfsOptions{BlockSize: 1024, ClusterSize: 65536, Slots: 7}, ""},
		{2 << 30, []string{"-J", "size=100M"}, MkfsOptions{JournalSize: 100 << 20}, ""},
		{2 << 30, []string{"-L", "a label"}, MkfsOptions{Label: "a label"}, ""},
		{2 << 30, []string{"--fs-feature-level=max-features"}, MkfsOptions{Level: LevelMaxFeatures}, ""},
		{2 << 30, []string{"--fs-feature-level=max-compat", "--fs-features=sparse,unwritten"}, MkfsOptions{Level: LevelMaxCompat, Features: "sparse,unwritten"}, ""},
		{2 << 30, []string{"--fs-features=nosparse,metaecc"}, MkfsOptions{Features: "nosparse,metaecc"}, ""},
		{8 << 30, []string{"-b", "4096"}, MkfsOptions{BlockSize: 4096, Blocks: 1000000}, "1000000"},
		{8 << 30, nil, MkfsOptions{Blocks: 300000}, "300000"},
	}
	for _, tc := range cases {
		img := filepath.Join(t.TempDir(), "vol.img")
		if err := truncateFile(img, tc.size); err != nil {
			t.Fatal(err)
		}
		args := append(append([]string{"-n", "-F", "-x"}, tc.args...), img)
		if tc.blocks != "" {
			args = append(args, tc.blocks)
		}
		cmd := exec.Command("mkfs.ocfs2", args...)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		_ = cmd.Run()
		want := summaryLines(stdout.String())
		var got bytes.Buffer
		o := tc.o
		o.DryRun, o.Out = true, &got
		_, err := Mkfs(img, o)
		if len(want) == 0 {
			t.Errorf("size %d %v: mkfs.ocfs2 printed no summary", tc.size, tc.args)
			continue
		}
		if g := summaryLines(got.String()); strings.Join(g, "\n") != strings.Join(want, "\n") {
			t.Errorf("size %d %v (err %v):\no2go mkfs -n:\n%s\nmkfs.ocfs2 -n:\n%s", tc.size, tc.args, err, strings.Join(g, "\n"), strings.Join(want, "\n"))
		}
	}
}

// summaryLines keeps the geometry lines mkfs prints before formatting.
func summaryLines(out string) []string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		for _, p := range []string{"Filesystem Type", "Label:", "Features:", "Block size:", "Cluster size:", "Volume size:", "Cluster groups:", "Extent allocator size:", "Journal size:", "Node slots:"} {
			if strings.HasPrefix(l, p) {
				keep = append(keep, l)
			}
		}
	}
	return keep
}

func fiSys(path string) (*syscall.Stat_t, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}
