package inspect

import (
	"fmt"
	"io"
	"math/bits"
	"strings"
	"time"

	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// InfoRequest says which of o2info's reports `o2go info` prints. They
// print in this order: fs-features, volinfo, mkfs, freeinode, freefrag,
// space-usage, filestat (o2info runs them in command-line order; o2go in
// one fixed order so that the output does not depend on how flags were
// typed).
type InfoRequest struct {
	FSFeatures bool
	VolInfo    bool
	Mkfs       bool
	FreeInode  bool
	// FreeFrag asks for the free space fragmentation report with chunks of
	// FreeFragKB KiB (a power of two, at least the cluster size; 0 for
	// o2info's default of 1 MiB without the chunk section).
	FreeFrag   bool
	FreeFragKB uint64
	// SpaceUsage and FileStat name a file inside the volume ("/dir/file").
	SpaceUsage string
	FileStat   string
}

// Info writes the requested reports about the open volume to w, in
// o2info 1.8.7's layouts.
func Info(v *volume.Volume, w io.Writer, req InfoRequest) error {
	if req.FreeFrag {
		if err := checkChunk(v, req.FreeFragKB); err != nil {
			return err
		}
	}
	if req.FSFeatures {
		printFeatureLine(w, "", allFeatureWords(v.SB.Features))
	}
	if req.VolInfo {
		sb := v.SB
		fmt.Fprintf(w, "       Label: %s\n        UUID: %s\n  Block Size: %d\nCluster Size: %d\n  Node Slots: %d\n",
			cstr(sb.VolumeLabel[:]), sb.UUIDString(), sb.BlockSize(), sb.ClusterSize(), sb.MaxSlots)
		printFeatureLine(w, "    Features: ", allFeatureWords(sb.Features))
	}
	if req.Mkfs {
		line, err := MkfsCommandLine(v)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, line)
	}
	if req.FreeInode {
		if err := freeInodes(v, w); err != nil {
			return err
		}
	}
	if req.FreeFrag {
		ff, err := scanFreeFrag(v, req.FreeFragKB)
		if err != nil {
			return err
		}
		ff.report(w)
	}
	if req.SpaceUsage != "" {
		fs, err := statFile(v, req.SpaceUsage)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "Blocks: %-10d Shared: %-10d\tUnwritten: %-7d Holes: %-6d\n", fs.blocks, fs.shared, fs.unwritten, fs.holes)
	}
	if req.FileStat != "" {
		fs, err := statFile(v, req.FileStat)
		if err != nil {
			return err
		}
		fs.report(w)
	}
	return nil
}

// printFeatureLine is o2info's line printer: the qualifier, then each word
// and a space, starting a new line (with the qualifier again) before a
// word that would take the line past 80 characters.
func printFeatureLine(w io.Writer, qualifier string, words []string) {
	var sb strings.Builder
	sb.WriteString(qualifier)
	n := len(qualifier)
	for _, word := range words {
		if word == "" {
			continue
		}
		n += len(word) + 1
		if n > 80 {
			sb.WriteString("\n")
			sb.WriteString(qualifier)
			n = len(qualifier) + len(word) + 1
		}
		sb.WriteString(word + " ")
	}
	sb.WriteString("\n")
	io.WriteString(w, sb.String())
}

// MkfsCommandLine is o2info --mkfs: the mkfs.ocfs2 options that would make
// a volume like this one (slots, journal size, block and cluster size,
// features, label), in o2info's exact text.
func MkfsCommandLine(v *volume.Volume) (string, error) {
	blk, err := v.SystemFile(ondisk.SysJournal, 0)
	if err != nil {
		return "", err
	}
	j, err := v.FS.Inode(blk)
	if err != nil {
		return "", err
	}
	sb := v.SB
	f := sb.Features
	// o2info joins the three categories with spaces and then turns every
	// space into a comma, empty categories included.
	features := strings.Join(featureWords(ondisk.CategoryCompat, f.Compat), " ") + " " +
		strings.Join(featureWords(ondisk.CategoryIncompat, f.Incompat), " ") + " " +
		strings.Join(featureWords(ondisk.CategoryRoCompat, f.RoCompat), " ")
	features = "--fs-features " + strings.ReplaceAll(features, " ", ",")
	label := ""
	if l := cstr(sb.VolumeLabel[:]); l != "" {
		label = "-L " + l
	}
	return fmt.Sprintf("-N %d -J size=%d -b %d -C %d %s %s ", sb.MaxSlots, j.Size, sb.BlockSize(), sb.ClusterSize(), features, label), nil
}

