package dir

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

var (
	cfg4k        = volConfig{"4k-4k", 160 << 20, []string{"-b", "4096", "-C", "4096"}}
	cfg4kNoInl   = volConfig{"4k-4k-noinline", 160 << 20, []string{"-b", "4096", "-C", "4096", "--fs-features=noinline-data"}}
	cfg4k64k     = volConfig{"4k-64k", 256 << 20, []string{"-b", "4096", "-C", "65536"}}
	cfg512Meta   = volConfig{"512-4k-metaecc", 64 << 20, []string{"-b", "512", "-C", "4096", "--fs-features=metaecc"}}
	cfgMaxCompat = volConfig{"1k-8k-maxcompat", 128 << 20, []string{"-b", "1024", "-C", "8192", "--fs-feature-level=max-compat"}}
)

func TestValidateName(t *testing.T) {
	for _, c := range []struct {
		name string
		want error
	}{
		{"a", nil},
		{strings.Repeat("x", 255), nil},
		{"\xff\xfe é", nil},
		{strings.Repeat("x", 256), syscall.ENAMETOOLONG},
		{"", syscall.EINVAL},
		{"a/b", syscall.EINVAL},
		{"a\x00b", syscall.EINVAL},
	} {
		err := ValidateName(c.name)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("ValidateName(%q) = %v, want %v", c.name, err, c.want)
		}
	}
}

// TestInitLayouts checks the new directory of each kind byte for byte
// against what the kernel's mkdir writes.
func TestInitLayouts(t *testing.T) {
	realtools.Require(t)
	for _, g := range []volConfig{cfg4k, cfg4kNoInl, cfg512Meta, cfgMaxCompat} {
		t.Run(g.name, func(t *testing.T) {
			v := memVol(t, g)
			root := v.load(v.sb.RootBlkno)
			d := v.mkdir(root, "new")
			bs := v.sb.BlockSize()
			area := func() []byte {
				if d.Inline != nil {
					return d.Inline.Data
				}
				a, _, err := v.c.DirBlock(d.Extents.Recs[0].Blkno, d.Blkno)
				if err != nil {
					t.Fatal(err)
				}
				return a
			}()
			_, ents, err := ondisk.DirEntries(area)
			if err != nil || len(ents) != 2 || ents[0].Name != "." || ents[0].RecLen != 16 || ents[0].Inode != d.Blkno ||
				ents[1].Name != ".." || int(ents[1].RecLen) != len(area)-16 || ents[1].Inode != root.Blkno ||
				ents[0].FileType != ondisk.FileTypeDir || ents[1].FileType != ondisk.FileTypeDir {
				t.Fatalf("entries %+v, %v", ents, err)
			}
			feat := v.sb.Features.Incompat
			switch {
			case feat&ondisk.IncompatInlineData != 0:
				if d.Inline == nil || len(d.Inline.Data) != ondisk.InlineDataBytes(bs, 0) || d.Size != uint64(len(d.Inline.Data)) || d.Clusters != 0 {
					t.Fatalf("inline dir: size %d, clusters %d", d.Size, d.Clusters)
				}
				return
			case d.Size != uint64(bs) || d.Clusters != 1 || len(d.Extents.Recs) != 1:
				t.Fatalf("block dir: size %d, clusters %d, extents %+v", d.Size, d.Clusters, d.Extents)
			}
			blk := d.Extents.Recs[0].Blkno
			b, _ := v.c.Get(blk)
			trailer := feat&(ondisk.IncompatMetaECC|ondisk.IncompatIndexedDirs) != 0
			if ondisk.HasDirTrailerSignature(b.Data) != trailer || len(area) != map[bool]int{true: bs - 64, false: bs}[trailer] {
				t.Fatalf("trailer %v, area %d", ondisk.HasDirTrailerSignature(b.Data), len(area))
			}
			if trailer {
				tr, _ := ondisk.DecodeDirTrailer(b.Data)
				if tr.FreeRecLen != uint16(len(area)-32) || tr.FreeNext != 0 || tr.Blkno != blk || tr.ParentDinode != d.Blkno {
					t.Fatalf("trailer %+v", tr)
				}
			}
			if feat&ondisk.IncompatIndexedDirs == 0 {
				if d.DynFeatures&ondisk.DynIndexedDir != 0 || d.DxRoot != 0 {
					t.Fatal("indexed without indexed-dirs")
				}
				return
			}
			r, err := v.c.DXRoot(d.DxRoot, d.Blkno)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Inline() || r.NumEntries != 2 || r.FreeBlk != blk || r.Clusters != 0 || len(r.Entries.Entries) != 2 ||
				r.Entries.Entries[0] != (ondisk.DXEntry{DirentBlk: blk}) || r.Entries.Entries[1] != (ondisk.DXEntry{DirentBlk: blk}) {
				t.Fatalf("dx root %+v", r)
			}
		})
	}
}

