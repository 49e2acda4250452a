package volume

import (
	"fmt"
	"sort"

	"o2go/internal/ondisk"
)

// The volume image mkfs writes, built in memory first so that nothing
// touches the device until every allocation has succeeded. The layout is
// mkfs.ocfs2 1.8.7's, block for block: its first phase (mkfs.c: bitmaps,
// system inodes, directories, heartbeat, superblock) then the libocfs2
// phase (backup superblocks, journals, extent allocator groups, slot map,
// quota files, directory indexes, lost+found). Where mkfs.ocfs2 leaves a
// volume its own fsck.ocfs2 complains about, this builder differs, on
// purpose (see fixups below and the list of deviations on Mkfs).

// blockRange is a run of blocks.
type blockRange struct{ start, count uint64 }

// imgBlock is one metadata block and where its META_ECC check goes (-1:
// none).
type imgBlock struct {
	data  []byte
	check int
}

// mkfsImage is what Mkfs writes.
type mkfsImage struct {
	bs     int
	blocks map[uint64]*imgBlock
	zero   []blockRange // must read as zeros (written before the blocks)
	// journal lists the journals' blocks (zeroed like zero; kept apart for
	// progress reporting).
	journal []blockRange
	head    []byte   // blocks 0 and 1: the fake OCFS1 headers
	super   []byte   // the superblock at block 2 (check already set)
	backups []uint64 // block numbers of the backup superblocks
	backup  [][]byte // their contents
	// plainGroups are global bitmap groups with only their own
	// descriptor's bit set, encoded as they are written.
	plainGroups []*allocGroup
	metaECC     bool
}

func (im *mkfsImage) put(blkno uint64, data []byte, check int) {
	im.blocks[blkno] = &imgBlock{data: data, check: check}
}

// seal computes the META_ECC checks of every block that carries one.
func (im *mkfsImage) seal(metaECC bool) {
	im.metaECC = metaECC
	if !metaECC {
		return
	}
	for _, b := range im.blocks {
		if b.check >= 0 {
			ondisk.SetBlockCheck(b.data, b.check)
		}
	}
}

// sortedBlocks lists the metadata blocks in ascending order.
func (im *mkfsImage) sortedBlocks() []uint64 {
	out := make([]uint64, 0, len(im.blocks))
	for k := range im.blocks {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// mkfsRandom is what mkfs draws at random: the volume generation, the
// UUID (unless -U) and the indexed-directory hash seeds.
type mkfsRandom struct {
	gen   uint32
	uuid  [ondisk.UUIDLen]byte
	seeds [3]uint32
	now   uint64 // format time, seconds
}

// sysFile is a system inode and what mkfs knows of it.
type sysFile struct {
	kind ondisk.SystemFileKind
	slot int
	d    *ondisk.Dinode
}

// mkfsBuilder builds the image.
type mkfsBuilder struct {
	p     *mkfsPlan
	gen   uint32
	uuid  [ondisk.UUIDLen]byte
	seeds [3]uint32
	now   uint64

	img      *mkfsImage
	gb       *globalBitmap
	sysGroup *allocGroup // global_inode_alloc's only group
	sysAlloc *chainAllocator
	super    *ondisk.Dinode

	root, sysdir *mkDir
	orphans      []*mkDir
	lostFound    *mkDir
	files        map[ondisk.SystemFileKind][]*sysFile // by kind, then slot
	inodes       []*ondisk.Dinode                     // every inode, for encoding
	subAllocs    map[string]*subAllocator

	backupCount int
	incompat    uint32 // superblock incompat after mkfs's stack adjustments
	compat      uint32
	metaECC     bool
}

func newMkfsBuilder(p *mkfsPlan, r mkfsRandom) *mkfsBuilder {
	return &mkfsBuilder{
		p: p, gen: r.gen, uuid: r.uuid, seeds: r.seeds, now: r.now,
		img:       &mkfsImage{bs: p.blockSize, blocks: map[uint64]*imgBlock{}},
		files:     map[ondisk.SystemFileKind][]*sysFile{},
		subAllocs: map[string]*subAllocator{},
		metaECC:   p.features.Incompat&ondisk.IncompatMetaECC != 0,
	}
}

func (b *mkfsBuilder) bs() int { return b.p.blockSize }

func (b *mkfsBuilder) clustersToBlocks(c uint64) uint64 {
	return c << (b.p.clusterBits - b.p.blockBits)
}

// zeroClusters records that clusters [c, c+n) must read as zeros.
func (b *mkfsBuilder) zeroClusters(c, n uint64) {
	b.img.zero = append(b.img.zero, blockRange{b.clustersToBlocks(c), b.clustersToBlocks(n)})
}

// newInode makes a dinode with the fields every inode mkfs writes shares.
func (b *mkfsBuilder) newInode(blkno uint64, mode uint16, flags uint32) *ondisk.Dinode {
	t := ondisk.DiskTime{Sec: b.now}
	d := &ondisk.Dinode{
		Generation:   b.gen,
		FSGeneration: b.gen,
		SuballocSlot: ondisk.SuballocSlotGlobal,
		Blkno:        blkno,
		Mode:         mode,
		Flags:        flags,
		Atime:        t, Ctime: t, Mtime: t,
	}
	if mode&ondisk.ModeTypeMask != ondisk.ModeDir {
		d.Links = 1
	}
	b.inodes = append(b.inodes, d)
	return d
}

func (b *mkfsBuilder) emptyExtents() *ondisk.ExtentList {
	return &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(b.bs(), 0))}
}