func freeInodes(v *volume.Volume, w io.Writer) error {
	fmt.Fprintf(w, "Slot\t\tSpace\t\tFree\n")
	var total, free uint64
	for slot := 0; slot < int(v.SB.MaxSlots); slot++ {
		blk, err := v.SystemFile(ondisk.SysInodeAlloc, slot)
		if err != nil {
			return err
		}
		ino, err := v.FS.Inode(blk)
		if err != nil {
			return err
		}
		var t, f uint64
		if ino.Chain != nil {
			for _, r := range ino.Chain.Recs {
				t += uint64(r.Total)
				f += uint64(r.Free)
			}
		}
		fmt.Fprintf(w, "%3d\t%13d\t%12d\n", slot, t, f)
		total += t
		free += f
	}
	fmt.Fprintf(w, "Total\t%13d\t%12d\n", total, free)
	return nil
}

// maxHist is the histogram size of the free-fragmentation report
// (OCFS2_INFO_MAX_HIST): bucket i counts free runs of 2^i..2^(i+1)-1
// clusters, the last one everything longer.
const maxHist = 32

// freeFrag is the free space fragmentation report, computed from the
// global bitmap as o2info computes it on a device.
type freeFrag struct {
	blockBits, clusterBits uint
	chunkBytes             uint64
	chunkBits              uint
	clustersInChunk        uint32
	clusters, freeClusters uint32
	totalChunks            uint32
	freeChunks             uint32
	realChunks             uint32 // free runs
	min, max, avg          uint32 // run lengths: clusters, then KiB
	chunks, chunkClusters  [maxHist]uint32
}

func checkChunk(v *volume.Volume, kb uint64) error {
	if kb&(kb-1) != 0 {
		return fmt.Errorf("--freefrag %d: the chunk size must be a power of 2 (KiB)", kb)
	}
	if kb != 0 && kb*1024 < uint64(v.SB.ClusterSize()) {
		return fmt.Errorf("--freefrag %d: the chunk size must be at least the cluster size (%d KiB)", kb, v.SB.ClusterSize()/1024)
	}
	return nil
}

func log2(x uint64) uint {
	if x == 0 {
		return 0
	}
	return uint(bits.Len64(x) - 1)
}

func scanFreeFrag(v *volume.Volume, kb uint64) (*freeFrag, error) {
	ff := &freeFrag{blockBits: uint(v.SB.BlockSizeBits), clusterBits: uint(v.SB.ClusterSizeBits), chunkBytes: kb * 1024, min: ^uint32(0)}
	chunk := ff.chunkBytes
	if chunk == 0 {
		chunk = 1 << 20
	}
	ff.chunkBits = log2(chunk)
	ff.clustersInChunk = uint32(chunk >> ff.clusterBits)
	blk, err := v.SystemFile(ondisk.SysGlobalBitmap, -1)
	if err != nil {
		return nil, err
	}
	gb, err := v.FS.Inode(blk)
	if err != nil {
		return nil, err
	}
	if gb.Chain == nil {
		return nil, fmt.Errorf("global bitmap inode %d is not a chain allocator", blk)
	}
	bm := gb.Bitmap()
	ff.clusters, ff.freeClusters = bm.Total, bm.Total-bm.Used
	ff.totalChunks = (ff.clusters + ff.clustersInChunk) >> (ff.chunkBits - ff.clusterBits)
	chunksInGroup := uint32(gb.Chain.CPG)/ff.clustersInChunk + 1
	for _, rec := range gb.Chain.Recs {
		if rec.Free == 0 {
			continue
		}
		// The run length carries over from one group of the chain to the
		// next (o2info never resets it): a run ending a group is counted
		// there and again, longer, where it ends in a later group. The
		// report keeps this so that it matches o2info's numbers.
		run := uint32(0)
		seen := map[uint64]bool{}
		for g := rec.Blkno; g != 0; {
			if seen[g] {
				return nil, v.Cache.Annotate(&ondisk.CorruptError{Struct: "group descriptor", Field: "bg_next_group", Msg: "the chain loops"}, g)
			}
			seen[g] = true
			gd, err := v.Cache.GroupDesc(g)
			if err != nil {
				return nil, err
			}
			next := gd.NextGroup
			if gd.FreeBitsCount != 0 {
				offset := uint32(0)
				maxBits := uint32(gd.Bits)
				for c := uint32(0); c < chunksInGroup; c++ {
					n := ff.clustersInChunk
					if offset+n > maxBits {
						n = maxBits - offset
					}
					chunkFree := uint32(0)
					for i := uint32(0); i < n; i++ {
						used := gd.Test(int(offset))
						if !used {
							run++
							chunkFree++
						}
						if used && run != 0 {
							ff.add(run)
							run = 0
						}
						offset++
					}
					if chunkFree == ff.clustersInChunk {
						ff.freeChunks++
					}
				}
				if run != 0 {
					ff.add(run)
				}
			}
			g = next
		}
	}
	if ff.realChunks != 0 {
		sh := ff.clusterBits - 10
		ff.min <<= sh
		ff.max <<= sh
		ff.avg /= ff.realChunks
		ff.avg <<= sh
	}
	return ff, nil
}

