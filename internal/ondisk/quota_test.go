package ondisk_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

func TestQuotaTreeArithmetic(t *testing.T) {
	for bs, want := range map[int][3]int{512: {5, 126, 5}, 1024: {5, 254, 11}, 2048: {4, 510, 23}, 4096: {4, 1022, 46}} {
		if got := [3]int{ondisk.QuotaTreeDepth(bs), ondisk.QuotaRefsPerBlock(bs), ondisk.GlobalDquotsPerBlock(bs)}; got != want {
			t.Errorf("bs %d: depth, refs, records per block = %v, want %v", bs, got, want)
		}
	}
	// An id's slots, level by level, are its digits in base refs-per-block:
	// they give the id back, so no two ids share a path.
	rapid.Check(t, func(t *rapid.T) {
		bs := rapid.SampledFrom([]int{512, 1024, 2048, 4096}).Draw(t, "bs")
		id := rapid.Uint32().Draw(t, "id")
		epb := uint64(ondisk.QuotaRefsPerBlock(bs))
		back := uint64(0)
		for depth := 0; depth < ondisk.QuotaTreeDepth(bs); depth++ {
			i := ondisk.QuotaTreeIndex(bs, id, depth)
			if i < 0 || uint64(i) >= epb {
				t.Fatalf("index %d at depth %d is outside the block's %d references", i, depth, epb)
			}
			back = back*epb + uint64(i)
		}
		if back != uint64(id) {
			t.Fatalf("bs %d: the slots of id %d spell %d", bs, id, back)
		}
	})
}

// quotaPads are the bytes of each structure that Encode zeroes.
var quotaPads = map[string][]int{
	"data header": {10, 11, 12, 13, 14, 15},
	"dquot":       {0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57},
}

// quotaRoundTrips decodes b as every quota structure and encodes it back
// over a copy: every byte but the pads must come back; a buffer too short
// must be a corruption error.
func quotaRoundTrips(t fataler, b []byte) {
	type codec struct {
		name string
		size int
		run  func(b []byte) ([]byte, error)
	}
	again := func(b []byte, err error, enc func(out []byte)) ([]byte, error) {
		if err != nil {
			return nil, err
		}
		out := bytes.Clone(b)
		enc(out)
		return out, nil
	}
	codecs := []codec{
		{"global info", 32, func(b []byte) ([]byte, error) {
			h, err := ondisk.DecodeGlobalQuotaInfo(b)
			return again(b, err, h.Encode)
		}},
		{"local info", 20, func(b []byte) ([]byte, error) {
			h, err := ondisk.DecodeLocalQuotaInfo(b)
			return again(b, err, h.Encode)
		}},
		{"data header", ondisk.QuotaDataHeaderSize, func(b []byte) ([]byte, error) {
			h, err := ondisk.DecodeQuotaDataHeader(b)
			return again(b, err, h.Encode)
		}},
		{"dquot", ondisk.GlobalDquotSize, func(b []byte) ([]byte, error) {
			d, err := ondisk.DecodeGlobalDquot(b)
			return again(b, err, d.Encode)
		}},
	}
	for _, c := range codecs {
		if len(b) < c.size {
			_, err := c.run(b)
			if !isCorrupt(err) {
				t.Fatalf("%s from %d bytes: %v, want a corruption error", c.name, len(b), err)
			}
			continue
		}
		out, err := c.run(b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := bytes.Clone(b)
		for _, i := range quotaPads[c.name] {
			want[i] = 0
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("%s: decode then encode changed\n%x\nto\n%x", c.name, b, out)
		}
	}
}

// fataler is what the checks here need of *testing.T and *rapid.T.
type fataler interface {
	Fatalf(format string, args ...any)
}

func isCorrupt(err error) bool {
	_, ok := err.(*ondisk.CorruptError)
	return ok
}

func TestQuotaStructuresRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		quotaRoundTrips(t, rapid.SliceOfN(rapid.Byte(), 0, 120).Draw(t, "bytes"))
	})
}

func FuzzQuotaStructures(f *testing.F) {
	f.Add(make([]byte, 88))
	f.Add([]byte{0x70, 0x24, 0xf5, 0x0c})
	f.Fuzz(func(t *testing.T, b []byte) { quotaRoundTrips(t, b) })
}

