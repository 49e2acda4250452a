package ondisk_test

// Golden tests for part A of the format (superblock, dinodes, allocators,
// system files, slot map, heartbeat, lock names, OCFS1 headers) against
// volumes made by the real mkfs.ocfs2 at test time and what debugfs.ocfs2
// says about them. They skip on a machine without ocfs2-tools and fail
// under CI=true.

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil"
	"o2go/internal/testutil/kernelvm"
	"o2go/internal/testutil/realtools"
)

// goldenVolume is one mkfs.ocfs2 configuration of the matrix.
type goldenVolume struct {
	name string
	size int64
	bs   int
	args []string
}

// goldenMatrix covers block sizes 512..4K, cluster sizes 4K..1M, 1/2/4/8/16
// slots, the max-compat/default/max-features levels, metaecc, and local,
// classic o2cb, o2cb+global heartbeat and pcmk stamps. Volumes above 1 GiB
// carry a backup superblock.
var goldenMatrix = []goldenVolume{
	{"4k-4k-n4-local", 1100 << 20, 4096, []string{"-b", "4096", "-C", "4096", "-N", "4", "-L", "gold", "--fs-features=local"}},
	{"512-4k-n1-maxfeat-local", 1100 << 20, 512, []string{"-b", "512", "-C", "4096", "-N", "1", "-J", "size=4M", "--fs-feature-level=max-features", "--fs-features=local"}},
	{"1k-8k-n16-maxcompat-local", 600 << 20, 1024, []string{"-b", "1024", "-C", "8192", "-N", "16", "-J", "size=4M", "--fs-feature-level=max-compat", "--fs-features=local"}},
	{"2k-1m-n4-o2cb-globalhb", 1100 << 20, 2048, []string{"-b", "2048", "-C", "1M", "-N", "4", "-J", "size=16M", "--cluster-stack=o2cb", "--cluster-name=x", "--global-heartbeat"}},
	{"4k-64k-n2-pcmk", 700 << 20, 4096, []string{"-b", "4096", "-C", "64K", "-N", "2", "-J", "size=4M", "-L", "pcmkvol", "--cluster-stack=pcmk", "--cluster-name=mycluster"}},
	{"1k-4k-n4-metaecc-o2cb", 300 << 20, 1024, []string{"-b", "1024", "-C", "4096", "-N", "4", "-J", "size=4M", "--fs-features=metaecc", "--cluster-stack=o2cb", "--cluster-name=gold"}},
	{"2k-32k-n16-classic", 900 << 20, 2048, []string{"-b", "2048", "-C", "32K", "-N", "16", "-J", "size=4M"}},
	{"4k-4k-n8-maxfeat-noinline", 400 << 20, 4096, []string{"-b", "4096", "-C", "4096", "-N", "8", "-J", "size=4M", "--fs-feature-level=max-features", "--fs-features=noinline-data,local"}},
}

// volumeImage reads blocks of an image file.
type volumeImage struct {
	t    *testing.T
	f    *os.File
	bs   int
	path string
}

func openImage(t *testing.T, path string, bs int) *volumeImage {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &volumeImage{t: t, f: f, bs: bs, path: path}
}

func (v *volumeImage) read(off int64, n int) []byte {
	v.t.Helper()
	b := make([]byte, n)
	if _, err := v.f.ReadAt(b, off); err != nil {
		v.t.Fatalf("read %d bytes at %d: %v", n, off, err)
	}
	return b
}

func (v *volumeImage) block(blkno uint64) []byte {
	v.t.Helper()
	return v.read(int64(blkno)*int64(v.bs), v.bs)
}

func (v *volumeImage) write(off int64, b []byte) {
	v.t.Helper()
	if _, err := v.f.WriteAt(b, off); err != nil {
		v.t.Fatal(err)
	}
}

// checkBlockRoundTrip verifies a decoded block re-encodes to the bytes read:
// encode, then with META_ECC recompute the check; without it the check must
// be zero on disk.
func checkBlockRoundTrip(t *testing.T, what string, raw []byte, checkOff int, metaECC bool, encode func([]byte) error) {
	t.Helper()
	if metaECC {
		cp := append([]byte(nil), raw...)
		if corrected, err := ondisk.VerifyBlockCheck(cp, checkOff, what); err != nil || corrected {
			t.Fatalf("%s: block check: corrected=%v err=%v", what, corrected, err)
		}
	} else if !bytes.Equal(raw[checkOff:checkOff+ondisk.BlockCheckSize], make([]byte, ondisk.BlockCheckSize)) {
		t.Fatalf("%s: block check set without META_ECC", what)
	}
	out := append([]byte(nil), raw...)
	for i := range out[:checkOff] {
		out[i] ^= 0x5A // make stale bytes visible: Encode must write them all
	}
	if err := encode(out); err != nil {
		t.Fatalf("%s: encode: %v", what, err)
	}
	if metaECC {
		ondisk.SetBlockCheck(out, checkOff)
	}
	if !bytes.Equal(out, raw) {
		var diffs []string
		for i := range raw {
			if out[i] != raw[i] && len(diffs) < 8 {
				diffs = append(diffs, fmt.Sprintf("0x%x: got %02x want %02x", i, out[i], raw[i]))
			}
		}
		t.Fatalf("%s: re-encoded block differs from mkfs's at %s", what, strings.Join(diffs, ", "))
	}
}

func TestGoldenVolumes(t *testing.T) {
	realtools.Require(t)
	for _, gv := range goldenMatrix {
		t.Run(gv.name, func(t *testing.T) {
			img := realtools.MkfsImage(t, gv.size, gv.args...)
			v := openImage(t, img, gv.bs)
			d, sb := checkSuperBlock(t, v, gv)
			checkOCFS1Header(t, v)
			checkBackups(t, v, gv, d)
			sys := checkSystemFiles(t, v, d, sb)
			checkAllocators(t, v, d, sb, sys)
			checkSlotMap(t, v, sb, sys)
			checkHeartbeat(t, v, sb, sys)
		})
	}
}

var (
	reRevision = regexp.MustCompile(`Revision: (\d+)\.(\d+)`)
	reNum      = func(label string) *regexp.Regexp { return regexp.MustCompile(regexp.QuoteMeta(label) + `: (\d+)`) }
	reLabel    = regexp.MustCompile(`(?m)^\tLabel: (.*)$`)
	reUUID     = regexp.MustCompile(`UUID: ([0-9A-F]{32})`)
	reSeeds    = regexp.MustCompile(`DX Seeds: (\d+) (\d+) (\d+)`)
	reStack    = regexp.MustCompile(`(?m)^\tCluster stack: (.*)$`)
	reCluster  = regexp.MustCompile(`(?m)^\tCluster name: (.*)$`)
	reTime     = func(label string) *regexp.Regexp { return regexp.MustCompile(label + `: 0x([0-9a-f]+) 0x([0-9a-f]+)`) }
)