func (ff *freeFrag) add(run uint32) {
	i := min(log2(uint64(run)), maxHist-1)
	ff.chunks[i]++
	ff.chunkClusters[i] += run
	ff.max = max(ff.max, run)
	ff.min = min(ff.min, run)
	ff.avg += run
	ff.realChunks++
}

func (ff *freeFrag) report(w io.Writer) {
	pct := func(a, b uint32) float64 { return float64(a) * 100 / float64(b) }
	fmt.Fprintf(w, "Blocksize: %d bytes\n", 1<<ff.blockBits)
	fmt.Fprintf(w, "Clustersize: %d bytes\n", 1<<ff.clusterBits)
	fmt.Fprintf(w, "Total clusters: %d\nFree clusters: %d (%0.1f%%)\n", ff.clusters, ff.freeClusters, pct(ff.freeClusters, ff.clusters))
	fmt.Fprintf(w, "\nMin. free extent: %d KB \nMax. free extent: %d KB\nAvg. free extent: %d KB\n", ff.min, ff.max, ff.avg)
	if ff.chunkBytes != 0 {
		fmt.Fprintf(w, "\nChunksize: %d bytes (%d clusters)\n", ff.chunkBytes, ff.clustersInChunk)
		fmt.Fprintf(w, "Total chunks: %d\nFree chunks: %d (%0.1f%%)\n", ff.totalChunks, ff.freeChunks, pct(ff.freeChunks, ff.totalChunks))
	}
	fmt.Fprintf(w, "\nHISTOGRAM OF FREE EXTENT SIZES:\n")
	fmt.Fprintf(w, "%s :  %12s  %12s  %7s\n", "Extent Size Range", "Free extents", "Free Clusters", "Percent")
	units := "KMGTPEZY"
	unit, u := uint(10), 0
	if uint32(1)<<(ff.clusterBits-unit) == 1024 {
		unit += 10
		u++
	}
	for i := uint(0); i < maxHist; i++ {
		start := uint32(1) << (i + ff.clusterBits - unit)
		end := start << 1
		if ff.chunks[i] != 0 {
			endStr := fmt.Sprintf("%5d%c-", end, units[u])
			if i == maxHist-1 {
				endStr = "max "
			}
			fmt.Fprintf(w, "%5d%c...%7s  :  %12d  %12d  %6.2f%%\n", start, units[u], endStr, ff.chunks[i], ff.chunkClusters[i], pct(ff.chunkClusters[i], ff.freeClusters))
		}
		if end == 1024 {
			unit += 10
			u++
			if u >= len(units) {
				break
			}
		}
	}
}

// fileStat is what o2info's --filestat and --space-usage report about a
// file: lstat(2) of the path, and the FIEMAP of the file the path opens.
// o2info asks the mounted kernel for both; o2go works them out from the
// inode and its extent tree the way the kernel does (fs/ocfs2 getattr and
// fiemap):
//
//   - st_blocks counts the inode's clusters in 512-byte sectors, plus, for
//     inline data, the sectors of its size (the kernel reports at least
//     one sector so that tools do not take the file for a hole).
//   - FIEMAP gives one extent per extent record, holes skipped; inline data
//     (and a fast symlink) is one extent of the inline area's capacity.
//   - o2info opens the path, which follows a symlink: the extent figures of
//     a symlink are those of its target, when that is a relative path that
//     resolves inside the volume (o2info fails on a dangling link; o2go
//     then shows the link's own, as it does for an absolute target, which
//     names a file of whatever machine mounts the volume).
//   - Xattr is the xattr extents FIEMAP_FLAG_XATTR would report; o2info
//     never sets that flag (and the kernel does not support it), so it is
//     always 0.
type fileStat struct {
	path                             string
	ino                              *ondisk.Dinode
	blocks                           uint64 // st_blocks: 512-byte sectors
	blockSize                        int
	clusters, extents                uint32
	shared, unwritten, holes, xattrs uint32
	frag, score                      float32
	target                           string
}