// allocSysInode takes the next block of the system inode group.
func (b *mkfsBuilder) allocSysInode() (uint64, uint16, error) {
	g := b.sysGroup
	i := g.nextClear(0)
	if i >= g.bits() {
		return 0, 0, refuse("the system inode group (%d blocks) is full: too many slots for this geometry", g.bits())
	}
	g.set(i)
	return g.gd.Blkno + uint64(i), uint16(i), nil
}

// build runs both phases.
func (b *mkfsBuilder) build() (*mkfsImage, error) {
	if err := b.phase1(); err != nil {
		return nil, err
	}
	if err := b.phase2(); err != nil {
		return nil, err
	}
	if err := b.fixups(); err != nil {
		return nil, err
	}
	if err := b.emit(); err != nil {
		return nil, err
	}
	return b.img, nil
}

// sysFileMode and flags from the system file table.
func sysInfo(k ondisk.SystemFileKind) ondisk.SystemFileInfo { return ondisk.SystemFiles[k] }

func (b *mkfsBuilder) skipKind(k ondisk.SystemFileKind) bool {
	rc := sysInfo(k).RoCompat
	return rc != 0 && b.p.features.RoCompat&rc == 0
}

// phase1 is mkfs.c's main(): everything up to the superblock.
func (b *mkfsBuilder) phase1() error {
	p := b.p
	bs := p.blockSize
	bpc := p.bpc()

	// Inodes of the global bitmap and global_inode_alloc come first so the
	// allocators can refer to them; their block numbers are set below.
	gbIno := b.newInode(0, ondisk.ModeReg|0o644, ondisk.InodeValid|ondisk.InodeSystem|ondisk.InodeBitmap|ondisk.InodeChain)
	gbIno.Chain = &ondisk.ChainList{
		CPG:   uint16(8 * ondisk.GroupBitmapBytes(bs, false, 0)),
		BPC:   1,
		Count: uint16(ondisk.ChainRecsPerInode(bs)),
	}
	gbIno.Clusters = p.clusters
	gbIno.Size = p.bytes
	b.gb = newGlobalBitmap(p, gbIno, b.gen)

	// The system inode group: room for every system inode of
	// max(32, slots) slots plus the superblock, root, system dir and
	// lost+found.
	perSlotKinds, globalKinds := 0, 0
	for _, info := range ondisk.SystemFiles {
		if info.PerSlot {
			perSlotKinds++
		} else {
			globalKinds++
		}
	}
	need := superblockBlocks + 3 + globalKinds + perSlotKinds*max(32, p.slots)
	needClusters := (need*bs + p.clusterSize - 1) / p.clusterSize
	c, err := b.gb.mkfsAlloc(needClusters)
	if err != nil {
		return refuse("%v", err)
	}
	sysBits := needClusters * bpc
	sysBitmapBytes := ondisk.GroupBitmapBytes(bs, false, 0)
	if sysBits > 8*sysBitmapBytes || sysBits > 0xFFFF {
		return refuse("the system inode group needs %d bits, more than a %d-byte block's group holds: use larger blocks or smaller clusters", sysBits, bs)
	}
	giaIno := b.newInode(0, ondisk.ModeReg|0o644, ondisk.InodeValid|ondisk.InodeSystem|ondisk.InodeBitmap|ondisk.InodeChain)
	b.sysGroup = newAllocGroup(&ondisk.GroupDesc{
		Bits:       uint16(sysBits),
		Generation: b.gen,
		Blkno:      b.gb.clusterBlkno(c),
	}, b.gb.clusterBlkno(c), sysBitmapBytes)
	giaIno.Chain = &ondisk.ChainList{
		CPG:   uint16(needClusters),
		BPC:   uint16(bpc),
		Count: uint16(ondisk.ChainRecsPerInode(bs)),
	}
	giaIno.Clusters = uint32(needClusters)
	giaIno.Size = uint64(needClusters) * uint64(p.clusterSize)
	b.sysAlloc = &chainAllocator{name: "global inode allocator", dinode: giaIno,
		chains: [][]*allocGroup{{b.sysGroup}}, byAddr: []*allocGroup{b.sysGroup}}

	trailer := p.features.Incompat&(ondisk.IncompatMetaECC|ondisk.IncompatIndexedDirs) != 0

	// Root directory.
	var rootBlknos []uint64
	if !p.inlineData {
		c, err := b.gb.mkfsAlloc(1)
		if err != nil {
			return refuse("%v", err)
		}
		rootBlknos = b.clusterBlocks(c, 1)
	}
	rootBlk, rootBit, err := b.allocSysInode()
	if err != nil {
		return err
	}
	rootIno := b.newInode(rootBlk, ondisk.ModeDir|0o755, ondisk.InodeValid|ondisk.InodeSystem)
	rootIno.SuballocBit = rootBit
	b.root = &mkDir{ino: rootIno, inline: p.inlineData, blknos: rootBlknos, bs: bs, trailer: trailer && !p.inlineData}
	if err := b.root.mkfsAdd(".", rootBlk, ondisk.FileTypeDir); err != nil {
		return err
	}
	if err := b.root.mkfsAdd("..", rootBlk, ondisk.FileTypeDir); err != nil {
		return err
	}

	// System directory: inline when its entries (each counted at
	// REC_LEN(40)) fit the inode; else whole blocks.
	entries := globalKinds + perSlotKinds*p.slots
	each := ondisk.RecLen(sysFileNameMax)
	sysInline := p.inlineData && each*entries <= ondisk.InlineDataBytes(bs, 0)
	var sysBlknos []uint64
	if !sysInline {
		perBlock := bs / each
		nblocks := (entries + perBlock - 1) / perBlock
		n := (nblocks*bs + p.clusterSize - 1) / p.clusterSize
		c, err := b.gb.mkfsAlloc(n)
		if err != nil {
			return refuse("%v", err)
		}
		sysBlknos = b.clusterBlocks(c, uint64(n))
	}
	sysBlk, sysBit, err := b.allocSysInode()
	if err != nil {
		return err
	}
	sysIno := b.newInode(sysBlk, ondisk.ModeDir|0o755, ondisk.InodeValid|ondisk.InodeSystem)
	sysIno.SuballocBit = sysBit
	b.sysdir = &mkDir{ino: sysIno, inline: sysInline, blknos: sysBlknos, bs: bs, trailer: trailer && !sysInline}
	if err := b.sysdir.mkfsAdd(".", sysBlk, ondisk.FileTypeDir); err != nil {
		return err
	}
	if err := b.sysdir.mkfsAdd("..", sysBlk, ondisk.FileTypeDir); err != nil {
		return err
	}

	// System inodes in table order, per-slot kinds slot by slot.
	for k := ondisk.SystemFileKind(0); k < ondisk.NumSystemFiles; k++ {
		if b.skipKind(k) {
			continue
		}
		info := sysInfo(k)
		n := 1
		if info.PerSlot {
			n = p.slots
		}
		for slot := 0; slot < n; slot++ {
			blk, bit, err := b.allocSysInode()
			if err != nil {
				return err
			}
			var d *ondisk.Dinode
			switch k {
			case ondisk.SysGlobalBitmap:
				d = gbIno
				d.Blkno = blk
			case ondisk.SysGlobalInodeAlloc:
				d = giaIno
				d.Blkno = blk
			default:
				d = b.newInode(blk, info.Mode, ondisk.InodeValid|ondisk.InodeSystem|info.Flags)
			}
			d.SuballocBit = bit
			name, _ := ondisk.SystemFileName(k, slot)
			if err := b.sysdir.mkfsAdd(name, blk, ondisk.FileTypeOfMode(info.Mode)); err != nil {
				return err
			}
			b.files[k] = append(b.files[k], &sysFile{kind: k, slot: slot, d: d})
			b.initSysInode(d, k)
		}
	}
	b.sysGroup.gd.ParentDinode = giaIno.Blkno
	for _, g := range b.gb.byAddr {
		g.gd.ParentDinode = gbIno.Blkno
	}

	// Heartbeat: 256 blocks in one extent.
	hb := b.file(ondisk.SysHeartbeat, 0)
	hbBytes := heartbeatBlocks * bs
	hbClusters := (hbBytes + p.clusterSize - 1) / p.clusterSize
	c, err = b.gb.mkfsAlloc(hbClusters)
	if err != nil {
		return refuse("%v", err)
	}
	hb.Extents.Recs = []ondisk.ExtentRec{{Cpos: 0, Clusters: uint32(hbClusters), Blkno: b.gb.clusterBlkno(c)}}
	hb.Clusters = uint32(hbClusters)
	hb.Size = uint64(hbBytes)
	b.zeroClusters(c, uint64(hbClusters))

	// Orphan directories.
	for slot := 0; slot < p.slots; slot++ {
		d := b.file(ondisk.SysOrphanDir, slot)
		var blknos []uint64
		if !p.inlineData {
			c, err := b.gb.mkfsAlloc(1)
			if err != nil {
				return refuse("%v", err)
			}
			blknos = b.clusterBlocks(c, 1)
		}
		od := &mkDir{ino: d, inline: p.inlineData, blknos: blknos, bs: bs, trailer: trailer && !p.inlineData}
		if err := od.mkfsAdd(".", d.Blkno, ondisk.FileTypeDir); err != nil {
			return err
		}
		if err := od.mkfsAdd("..", sysBlk, ondisk.FileTypeDir); err != nil {
			return err
		}
		b.orphans = append(b.orphans, od)
	}

	// Finish the directories as format_file does.
	for _, d := range append([]*mkDir{b.root, b.sysdir}, b.orphans...) {
		if d.inline {
			if err := d.finishInline(); err != nil {
				return err
			}
			continue
		}
		n := uint64(len(d.blknos)) / uint64(bpc)
		d.ino.Extents = b.emptyExtents()
		d.ino.Extents.Recs = []ondisk.ExtentRec{{Cpos: 0, Clusters: uint32(n), Blkno: d.blknos[0]}}
		d.ino.Clusters = uint32(n)
		d.ino.Size = uint64(len(d.buf))
		b.zeroClusters(d.blknos[0]/uint64(bpc), n)
	}

	// Every global bitmap group descriptor sits in a zeroed cluster.
	for _, g := range b.gb.byAddr {
		b.zeroClusters(g.gd.Blkno/uint64(bpc), 1)
	}

	b.compat = p.features.Compat &^ ondisk.CompatBackupSB
	b.incompat = p.features.Incompat
	if p.local {
		b.incompat |= ondisk.IncompatLocalMount
	}
	if p.stack != "" {
		b.incompat |= ondisk.IncompatExtendedSlotMap
		if b.incompat&ondisk.IncompatClusterInfo == 0 {
			if p.stack == "o2cb" {
				b.incompat |= ondisk.IncompatClusterInfo
			} else {
				b.incompat |= ondisk.IncompatUserspaceStack
			}
		}
	}
	return nil
}

