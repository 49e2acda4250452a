package dir

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// readOnlyView opens img read-only for comparisons with the real tools.
func readOnlyView(t testing.TB, img string) (*metacache.Cache, *ondisk.SuperBlock, func()) {
	t.Helper()
	dev, err := blockdev.Open(img, blockdev.OpenOptions{ReadOnly: true, Direct: blockdev.DirectOff})
	if err != nil {
		t.Fatal(err)
	}
	super, bs := readSuper(t, dev)
	c := metacache.New(dev, bs, metacache.Options{MetaECC: super.Super.Features.Incompat&ondisk.IncompatMetaECC != 0, FSGeneration: super.FSGeneration})
	return c, super.Super, func() { dev.Close() }
}

// resolve walks an absolute path with Lookup.
func resolve(t testing.TB, c *metacache.Cache, sb *ondisk.SuperBlock, path string) *ondisk.Dinode {
	t.Helper()
	d, err := c.Dinode(sb.RootBlkno)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		if part == "" {
			continue
		}
		e, ok, err := Dir{C: c, SB: sb, Inode: d}.Lookup(part)
		if err != nil || !ok {
			t.Fatalf("%s: %q: %v %v", path, part, ok, err)
		}
		if d, err = c.Dinode(e.Inode); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

var (
	lsLine      = regexp.MustCompile(`^\s*(\d+)\s+\S+\s+\d+\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+ (.*)$`)
	dirblkHead  = regexp.MustCompile(`^\s*Dirblock: (\d+)`)
	dirblkHole  = regexp.MustCompile(`Largest Hole: (\d+)\s+Next Block: (\d+)`)
	dirblkEntry = regexp.MustCompile(`^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)(?:  (.*))?$`)
	dxLeafHead  = regexp.MustCompile(`^\s*Dir Index Leaf: (\d+)`)
	dxEntryLine = regexp.MustCompile(`^\s*\d+\s+\(0x([0-9a-f]+) 0x([0-9a-f]+)\)\s+(\d+)`)
	dxTotal     = regexp.MustCompile(`Total Entry Count: (\d+)`)
)

// debugfsLines runs a debugfs.ocfs2 command and splits its output into
// lines, keeping raw bytes (names may be any bytes but '/' and NUL).
func debugfsLines(t testing.TB, img, cmd string) []string {
	t.Helper()
	out := realtools.Debugfs(t, img, cmd)
	return strings.Split(strings.TrimRight(out, "\n"), "\n")
}

// compareWithDebugfs checks that debugfs.ocfs2's `ls -l`, `dirblocks` and
// `dx_dump` of a directory say what o2go reads there.
func compareWithDebugfs(t testing.TB, img, path string) {
	t.Helper()
	c, sb, done := readOnlyView(t, img)
	defer done()
	d := resolve(t, c, sb, path)
	dr := Dir{C: c, SB: sb, Inode: d}

	// ls -l: (inode, name) of every live entry.
	var ours, theirs []string
	if err := dr.ForEach(func(e ondisk.DirEntry) error {
		ours = append(ours, fmt.Sprintf("%d %s", e.Inode, e.Name))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, l := range debugfsLines(t, img, "ls -l "+path) {
		if m := lsLine.FindStringSubmatch(l); m != nil {
			theirs = append(theirs, m[1]+" "+m[2])
		}
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	if !slices.Equal(ours, theirs) {
		t.Fatalf("%s: ls -l lists %d entries, o2go %d; first difference %s", path, len(theirs), len(ours), firstDiff(theirs, ours))
	}
	if d.Inline != nil {
		return
	}

	// dirblocks: every block, every used entry, the trailer's numbers.
	ours, theirs = nil, nil
	err := dr.ForEachBlock(func(blkno uint64, area []byte) error {
		ours = append(ours, fmt.Sprintf("block %d", blkno))
		it := ondisk.NewDirIter(area)
		for it.Next() {
			if e := it.Entry(); e.Used() {
				ours = append(ours, fmt.Sprintf("%d %d %d %d %s", e.Inode, e.RecLen, len(e.Name), e.FileType, e.Name))
			}
		}
		b, err := c.Get(blkno)
		if err != nil {
			return err
		}
		if ondisk.HasDirTrailerSignature(b.Data) {
			tr, err := ondisk.DecodeDirTrailer(b.Data)
			if err != nil {
				return err
			}
			ours = append(ours, fmt.Sprintf("hole %d next %d", tr.FreeRecLen, tr.FreeNext))
		}
		return it.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range debugfsLines(t, img, "dirblocks "+path) {
		if m := dirblkHead.FindStringSubmatch(l); m != nil {
			theirs = append(theirs, "block "+m[1])
		} else if m := dirblkHole.FindStringSubmatch(l); m != nil {
			theirs = append(theirs, "hole "+m[1]+" next "+m[2])
		} else if m := dirblkEntry.FindStringSubmatch(l); m != nil && m[1] != "0" {
			theirs = append(theirs, fmt.Sprintf("%s %s %s %s %s", m[1], m[2], m[3], m[4], m[5]))
		}
	}
	// debugfs prints a block's trailer before its entries; compare per
	// block, order within a block aside.
	if a, b := groupBlocks(ours), groupBlocks(theirs); !slices.Equal(a, b) {
		t.Fatalf("%s: dirblocks differs: first difference %s", path, firstDiff(b, a))
	}
	if d.DynFeatures&ondisk.DynIndexedDir == 0 {
		return
	}

	// dx_dump: every index entry in the leaf (or root) holding it.
	root, err := c.DXRoot(d.DxRoot, d.Blkno)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs = nil, nil
	if root.Inline() {
		for _, x := range root.Entries.Entries {
			ours = append(ours, fmt.Sprintf("0 %08x %08x %d", x.MajorHash, x.MinorHash, x.DirentBlk))
		}
	} else {
		bpc := uint64(sb.BlocksPerCluster())
		if err := extent.Walk(c, &root.List, "dx", func(r ondisk.ExtentRec) error {
			for blk := r.Blkno; blk < r.Blkno+uint64(r.Clusters)*bpc; blk++ {
				l, err := c.DXLeaf(blk)
				if err != nil {
					return err
				}
				for _, x := range l.List.Entries {
					ours = append(ours, fmt.Sprintf("%d %08x %08x %d", blk, x.MajorHash, x.MinorHash, x.DirentBlk))
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	leaf, total := "0", ""
	for _, l := range debugfsLines(t, img, "dx_dump "+path) {
		if m := dxLeafHead.FindStringSubmatch(l); m != nil {
			leaf = m[1]
		} else if m := dxEntryLine.FindStringSubmatch(l); m != nil {
			theirs = append(theirs, fmt.Sprintf("%s %s %s %s", leaf, m[1], m[2], m[3]))
		} else if m := dxTotal.FindStringSubmatch(l); m != nil {
			total = m[1]
		}
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	if !slices.Equal(ours, theirs) {
		t.Fatalf("%s: dx_dump shows %d index entries, o2go %d; first difference %s", path, len(theirs), len(ours), firstDiff(theirs, ours))
	}
	if total != strconv.FormatUint(uint64(root.NumEntries), 10) {
		t.Fatalf("%s: dx_dump total %q, dr_num_entries %d", path, total, root.NumEntries)
	}
}

// groupBlocks sorts the lines of each "block N" group, keeping the groups
// in order.
func groupBlocks(lines []string) []string {
	var out, cur []string
	flush := func() {
		slices.Sort(cur)
		out = append(out, cur...)
		cur = nil
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "block ") {
			flush()
			out = append(out, l)
			continue
		}
		cur = append(cur, l)
	}
	flush()
	return out
}

func firstDiff(a, b []string) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return fmt.Sprintf("at %d: tool %q, o2go %q", i, x, y)
		}
	}
	return "none"
}
