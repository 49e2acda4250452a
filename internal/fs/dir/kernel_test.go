package dir

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/base"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// TestKernelUsesO2goDirectories: the Linux driver lists, looks up and then
// changes (1000 names added, 1000 removed) directories o2go built — inline,
// block with an inline dx root, indexed with leaves on the default layout;
// unindexed blocks with trailers and META_ECC on the other — with a clean
// kernel log and a clean fsck, and o2go reads and changes the kernel's
// result.
func TestKernelUsesO2goDirectories(t *testing.T) {
	realtools.Require(t)
	kernelvm.Require(t)
	if testing.Short() {
		t.Skip("two kernel boots: not in -short")
	}
	for _, g := range []volConfig{
		{"4k-4k", 256 << 20, []string{"-b", "4096", "-C", "4096"}},
		{"1k-8k-linear-metaecc", 160 << 20, []string{"-b", "1024", "-C", "8192", "--fs-features=noinline-data,noindexed-dirs,metaecc"}},
	} {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			kernelRound(t, g)
		})
	}
}

type kernelDir struct {
	name     string
	size     int
	d        *ondisk.Dinode
	model    map[string]uint64
	add, rm  []string
	expected map[string]bool
}

func nulJoin(names []string) []byte {
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0)
	}
	return b.Bytes()
}

func nulSplit(b []byte) []string {
	var out []string
	for _, p := range bytes.Split(b, []byte{0}) {
		if len(p) > 0 {
			out = append(out, string(p))
		}
	}
	return out
}

