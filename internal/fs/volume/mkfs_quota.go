package volume

import (
	"encoding/binary"
	"fmt"

	"o2go/internal/ondisk"
)

// Quota files (ro-compat usrquota/grpquota), as libocfs2 writes them
// (quota.c): mkfs formats them with the usage of the root directory, and
// tunefs --fs-features=usrquota/grpquota with the usage of every inode.
// ondisk has no quota types yet; the structures are laid out here.
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
// is an array of le32 block numbers, (blocksize-8)/4 of them; an id's
// index at depth k is its k-th digit in that base, most significant
// first, over quotaTreeDepth levels), whose last level points at data
// blocks: a 16-byte header {dqdh_next_free, dqdh_prev_free le32;
// dqdh_entries le16; pad} and then 88-byte ocfs2_global_disk_dqblk records
//
//	0x00 le32 dqb_id          0x04 le32 dqb_use_count
//	0x08 le64 dqb_ihardlimit  0x10 le64 dqb_isoftlimit
//	0x18 le64 dqb_curinodes   0x20 le64 dqb_bhardlimit
//	0x28 le64 dqb_bsoftlimit  0x30 le64 dqb_curspace (bytes)
//	0x38 le64 dqb_btime       0x40 le64 dqb_itime     0x48 16 bytes pad
//
// A local file (aquota.user:NNNN) has the header with magic
// 0x0cf524c0/0x0cf524c1 and {dqi_flags = 1 (clean), dqi_chunks = 1,
// dqi_blocks = 2} after it, and an all-zero chunk header block.