// clusterBlocks lists the blocks of n clusters from cluster c.
func (b *mkfsBuilder) clusterBlocks(c, n uint64) []uint64 {
	out := make([]uint64, 0, b.clustersToBlocks(n))
	for i := b.clustersToBlocks(c); i < b.clustersToBlocks(c+n); i++ {
		out = append(out, i)
	}
	return out
}

func (b *mkfsBuilder) file(k ondisk.SystemFileKind, slot int) *ondisk.Dinode {
	fs := b.files[k]
	if slot < len(fs) {
		return fs[slot].d
	}
	return nil
}

// initSysInode fills a system inode's id2 as mkfs.c format_file does.
func (b *mkfsBuilder) initSysInode(d *ondisk.Dinode, k ondisk.SystemFileKind) {
	if k == ondisk.SysGlobalBitmap || k == ondisk.SysGlobalInodeAlloc {
		return // set up in phase1
	}
	initSystemInodeBody(d, b.bs(), b.p.clusterBits)
}

// initSystemInodeBody gives a new per-slot or ordinary system inode the
// empty id2 its flags call for: an empty local alloc, truncate log, chain
// list of an inode or extent allocator, or extent list. mkfs and tunefs -N
// (which makes the files of new slots) share it.
func initSystemInodeBody(d *ondisk.Dinode, bs int, clusterBits uint) {
	switch {
	case d.Flags&ondisk.InodeLocalAlloc != 0:
		d.LocalAlloc = &ondisk.LocalAlloc{Bitmap: make([]byte, ondisk.LocalAllocBitmapBytes(bs))}
	case d.Flags&ondisk.InodeDealloc != 0:
		d.TruncateLog = &ondisk.TruncateLog{Count: uint16(ondisk.TruncateRecsPerInode(bs))}
	case d.Flags&ondisk.InodeChain != 0:
		d.Chain = &ondisk.ChainList{
			CPG:   uint16(clustersPerSubGroup(bs, clusterBits)),
			BPC:   uint16((1 << clusterBits) / bs),
			Count: uint16(ondisk.ChainRecsPerInode(bs)),
		}
	default:
		d.Extents = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(bs, 0))}
	}
}