func statFile(v *volume.Volume, path string) (*fileStat, error) {
	blk, err := v.FS.Resolve(path, false)
	if err != nil {
		return nil, err
	}
	ino, err := v.FS.Inode(blk)
	if err != nil {
		return nil, err
	}
	fs := &fileStat{path: path, ino: ino, blockSize: v.SB.BlockSize()}
	fs.blocks = uint64(ino.Clusters) << (v.SB.ClusterSizeBits - 9)
	if ino.DynFeatures&ondisk.DynInlineData != 0 {
		fs.blocks += (ino.Size + 511) >> 9
	}
	mapped := ino
	if ino.IsLnk() {
		if fs.target, err = v.FS.Readlink(ino); err != nil {
			return nil, err
		}
		// An absolute target names a path on the machine that mounts the
		// volume, not in it: only a relative one can be followed here.
		if !strings.HasPrefix(fs.target, "/") {
			if tblk, err := v.FS.Resolve(path, true); err == nil {
				if t, err := v.FS.Inode(tblk); err == nil {
					mapped = t
				}
			}
		}
	}
	if err := fs.fiemap(v, mapped); err != nil {
		return nil, err
	}
	if fs.clusters > 1 && fs.extents > 0 {
		perMB := (ondisk.MaxClusterSize + v.SB.ClusterSize() - 1) / v.SB.ClusterSize()
		fs.frag = 100 * (float32(fs.extents) / float32(fs.clusters))
		fs.score = fs.frag * float32(perMB)
	}
	return fs, nil
}

// fiemap counts what FIEMAP reports for ino: extents, clusters, and the
// clusters that are shared, unwritten, or holes between extents.
func (fs *fileStat) fiemap(v *volume.Volume, ino *ondisk.Dinode) error {
	csBits := v.SB.ClusterSizeBits
	switch {
	case ino.Inline != nil:
		fs.extents, fs.clusters = 1, uint32(len(ino.Inline.Data))>>csBits
		return nil
	case ino.FastSymlink != nil:
		n := ondisk.FastSymlinkBytes(v.SB.BlockSize(), int(ino.XattrInlineSize))
		fs.extents, fs.clusters = 1, uint32(n)>>csBits
		return nil
	case ino.Extents == nil:
		return nil
	}
	var prevStart, prevLen uint32
	return v.FS.Extents(ino, func(r ondisk.ExtentRec) error {
		if r.Flags&ondisk.ExtentUnwritten != 0 {
			fs.unwritten += r.Clusters
		}
		if r.Flags&ondisk.ExtentRefcounted != 0 {
			fs.shared += r.Clusters
		}
		if prevStart+prevLen < r.Cpos {
			fs.holes += r.Cpos - prevStart - prevLen
		}
		prevStart, prevLen = r.Cpos, r.Clusters
		fs.extents++
		fs.clusters += r.Clusters
		return nil
	})
}