// TestDotsAndMissingNames: the errors of the POSIX calls built on these.
func TestDotsAndMissingNames(t *testing.T) {
	realtools.Require(t)
	v := memVol(t, cfg4kNoInl)
	root := v.load(v.sb.RootBlkno)
	d := v.mkdir(root, "x")
	env := v.env()
	for _, c := range []struct {
		what string
		err  error
		want error
	}{
		{"add .", Add(env, d, ".", 99, 1), syscall.EEXIST},
		{"add ..", Add(env, d, "..", 99, 1), syscall.EEXIST},
		{"add long", Add(env, d, strings.Repeat("n", 256), 99, 1), syscall.ENAMETOOLONG},
		{"add slash", Add(env, d, "a/b", 99, 1), syscall.EINVAL},
		{"remove .", second(Remove(env, d, ".")), syscall.EINVAL},
		{"remove ..", second(Remove(env, d, "..")), syscall.EINVAL},
		{"remove missing", second(Remove(env, d, "nope")), syscall.ENOENT},
		{"retarget .", second(Retarget(env, d, ".", 99, 2)), syscall.EINVAL},
		{"retarget missing", second(Retarget(env, d, "nope", 99, 1)), syscall.ENOENT},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}
	if _, err := checkDir(v.c, v.sb, d, true); err != nil {
		t.Fatal(err)
	}
}

func second[T any](_ T, err error) error { return err }

// TestInlineExpandsToTwoBlocks: a name that does not fit even in the
// first block made from a full inline directory gets a second block, as
// ocfs2_find_dir_space_id's blocks_wanted = 2 says: two clusters when a
// cluster is one block, one cluster otherwise.
func TestInlineExpandsToTwoBlocks(t *testing.T) {
	realtools.Require(t)
	for _, g := range []volConfig{cfg4k, cfg4k64k} {
		t.Run(g.name, func(t *testing.T) {
			v := memVol(t, g)
			root := v.load(v.sb.RootBlkno)
			d := v.mkdir(root, "x")
			f := v.newInode(ondisk.ModeReg)
			f.Links = 0
			for i := 0; largestFree(d.Inline.Data) >= uint16(ondisk.RecLen(100)); i++ {
				if err := Add(v.env(), d, fmt.Sprintf("%03d%s", i, strings.Repeat("m", 97)), f.Blkno, ondisk.FileTypeReg); err != nil {
					t.Fatal(err)
				}
				f.Links++
			}
			long := strings.Repeat("L", 255)
			if err := Add(v.env(), d, long, f.Blkno, ondisk.FileTypeReg); err != nil {
				t.Fatal(err)
			}
			f.Links++
			bs := uint64(v.sb.BlockSize())
			wantClusters := uint32(1)
			if v.sb.BlocksPerCluster() == 1 {
				wantClusters = 2
			}
			if d.Inline != nil || d.Size != 2*bs || d.Clusters != wantClusters {
				t.Fatalf("after expansion: inline %v, size %d, clusters %d", d.Inline != nil, d.Size, d.Clusters)
			}
			loc, found, err := (&editor{Env: v.env(), d: d, bs: int(bs), bpc: v.sb.BlocksPerCluster()}).locateIndexed(long)
			if err != nil || !found {
				t.Fatal(found, err)
			}
			if second, _ := (Dir{C: v.c, SB: v.sb, Inode: d}).BlockAt(1); loc.blkno != second {
				t.Fatalf("long name in block %d, want the second block %d", loc.blkno, second)
			}
			if _, err := checkDir(v.c, v.sb, d, true); err != nil {
				t.Fatal(err)
			}
			v.store(d)
			v.store(f)
			realtools.RequireFsckClean(t, v.save())
		})
	}
}

func TestFindSplit(t *testing.T) {
	dev := blockdev.NewMemory("mem", 1<<20, 512)
	e := &editor{Env: Env{C: metacache.New(dev, 4096, metacache.Options{})}, d: &ondisk.Dinode{Blkno: 7}}
	ents := func(majors ...uint32) []ondisk.DXEntry {
		var out []ondisk.DXEntry
		for _, m := range majors {
			out = append(out, ondisk.DXEntry{MajorHash: m})
		}
		return out
	}
	for _, c := range []struct {
		sorted         []ondisk.DXEntry
		cpos, insert   uint32
		want           uint32
		enospc, broken bool
	}{
		{sorted: ents(10, 20, 30, 40), cpos: 10, insert: 25, want: 30}, // from the median on
		{sorted: ents(10, 10, 10, 40), cpos: 10, insert: 25, want: 40}, // first above cpos
		{sorted: ents(10, 10, 10, 10), cpos: 10, insert: 25, want: 11}, // all at cpos
		{sorted: ents(50, 50, 50, 50), cpos: 10, insert: 25, want: 50}, // all above the new one
		{sorted: ents(20, 20, 20, 20), cpos: 10, insert: 25, want: 25}, // all below the new one
		{sorted: ents(25, 25, 25, 25), cpos: 10, insert: 25, enospc: true},
		{sorted: ents(1, 2, 3, 4), cpos: 10, insert: 25, broken: true}, // damage: nothing above cpos
	} {
		got, err := e.findSplit(9, c.sorted, c.cpos, c.insert)
		switch {
		case c.enospc:
			if !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("%v: %v, want ENOSPC", c.sorted, err)
			}
		case c.broken:
			if !errors.Is(err, ondisk.ErrCorrupt) {
				t.Errorf("%v: %v, want corruption", c.sorted, err)
			}
		case err != nil || got != c.want:
			t.Errorf("%v cpos %d insert %d: %d, %v; want %d", c.sorted, c.cpos, c.insert, got, err, c.want)
		}
	}
}