// subAlloc returns the extent or inode allocator of a slot.
func (b *mkfsBuilder) subAlloc(k ondisk.SystemFileKind, slot int) *subAllocator {
	key := fmt.Sprintf("%d:%d", k, slot)
	if s, ok := b.subAllocs[key]; ok {
		return s
	}
	name, _ := ondisk.SystemFileName(k, slot)
	s := &subAllocator{gb: b.gb, gen: b.gen,
		bitmapSize: ondisk.GroupBitmapBytes(b.bs(), true, b.incompat)}
	s.name, s.dinode = name, b.file(k, slot)
	b.subAllocs[key] = s
	return s
}

func (b *mkfsBuilder) extentAlloc0() *subAllocator { return b.subAlloc(ondisk.SysExtentAlloc, 0) }

// extend appends n clusters to a file as libocfs2's
// ocfs2_cached_inode_extend_allocation does: one allocation at a time of
// as much as is left (at least one cluster), each a new extent unless it
// continues the last one.
func (b *mkfsBuilder) extend(d *ondisk.Dinode, n int, zero bool) error {
	cpos := uint32((d.Size + uint64(b.p.clusterSize) - 1) / uint64(b.p.clusterSize))
	for n > 0 {
		c, got, err := b.gb.allocRange(1, n)
		if err != nil {
			return fmt.Errorf("inode %d: %w", d.Blkno, err)
		}
		if err := b.insertExtent(d, cpos, b.gb.clusterBlkno(c), uint32(got)); err != nil {
			return err
		}
		if zero {
			b.zeroClusters(c, uint64(got))
		}
		n -= got
		cpos += uint32(got)
	}
	return nil
}