func (fs *fileStat) report(w io.Writer) {
	d := fs.ino
	kind := "unknown file type"
	switch {
	case d.IsReg() && d.Size != 0:
		kind = "regular file"
	case d.IsReg():
		kind = "regular empty file"
	case d.IsDir():
		kind = "directory"
	case d.IsChr():
		kind = "character special file"
	case d.IsBlk():
		kind = "block special file"
	case d.IsFifo():
		kind = "FIFO"
	case d.IsLnk() && fs.blocks == 0:
		kind = "fast symbolic link"
	case d.IsLnk():
		kind = "symbolic link"
	case d.IsSock():
		kind = "socket"
	}
	name := fs.path
	if d.IsLnk() {
		name += " -> " + fs.target
	}
	fmt.Fprintf(w, "  File: %s\n", name)
	fmt.Fprintf(w, "  Size: %-10d\tBlocks: %-10d IO Block: %-6d %s\n", d.Size, fs.blocks, fs.blockSize, kind)
	if d.IsBlk() || d.IsChr() {
		major, minor := d.Rdev()
		fmt.Fprintf(w, "Device: %xh/%dd\tInode: %-10d  Links: %-5d Device type: %d,%d\n", 0, 0, d.Blkno, d.Links, major, minor)
	} else {
		fmt.Fprintf(w, "Device: %xh/%dd\tInode: %-10d  Links: %d\n", 0, 0, d.Blkno, d.Links)
	}
	fmt.Fprintf(w, " Frag%%: %-10.2f\tClusters: %-8d Extents: %-6d Score: %.0f\n", float64(fs.frag), fs.clusters, fs.extents, float64(fs.score))
	fmt.Fprintf(w, "Shared: %-10d\tUnwritten: %-7d Holes: %-8d Xattr: %d\n", fs.shared, fs.unwritten, fs.holes, fs.xattrs)
	perm := d.Mode & 0o7777
	fmt.Fprintf(w, "Access: (%04o/%10s)  Uid: (%5d/%8s)   Gid: (%5d/%8s)\n", perm, filestatPerm(d.Mode), d.UID, userName(d.UID), d.GID, groupName(d.GID))
	htime := func(t ondisk.DiskTime) string {
		tm := time.Unix(int64(t.Sec), 0).In(time.Local)
		return tm.Format("2006-01-02 15:04:05") + fmt.Sprintf(".%09d", t.Nsec) + tm.Format(" -0700")
	}
	fmt.Fprintf(w, "Access: %s\n", htime(d.Atime))
	fmt.Fprintf(w, "Modify: %s\n", htime(d.Mtime))
	fmt.Fprintf(w, "Change: %s\n", htime(d.Ctime))
}

// filestatPerm is o2info's permission string, which unlike debugfs's uses
// stat(1)'s letters ('p' for FIFOs).
func filestatPerm(mode uint16) string {
	b := []byte(permString(mode))
	if mode&ondisk.ModeTypeMask == ondisk.ModeFifo {
		b[0] = 'p'
	}
	return string(b)
}

// OpenVolume opens a device or image file read-only for `o2go info`.
func OpenVolume(path string) (*volume.Volume, error) {
	v, err := volume.Open(path, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		if n, blk, ok := volume.IntactBackup(path); ok {
			return nil, fmt.Errorf("%w\n(backup superblock %d at block %d is intact: o2go debug -s %d reads the volume through it, o2go fsck -r %d repairs from it)", err, n, blk, n, n)
		}
		return nil, err
	}
	return v, nil
}

// InfoReportJSON is `o2go info --json`: the requested reports, each under
// its option's name; reports not asked for are absent.
type InfoReportJSON struct {
	Features   []string         `json:"fs_features,omitempty"`
	VolInfo    *VolInfoJSON     `json:"volinfo,omitempty"`
	Mkfs       string           `json:"mkfs,omitempty"` // the mkfs.ocfs2 options, as --mkfs prints them
	FreeInode  []SlotInodesJSON `json:"freeinode,omitempty"`
	FreeFrag   *FreeFragJSON    `json:"freefrag,omitempty"`
	SpaceUsage *FileSpaceJSON   `json:"space_usage,omitempty"`
	FileStat   *FileSpaceJSON   `json:"filestat,omitempty"`
}

// VolInfoJSON is --volinfo.
type VolInfoJSON struct {
	Label       string   `json:"label"`
	UUID        string   `json:"uuid"`
	BlockSize   int      `json:"block_size"`
	ClusterSize int      `json:"cluster_size"`
	NodeSlots   uint16   `json:"node_slots"`
	Features    []string `json:"features"`
}

