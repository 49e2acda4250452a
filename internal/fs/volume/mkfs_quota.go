package volume

import (
	"encoding/binary"

	"o2go/internal/ondisk"
)

// Quota files (ro-compat usrquota/grpquota), as libocfs2 formats them at
// mkfs time (quota.c). ondisk has no quota types yet; the few structures
// mkfs writes are laid out here.
//
// Every quota block ends in an 8-byte trailer holding its META_ECC check
// (at blocksize-8). A global file (aquota.user, aquota.group) starts with
//
//	0x00 le32 dqh_magic      0x0cf52470 user / 0x0cf52471 group
//	0x04 le32 dqh_version    0
//	0x08 le32 dqi_bgrace     604800 (one week)
//	0x0C le32 dqi_igrace     604800
//	0x10 le32 dqi_syncms     10000
//	0x14 le32 dqi_blocks     blocks in use
//	0x18 le32 dqi_free_blk   first free block (0: none)
//	0x1C le32 dqi_free_entry first block with a free dquot slot
//
// then block 1 is the root of a radix tree over quota ids (each tree block
// is an array of le32 block numbers, (blocksize-8)/4 of them), whose leaves
// point at data blocks of 88-byte ocfs2_global_disk_dqblk records after a
// 16-byte header {next_free, prev_free le32; entries le16; pad}. A local
// file (aquota.user:NNNN) has the header with magic 0x0cf524c0/0x0cf524c1
// and {dqi_flags = 1 (clean), dqi_chunks = 1, dqi_blocks = 2} after it, and
// an all-zero chunk header block.

const (
	quotaReserved      = 8 // OCFS2_QBLK_RESERVED_SPACE
	quotaInitBlocks    = 2
	quotaGrace         = 604800
	quotaSyncMS        = 10000
	quotaDqblkSize     = 88
	quotaDataHdrSize   = 16
	quotaLocalClean    = 1
	quotaTreeRootBlock = 1 // QT_TREEOFF
)

var (
	quotaGlobalMagic = [2]uint32{0x0cf52470, 0x0cf52471}
	quotaLocalMagic  = [2]uint32{0x0cf524c0, 0x0cf524c1}
)

// quotaTreeDepth is ocfs2_qtree_depth: tree levels needed to cover 2^32
// ids with (blocksize-8)/4 references per block.
func quotaTreeDepth(bs int) int {
	epb := uint64(bs-quotaReserved) >> 2
	entries := epb
	i := 1
	for entries < 1<<32 {
		entries *= epb
		i++
	}
	return i
}

// quotaFile is one global quota file being built.
type quotaFile struct {
	d      *ondisk.Dinode
	blocks [][]byte // logical blocks
}

// quotaFiles formats the quota files and records root's usage (the only
// inode that counts at that point), as format_quota_files does.
func (b *mkfsBuilder) quotaFiles() error {
	p := b.p
	bs := p.blockSize
	le := binary.LittleEndian
	types := []struct {
		feature       uint32
		global, local ondisk.SystemFileKind
	}{
		{ondisk.RoCompatUsrQuota, ondisk.SysUserQuota, ondisk.SysLocalUserQuota},
		{ondisk.RoCompatGrpQuota, ondisk.SysGroupQuota, ondisk.SysLocalGroupQuota},
	}
	globals := make([]*quotaFile, 2)
	initClusters := (quotaInitBlocks + p.bpc() - 1) / p.bpc()
	for t, ty := range types {
		if p.features.RoCompat&ty.feature == 0 {
			continue
		}
		g := &quotaFile{d: b.file(ty.global, 0)}
		if err := b.extend(g.d, initClusters, true); err != nil {
			return refuse("quota file %s: %v", sysInfo(ty.global).Name, err)
		}
		g.blocks = [][]byte{make([]byte, bs), make([]byte, bs)}
		le.PutUint32(g.blocks[0][0:], quotaGlobalMagic[t])
		globals[t] = g
		for slot := 0; slot < p.slots; slot++ {
			d := b.file(ty.local, slot)
			if err := b.extend(d, initClusters, true); err != nil {
				return refuse("quota file %s:%04d: %v", sysInfo(ty.local).Name, slot, err)
			}
			d.Size = uint64(quotaInitBlocks * bs)
			for i, blk := range localQuotaFileBlocks(t, bs) {
				b.putFileBlock(d, uint64(i), blk)
			}
		}
	}
	// One dquot per type, for id 0: the root directory.
	rootSpace := uint64(b.root.ino.Clusters) * uint64(p.clusterSize)
	for _, g := range globals {
		if g == nil {
			continue
		}
		if err := b.quotaInsertRoot(g, rootSpace); err != nil {
			return err
		}
		info := g.blocks[0][8:]
		le.PutUint32(info[0:], quotaGrace)
		le.PutUint32(info[4:], quotaGrace)
		le.PutUint32(info[8:], quotaSyncMS)
		le.PutUint32(info[12:], uint32(len(g.blocks)))
		g.d.Size = uint64(len(g.blocks) * bs)
		for i, blk := range g.blocks {
			b.putFileBlock(g.d, uint64(i), blk)
		}
	}
	return nil
}