// insertExtent appends an extent to an inode's (depth 0) extent list,
// merging it into the last record when it continues it.
func (b *mkfsBuilder) insertExtent(d *ondisk.Dinode, cpos uint32, blkno uint64, clusters uint32) error {
	el := d.Extents
	if n := len(el.Recs); n > 0 {
		last := &el.Recs[n-1]
		if last.Cpos+last.Clusters == cpos && last.Blkno+b.clustersToBlocks(uint64(last.Clusters)) == blkno &&
			last.Flags == 0 && last.Clusters+clusters <= ondisk.MaxLeafClusters {
			last.Clusters += clusters
			d.Clusters += clusters
			return nil
		}
	}
	if len(el.Recs) >= int(el.Count) {
		return refuse("inode %d would need more than the %d extents its inode holds (an extent tree), which o2go mkfs does not build: use larger clusters or a smaller journal", d.Blkno, el.Count)
	}
	el.Recs = append(el.Recs, ondisk.ExtentRec{Cpos: cpos, Clusters: clusters, Blkno: blkno})
	d.Clusters += clusters
	return nil
}

// phase2 is the libocfs2 part of mkfs.ocfs2 (finish_normal_format).
func (b *mkfsBuilder) phase2() error {
	p := b.p
	// Backup superblocks: each in its own zeroed cluster, marked used.
	if p.backupSuper {
		for _, blk := range ondisk.BackupSuperBlockBlknos(p.blockSize, p.blocks) {
			c := blk >> (p.clusterBits - p.blockBits)
			if err := b.gb.allocSpecific(c); err != nil {
				return refuse("backup superblock at block %d: %v", blk, err)
			}
			b.zeroClusters(c, 1)
			b.img.backups = append(b.img.backups, blk)
		}
		b.compat |= ondisk.CompatBackupSB
		b.backupCount = len(b.img.backups)
	}

	// Journals, slot by slot.
	jclusters := int(p.journalBytes >> p.clusterBits)
	if free := b.gb.freeClusters(); uint64(jclusters)*uint64(p.slots) > free {
		return refuse("the volume is too small for %d slots with journals of %d bytes each: they need %d clusters and only %d clusters of %d bytes are free (use fewer slots (-N), a smaller journal (-J size=) or a larger device)",
			p.slots, p.journalBytes, uint64(jclusters)*uint64(p.slots), free, p.clusterSize)
	}
	for slot := 0; slot < p.slots; slot++ {
		d := b.file(ondisk.SysJournal, slot)
		before := len(d.Extents.Recs)
		if err := b.extend(d, jclusters, false); err != nil {
			return refuse("journal for slot %d (%d bytes): %v", slot, p.journalBytes, err)
		}
		d.Size = uint64(d.Clusters) << p.clusterBits
		for _, r := range d.Extents.Recs[before:] {
			b.img.journal = append(b.img.journal, blockRange{r.Blkno, b.clustersToBlocks(uint64(r.Clusters))})
		}
		b.journalSuper(d)
	}

	// Extent allocator groups.
	if p.extentAllocClusters > 0 {
		cpg := uint32(clustersPerSubGroup(p.blockSize, p.clusterBits))
		groups := int((p.extentAllocClusters + cpg - 1) / cpg)
		for slot := 0; slot < p.slots; slot++ {
			s := b.subAlloc(ondisk.SysExtentAlloc, slot)
			for i := 0; i < groups; i++ {
				if _, err := s.addGroup(p.clusterSize); err != nil {
					return refuse("extent allocator for slot %d: %v", slot, err)
				}
			}
		}
	}

	// Slot map: one cluster, every entry empty.
	sm := b.file(ondisk.SysSlotMap, 0)
	extended := b.incompat&ondisk.IncompatExtendedSlotMap != 0
	need := ondisk.SlotMapSize(extended, p.slots)
	smClusters := (need + p.clusterSize - 1) / p.clusterSize
	if err := b.extend(sm, smClusters, extended); err != nil {
		return refuse("slot map: %v", err)
	}
	sm.Size = uint64(sm.Clusters) << p.clusterBits
	if !extended {
		// The old format marks an empty slot 0xFFFF, over the whole file.
		for _, r := range sm.Extents.Recs {
			for i := uint64(0); i < b.clustersToBlocks(uint64(r.Clusters)); i++ {
				data := make([]byte, p.blockSize)
				for j := range data {
					data[j] = 0xFF
				}
				b.img.put(r.Blkno+i, data, -1)
			}
		}
	}

	if err := b.quotaFiles(); err != nil {
		return err
	}

	// Directory indexes of the root and orphan directories (block
	// directories only: inline ones are indexed when they grow).
	if p.dxDirs && !p.inlineData {
		for _, d := range append([]*mkDir{b.root}, b.orphans...) {
			if err := b.buildIndex(d); err != nil {
				return err
			}
		}
	}

	return b.lostAndFound()
}