func TestQuotaHeaderChecks(t *testing.T) {
	for _, typ := range []ondisk.QuotaType{ondisk.UserQuota, ondisk.GroupQuota} {
		g := ondisk.NewGlobalQuotaInfo(typ)
		if err := g.Check(typ); err != nil {
			t.Errorf("type %d: a new global info fails its check: %v", typ, err)
		}
		if err := g.Check(1 - typ); err == nil || !strings.Contains(err.Error(), "dqh_magic") {
			t.Errorf("type %d: the other type's global magic passes: %v", typ, err)
		}
		g.Version = 1
		if err := g.Check(typ); err == nil || !strings.Contains(err.Error(), "dqh_version") {
			t.Errorf("type %d: version 1 passes: %v", typ, err)
		}
		l, err := ondisk.DecodeLocalQuotaInfo(ondisk.NewLocalQuotaFile(typ, 512)[0])
		if err != nil || l.Check(typ) != nil || l.Check(1-typ) == nil {
			t.Errorf("type %d: a new local file's info %+v: %v", typ, l, err)
		}
		if l.Flags != ondisk.LocalQuotaClean || l.Chunks != 1 || l.Blocks != ondisk.QuotaInitBlocks {
			t.Errorf("type %d: a new local file's info is %+v", typ, l)
		}
	}
	if _, err := ondisk.NewGlobalQuotaFile(2, 4096, ondisk.GlobalQuotaInfo{}, ondisk.QuotaRecordFirstUnused); err == nil {
		t.Error("a builder for quota type 2")
	}
	if _, err := ondisk.NewGlobalQuotaFile(ondisk.UserQuota, 3000, ondisk.GlobalQuotaInfo{}, ondisk.QuotaRecordFirstUnused); err == nil {
		t.Error("a builder for 3000-byte blocks")
	}
}

// quotaRecords walks a global file's tree as a reader would and returns
// every id's record (failing on a reference outside the file, an id met
// twice, or a data block whose record count is not its header's).
func quotaRecords(t fataler, blocks [][]byte) map[uint32]ondisk.GlobalDquot {
	bs := len(blocks[0])
	out := map[uint32]ondisk.GlobalDquot{}
	seen := map[uint32]bool{}
	var walk func(blk uint32, level int)
	walk = func(blk uint32, level int) {
		if blk < ondisk.QuotaTreeRootBlock || int(blk) >= len(blocks) {
			t.Fatalf("reference to block %d of %d", blk, len(blocks))
		}
		b := blocks[blk]
		if level < ondisk.QuotaTreeDepth(bs) {
			for i := 0; i < ondisk.QuotaRefsPerBlock(bs); i++ {
				if r := binary.LittleEndian.Uint32(b[4*i:]); r != 0 {
					walk(r, level+1)
				}
			}
			return
		}
		if seen[blk] {
			return
		}
		seen[blk] = true
		h, _ := ondisk.DecodeQuotaDataHeader(b)
		n := 0
		for i := 0; i < ondisk.GlobalDquotsPerBlock(bs); i++ {
			r := ondisk.GlobalDquotRecord(b, i)
			if ondisk.GlobalDquotUnused(r) {
				continue
			}
			n++
			d, _ := ondisk.DecodeGlobalDquot(r)
			if _, dup := out[d.ID]; dup {
				t.Fatalf("id %d twice", d.ID)
			}
			out[d.ID] = d
		}
		if n != int(h.Entries) {
			t.Fatalf("data block %d holds %d records, its header says %d", blk, n, h.Entries)
		}
	}
	walk(ondisk.QuotaTreeRootBlock, 0)
	return out
}

