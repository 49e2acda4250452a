package volume

import (
	"fmt"
	"strings"

	"o2go/internal/ondisk"
)

// --fs-features=[no]backup-super (tunefs.ocfs2's feature_backup_super.c):
// the backup superblocks at 1, 4, 16, 64, 256 GiB and 1 TiB. Turning them
// on needs every location inside the volume free in the global bitmap
// (a volume formatted with --no-backup-super may have data there); their
// clusters are then taken, zeroed and written. Turning them off frees the
// clusters.

func (t *tunefsVol) backupClusters() []uint32 {
	var out []uint32
	for _, b := range ondisk.BackupSuperBlockBlknos(t.bs(), t.totalBlocks()) {
		out = append(out, uint32(b/t.bpc()))
	}
	return out
}

func (t *tunefsVol) enableBackupSuper() error {
	if t.already("backup-super", true) {
		return nil
	}
	clusters := t.backupClusters()
	if len(clusters) == 0 {
		return tunefsRefuse("the volume on %s is too small to contain backup superblocks (the first is at 1 GiB)", t.Path)
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	var used []string
	for i, c := range clusters {
		u, err := gb.ClusterUsed(c)
		if err != nil {
			return err
		}
		if u {
			used = append(used, fmt.Sprintf("%d (block %d)", i+1, uint64(c)*t.bpc()))
		}
	}
	if len(used) > 0 {
		return tunefsRefuse("backup superblock location(s) %s are already in use: the backups cannot be written", strings.Join(used, ", "))
	}
	ok, err := t.askFeature("backup-super", true)
	if err != nil || !ok {
		return err
	}
	for _, c := range clusters {
		run, err := gb.ClaimClusters(t.tx, c, 1, 1)
		if err != nil {
			return err
		}
		if run.Start != c {
			return fmt.Errorf("claiming backup superblock cluster %d got cluster %d (o2go bug)", c, run.Start)
		}
		if err := t.zeroClusters(uint64(c), 1, ""); err != nil {
			return err
		}
	}
	t.setFeature("backup-super", true)
	return t.writeSuper()
}

func (t *tunefsVol) disableBackupSuper() error {
	if t.already("backup-super", false) {
		return nil
	}
	ok, err := t.askFeature("backup-super", false)
	if err != nil || !ok {
		return err
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	cpg := t.geo.GlobalCPG
	for _, c := range t.backupClusters() {
		idx := int(c) / cpg
		grp := ondisk.GlobalBitmapGroupBlkno(idx, cpg, int(t.bpc()), t.SB.FirstClusterGroup)
		// The global bitmap guards these clusters against frees; this is
		// the one change meant to free them.
		if err := gb.Allocator().FreeBits(t.tx, grp, int(c)-idx*cpg, 1); err != nil {
			return err
		}
	}
	t.setFeature("backup-super", false)
	return t.writeSuper()
}