// journalSuper writes the JBD2 superblock at a journal's first block.
func (b *mkfsBuilder) journalSuper(d *ondisk.Dinode) {
	p := b.p
	var incompat uint32
	if p.opts.Journal64 {
		incompat = ondisk.JBD2FeatureIncompat64Bit
	}
	buf := journalSuperBlockBytes(p.blockSize, uint32(b.clustersToBlocks(uint64(d.Clusters))), b.uuid, incompat)
	start := d.Extents.Recs[0].Blkno
	for i := 0; i*p.blockSize < len(buf); i++ {
		b.img.put(start+uint64(i), buf[i*p.blockSize:(i+1)*p.blockSize], -1)
	}
}

// journalSuperBlockBytes is the first block(s) of a freshly formatted
// journal of maxLen blocks (libocfs2's ocfs2_init_journal_superblock):
// a V2 JBD2 superblock, log from block 1 (2 with 512-byte blocks, where the
// 1024-byte superblock takes two), s_start 1, s_sequence 1, one user, the
// volume's UUID and the given incompat features. mkfs and tunefs (new
// slots, -J) share it. The result is whole blocks.
func journalSuperBlockBytes(blockSize int, maxLen uint32, uuid [ondisk.UUIDLen]byte, incompat uint32) []byte {
	first := uint32(1)
	if blockSize == 512 {
		first = 2
	}
	jsb := ondisk.JournalSuperBlock{
		BlockType:       ondisk.JBD2SuperblockV2,
		BlockSize:       uint32(blockSize),
		MaxLen:          maxLen,
		First:           first,
		SSequence:       1,
		Start:           1,
		FeatureIncompat: incompat,
		UUID:            uuid,
		Users:           make([][16]byte, 1),
	}
	buf := make([]byte, max(blockSize, ondisk.JournalSuperBlockSize))
	jsb.Encode(buf)
	return buf
}