// TestGlobalQuotaFileHoldsWhatWentIn builds files of many ids and reads
// them back: every id once, with its record, at the place the tree gives
// it; the info block counts the blocks and names the data block with
// room; both record choices give the same file when no record is all
// zero.
func TestGlobalQuotaFileHoldsWhatWentIn(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bs := rapid.SampledFrom([]int{512, 1024, 4096}).Draw(t, "bs")
		ids := rapid.SliceOfNDistinct(rapid.Uint32(), 1, 300, func(id uint32) uint32 { return id }).Draw(t, "ids")
		info := ondisk.GlobalQuotaInfo{BlockGrace: 7, InodeGrace: 8, SyncMS: 9, Blocks: 1234, FreeBlk: 5, Magic: 1}
		files := map[ondisk.QuotaRecordChoice]*ondisk.GlobalQuotaFile{}
		want := map[uint32]ondisk.GlobalDquot{}
		for _, choice := range []ondisk.QuotaRecordChoice{ondisk.QuotaRecordAfterEntries, ondisk.QuotaRecordFirstUnused} {
			g, err := ondisk.NewGlobalQuotaFile(ondisk.GroupQuota, bs, info, choice)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				d := ondisk.GlobalDquot{ID: id, CurInodes: uint64(id%7) + 1, CurSpace: uint64(id) << 12, BHardLimit: uint64(id % 3)}
				want[id] = d
				if err := g.Insert(d); err != nil {
					t.Fatal(err)
				}
			}
			files[choice] = g
		}
		a := files[ondisk.QuotaRecordAfterEntries].Blocks()
		if b := files[ondisk.QuotaRecordFirstUnused].Blocks(); !slices.EqualFunc(a, b, bytes.Equal) {
			t.Fatal("the two record choices built different files from records that are never all zero")
		}
		got := quotaRecords(t, a)
		if len(got) != len(want) {
			t.Fatalf("%d records, want %d", len(got), len(want))
		}
		for id, d := range want {
			if got[id] != d {
				t.Fatalf("id %d: %+v, want %+v", id, got[id], d)
			}
		}
		h, _ := ondisk.DecodeGlobalQuotaInfo(a[0])
		wantInfo := ondisk.GlobalQuotaInfo{Magic: ondisk.GroupQuota.GlobalMagic(), BlockGrace: 7, InodeGrace: 8, SyncMS: 9, Blocks: uint32(len(a))}
		if h.FreeEntry != 0 {
			dh, _ := ondisk.DecodeQuotaDataHeader(a[h.FreeEntry])
			if int(dh.Entries) >= ondisk.GlobalDquotsPerBlock(bs) || dh.NextFree != 0 || dh.PrevFree != 0 {
				t.Fatalf("free entry block %d has header %+v", h.FreeEntry, dh)
			}
			wantInfo.FreeEntry = h.FreeEntry
		}
		if h != wantInfo {
			t.Fatalf("info %+v, want %+v", h, wantInfo)
		}
		// Inserting an id again fails and changes nothing.
		g := files[ondisk.QuotaRecordAfterEntries]
		before := slices.Clone(a)
		for i := range before {
			before[i] = bytes.Clone(before[i])
		}
		if err := g.Insert(ondisk.GlobalDquot{ID: ids[0]}); err == nil || !strings.Contains(err.Error(), fmt.Sprint(ids[0])) {
			t.Fatalf("inserting id %d again: %v", ids[0], err)
		}
		if !slices.EqualFunc(before, g.Blocks(), bytes.Equal) {
			t.Fatal("a refused insert changed the file")
		}
	})
}

// TestGlobalQuotaFileZeroRecord: an all-zero record (id 0, nothing set) is
// taken again by the next id when records are chosen as libocfs2 does, and
// kept when they are chosen by count.
func TestGlobalQuotaFileZeroRecord(t *testing.T) {
	for choice, wantFirst := range map[ondisk.QuotaRecordChoice]uint32{ondisk.QuotaRecordFirstUnused: 5, ondisk.QuotaRecordAfterEntries: 0} {
		g, err := ondisk.NewGlobalQuotaFile(ondisk.UserQuota, 1024, ondisk.NewGlobalQuotaInfo(ondisk.UserQuota), choice)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []ondisk.GlobalDquot{{ID: 0}, {ID: 5, CurInodes: 1}} {
			if err := g.Insert(d); err != nil {
				t.Fatal(err)
			}
		}
		data := g.Blocks()[len(g.Blocks())-1]
		h, _ := ondisk.DecodeQuotaDataHeader(data)
		first, _ := ondisk.DecodeGlobalDquot(ondisk.GlobalDquotRecord(data, 0))
		if h.Entries != 2 || first.ID != wantFirst {
			t.Errorf("choice %d: %d entries, first record id %d; want 2 entries, id %d", choice, h.Entries, first.ID, wantFirst)
		}
	}
}

