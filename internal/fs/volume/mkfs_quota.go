package volume

import "o2go/internal/ondisk"

// Quota files (ro-compat usrquota/grpquota), as libocfs2 writes them
// (quota.c): mkfs formats them with the usage of the root directory, and
// tunefs --fs-features=usrquota/grpquota with the usage of every inode.
// The structures, and the builder of a global file's tree, are ondisk's
// (quota.go, quota_tree.go); fsck writes the files with the same builder.

// quotaReserved is the trailer of every quota block, where its META_ECC
// check goes (at blocksize-quotaReserved).
const quotaReserved = ondisk.QuotaBlockReserved

// quotaUsage is what one id owns: its inodes and the bytes of their
// clusters.
type quotaUsage struct{ inodes, space uint64 }

// quotaRecord is id's record as libocfs2 writes it
// (write_release_quota_hash): the limits and grace times of base (the
// record the file held, zero for a new id), the usage counted, no node
// holding it, and the grace times that no longer run dropped.
func quotaRecord(base ondisk.GlobalDquot, id uint32, u quotaUsage) ondisk.GlobalDquot {
	d := base
	d.ID, d.UseCount = id, 0
	d.CurInodes, d.CurSpace = u.inodes, u.space
	d.ResetGraceTimes()
	return d
}

// newGlobalQuotaFile starts a global file of quota type typ the way mkfs
// and tunefs fill one: a data block's records taken in order.
func newGlobalQuotaFile(typ, bs int, info ondisk.GlobalQuotaInfo) (*ondisk.GlobalQuotaFile, error) {
	return ondisk.NewGlobalQuotaFile(ondisk.QuotaType(typ), bs, info, ondisk.QuotaRecordAfterEntries)
}

// quotaFile is one global quota file mkfs builds.
type quotaFile struct {
	d *ondisk.Dinode
	g *ondisk.GlobalQuotaFile
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
	initClusters := (ondisk.QuotaInitBlocks + p.bpc() - 1) / p.bpc()
	for t, ty := range types {
		if p.features.RoCompat&ty.feature == 0 {
			continue
		}
		file, err := newGlobalQuotaFile(t, bs, ondisk.NewGlobalQuotaInfo(ondisk.QuotaType(t)))
		if err != nil {
			return err
		}
		g := &quotaFile{d: b.file(ty.global, 0), g: file}
		if err := b.extend(g.d, initClusters, true); err != nil {
			return refuse("quota file %s: %v", sysInfo(ty.global).Name, err)
		}
		globals[t] = g
		for slot := 0; slot < p.slots; slot++ {
			d := b.file(ty.local, slot)
			if err := b.extend(d, initClusters, true); err != nil {
				return refuse("quota file %s:%04d: %v", sysInfo(ty.local).Name, slot, err)
			}
			d.Size = uint64(ondisk.QuotaInitBlocks * bs)
			for i, blk := range localQuotaFileBlocks(t, bs) {
				b.putFileBlock(d, uint64(i), blk)
			}
		}
	}
	// One dquot per type, for id 0: the root directory.
	root := quotaUsage{inodes: 1, space: uint64(b.root.ino.Clusters) * uint64(p.clusterSize)}
	for _, g := range globals {
		if g == nil {
			continue
		}
		if err := g.g.Insert(quotaRecord(ondisk.GlobalDquot{}, 0, root)); err != nil {
			return err
		}
		blocks := g.g.Blocks()
		// The file grows a cluster at a time as the tree takes blocks
		// (ocfs2_get_free_dqblk).
		for uint64(len(blocks)) > b.clustersToBlocks(uint64(g.d.Clusters)) {
			g.d.Size = b.clustersToBlocks(uint64(g.d.Clusters)) * uint64(bs)
			if err := b.extend(g.d, 1, true); err != nil {
				return refuse("growing a quota file: %v", err)
			}
		}
		g.d.Size = uint64(len(blocks) * bs)
		for i, blk := range blocks {
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
			b.img.put(r.Blkno+(i-start), data, ondisk.QuotaCheckOffset(len(data)))
			return
		}
	}
}

// localQuotaFileBlocks is the content of a new local quota file of type
// typ (0 user, 1 group), its blocks' checks left for the caller to seal:
// mkfs, tunefs -N (new slots' files) and tunefs
// --fs-features=usrquota/grpquota share it.
func localQuotaFileBlocks(typ, bs int) [][]byte {
	return ondisk.NewLocalQuotaFile(ondisk.QuotaType(typ), bs)
}