// SlotInodesJSON is one slot of --freeinode.
type SlotInodesJSON struct {
	Slot  int    `json:"slot"`
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`
}

// FreeFragJSON is --freefrag. Run lengths are in KiB.
type FreeFragJSON struct {
	BlockSize    int                 `json:"block_size"`
	ClusterSize  int                 `json:"cluster_size"`
	Clusters     uint32              `json:"clusters"`
	FreeClusters uint32              `json:"free_clusters"`
	MinFreeKB    uint32              `json:"min_free_extent_kb"`
	MaxFreeKB    uint32              `json:"max_free_extent_kb"`
	AvgFreeKB    uint32              `json:"avg_free_extent_kb"`
	ChunkBytes   uint64              `json:"chunk_bytes,omitempty"`
	TotalChunks  uint32              `json:"total_chunks,omitempty"`
	FreeChunks   uint32              `json:"free_chunks,omitempty"`
	Histogram    []FreeFragHistogram `json:"histogram"`
}

// FreeFragHistogram is one bucket: free runs of MinClusters to below
// 2*MinClusters clusters.
type FreeFragHistogram struct {
	MinClusters  uint64 `json:"min_clusters"`
	Extents      uint32 `json:"free_extents"`
	FreeClusters uint32 `json:"free_clusters"`
}

// FileSpaceJSON is --space-usage and --filestat.
type FileSpaceJSON struct {
	Path      string  `json:"path"`
	Inode     uint64  `json:"inode"`
	Size      uint64  `json:"size"`
	Blocks    uint64  `json:"blocks"` // 512-byte units, as st_blocks
	Clusters  uint32  `json:"clusters"`
	Extents   uint32  `json:"extents"`
	Shared    uint32  `json:"shared_clusters"`
	Unwritten uint32  `json:"unwritten_clusters"`
	Holes     uint32  `json:"hole_clusters"`
	Xattr     uint32  `json:"xattr_clusters"`
	Frag      float64 `json:"frag_percent"`
	Score     float64 `json:"score"`
}

// InfoJSON is Info as one JSON object.
func InfoJSON(v *volume.Volume, w io.Writer, req InfoRequest) error {
	var j InfoReportJSON
	sb := v.SB
	if req.FSFeatures {
		j.Features = allFeatureWords(sb.Features)
	}
	if req.VolInfo {
		j.VolInfo = &VolInfoJSON{Label: cstr(sb.VolumeLabel[:]), UUID: sb.UUIDString(), BlockSize: sb.BlockSize(),
			ClusterSize: sb.ClusterSize(), NodeSlots: sb.MaxSlots, Features: allFeatureWords(sb.Features)}
	}
	if req.Mkfs {
		line, err := MkfsCommandLine(v)
		if err != nil {
			return err
		}
		j.Mkfs = strings.TrimSpace(line)
	}
	if req.FreeInode {
		for slot := 0; slot < int(sb.MaxSlots); slot++ {
			blk, err := v.SystemFile(ondisk.SysInodeAlloc, slot)
			if err != nil {
				return err
			}
			ino, err := v.FS.Inode(blk)
			if err != nil {
				return err
			}
			s := SlotInodesJSON{Slot: slot}
			if ino.Chain != nil {
				for _, r := range ino.Chain.Recs {
					s.Total += uint64(r.Total)
					s.Free += uint64(r.Free)
				}
			}
			j.FreeInode = append(j.FreeInode, s)
		}
	}
	if req.FreeFrag {
		if err := checkChunk(v, req.FreeFragKB); err != nil {
			return err
		}
		ff, err := scanFreeFrag(v, req.FreeFragKB)
		if err != nil {
			return err
		}
		fj := &FreeFragJSON{BlockSize: sb.BlockSize(), ClusterSize: sb.ClusterSize(), Clusters: ff.clusters,
			FreeClusters: ff.freeClusters, MinFreeKB: ff.min, MaxFreeKB: ff.max, AvgFreeKB: ff.avg, Histogram: []FreeFragHistogram{}}
		if ff.realChunks == 0 {
			fj.MinFreeKB = 0
		}
		if ff.chunkBytes != 0 {
			fj.ChunkBytes, fj.TotalChunks, fj.FreeChunks = ff.chunkBytes, ff.totalChunks, ff.freeChunks
		}
		for i := 0; i < maxHist; i++ {
			if ff.chunks[i] != 0 {
				fj.Histogram = append(fj.Histogram, FreeFragHistogram{MinClusters: 1 << i, Extents: ff.chunks[i], FreeClusters: ff.chunkClusters[i]})
			}
		}
		j.FreeFrag = fj
	}
	space := func(path string) (*FileSpaceJSON, error) {
		fs, err := statFile(v, path)
		if err != nil {
			return nil, err
		}
		return &FileSpaceJSON{Path: path, Inode: fs.ino.Blkno, Size: fs.ino.Size, Blocks: fs.blocks, Clusters: fs.clusters,
			Extents: fs.extents, Shared: fs.shared, Unwritten: fs.unwritten, Holes: fs.holes, Xattr: fs.xattrs,
			Frag: float64(fs.frag), Score: float64(fs.score)}, nil
	}
	var err error
	if req.SpaceUsage != "" {
		if j.SpaceUsage, err = space(req.SpaceUsage); err != nil {
			return err
		}
	}
	if req.FileStat != "" {
		if j.FileStat, err = space(req.FileStat); err != nil {
			return err
		}
	}
	return writeJSON(w, j)
}