// TestQuotaHashOrderIsLibocfs2Hash compares QuotaHashOrder with a plain
// model of libocfs2's quota hash: singly linked chains, new entries at
// the head, the table doubled (its chains moved entry by entry from their
// heads) when an id is added while it holds more ids than chains.
func TestQuotaHashOrderIsLibocfs2Hash(t *testing.T) {
	type entry struct {
		id   uint32
		next *entry
	}
	model := func(ids []uint32) []uint32 {
		heads := make([]*entry, 8192)
		slot := func(id uint32) int { return int(uint64(id) * 5 & uint64(len(heads)-1)) }
		push := func(e *entry) { s := slot(e.id); e.next = heads[s]; heads[s] = e }
		for used, id := range ids {
			if used > len(heads) && 2*len(heads) < 1<<21 {
				old := heads
				heads = make([]*entry, 2*len(old))
				for _, e := range old {
					for e != nil {
						next := e.next
						push(e)
						e = next
					}
				}
			}
			push(&entry{id: id})
		}
		var out []uint32
		for _, e := range heads {
			for ; e != nil; e = e.next {
				out = append(out, e.id)
			}
		}
		return out
	}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.SampledFrom([]int{1, 50, 8192, 8193, 9000, 17000}).Draw(t, "n")
		// Ids below 2^15 crowd the chains; any 32-bit ids spread out.
		spread := rapid.SampledFrom([]uint32{1 << 15, 1<<32 - 1}).Draw(t, "spread")
		seed := rapid.Uint32().Draw(t, "seed")
		seen := map[uint32]bool{}
		var ids []uint32
		for x := seed; len(ids) < n; x = x*1664525 + 1013904223 {
			if id := x % spread; !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if got, want := ondisk.QuotaHashOrder(ids), model(ids); !slices.Equal(got, want) {
			t.Fatalf("%d ids: order differs from the linked-list hash", n)
		}
	})
}

// TestGlobalQuotaFileMatchesMkfs builds the quota files mkfs.ocfs2 writes
// (the root directory's record, in a file of one tree path) and compares
// them, sealed, with what debugfs.ocfs2 cats from a real volume; the local
// files too. Block sizes 4096 and 512 give trees of 4 and 5 levels.
func TestGlobalQuotaFileMatchesMkfs(t *testing.T) {
	realtools.Require(t)
	for _, c := range []struct {
		name string
		bs   int
		ecc  bool
		args []string
	}{
		{"4k", 4096, false, []string{"-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=local,usrquota,grpquota"}},
		{"512-metaecc", 512, true, []string{"-b", "512", "-C", "4096", "-N", "2", "-J", "size=4M", "--fs-features=local,usrquota,grpquota,metaecc"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := realtools.MkfsImage(t, 64<<20, c.args...)
			seal := func(blocks [][]byte) []byte {
				var out []byte
				for _, b := range blocks {
					if c.ecc {
						ondisk.SetBlockCheck(b, ondisk.QuotaCheckOffset(c.bs))
					}
					out = append(out, b...)
				}
				return out
			}
			for typ, name := range []string{"aquota.user", "aquota.group"} {
				qt := ondisk.QuotaType(typ)
				real := []byte(realtools.Debugfs(t, img, "cat //"+name))
				var blocks [][]byte
				for off := 0; off < len(real); off += c.bs {
					blocks = append(blocks, real[off:off+c.bs])
				}
				info, err := ondisk.DecodeGlobalQuotaInfo(real)
				if err != nil || info.Check(qt) != nil {
					t.Fatalf("%s: info %+v: %v", name, info, err)
				}
				recs := quotaRecords(t, blocks)
				root, ok := recs[0]
				if len(recs) != 1 || !ok || root.CurInodes != 1 {
					t.Fatalf("%s: records %+v, want one for id 0 with the root directory", name, recs)
				}
				for _, choice := range []ondisk.QuotaRecordChoice{ondisk.QuotaRecordAfterEntries, ondisk.QuotaRecordFirstUnused} {
					g, err := ondisk.NewGlobalQuotaFile(qt, c.bs, ondisk.NewGlobalQuotaInfo(qt), choice)
					if err != nil {
						t.Fatal(err)
					}
					if err := g.Insert(root); err != nil {
						t.Fatal(err)
					}
					// mkfs.ocfs2 leaves whatever its buffer held in block 0
					// past the info (and so in that block's check): only
					// the header and info are compared there.
					got := seal(g.Blocks())
					if len(got) != len(real) || !bytes.Equal(got[:32], real[:32]) || !bytes.Equal(got[c.bs:], real[c.bs:]) {
						t.Errorf("%s (choice %d): built %d bytes differ from mkfs.ocfs2's %d, first at byte %d", name, choice, len(got), len(real), firstDiff(got, real))
					}
				}
				for slot := range 2 {
					path := fmt.Sprintf("//%s:%04d", name, slot)
					if got, want := seal(ondisk.NewLocalQuotaFile(qt, c.bs)), []byte(realtools.Debugfs(t, img, "cat "+path)); !bytes.Equal(got, want) {
						t.Errorf("%s: the new local file differs from mkfs.ocfs2's", path)
					}
				}
			}
		})
	}
}

// firstDiff is the offset of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