// lostAndFound creates lost+found as libocfs2 does: a new inode from
// inode_alloc:0000, its entries, its index, then its name in the root.
func (b *mkfsBuilder) lostAndFound() error {
	p := b.p
	ia := b.subAlloc(ondisk.SysInodeAlloc, 0)
	blk, group, bit, err := ia.alloc(p.clusterSize)
	if err != nil {
		return refuse("lost+found: %v", err)
	}
	d := b.newInode(blk, ondisk.ModeDir|0o755, ondisk.InodeValid)
	d.SuballocSlot, d.SuballocBit, d.SuballocLoc = 0, bit, group
	d.Links = 2
	trailer := p.features.Incompat&(ondisk.IncompatMetaECC|ondisk.IncompatIndexedDirs) != 0
	lf := &mkDir{ino: d, inline: p.inlineData, bs: p.blockSize, trailer: trailer && !p.inlineData}
	if p.inlineData {
		d.DynFeatures |= ondisk.DynInlineData
		d.Inline = &ondisk.InlineData{Data: make([]byte, ondisk.InlineDataBytes(p.blockSize, 0))}
		ondisk.InitDirArea(d.Inline.Data, blk, b.root.ino.Blkno)
		d.Size = uint64(len(d.Inline.Data))
	} else {
		d.Extents = b.emptyExtents()
		if err := b.extend(d, 1, true); err != nil {
			return refuse("lost+found: %v", err)
		}
		lf.blknos = b.clusterBlocks(d.Extents.Recs[0].Blkno/uint64(p.bpc()), 1)
		lf.buf = make([]byte, p.blockSize)
		area := ondisk.DirEntryArea(lf.buf, lf.trailer)
		ondisk.InitDirArea(area, blk, b.root.ino.Blkno)
		if lf.trailer {
			t := ondisk.DirTrailer{Blkno: lf.blknos[0], ParentDinode: blk}
			t.Encode(lf.buf)
		}
		d.Size = uint64(len(area))
		if p.dxDirs {
			if err := b.buildIndex(lf); err != nil {
				return err
			}
		}
	}
	b.lostFound = lf
	b.root.ino.Links++
	at, err := b.root.link("lost+found", blk, ondisk.FileTypeDir)
	if err != nil {
		return refuse("lost+found: %v", err)
	}
	if b.root.dx != nil {
		if err := b.indexInsert(b.root, "lost+found", at); err != nil {
			return err
		}
	}
	return nil
}

// fixups are where this mkfs departs from mkfs.ocfs2 1.8.7 to leave a
// volume its own fsck.ocfs2 accepts: on an indexed-dirs volume every
// block directory is indexed, including the system directory, which
// mkfs.ocfs2 leaves unindexed (fsck: DX_TREE_MISSING). It is indexed last,
// so every other block of the volume is where mkfs.ocfs2 puts it.
func (b *mkfsBuilder) fixups() error {
	if b.p.dxDirs && !b.sysdir.inline && b.sysdir.dx == nil {
		if err := b.buildIndex(b.sysdir); err != nil {
			return err
		}
	}
	// Trailers of indexed directories carry their blocks' free space.
	for _, d := range b.allDirs() {
		if d.dx != nil {
			d.refreshTrailers()
		}
	}
	return nil
}

func (b *mkfsBuilder) allDirs() []*mkDir {
	out := append([]*mkDir{b.root, b.sysdir}, b.orphans...)
	if b.lostFound != nil {
		out = append(out, b.lostFound)
	}
	return out
}

