package clustermount

import (
	"context"
	"os"
	"time"

	"o2go/internal/dlm"
	"o2go/internal/ondisk"
)

// The orphan scan, as OCFS2's: an inode unlinked on one node while open on
// another waits in the unlinking node's orphan directory for its last
// user to delete it. If that user's node dies, its recovery deletes the
// orphans of its own slot only, and the inode would wait for the next
// mount in the unlinking node's slot. So every mount looks through every
// slot's orphan directory now and then, and deletes what nobody uses any
// more (the open locks say so); one node at a time, the one that gets the
// orphan scan lock (P) without waiting.

// OrphanScanIntervalEnv overrides orphanScanInterval (a Go duration); the
// tests use it.
const OrphanScanIntervalEnv = "O2GO_ORPHAN_SCAN_INTERVAL"

// orphanScanInterval is how often a mount scans: OCFS2 scans every 5
// minutes.
func orphanScanInterval() time.Duration {
	if d, err := time.ParseDuration(os.Getenv(OrphanScanIntervalEnv)); err == nil && d > 0 {
		return d
	}
	return 5 * time.Minute
}

func orphanScanLockName() string {
	n, _ := ondisk.LockName{Type: ondisk.LockOrphanScan}.Encode()
	return n
}

// scanned says whether a lock the lock manager showed between two reads
// of the scan sequence (mt.scanSeq, read around its view) may be a
// scan's: a scan ran at either read (odd), or one began in between. The
// sequence goes odd before the scan asks for its lock and even after it
// let go.
func scanned(before, after uint64) bool {
	return before%2 == 1 || after%2 == 1 || before != after
}

// orphanScanLoop scans every interval until stop closes.
func (mt *Mount) orphanScanLoop(stop <-chan struct{}) {
	t := time.NewTicker(orphanScanInterval())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			mt.scanOrphans()
		}
	}
}

// scanOrphans deletes the unused orphans of every slot, unless another
// node scans now.
func (mt *Mount) scanOrphans() {
	mg := mt.mg
	mt.scanSeq.Add(1) // odd from before the request: fs_locks tells the scan's lock by it
	defer mt.scanSeq.Add(1)
	held, _, err := mg.DLM.Lock(context.Background(), mt.UUID, orphanScanLockName(), dlm.ModeEX, dlm.NoQueue, nil)
	if err != nil {
		if !isBusy(err) {
			mg.Log.Warn("orphan scan: taking the orphan scan lock", "err", err)
		}
		return
	}
	defer held.Unlock(nil) // before the sequence goes even again
	total := 0
	for s := range int(mt.m.SB.MaxSlots) {
		n, err := mt.m.RecoverOrphansOf(s)
		total += n
		if err != nil {
			mg.Log.Warn("orphan scan: deleting orphans", "slot", s, "err", err)
		}
	}
	if total > 0 {
		mg.Log.Info("orphan scan deleted orphan inodes nobody uses any more", "count", total)
	}
}