// TestFreedSpaceIsReused: names removed from blocks anywhere in a big
// indexed directory leave room that names of the same sizes find again.
// The baseline is the kernel's policy (walk the whole free-space list) run
// on the same workload: the bounded search must stay close to it.
func TestFreedSpaceIsReused(t *testing.T) {
	realtools.Require(t)
	run := func(walk int) (before, after uint64) {
		saved := freeListWalk
		freeListWalk = walk
		defer func() { freeListWalk = saved }()
		v := memVol(t, cfg4kNoInl)
		root := v.load(v.sb.RootBlkno)
		d := v.mkdir(root, "x")
		f := v.newInode(ondisk.ModeReg)
		r := base.NewRand(testSeed(t))
		var names []string
		for i := 0; i < 20000; i++ {
			n := fmt.Sprintf("%05d-%s", i, strings.Repeat("q", r.Intn(200)))
			if err := Add(v.env(), d, n, f.Blkno, ondisk.FileTypeReg); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		before = d.Size / uint64(v.sb.BlockSize())
		var lens []int
		for i, n := range names {
			if i%3 == 0 {
				if _, err := Remove(v.env(), d, n); err != nil {
					t.Fatal(err)
				}
				lens = append(lens, len(n))
			}
		}
		for i, l := range lens {
			n := fmt.Sprintf("R%04d-%s", i, strings.Repeat("z", l-6))
			if err := Add(v.env(), d, n, f.Blkno, ondisk.FileTypeReg); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := checkDir(v.c, v.sb, d, true); err != nil {
			t.Fatal(err)
		}
		return before, d.Size / uint64(v.sb.BlockSize())
	}
	b0, kernel := run(1 << 30)
	b1, ours := run(freeListWalk)
	t.Logf("%d blocks; after removing a third and adding as many names of the same lengths: %d with the kernel's full walk, %d with o2go's bounded search", b0, kernel, ours)
	if b0 != b1 || ours > kernel+(kernel-b0)+b0/10 {
		t.Fatalf("bounded search grew the directory to %d blocks, the full walk to %d (from %d)", ours, kernel, b0)
	}
}

// TestUnsignedHashEntries: kernels from 6.2 index names with bytes >= 0x80
// under the unsigned-char hash. o2go finds such a name, refuses to add it
// again, and removes it with its index entry.
func TestUnsignedHashEntries(t *testing.T) {
	realtools.Require(t)
	v := memVol(t, cfg4kNoInl)
	root := v.load(v.sb.RootBlkno)
	d := v.mkdir(root, "x")
	f := v.newInode(ondisk.ModeReg)
	name := "caf\xc3\xa9-\xff\x80"
	if err := Add(v.env(), d, name, f.Blkno, ondisk.FileTypeReg); err != nil {
		t.Fatal(err)
	}
	// Rehash its index entry the way a 6.2+ kernel would have.
	sMaj, sMin := ondisk.DXHashString(name, v.sb.DxSeed, ondisk.SignedChar)
	uMaj, uMin := ondisk.DXHashString(name, v.sb.DxSeed, ondisk.UnsignedChar)
	if sMaj == uMaj && sMin == uMin {
		t.Fatal("test name hashes the same both ways")
	}
	b, _ := v.c.Get(d.DxRoot)
	r, err := ondisk.DecodeDXRoot(b.Data)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range r.Entries.Entries {
		if x.MajorHash == sMaj && x.MinorHash == sMin {
			r.Entries.Entries[i].MajorHash, r.Entries.Entries[i].MinorHash = uMaj, uMin
		}
	}
	v.tx.Access(b)
	r.Encode(b.Data)
	v.tx.Dirty(b, ondisk.DXRootCheckOffset)

	if e, ok, err := (Dir{C: v.c, SB: v.sb, Inode: d}).Lookup(name); err != nil || !ok || e.Inode != f.Blkno {
		t.Fatalf("Lookup = %+v %v %v", e, ok, err)
	}
	if err := Add(v.env(), d, name, f.Blkno, ondisk.FileTypeReg); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("Add again: %v, want EEXIST", err)
	}
	if _, err := Retarget(v.env(), d, name, f.Blkno, ondisk.FileTypeReg); err != nil {
		t.Fatal(err)
	}
	if _, err := Remove(v.env(), d, name); err != nil {
		t.Fatal(err)
	}
	if _, err := checkDir(v.c, v.sb, d, true); err != nil {
		t.Fatal(err)
	}
	if r, _ := v.c.DXRoot(d.DxRoot, d.Blkno); len(r.Entries.Entries) != 2 || r.NumEntries != 2 {
		t.Fatalf("index after the removal: %+v", r.Entries)
	}
}