const (
	quotaReserved      = 8 // OCFS2_QBLK_RESERVED_SPACE
	quotaInitBlocks    = 2
	quotaGrace         = 604800
	quotaSyncMS        = 10000
	quotaDqblkSize     = 88
	quotaDataHdrSize   = 16
	quotaLocalClean    = 1
	quotaTreeRootBlock = 1 // QT_TREEOFF
	quotaInfoOff       = 8 // OCFS2_GLOBAL_INFO_OFF: the info after the header
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

// quotaTreeIndex is the reference slot of id in a tree block at depth
// (0: the root).
func quotaTreeIndex(bs int, id uint32, depth int) int {
	epb := uint32(bs-quotaReserved) >> 2
	for range quotaTreeDepth(bs) - depth - 1 {
		id /= epb
	}
	return int(id % epb)
}

// quotaRecsPerBlock is ocfs2_global_dqstr_in_blk.
func quotaRecsPerBlock(bs int) int {
	return (bs - quotaReserved - quotaDataHdrSize) / quotaDqblkSize
}

// quotaUsage is one id's usage: its inodes and the bytes of their
// clusters. base, when not nil, is the id's record in the file being
// replaced, whose limits and grace times the new record keeps; otherwise
// they are 0, as libocfs2 writes new ids.
type quotaUsage struct {
	id     uint32
	inodes uint64
	space  uint64
	base   []byte
}

// quotaInfo is a global quota file's grace times and sync interval.
type quotaInfo struct{ bgrace, igrace, syncms uint32 }

// defaultQuotaInfo is what libocfs2 gives a new global file.
var defaultQuotaInfo = quotaInfo{quotaGrace, quotaGrace, quotaSyncMS}

// globalQuotaFile is the content of a global quota file being built, block
// by logical block, with libocfs2's tree writer (ocfs2_write_dquot over
// ocfs2_insert_qtree): ids go in one at a time; a new tree or data block
// is the next block of the file (no block is ever freed here, so the free
// block list stays empty); a data block takes records until it is full,
// and is the file's dqi_free_entry meanwhile. The blocks' check trailers
// are left for the writer to seal.
type globalQuotaFile struct {
	typ, bs   int
	info      quotaInfo
	blocks    [][]byte
	freeEntry uint32
}

// newGlobalQuotaFile is a global file as ocfs2_init_global_quota_file
// leaves it: the header block with info and an empty tree root.
func newGlobalQuotaFile(typ, bs int, info quotaInfo) *globalQuotaFile {
	g := &globalQuotaFile{typ: typ, bs: bs, info: info, blocks: [][]byte{make([]byte, bs), make([]byte, bs)}}
	g.writeInfo()
	return g
}

// newBlock appends an empty block and returns its number.
func (g *globalQuotaFile) newBlock() uint32 {
	g.blocks = append(g.blocks, make([]byte, g.bs))
	return uint32(len(g.blocks) - 1)
}

// add inserts u's id into the tree and writes its record. Ids must be
// new.
func (g *globalQuotaFile) add(u quotaUsage) error {
	le := binary.LittleEndian
	depth := quotaTreeDepth(g.bs)
	tree := uint32(quotaTreeRootBlock)
	for level := 0; level < depth-1; level++ {
		ref := g.blocks[tree][4*quotaTreeIndex(g.bs, u.id, level):]
		next := le.Uint32(ref)
		if next == 0 {
			next = g.newBlock()
			le.PutUint32(ref, next)
		}
		tree = next
	}
	ref := g.blocks[tree][4*quotaTreeIndex(g.bs, u.id, depth-1):]
	if le.Uint32(ref) != 0 {
		return fmt.Errorf("quota id %d is already in the tree", u.id)
	}
	data := g.freeEntry
	if data == 0 {
		data = g.newBlock()
		g.freeEntry = data
	}
	blk := g.blocks[data]
	entries := int(le.Uint16(blk[8:]))
	if entries+1 >= quotaRecsPerBlock(g.bs) {
		g.freeEntry = 0 // full: off the list of blocks with room
	}
	le.PutUint16(blk[8:], uint16(entries+1))
	le.PutUint32(ref, data)
	// Records fill a data block in order: none is ever removed here.
	rec := blk[quotaDataHdrSize+entries*quotaDqblkSize:][:quotaDqblkSize]
	copy(rec, u.base)
	le.PutUint32(rec[0x00:], u.id)
	le.PutUint32(rec[0x04:], 0) // dqb_use_count: no node holds it
	le.PutUint64(rec[0x18:], u.inodes)
	le.PutUint64(rec[0x30:], u.space)
	clear(rec[0x48:]) // pad
	// A grace time runs only while usage is over the soft limit
	// (write_release_quota_hash).
	if soft := le.Uint64(rec[0x10:]); soft == 0 || u.inodes < soft {
		le.PutUint64(rec[0x40:], 0)
	}
	if soft := le.Uint64(rec[0x28:]); soft == 0 || u.space < soft {
		le.PutUint64(rec[0x38:], 0)
	}
	g.writeInfo()
	return nil
}

// writeInfo writes the header and the info into block 0
// (ocfs2_write_global_quota_info).
func (g *globalQuotaFile) writeInfo() {
	le := binary.LittleEndian
	b := g.blocks[0]
	le.PutUint32(b[0:], quotaGlobalMagic[g.typ])
	info := b[quotaInfoOff:]
	le.PutUint32(info[0:], g.info.bgrace)
	le.PutUint32(info[4:], g.info.igrace)
	le.PutUint32(info[8:], g.info.syncms)
	le.PutUint32(info[12:], uint32(len(g.blocks)))
	le.PutUint32(info[16:], 0)
	le.PutUint32(info[20:], g.freeEntry)
}

// quotaHashOrder is the order in which libocfs2 writes the ids of a usage
// count (ocfs2_write_release_dquots walks its quota hash): ids are given
// in the order the inode scan first met them; the hash has 8192 chains
// (doubled, up to 2^21, each time it holds more ids than chains), id goes
// to chain (id*5) mod chains, each chain is walked from its newest entry.
func quotaHashOrder(ids []uint32) []uint32 {
	const maxChains = 1 << 21
	chains := make([][]uint32, 8192) // each chain oldest first
	hash := func(id uint32, n int) int { return int((uint64(id) * 5) & uint64(n-1)) }
	for used, id := range ids {
		if used > len(chains) && 2*len(chains) < maxChains {
			grown := make([][]uint32, 2*len(chains))
			for _, c := range chains {
				for i := len(c) - 1; i >= 0; i-- {
					h := hash(c[i], len(grown))
					grown[h] = append(grown[h], c[i])
				}
			}
			chains = grown
		}
		h := hash(id, len(chains))
		chains[h] = append(chains[h], id)
	}
	out := make([]uint32, 0, len(ids))
	for _, c := range chains {
		for i := len(c) - 1; i >= 0; i-- {
			out = append(out, c[i])
		}
	}
	return out
}

// quotaFile is one global quota file mkfs builds.
type quotaFile struct {
	d *ondisk.Dinode
	g *globalQuotaFile
}

// quotaFiles formats the quota files and records root's usage (the only
// inode that counts at that point), as format_quota_files does.
func (b *mkfsBuilder) quotaFiles() error {
	p := b.p
	bs := p.blockSize
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
		g := &quotaFile{d: b.file(ty.global, 0), g: newGlobalQuotaFile(t, bs, defaultQuotaInfo)}
		if err := b.extend(g.d, initClusters, true); err != nil {
			return refuse("quota file %s: %v", sysInfo(ty.global).Name, err)
		}
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
	root := quotaUsage{id: 0, inodes: 1, space: uint64(b.root.ino.Clusters) * uint64(p.clusterSize)}
	for _, g := range globals {
		if g == nil {
			continue
		}
		if err := g.g.add(root); err != nil {
			return err
		}
		// The file grows a cluster at a time as the tree takes blocks
		// (ocfs2_get_free_dqblk).
		for uint64(len(g.g.blocks)) > b.clustersToBlocks(uint64(g.d.Clusters)) {
			g.d.Size = b.clustersToBlocks(uint64(g.d.Clusters)) * uint64(bs)
			if err := b.extend(g.d, 1, true); err != nil {
				return refuse("growing a quota file: %v", err)
			}
		}
		g.d.Size = uint64(len(g.g.blocks) * bs)
		for i, blk := range g.g.blocks {
			b.putFileBlock(g.d, uint64(i), blk)
		}
	}
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
// caller to seal. mkfs, tunefs -N (new slots' files) and tunefs
// --fs-features=usrquota/grpquota share it.
func localQuotaFileBlocks(typ, bs int) [][]byte {
	le := binary.LittleEndian
	blk0 := make([]byte, bs)
	le.PutUint32(blk0[0:], quotaLocalMagic[typ])
	le.PutUint32(blk0[8:], quotaLocalClean)
	le.PutUint32(blk0[12:], 1)
	le.PutUint32(blk0[16:], quotaInitBlocks)
	return [][]byte{blk0, make([]byte, bs)}
}