func mustMatch(t *testing.T, re *regexp.Regexp, s string) []string {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("debugfs output lacks %v:\n%s", re, s)
	}
	return m
}

func num(t *testing.T, label, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(mustMatch(t, reNum(label), s)[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkSuperBlock decodes block 2 and compares every field debugfs.ocfs2
// -R stats prints.
func checkSuperBlock(t *testing.T, v *volumeImage, gv goldenVolume) (*ondisk.Dinode, *ondisk.SuperBlock) {
	t.Helper()
	raw := v.block(ondisk.SuperBlockBlkno)
	d, err := ondisk.DecodeDinode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := ondisk.ValidateSuperBlock(d, gv.bs); err != nil {
		t.Fatal(err)
	}
	if d.Blkno != ondisk.SuperBlockBlkno {
		t.Fatalf("superblock i_blkno %d", d.Blkno)
	}
	sb := d.Super
	metaECC := sb.Features.Incompat&ondisk.IncompatMetaECC != 0
	checkBlockRoundTrip(t, "superblock", raw, ondisk.DinodeCheckOffset, metaECC, d.Encode)

	st := realtools.Debugfs(t, v.path, "stats")
	rev := mustMatch(t, reRevision, st)
	type field struct {
		name string
		got  uint64
		want uint64
	}
	seeds := mustMatch(t, reSeeds, st)
	seed := func(i int) uint64 { x, _ := strconv.ParseUint(seeds[i+1], 10, 32); return x }
	ct, mt := mustMatch(t, reTime("ctime"), st), mustMatch(t, reTime("mtime"), st)
	hex := func(s string) uint64 { x, _ := strconv.ParseUint(s, 16, 64); return x }
	for _, f := range []field{
		{"major rev", uint64(sb.MajorRev), uint64(atoi(rev[1]))},
		{"minor rev", uint64(sb.MinorRev), uint64(atoi(rev[2]))},
		{"mount count", uint64(sb.MntCount), num(t, "Mount Count", st)},
		{"max mount count", uint64(sb.MaxMntCount), num(t, "Max Mount Count", st)},
		{"state", uint64(sb.State), num(t, "State", st)},
		{"errors", uint64(sb.Errors), num(t, "Errors", st)},
		{"check interval", uint64(sb.CheckInterval), num(t, "Check Interval", st)},
		{"creator os", uint64(sb.CreatorOS), num(t, "Creator OS", st)},
		{"compat", uint64(sb.Features.Compat), num(t, "Feature Compat", st)},
		{"incompat", uint64(sb.Features.Incompat), num(t, "Feature Incompat", st)},
		{"tunefs", uint64(sb.TunefsFlag), num(t, "Tunefs Incomplete", st)},
		{"ro compat", uint64(sb.Features.RoCompat), num(t, "Feature RO compat", st)},
		{"root", sb.RootBlkno, num(t, "Root Blknum", st)},
		{"sysdir", sb.SystemDirBlkno, num(t, "System Dir Blknum", st)},
		{"first group", sb.FirstClusterGroup, num(t, "First Cluster Group Blknum", st)},
		{"block bits", uint64(sb.BlockSizeBits), num(t, "Block Size Bits", st)},
		{"cluster bits", uint64(sb.ClusterSizeBits), num(t, "Cluster Size Bits", st)},
		{"slots", uint64(sb.MaxSlots), num(t, "Max Node Slots", st)},
		{"xattr inline", uint64(sb.XattrInlineSize), num(t, "Extended Attributes Inline Size", st)},
		{"uuid hash", uint64(sb.UUIDHash), num(t, "Hash", st)},
		{"dx seed 0", uint64(sb.DxSeed[0]), seed(0)},
		{"dx seed 1", uint64(sb.DxSeed[1]), seed(1)},
		{"dx seed 2", uint64(sb.DxSeed[2]), seed(2)},
		{"stack flags", uint64(sb.ClusterInfo.StackFlags), num(t, "Cluster flags", st)},
		{"i_blkno", d.Blkno, num(t, "Inode", st)},
		{"i_generation", uint64(d.Generation), num(t, "Generation", st)}, // the first: the Inode line
		{"i_fs_generation", uint64(d.FSGeneration), num(t, "FS Generation", st)},
		{"i_links", uint64(d.Links), num(t, "Links", st)},
		{"i_clusters", uint64(d.Clusters), num(t, "Clusters", st)},
		{"i_size", d.Size, numRe(t, `Group: \d+ \(\w+\)\s+Size: (\d+)`, st)},
		{"i_suballoc_bit", uint64(d.SuballocBit), num(t, "Sub Alloc Bit", st)},
		{"i_ctime", d.Ctime.Sec, hex(ct[1])},
		{"i_ctime_nsec", uint64(d.Ctime.Nsec), hex(ct[2])},
		{"i_mtime", d.Mtime.Sec, hex(mt[1])},
	} {
		if f.got != f.want {
			t.Errorf("superblock %s: decoded %d, debugfs says %d", f.name, f.got, f.want)
		}
	}
	if got := mustMatch(t, reLabel, st)[1]; sb.Label() != got {
		t.Errorf("label %q, debugfs %q", sb.Label(), got)
	}
	if got := mustMatch(t, reUUID, st)[1]; sb.UUIDString() != got {
		t.Errorf("uuid %s, debugfs %s", sb.UUIDString(), got)
	}
	if sb.HasClusterInfo() {
		if got := mustMatch(t, reStack, st)[1]; sb.ClusterInfo.StackName() != got {
			t.Errorf("stack %q, debugfs %q", sb.ClusterInfo.StackName(), got)
		}
		if got := mustMatch(t, reCluster, st)[1]; sb.ClusterInfo.ClusterName() != got {
			t.Errorf("cluster %q, debugfs %q", sb.ClusterInfo.ClusterName(), got)
		}
	} else if got := mustMatch(t, reStack, st)[1]; got != "classic o2cb" {
		t.Errorf("debugfs sees stack %q on a volume without cluster info", got)
	}
	// s_uuid_hash is the rotate-xor hash of the uuid when xattrs or
	// indexed directories use it, and zero otherwise.
	want := uint32(0)
	if sb.Features.Incompat&(ondisk.IncompatXattr|ondisk.IncompatIndexedDirs) != 0 {
		want = ondisk.UUIDHash(sb.UUID)
	}
	if sb.UUIDHash != want {
		t.Errorf("s_uuid_hash 0x%x, UUIDHash gives 0x%x", sb.UUIDHash, want)
	}
	if d.Flags != ondisk.InodeValid|ondisk.InodeSystem|ondisk.InodeSuperBlock || d.SuballocSlot != ondisk.SuballocSlotGlobal {
		t.Errorf("superblock i_flags 0x%x, slot 0x%x", d.Flags, d.SuballocSlot)
	}
	if sb.BlockSize() != gv.bs || uint64(d.Clusters) != uint64(gv.size)/uint64(sb.ClusterSize()) {
		t.Errorf("geometry: block %d clusters %d", sb.BlockSize(), d.Clusters)
	}
	return d, sb
}

// numRe is num with a whole regexp whose first group is the number.
func numRe(t *testing.T, re, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(mustMatch(t, regexp.MustCompile(re), s)[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func checkOCFS1Header(t *testing.T, v *volumeImage) {
	t.Helper()
	raw := v.read(0, ondisk.OCFS1HeaderBytes(v.bs))
	want := make([]byte, len(raw))
	if err := ondisk.EncodeOCFS1Header(want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, want) {
		t.Error("the first two blocks differ from EncodeOCFS1Header")
	}
	if !ondisk.HasOCFS1FakeHeader(raw) || ondisk.IsOCFS1(raw) {
		t.Error("OCFS1 detection on mkfs's header")
	}
}

// checkBackups reads every backup superblock the volume has room for: each
// is the primary with its own i_blkno.
func checkBackups(t *testing.T, v *volumeImage, gv goldenVolume, primary *ondisk.Dinode) {
	t.Helper()
	backups := ondisk.BackupSuperBlockBlknos(gv.bs, uint64(gv.size)/uint64(gv.bs))
	if gv.size > 1<<30 && len(backups) == 0 {
		t.Fatal("no backup superblock on a volume above 1 GiB")
	}
	metaECC := primary.Super.Features.Incompat&ondisk.IncompatMetaECC != 0
	for _, blk := range backups {
		raw := v.block(blk)
		d, err := ondisk.DecodeDinode(raw)
		if err != nil {
			t.Fatalf("backup at %d: %v", blk, err)
		}
		if err := ondisk.ValidateSuperBlock(d, gv.bs); err != nil {
			t.Fatalf("backup at %d: %v", blk, err)
		}
		if d.Blkno != blk || d.FSGeneration != primary.FSGeneration {
			t.Fatalf("backup at %d: i_blkno %d, fs generation 0x%x", blk, d.Blkno, d.FSGeneration)
		}
		want := *primary
		want.Blkno = blk
		checkBlockRoundTrip(t, fmt.Sprintf("backup superblock %d", blk), raw, ondisk.DinodeCheckOffset, metaECC, want.Encode)
	}
}

// sysFile is one entry of the system directory as debugfs lists it.
type sysFile struct {
	blkno uint64
	kind  ondisk.SystemFileKind
	slot  int
	d     *ondisk.Dinode
}

// systemFiles maps names ("journal:0000") to what we decoded.
type systemFiles map[string]*sysFile

func (s systemFiles) get(t *testing.T, kind ondisk.SystemFileKind, slot int) *sysFile {
	t.Helper()
	name, err := ondisk.SystemFileName(kind, slot)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := s[name]
	if !ok {
		t.Fatalf("system file %s missing", name)
	}
	return f
}

func lsMode(mode uint16) string {
	var b strings.Builder
	switch mode & ondisk.ModeTypeMask {
	case ondisk.ModeDir:
		b.WriteByte('d')
	case ondisk.ModeLnk:
		b.WriteByte('l')
	default:
		b.WriteByte('-')
	}
	for i := 8; i >= 0; i-- {
		if mode&(1<<i) != 0 {
			b.WriteByte("rwxrwxrwx"[8-i])
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// decodeInode reads, decodes, self-checks and round-trips one dinode.
func decodeInode(t *testing.T, v *volumeImage, blkno uint64, sb *ondisk.SuperBlock, fsGen uint32, what string) *ondisk.Dinode {
	t.Helper()
	raw := v.block(blkno)
	d, err := ondisk.DecodeDinode(raw)
	if err != nil {
		t.Fatalf("%s (block %d): %v", what, blkno, err)
	}
	if err := d.SelfCheck(blkno, fsGen); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	metaECC := sb.Features.Incompat&ondisk.IncompatMetaECC != 0
	if tl := d.TruncateLog; tl != nil && len(tl.Recs) < int(tl.Count) {
		// The kernel leaves flushed records behind tl_used; Encode zeroes
		// unused slots, so compare with them zeroed.
		if metaECC {
			if _, err := ondisk.VerifyBlockCheck(raw, ondisk.DinodeCheckOffset, what); err != nil {
				t.Fatal(err)
			}
		}
		clear(raw[ondisk.DinodeID2Offset+8+8*len(tl.Recs) : ondisk.DinodeID2Offset+8+8*int(tl.Count)])
		if metaECC {
			ondisk.SetBlockCheck(raw, ondisk.DinodeCheckOffset)
		}
	}
	checkBlockRoundTrip(t, what, raw, ondisk.DinodeCheckOffset, metaECC, d.Encode)
	return d
}

// checkSystemFiles decodes every inode in the system directory and the
// directories themselves, comparing with debugfs's "ls -l //".
func checkSystemFiles(t *testing.T, v *volumeImage, super *ondisk.Dinode, sb *ondisk.SuperBlock) systemFiles {
	t.Helper()
	gen := super.FSGeneration
	out := systemFiles{}
	ls := realtools.Debugfs(t, v.path, "ls -l //")
	for _, line := range strings.Split(strings.TrimSpace(ls), "\n") {
		f := strings.Fields(line)
		if len(f) != 9 {
			t.Fatalf("unexpected ls line %q", line)
		}
		blkno, _ := strconv.ParseUint(f[0], 10, 64)
		name := f[8]
		d := decodeInode(t, v, blkno, sb, gen, "//"+name)
		if lsMode(d.Mode) != f[1] || strconv.Itoa(int(d.Links)) != f[2] || strconv.FormatUint(d.Size, 10) != f[5] ||
			strconv.Itoa(int(d.UID)) != f[3] || strconv.Itoa(int(d.GID)) != f[4] {
			t.Errorf("%s: decoded mode %s links %d uid %d gid %d size %d; debugfs: %q", name, lsMode(d.Mode), d.Links, d.UID, d.GID, d.Size, line)
		}
		if name == "." || name == ".." {
			if blkno != sb.SystemDirBlkno {
				t.Errorf("%s is %d, superblock says %d", name, blkno, sb.SystemDirBlkno)
			}
			continue
		}
		kind, slot, ok := ondisk.ParseSystemFileName(name)
		if !ok {
			t.Errorf("unknown system file %q", name)
			continue
		}
		info, _ := kind.Info()
		if d.Flags != ondisk.InodeValid|ondisk.InodeSystem|info.Flags {
			t.Errorf("%s: i_flags 0x%x, the table says VALID|SYSTEM|0x%x", name, d.Flags, info.Flags)
		}
		if d.Mode != info.Mode || d.SuballocSlot != ondisk.SuballocSlotGlobal {
			t.Errorf("%s: mode 0%o (table 0%o), suballoc slot %d", name, d.Mode, info.Mode, d.SuballocSlot)
		}
		if info.PerSlot && slot >= int(sb.MaxSlots) {
			t.Errorf("%s: slot beyond s_max_slots %d", name, sb.MaxSlots)
		}
		out[name] = &sysFile{blkno: blkno, kind: kind, slot: slot, d: d}
	}
	// Every kind for every slot, quota files only with the quota features.
	for _, info := range ondisk.SystemFiles {
		present := info.RoCompat == 0 || sb.Features.RoCompat&info.RoCompat != 0
		slots := []int{0}
		if info.PerSlot {
			slots = nil
			for s := 0; s < int(sb.MaxSlots); s++ {
				slots = append(slots, s)
			}
		}
		for _, s := range slots {
			name, _ := ondisk.SystemFileName(info.Kind, s)
			if _, ok := out[name]; ok != present {
				t.Errorf("%s: present %v, want %v", name, ok, present)
			}
		}
	}
	bs := v.bs
	inlineData := sb.Features.Incompat&ondisk.IncompatInlineData != 0
	for name, f := range out {
		d := f.d
		switch f.kind {
		case ondisk.SysLocalAlloc:
			la := d.LocalAlloc
			if la == nil || len(la.Bitmap) != ondisk.LocalAllocBitmapBytes(bs) || d.Bitmap() != (ondisk.Bitmap{}) {
				t.Errorf("%s: local alloc %+v id1 %+v", name, la, d.Bitmap())
			} else {
				for i := range 8 * len(la.Bitmap) {
					if la.Test(i) {
						t.Fatalf("%s: bit %d set in a fresh local alloc", name, i)
					}
				}
			}
		case ondisk.SysTruncateLog:
			if tl := d.TruncateLog; tl == nil || int(tl.Count) != ondisk.TruncateRecsPerInode(bs) || len(tl.Recs) != 0 {
				t.Errorf("%s: truncate log %+v", name, tl)
			}
		case ondisk.SysJournal:
			if d.Journal() != (ondisk.Journal{}) || d.Extents == nil || len(d.Extents.Recs) == 0 {
				t.Errorf("%s: journal id1 %+v extents %+v", name, d.Journal(), d.Extents)
			}
		case ondisk.SysOrphanDir:
			if inlineData != (d.Inline != nil) {
				t.Errorf("%s: inline %v with inline-data %v", name, d.Inline != nil, inlineData)
			}
			if d.Inline != nil && (len(d.Inline.Data) != ondisk.InlineDataBytes(bs, 0) || uint64(len(d.Inline.Data)) != d.Size) {
				t.Errorf("%s: id_count %d, i_size %d", name, len(d.Inline.Data), d.Size)
			}
		case ondisk.SysGlobalBitmap, ondisk.SysGlobalInodeAlloc, ondisk.SysExtentAlloc, ondisk.SysInodeAlloc:
			if d.Chain == nil || int(d.Chain.Count) != ondisk.ChainRecsPerInode(bs) {
				t.Errorf("%s: chain list %+v", name, d.Chain)
			}
		default:
			if d.Extents == nil || int(d.Extents.Count) != ondisk.ExtentRecsPerInode(bs, 0) {
				t.Errorf("%s: extent list %+v", name, d.Extents)
			}
		}
	}
	// The root and system directories, and lost+found.
	root := decodeInode(t, v, sb.RootBlkno, sb, gen, "root")
	sysdir := decodeInode(t, v, sb.SystemDirBlkno, sb, gen, "system dir")
	for _, d := range []*ondisk.Dinode{root, sysdir} {
		if !d.IsDir() || d.FileType() != ondisk.FileTypeDir {
			t.Errorf("directory %d has mode 0%o", d.Blkno, d.Mode)
		}
		if d.Inline != nil && uint64(len(d.Inline.Data)) != d.Size {
			t.Errorf("inline directory %d: id_count %d, i_size %d", d.Blkno, len(d.Inline.Data), d.Size)
		}
	}
	if sysdir.Links != 2+uint32(sb.MaxSlots) {
		t.Errorf("system dir links %d, want 2+%d", sysdir.Links, sb.MaxSlots)
	}
	m := regexp.MustCompile(`(?m)^\t(\d+)\s.*lost\+found$`).FindStringSubmatch(realtools.Debugfs(t, v.path, "ls -l /"))
	if m == nil {
		t.Fatal("no lost+found")
	}
	lf, _ := strconv.ParseUint(m[1], 10, 64)
	lost := decodeInode(t, v, lf, sb, gen, "lost+found")
	if lost.SuballocSlot != 0 || lost.Flags&ondisk.InodeSystem != 0 || !lost.IsDir() || lost.SuballocLoc == 0 {
		t.Errorf("lost+found: slot %d flags 0x%x loc %d", lost.SuballocSlot, lost.Flags, lost.SuballocLoc)
	}
	out["lost+found"] = &sysFile{blkno: lf, kind: -1, d: lost}
	return out
}

// checkAllocators walks every chain of every chain allocator: each group
// decodes and self-checks, its bitmap agrees with its free count, and the
// chain records and the dinode's totals add up.
func checkAllocators(t *testing.T, v *volumeImage, super *ondisk.Dinode, sb *ondisk.SuperBlock, sys systemFiles) {
	t.Helper()
	metaECC := sb.Features.Incompat&ondisk.IncompatMetaECC != 0
	gen := super.FSGeneration
	bs := v.bs
	bpc := sb.BlocksPerCluster()
	for name, f := range sys {
		d := f.d
		if d.Chain == nil {
			continue
		}
		cl := d.Chain
		global := f.kind == ondisk.SysGlobalBitmap
		groups := map[uint64]*ondisk.GroupDesc{}
		var total, free uint64
		discontig := 0
		for ci, rec := range cl.Recs {
			var cTotal, cFree uint64
			for blk := rec.Blkno; blk != 0; {
				if _, seen := groups[blk]; seen {
					t.Fatalf("%s: chain %d loops at group %d", name, ci, blk)
				}
				raw := v.block(blk)
				g, err := ondisk.DecodeGroupDesc(raw)
				if err != nil {
					t.Fatalf("%s: group %d: %v", name, blk, err)
				}
				groups[blk] = g
				if err := g.SelfCheck(blk, gen); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := g.CheckParent(f.blkno, cl); err != nil {
					t.Fatalf("%s: group %d: %v", name, blk, err)
				}
				if int(g.Chain) != ci {
					t.Errorf("%s: group %d says chain %d, found on chain %d", name, blk, g.Chain, ci)
				}
				if used := g.CountSet(); int(g.Bits)-used != int(g.FreeBitsCount) {
					t.Errorf("%s: group %d: %d of %d bits set, bg_free_bits_count %d", name, blk, used, g.Bits, g.FreeBitsCount)
				}
				if !g.Test(0) {
					t.Errorf("%s: group %d: bit 0 (the descriptor) is free", name, blk)
				}
				// mkfs builds global_inode_alloc's one group itself, with a
				// block-sized bitmap even under DISCONTIG_BG; groups added
				// through libocfs2 or the kernel get the suballocator size.
				wantSize := ondisk.GroupBitmapBytes(bs, !global && f.kind != ondisk.SysGlobalInodeAlloc, sb.Features.Incompat)
				if len(g.Bitmap) != wantSize {
					t.Errorf("%s: group %d: bg_size %d, want %d", name, blk, len(g.Bitmap), wantSize)
				}
				if g.Discontig() {
					covered := 0
					for _, r := range g.List.Recs {
						covered += int(r.Clusters) * int(cl.BPC)
					}
					if global || sb.Features.Incompat&ondisk.IncompatDiscontigBG == 0 || covered != int(g.Bits) {
						t.Errorf("%s: discontiguous group %d: extents cover %d bits of %d", name, blk, covered, g.Bits)
					}
					discontig++
				}
				if !global {
					if b0, err := g.BitBlock(0, int(cl.BPC)); err != nil || b0 != blk {
						t.Errorf("%s: group %d: bit 0 maps to %d %v", name, blk, b0, err)
					}
				}
				if f.kind == ondisk.SysGlobalInodeAlloc || f.kind == ondisk.SysInodeAlloc {
					checkInodeBits(t, v, g, int(cl.BPC), f, gen, sb)
				}
				checkBlockRoundTrip(t, fmt.Sprintf("%s group %d", name, blk), raw, ondisk.GroupDescCheckOffset, metaECC, g.Encode)
				cTotal += uint64(g.Bits)
				cFree += uint64(g.FreeBitsCount)
				blk = g.NextGroup
			}
			if uint64(rec.Total) != cTotal || uint64(rec.Free) != cFree {
				t.Errorf("%s: chain %d: c_total %d c_free %d, groups add up to %d %d", name, ci, rec.Total, rec.Free, cTotal, cFree)
			}
			total += cTotal
			free += cFree
		}
		if discontig > 0 {
			t.Logf("%s: %d discontiguous groups", name, discontig)
		}
		if bm := d.Bitmap(); uint64(bm.Total) != total || uint64(bm.Used) != total-free {
			t.Errorf("%s: id1 %+v, chains add up to total %d used %d", name, bm, total, total-free)
		}
		if global {
			cpg := ondisk.GlobalBitmapClustersPerGroup(bs)
			n := ondisk.GlobalBitmapGroups(d.Clusters, cpg)
			if int(cl.CPG) != cpg || cl.BPC != 1 || len(groups) != n || total != uint64(d.Clusters) {
				t.Errorf("global bitmap: cpg %d (want %d) bpc %d, %d groups (want %d), %d bits for %d clusters", cl.CPG, cpg, cl.BPC, len(groups), n, total, d.Clusters)
			}
			for gi := 0; gi < n; gi++ {
				blk := ondisk.GlobalBitmapGroupBlkno(gi, cpg, bpc, sb.FirstClusterGroup)
				g, ok := groups[blk]
				if !ok {
					t.Errorf("global bitmap group %d not at block %d", gi, blk)
					continue
				}
				if int(g.Bits) != ondisk.GlobalBitmapGroupBits(gi, d.Clusters, cpg) || int(g.Chain) != gi%int(cl.Count) {
					t.Errorf("global bitmap group %d: bits %d chain %d", gi, g.Bits, g.Chain)
				}
			}
			// Backup superblock clusters are in use.
			for _, blk := range ondisk.BackupSuperBlockBlknos(bs, uint64(d.Clusters)*uint64(bpc)) {
				c := int(blk / uint64(bpc))
				g := groups[ondisk.GlobalBitmapGroupBlkno(c/cpg, cpg, bpc, sb.FirstClusterGroup)]
				if g == nil || !g.Test(c%cpg) {
					t.Errorf("backup superblock cluster %d is free in the global bitmap", c)
				}
			}
		} else {
			if int(cl.BPC) != bpc {
				t.Errorf("%s: cl_bpc %d, want %d", name, cl.BPC, bpc)
			}
			for _, g := range groups {
				if int(g.Bits) > cl.BitsPerGroup() {
					t.Errorf("%s: group %d has %d bits, cpg*bpc is %d", name, g.Blkno, g.Bits, cl.BitsPerGroup())
				}
			}
		}
		// Every system inode is a used bit of global_inode_alloc, and
		// lost+found one of inode_alloc:0000.
		if f.kind == ondisk.SysGlobalInodeAlloc || (f.kind == ondisk.SysInodeAlloc && f.slot == 0) {
			for oname, o := range sys {
				if (o.kind == -1) != (f.kind == ondisk.SysInodeAlloc) {
					continue
				}
				found := false
				for _, g := range groups {
					if bit, ok := g.BlockBit(o.blkno, int(cl.BPC)); ok {
						found = g.Test(bit) && bit == int(o.d.SuballocBit)
					}
				}
				if !found {
					t.Errorf("%s (block %d, bit %d) is not a used bit of %s", oname, o.blkno, o.d.SuballocBit, name)
				}
			}
		}
	}
}

// checkInodeBits decodes the inode behind every used bit of an inode
// allocator's group (bit 0 is the descriptor): it must point back at the
// same slot, bit and, in a discontiguous group, group.
func checkInodeBits(t *testing.T, v *volumeImage, g *ondisk.GroupDesc, bpc int, alloc *sysFile, gen uint32, sb *ondisk.SuperBlock) {
	t.Helper()
	slot := uint16(ondisk.SuballocSlotGlobal)
	if alloc.kind == ondisk.SysInodeAlloc {
		slot = uint16(alloc.slot)
	}
	for bit := 1; bit < int(g.Bits); bit++ {
		if !g.Test(bit) {
			continue
		}
		blk, err := g.BitBlock(bit, bpc)
		if err != nil {
			t.Fatal(err)
		}
		d := decodeInode(t, v, blk, sb, gen, fmt.Sprintf("inode of group %d bit %d", g.Blkno, bit))
		if d.SuballocSlot != slot || int(d.SuballocBit) != bit || (g.Discontig() && d.SuballocLoc != g.Blkno) {
			t.Errorf("inode %d: suballoc slot %d bit %d loc %d; it is bit %d of group %d of slot %d", blk, d.SuballocSlot, d.SuballocBit, d.SuballocLoc, bit, g.Blkno, slot)
		}
	}
}

// checkSlotMap decodes the slot map, then writes one with o2go and checks
// debugfs.ocfs2 reads it back.
func checkSlotMap(t *testing.T, v *volumeImage, sb *ondisk.SuperBlock, sys systemFiles) {
	t.Helper()
	d := sys.get(t, ondisk.SysSlotMap, 0).d
	extended := sb.Features.Incompat&ondisk.IncompatExtendedSlotMap != 0
	if d.Extents == nil || len(d.Extents.Recs) != 1 || d.Size < uint64(ondisk.SlotMapSize(extended, int(sb.MaxSlots))) {
		t.Fatalf("slot_map: size %d extents %+v", d.Size, d.Extents)
	}
	off := int64(d.Extents.Recs[0].Blkno) * int64(v.bs)
	data := v.read(off, int(d.Size))
	m, err := ondisk.DecodeSlotMap(data, extended, int(sb.MaxSlots))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range m.Slots {
		if s.Valid {
			t.Errorf("slot %d taken on a fresh volume: %+v", i, s)
		}
	}
	want := "\tSlot#   Node#\n"
	for i := range m.Slots {
		if i%3 == 0 {
			m.Slots[i] = ondisk.Slot{Valid: true, Node: uint32(200 - i)}
			want += fmt.Sprintf("\t%5d   %5d\n", i, 200-i)
		}
	}
	if err := m.Encode(data); err != nil {
		t.Fatal(err)
	}
	v.write(off, data)
	if got := realtools.Debugfs(t, v.path, "slotmap"); got != want {
		t.Errorf("debugfs slotmap after our write:\n%s\nwant:\n%s", got, want)
	}
	m2, err := ondisk.DecodeSlotMap(v.read(off, int(d.Size)), extended, int(sb.MaxSlots))
	if err != nil || len(m2.Slots) != len(m.Slots) {
		t.Fatal(err)
	}
}

// checkHeartbeat decodes the heartbeat area (empty after mkfs), then
// writes two nodes' sectors with o2go and checks debugfs.ocfs2 -R hb.
func checkHeartbeat(t *testing.T, v *volumeImage, sb *ondisk.SuperBlock, sys systemFiles) {
	t.Helper()
	d := sys.get(t, ondisk.SysHeartbeat, 0).d
	el := d.Extents
	if el == nil || el.TreeDepth != 0 || len(el.Recs) != 1 ||
		uint64(el.Recs[0].Clusters)*uint64(sb.BlocksPerCluster()) < ondisk.HeartbeatMaxNodes {
		t.Fatalf("heartbeat: extents %+v", el)
	}
	const sector = 512
	off := int64(el.Recs[0].Blkno) * int64(v.bs)
	area := v.read(off, ondisk.HeartbeatMaxNodes*sector)
	for n := 0; n < ondisk.HeartbeatMaxNodes; n++ {
		s := area[n*sector : (n+1)*sector]
		h, err := ondisk.DecodeHeartbeatBlock(s)
		if err != nil || h.Seq != 0 {
			t.Fatalf("node %d: %+v %v", n, h, err)
		}
	}
	want := "\tnode: node              seq       generation checksum deadms\n"
	for _, node := range []uint8{0, 5, 254} {
		h := &ondisk.HeartbeatBlock{Seq: 0x6b04abba + uint64(node), Node: node, Generation: 0x1122334455667700 | uint64(node), DeadMs: 62000}
		s := make([]byte, sector)
		if err := h.Encode(s); err != nil {
			t.Fatal(err)
		}
		v.write(off+int64(node)*sector, s)
		want += fmt.Sprintf("\t%4d: %4d %016x %016x %08x %6d\n", node, node, h.Seq, h.Generation, h.Cksum, h.DeadMs)
	}
	if got := realtools.Debugfs(t, v.path, "hb"); got != want {
		t.Errorf("debugfs hb after our writes:\n%s\nwant:\n%s", got, want)
	}
}

// TestGoldenLockNames compares lock names with debugfs.ocfs2's encoder
// (encode <inode>, -e) and decoder (-d).
func TestGoldenLockNames(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local")
	v := openImage(t, img, 4096)
	super, err := ondisk.DecodeDinode(v.block(ondisk.SuperBlockBlkno))
	if err != nil {
		t.Fatal(err)
	}
	ls := realtools.Debugfs(t, img, "ls -l //")
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(ls), "\n") {
		f := strings.Fields(line)
		if len(f) == 9 && f[8] != "." && f[8] != ".." {
			names = append(names, f[8])
		}
	}
	var cmds []string
	for _, n := range names {
		cmds = append(cmds, "encode //"+n)
	}
	cmds = append(cmds, "encode /lost+found", "encode <2>")
	// debugfs reads commands from a file with -f, one run for all. It
	// exits 1 at the end of the file whatever happened, so the check is
	// that every command printed its name.
	script := t.TempDir() + "/cmds"
	if err := os.WriteFile(script, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, _ := realtools.DebugfsRaw("-f", script, img)
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "\t") && len(strings.TrimSpace(l)) == ondisk.LockNameLen {
			got = append(got, strings.TrimSpace(l))
		}
	}
	if len(got) != len(cmds) {
		t.Fatalf("debugfs printed %d lock names for %d commands:\n%s", len(got), len(cmds), out)
	}
	m := regexp.MustCompile(`(?m)^\t(\d+)\s.*lost\+found$`).FindStringSubmatch(realtools.Debugfs(t, img, "ls -l /"))
	lf, _ := strconv.ParseUint(m[1], 10, 64)
	for i, n := range append(names, "lost+found", "super") {
		var want ondisk.LockName
		switch n {
		case "super":
			want = ondisk.LockName{Type: ondisk.LockSuper, Blkno: ondisk.SuperBlockBlkno}
		case "lost+found":
			want = ondisk.LockName{Type: ondisk.LockMeta, Blkno: lf} // not a system inode: generation 0
		default:
			m := regexp.MustCompile(`(?m)^\t(\d+)\s.*\s` + regexp.QuoteMeta(n) + `$`).FindStringSubmatch(ls)
			blk, _ := strconv.ParseUint(m[1], 10, 64)
			d, err := ondisk.DecodeDinode(v.block(blk))
			if err != nil {
				t.Fatal(err)
			}
			want = ondisk.LockName{Type: ondisk.LockMeta, Blkno: blk, Generation: d.Generation}
			if d.Generation != super.FSGeneration {
				t.Errorf("%s: i_generation 0x%x is not the volume's", n, d.Generation)
			}
		}
		enc, err := want.Encode()
		if err != nil || enc != got[i] {
			t.Errorf("%s: we encode %q (%v), debugfs %q", n, enc, err, got[i])
		}
		if p, err := ondisk.ParseLockName(got[i]); err != nil || p != want {
			t.Errorf("parse %q: %+v %v", got[i], p, err)
		}
	}

	// debugfs -d decodes our standard names; -e prints dentry names in
	// their printable form.
	for _, n := range []ondisk.LockName{
		{Type: ondisk.LockRW, Blkno: 70165, Generation: 0x1234abcd},
		{Type: ondisk.LockOpen, Blkno: 123456789},
		{Type: ondisk.LockFlock, Blkno: 0xfedcba987, Generation: 7},
	} {
		enc, _ := n.Encode()
		out, _, err := realtools.DebugfsRaw("-d", enc)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("Lockres:    %s\nType:       %s\nBlock:      %d\n", enc, n.Type.Name(), n.Blkno)
		if n.Generation != 0 {
			want += fmt.Sprintf("Generation: 0x%08x\n", n.Generation)
		}
		if out != want+"\n" {
			t.Errorf("debugfs -d %s:\n%q\nwant\n%q", enc, out, want+"\n")
		}
		out, _, err = realtools.DebugfsRaw("-e", string(n.Type), strconv.FormatUint(n.Blkno, 10), strconv.FormatUint(uint64(n.Generation), 10))
		if err != nil || strings.TrimSpace(out) != enc {
			t.Errorf("debugfs -e: %q %v, want %q", out, err, enc)
		}
	}
	dn := ondisk.LockName{Type: ondisk.LockDentry, Blkno: 0x1_2345_6789, Parent: 70165}
	out, _, err = realtools.DebugfsRaw("-e", "N", strconv.FormatUint(dn.Blkno, 10), strconv.FormatUint(dn.Parent, 10))
	if err != nil || strings.TrimSpace(out) != dn.String() {
		t.Errorf("debugfs -e N: %q %v, want %q", out, err, dn.String())
	}
}

// TestGoldenKernelVolume checks part A against what the Linux 6.1 OCFS2
// driver writes. In one VM it starts an o2cb node (node 7) through
// configfs, heartbeats on the volume, mounts it clustered and makes inodes
// of every type (fast and slow symlinks, device numbers, inline data with
// inline xattrs, hard links), fragments free space until the kernel has to
// build a discontiguous inode group, and lists the cluster locks it holds.
// The host then decodes everything: heartbeat sector, slot map, every
// allocator group and allocated inode, and the lock names.
func TestGoldenKernelVolume(t *testing.T) {
	testutil.Long(t)
	realtools.Require(t)
	kernelvm.Require(t)
	img := realtools.MkfsImage(t, 40<<20, "-b", "4096", "-C", "4096", "-N", "1", "-J", "size=4M",
		"--cluster-stack=o2cb", "--cluster-name=gold")
	v := openImage(t, img, 4096)
	super, err := ondisk.DecodeDinode(v.block(ondisk.SuperBlockBlkno))
	if err != nil {
		t.Fatal(err)
	}
	sb := super.Super
	sys := checkSystemFiles(t, v, super, sb)
	hb := sys.get(t, ondisk.SysHeartbeat, 0).d.Extents.Recs[0].Blkno
	const node = 7
	script := `
set -e
ifconfig lo 127.0.0.1 up
grep -q configfs /proc/mounts || mount -t configfs none /sys/kernel/config
C=/sys/kernel/config/cluster/gold
mkdir $C $C/node/n7
echo 127.0.0.1 > $C/node/n7/ipv4_address
echo 7777 > $C/node/n7/ipv4_port
echo 7 > $C/node/n7/num
echo 1 > $C/node/n7/local
R=$C/heartbeat/$UUID
mkdir $R
echo 512 > $R/block_bytes
echo $START > $R/start_block
echo 255 > $R/blocks
exec 3<>/dev/vda
echo 3 > $R/dev
grep -q " /sys/kernel/debug " /proc/mounts || mount -t debugfs none /sys/kernel/debug
mount -t ocfs2 -o heartbeat=local /dev/vda /mnt
cd /mnt
echo hi > small
setfattr -n user.k -v v small
ln small hardlink
ln -s small sl
ln -s $(printf 'x%.0s' $(seq 1 300))/long/target longsl
ln -s $(printf 'y%.0s' $(seq 1 4000)) slowsl
mknod cdev c 1 3
mknod bdev b 259 74565
mkfifo fifo
mkdir d
setfattr -n user.k2 -v vvvvvvvvvvvvvvvvvvvvvvvv d
head -c 5000 /dev/zero > bigger
cat small slowsl bigger >/dev/null 2>&1 || true
# Fill the volume with one-cluster files, free runs of 8 clusters between
# kept ones, then ask for more inodes than there are free bits: the new
# inode group cannot be contiguous.
X=$(head -c 4000 /dev/zero | tr '\0' 'a')
i=0
while echo "$X" > f$i 2>/dev/null; do i=$((i+1)); done
j=0
while [ $j -lt $i ]; do
	[ $((j % 9)) -eq 0 ] || rm -f f$j
	j=$((j+1))
done
k=0
while echo -n > e$k 2>/dev/null; do k=$((k+1)); done
cut -f2 /sys/kernel/debug/ocfs2/*/locking_state
cd /
umount /mnt
`
	res := kernelvm.RunT(t, kernelvm.Options{Image: img, NoMount: true, Env: map[string]string{
		"UUID": sb.UUIDString(), "START": strconv.FormatUint(hb*uint64(v.bs)/512, 10),
	}}, script)

	// The heartbeat sector the kernel wrote for node 7.
	sector := v.read(int64(hb)*int64(v.bs)+node*512, 512)
	if err := ondisk.VerifyHeartbeat(sector); err != nil {
		t.Errorf("kernel heartbeat sector: %v", err)
	}
	h, err := ondisk.DecodeHeartbeatBlock(sector)
	if err != nil || h.Node != node || h.Seq == 0 || h.DeadMs != 31*2000 {
		t.Errorf("kernel heartbeat sector: %+v %v", h, err)
	}
	re := make([]byte, 512)
	if err := h.Encode(re); err != nil || !bytes.Equal(re, sector) {
		t.Errorf("re-encoded heartbeat sector differs from the kernel's")
	}

	// Every system file, allocator group and allocated inode.
	super, err = ondisk.DecodeDinode(v.block(ondisk.SuperBlockBlkno))
	if err != nil {
		t.Fatal(err)
	}
	sys = checkSystemFiles(t, v, super, sb)
	checkAllocators(t, v, super, sb, sys)
	discontig := 0
	for _, rec := range sys.get(t, ondisk.SysInodeAlloc, 0).d.Chain.Recs {
		for blk := rec.Blkno; blk != 0; {
			g, err := ondisk.DecodeGroupDesc(v.block(blk))
			if err != nil {
				t.Fatal(err)
			}
			if g.Discontig() {
				discontig++
			}
			blk = g.NextGroup
		}
	}
	if discontig == 0 {
		t.Error("the kernel made no discontiguous inode group: the scenario did not exercise bg_list")
	}

	// The kernel took slot 0 for node 7 and, unmounting, cleared only
	// es_valid.
	sm := sys.get(t, ondisk.SysSlotMap, 0).d
	m, err := ondisk.DecodeSlotMap(v.read(int64(sm.Extents.Recs[0].Blkno)*int64(v.bs), int(sm.Size)), true, int(sb.MaxSlots))
	if err != nil || m.Slots[0] != (ondisk.Slot{Valid: false, Node: node}) {
		t.Errorf("slot map after the kernel's umount: %+v %v", m, err)
	}

	// The named inodes, against what the script made.
	ls := realtools.Debugfs(t, img, "ls -l /")
	inodeOf := func(name string) *ondisk.Dinode {
		t.Helper()
		m := regexp.MustCompile(`(?m)^\t(\d+)\s.*\s` + regexp.QuoteMeta(name) + `$`).FindStringSubmatch(ls)
		if m == nil {
			t.Fatalf("no %s in /", name)
		}
		blk, _ := strconv.ParseUint(m[1], 10, 64)
		return decodeInode(t, v, blk, sb, super.FSGeneration, name)
	}
	small := inodeOf("small")
	if small.Inline == nil || string(small.Inline.Data[:small.Size]) != "hi\n" || small.Links != 2 ||
		small.DynFeatures&ondisk.DynInlineXattr == 0 || len(small.Inline.Data) != ondisk.InlineDataBytes(v.bs, int(small.XattrInlineSize)) {
		t.Errorf("small: %+v", small)
	}
	if d := inodeOf("sl"); d.ID2Kind() != ondisk.ID2FastSymlink || string(d.FastSymlink) != "small" {
		t.Errorf("sl: %v %q", d.ID2Kind(), d.FastSymlink)
	}
	if d := inodeOf("longsl"); string(d.FastSymlink) != strings.Repeat("x", 300)+"/long/target" {
		t.Errorf("longsl: %q", d.FastSymlink)
	}
	if d := inodeOf("slowsl"); d.ID2Kind() != ondisk.ID2Extents || d.Size != 4000 || d.Clusters == 0 {
		t.Errorf("slowsl: %v size %d clusters %d", d.ID2Kind(), d.Size, d.Clusters)
	}
	for name, want := range map[string][3]uint32{"cdev": {uint32(ondisk.FileTypeChr), 1, 3}, "bdev": {uint32(ondisk.FileTypeBlk), 259, 74565}} {
		d := inodeOf(name)
		if ma, mi := d.Rdev(); ma != want[1] || mi != want[2] || uint32(d.FileType()) != want[0] {
			t.Errorf("%s: type %d rdev %d:%d", name, d.FileType(), ma, mi)
		}
	}
	if d := inodeOf("fifo"); !d.IsFifo() {
		t.Errorf("fifo: mode 0%o", d.Mode)
	}
	if d := inodeOf("d"); !d.IsDir() || d.DynFeatures&ondisk.DynHasXattr == 0 || d.XattrLoc == 0 {
		t.Errorf("d: mode 0%o dyn 0x%x xattr %d", d.Mode, d.DynFeatures, d.XattrLoc)
	}
	if d := inodeOf("bigger"); d.Extents == nil || d.Size != 5000 || len(d.Extents.Recs) == 0 {
		t.Errorf("bigger: %+v", d.Extents)
	}

	// The kernel's lock names: standard ones parse and re-encode to
	// themselves; dentry locks are listed in their printable form. Inode
	// locks use the generations dlmglue gives them: META the inode's
	// i_generation when it has SYSTEM_FL (mkfs sets it on the root and
	// system directories too) and 0 otherwise, RW and FLOCK i_generation,
	// OPEN 0.
	var names, dentries int
	for _, name := range strings.Fields(string(res.Stdout)) {
		if name[0] == byte(ondisk.LockDentry) {
			dentries++
			n := ondisk.LockName{Type: ondisk.LockDentry}
			p, err1 := strconv.ParseUint(name[1:17], 16, 64)
			ino, err2 := strconv.ParseUint(name[17:], 16, 32)
			n.Parent, n.Blkno = p, ino
			if err1 != nil || err2 != nil || len(name) != 25 || n.String() != name {
				t.Errorf("kernel dentry lock %q does not match our printable form %q", name, n.String())
			}
			continue
		}
		n, err := ondisk.ParseLockName(name)
		if err != nil {
			t.Errorf("kernel lock name %q: %v", name, err)
			continue
		}
		names++
		if enc, _ := n.Encode(); enc != name {
			t.Errorf("%q re-encodes as %q", name, enc)
		}
		switch n.Type {
		case ondisk.LockMeta, ondisk.LockRW, ondisk.LockOpen, ondisk.LockFlock:
			d, err := ondisk.DecodeDinode(v.block(n.Blkno))
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			want := d.Generation
			if n.Type == ondisk.LockOpen || n.Type == ondisk.LockMeta && d.Flags&ondisk.InodeSystem == 0 {
				want = 0
			}
			if n.Generation != want {
				t.Errorf("%s: generation 0x%x, want 0x%x (inode flags 0x%x, i_generation 0x%x)", name, n.Generation, want, d.Flags, d.Generation)
			}
		}
	}
	if names < 10 || dentries < 2 {
		t.Errorf("only %d lock names and %d dentry locks in the kernel's locking_state:\n%s", names, dentries, res.Stdout)
	}
}