// quotaInsertRoot writes the dquot of id 0 into a global file: a path of
// new tree blocks from the root (each taking reference 0, id 0's index at
// every level) down to a new data block holding the record (quota.c
// ocfs2_do_insert_tree and ocfs2_find_free_dqentry).
func (b *mkfsBuilder) quotaInsertRoot(g *quotaFile, space uint64) error {
	le := binary.LittleEndian
	bs := b.p.blockSize
	newBlock := func() (int, error) {
		if uint64(len(g.blocks)) == b.clustersToBlocks(uint64(g.d.Clusters)) {
			g.d.Size = uint64(len(g.blocks) * bs)
			if err := b.extend(g.d, 1, true); err != nil {
				return 0, refuse("growing a quota file: %v", err)
			}
		}
		g.blocks = append(g.blocks, make([]byte, bs))
		return len(g.blocks) - 1, nil
	}
	tree := quotaTreeRootBlock
	for depth := 1; depth < quotaTreeDepth(bs); depth++ {
		n, err := newBlock()
		if err != nil {
			return err
		}
		le.PutUint32(g.blocks[tree][0:], uint32(n))
		tree = n
	}
	data, err := newBlock()
	if err != nil {
		return err
	}
	le.PutUint32(g.blocks[tree][0:], uint32(data))
	blk := g.blocks[data]
	le.PutUint16(blk[8:], 1) // dqdh_entries
	rec := blk[quotaDataHdrSize:]
	// dqb_id 0, use count 0, no limits, one inode, root's space.
	le.PutUint64(rec[0x18:], 1)
	le.PutUint64(rec[0x30:], space)
	le.PutUint32(g.blocks[0][8+0x14:], uint32(data)) // dqi_free_entry
	return nil
}

// putFileBlock stores logical block i of a file (whose extents are set)
// as a quota block with its check trailer.
func (b *mkfsBuilder) putFileBlock(d *ondisk.Dinode, i uint64, data []byte) {
	bpc := uint64(b.p.bpc())
	for _, r := range d.Extents.Recs {
		start := uint64(r.Cpos) * bpc
		if i >= start && i < start+uint64(r.Clusters)*bpc {
			b.img.put(r.Blkno+(i-start), data, len(data)-quotaReserved)
			return
		}
	}
}

// localQuotaFileBlocks is the content of a new local quota file
// (aquota.user:NNNN for type 0, aquota.group:NNNN for 1): the header block
// (magic, version 0, clean, one chunk, two blocks) and an empty chunk
// header. Each block's last 8 bytes hold its META_ECC check, left for the
// caller to seal. mkfs and tunefs -N (new slots' files) share it.
func localQuotaFileBlocks(typ, bs int) [][]byte {
	le := binary.LittleEndian
	blk0 := make([]byte, bs)
	le.PutUint32(blk0[0:], quotaLocalMagic[typ])
	le.PutUint32(blk0[8:], quotaLocalClean)
	le.PutUint32(blk0[12:], 1)
	le.PutUint32(blk0[16:], quotaInitBlocks)
	return [][]byte{blk0, make([]byte, bs)}
}