func kernelRound(t *testing.T, g volConfig) {
	img := g.mkfs(t)
	v := openImage(t, img)
	r := base.NewRand(testSeed(t) + uint64(len(g.name)))
	gen := nameGen{r}
	root := v.load(v.sb.RootBlkno)
	var pool []*ondisk.Dinode
	links := map[uint64]int{}
	for i := 0; i < 8; i++ {
		pool = append(pool, v.newInode(ondisk.ModeReg))
	}
	dirs := []*kernelDir{{name: "inl", size: 5}, {name: "blk", size: 100}, {name: "idx", size: 1500}}
	fresh := func(kd *kernelDir) string {
		for {
			n := gen.name()
			// (GNU touch takes "-" for its standard output)
			if !isDot(n) && n != "-" && !kd.expected[n] {
				if _, ok := kd.model[n]; !ok {
					return n
				}
			}
		}
	}
	for _, kd := range dirs {
		kd.d = v.mkdir(root, kd.name)
		kd.model, kd.expected = map[string]uint64{}, map[string]bool{}
		for i := 0; i < kd.size; i++ {
			n := fresh(kd)
			p := pool[r.Intn(len(pool))]
			if err := Add(v.env(), kd.d, n, p.Blkno, ondisk.FileTypeReg); err != nil {
				t.Fatal(err)
			}
			kd.model[n] = p.Blkno
			links[p.Blkno]++
		}
		v.store(kd.d)
		if _, err := checkDir(v.c, v.sb, kd.d, true); err != nil {
			t.Fatal(err)
		}
		// What the kernel will do: add 1000 new names, then remove 1000
		// of the old and new ones.
		for i := 0; i < 1000; i++ {
			kd.add = append(kd.add, fresh(kd))
			kd.expected[kd.add[i]] = true
		}
		for n := range kd.model {
			kd.expected[n] = true
		}
		all := append(sortedNames(kd.model), kd.add...)
		for _, i := range r.Perm(len(all))[:1000] {
			kd.rm = append(kd.rm, all[i])
			delete(kd.expected, all[i])
		}
	}
	for _, p := range pool {
		p.Links = uint32(links[p.Blkno])
		if p.Links == 0 {
			// keep every pool inode referenced
			if err := Add(v.env(), root, fmt.Sprintf("pool-%d", p.Blkno), p.Blkno, ondisk.FileTypeReg); err != nil {
				t.Fatal(err)
			}
			p.Links = 1
		}
		v.store(p)
	}
	v.store(root)
	shapes := map[string]string{}
	for _, kd := range dirs {
		fc, err := checkDir(v.c, v.sb, kd.d, true)
		if err != nil {
			t.Fatal(err)
		}
		shapes[kd.name] = fmt.Sprintf("inline=%v blocks=%d indexed=%v inlineRoot=%v dxClusters=%d", kd.d.Inline != nil, fc.blocks, fc.indexed, fc.inlineRoot, fc.dxClusters)
	}
	t.Logf("o2go built: %v", shapes)
	if v.sb.Features.Incompat&ondisk.IncompatIndexedDirs != 0 &&
		!(dirs[0].d.Inline != nil && strings.Contains(shapes["blk"], "inlineRoot=true") && strings.Contains(shapes["idx"], "inlineRoot=false")) {
		t.Fatalf("the default layout should give an inline, an inline-root and a leaf-indexed directory: %v", shapes)
	}
	v.close()
	realtools.RequireFsckClean(t, img)

	share := t.TempDir()
	for _, kd := range dirs {
		names := sortedNames(kd.model)
		for file, list := range map[string][]string{".names": names, ".add": kd.add, ".rm": kd.rm} {
			if err := os.WriteFile(filepath.Join(share, kd.name+file), nulJoin(list), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	kernelvm.RunT(t, kernelvm.Options{Image: img, Share: share}, `
		set -e
		cd "$KERNELVM_MNT"
		for d in inl blk idx; do
			s="$KERNELVM_SHARE/$d"
			find $d -mindepth 1 -maxdepth 1 -printf '%f\0' > "$s.list"
			(cd $d && xargs -0 -a "$s.names" stat -c '%i %h' --) > "$s.stat"
		done
		for d in inl blk idx; do
			s="$KERNELVM_SHARE/$d"
			(cd $d && xargs -0 -a "$s.add" touch --)
			(cd $d && xargs -0 -a "$s.rm" rm --)
			find $d -mindepth 1 -maxdepth 1 -printf '%f\0' > "$s.after"
		done
		sync`)

	for _, kd := range dirs {
		read := func(suffix string) []byte {
			b, err := os.ReadFile(filepath.Join(share, kd.name+suffix))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		names := sortedNames(kd.model)
		listed := nulSplit(read(".list"))
		slices.Sort(listed)
		if !slices.Equal(listed, names) {
			t.Fatalf("%s: the kernel lists %d names, o2go wrote %d: %s", kd.name, len(listed), len(names), firstDiff(listed, names))
		}
		stats := strings.Split(strings.TrimSpace(string(read(".stat"))), "\n")
		if len(stats) != len(names) {
			t.Fatalf("%s: %d stat lines for %d names", kd.name, len(stats), len(names))
		}
		for i, line := range stats {
			f := strings.Fields(line)
			ino, _ := strconv.ParseUint(f[0], 10, 64)
			if ino != kd.model[names[i]] || f[1] != strconv.Itoa(links[ino]) {
				t.Fatalf("%s: the kernel stats %q as inode %s with %s links, o2go wrote %d with %d", kd.name, names[i], f[0], f[1], kd.model[names[i]], links[ino])
			}
		}
		after := nulSplit(read(".after"))
		slices.Sort(after)
		want := make([]string, 0, len(kd.expected))
		for n := range kd.expected {
			want = append(want, n)
		}
		slices.Sort(want)
		if !slices.Equal(after, want) {
			t.Fatalf("%s: after the kernel's changes it lists %d names, want %d: %s", kd.name, len(after), len(want), firstDiff(after, want))
		}
	}
	realtools.RequireFsckClean(t, img)

	// o2go reads what the kernel left, then changes it again.
	v = openImage(t, img)
	root = v.load(v.sb.RootBlkno)
	for _, kd := range dirs {
		kd.d = v.load(resolveIn(t, v, root, kd.name))
		fc, err := checkDir(v.c, v.sb, kd.d, kernelKeepsTrailers(kd.d))
		if err != nil {
			t.Fatalf("%s as the kernel left it: %v", kd.name, err)
		}
		if len(fc.names) != len(kd.expected) {
			t.Fatalf("%s: o2go reads %d names, want %d", kd.name, len(fc.names), len(kd.expected))
		}
		for n := range kd.expected {
			if _, ok, err := (Dir{C: v.c, SB: v.sb, Inode: kd.d}).Lookup(n); err != nil || !ok {
				t.Fatalf("%s: Lookup(%q) after the kernel: %v %v", kd.name, n, ok, err)
			}
		}
		t.Logf("%s after the kernel: %d names in %d blocks, indexed %v, inline root %v, %d index clusters, %d blocks on the free list",
			kd.name, len(fc.names), fc.blocks, fc.indexed, fc.inlineRoot, fc.dxClusters, fc.listed)
	}
	// Changes on top of the kernel's: 100 names added, half of them
	// removed again (names of inodes the kernel made stay, so that no
	// inode loses its last link here).
	p := v.load(pool[0].Blkno)
	for _, kd := range dirs {
		var added []string
		for i := 0; i < 100; i++ {
			n := fresh(kd)
			if err := Add(v.env(), kd.d, n, p.Blkno, ondisk.FileTypeReg); err != nil {
				t.Fatal(err)
			}
			kd.expected[n] = true
			added = append(added, n)
		}
		for _, n := range added[:50] {
			if _, err := Remove(v.env(), kd.d, n); err != nil {
				t.Fatal(err)
			}
			delete(kd.expected, n)
		}
		p.Links += 50
		v.store(kd.d)
		if _, err := checkDir(v.c, v.sb, kd.d, kernelKeepsTrailers(kd.d)); err != nil {
			t.Fatal(err)
		}
	}
	v.store(p)
	v.close()
	realtools.RequireFsckClean(t, img)
	for _, kd := range dirs {
		compareWithDebugfs(t, img, "/"+kd.name)
	}
}

// kernelKeepsTrailers: the kernel keeps db_free_rec_len exact only in
// indexed directories (it is the free-space list's key); in unindexed ones
// with META_ECC trailers it never updates it.
func kernelKeepsTrailers(d *ondisk.Dinode) bool {
	return d.Inline != nil || d.DynFeatures&ondisk.DynIndexedDir != 0
}

func resolveIn(t *testing.T, v *vol, parent *ondisk.Dinode, name string) uint64 {
	t.Helper()
	e, ok, err := Dir{C: v.c, SB: v.sb, Inode: parent}.Lookup(name)
	if err != nil || !ok {
		t.Fatalf("%s: %v %v", name, ok, err)
	}
	return e.Inode
}