// emit encodes every structure into the image.
func (b *mkfsBuilder) emit() error {
	p := b.p
	bs := p.blockSize
	// Allocators: descriptors and dinodes.
	b.gb.syncDinode(p.clusterSize)
	gbDinode := b.gb.dinode
	gbDinode.Clusters = p.clusters
	for _, g := range b.gb.byAddr {
		if g.gd.Bitmap == nil {
			// Untouched: written by the writer from the group itself.
			b.img.plainGroups = append(b.img.plainGroups, g)
			continue
		}
		if err := b.putGroup(g); err != nil {
			return err
		}
	}
	b.sysAlloc.syncDinode(p.clusterSize)
	if err := b.putGroup(b.sysGroup); err != nil {
		return err
	}
	for _, s := range b.subAllocs {
		s.syncDinode(p.clusterSize)
		for _, g := range s.byAddr {
			if err := b.putGroup(g); err != nil {
				return err
			}
		}
	}
	for _, d := range b.allDirs() {
		b.emitDir(d)
	}
	for _, d := range b.inodes {
		data := make([]byte, bs)
		if err := d.Encode(data); err != nil {
			return fmt.Errorf("inode %d: %w", d.Blkno, err)
		}
		b.img.put(d.Blkno, data, ondisk.DinodeCheckOffset)
	}

	// Superblock, its backups and the OCFS1 headers.
	b.super = b.superblock()
	sb := make([]byte, bs)
	if err := b.super.Encode(sb); err != nil {
		return fmt.Errorf("superblock: %w", err)
	}
	if b.metaECC {
		ondisk.SetBlockCheck(sb, ondisk.DinodeCheckOffset)
	}
	b.img.super = sb
	for _, blk := range b.img.backups {
		c := *b.super
		c.Blkno = blk
		data := make([]byte, bs)
		if err := c.Encode(data); err != nil {
			return fmt.Errorf("backup superblock %d: %w", blk, err)
		}
		if b.metaECC {
			ondisk.SetBlockCheck(data, ondisk.DinodeCheckOffset)
		}
		b.img.backup = append(b.img.backup, data)
	}
	b.img.head = make([]byte, ondisk.OCFS1HeaderBytes(bs))
	if err := ondisk.EncodeOCFS1Header(b.img.head); err != nil {
		return err
	}
	b.img.seal(b.metaECC)
	b.img.zero = mergeRanges(b.img.zero)
	return nil
}

func (b *mkfsBuilder) putGroup(g *allocGroup) error {
	data := make([]byte, b.bs())
	if err := g.encode(data); err != nil {
		return fmt.Errorf("group %d: %w", g.gd.Blkno, err)
	}
	b.img.put(g.gd.Blkno, data, ondisk.GroupDescCheckOffset)
	return nil
}

// superblock builds the superblock dinode (mkfs.c format_superblock).
func (b *mkfsBuilder) superblock() *ondisk.Dinode {
	p := b.p
	t := ondisk.DiskTime{Sec: b.now}
	s := &ondisk.SuperBlock{
		MajorRev:          ondisk.MajorRevLevel,
		MinorRev:          ondisk.MinorRevLevel,
		MaxMntCount:       defaultMaxMountCount,
		LastCheck:         b.now,
		Features:          FeatureSet{Compat: b.compat, Incompat: b.incompat, RoCompat: p.features.RoCompat},
		RootBlkno:         b.root.ino.Blkno,
		SystemDirBlkno:    b.sysdir.ino.Blkno,
		BlockSizeBits:     uint32(p.blockBits),
		ClusterSizeBits:   uint32(p.clusterBits),
		MaxSlots:          uint16(p.slots),
		FirstClusterGroup: b.gb.firstGroup,
		UUID:              b.uuid,
	}
	_ = s.SetLabel(p.label)
	if p.stack != "" {
		_ = s.ClusterInfo.Set(p.stack, p.clusterName, p.stackFlags)
	}
	if b.incompat&ondisk.IncompatXattr != 0 {
		s.XattrInlineSize = 256
	}
	if b.incompat&(ondisk.IncompatXattr|ondisk.IncompatIndexedDirs) != 0 {
		s.UUIDHash = ondisk.UUIDHash(b.uuid)
	}
	if b.incompat&ondisk.IncompatIndexedDirs != 0 {
		s.DxSeed = b.seeds
	}
	return &ondisk.Dinode{
		Signature:    ondisk.SuperBlockSignature,
		Generation:   b.gen,
		FSGeneration: b.gen,
		SuballocSlot: ondisk.SuballocSlotGlobal,
		SuballocBit:  0xFFFF,
		Ctime:        t, Mtime: t,
		Blkno:    ondisk.SuperBlockBlkno,
		Flags:    ondisk.InodeValid | ondisk.InodeSystem | ondisk.InodeSuperBlock,
		Clusters: p.clusters,
		Super:    s,
	}
}

// mergeRanges sorts and coalesces block ranges.
func mergeRanges(rs []blockRange) []blockRange {
	sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	var out []blockRange
	for _, r := range rs {
		if r.count == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].start+out[n-1].count >= r.start {
			end := max(out[n-1].start+out[n-1].count, r.start+r.count)
			out[n-1].count = end - out[n-1].start
			continue
		}
		out = append(out, r)
	}
	return out
}
