package clustermount

import (
	"context"
	"time"

	"o2go/internal/fs/lockglue"
	"o2go/internal/node"
)

// MountParams are the parameters of the fs.mount control method.
type MountParams struct {
	Device     string `json:"device"` // path, UUID=… or LABEL=…
	Mountpoint string `json:"mountpoint"`
	Options    string `json:"options,omitempty"`
}

// MountInfo describes one clustered mount (fs.mount's answer, fs.mounts).
type MountInfo struct {
	Device     string             `json:"device"`
	Mountpoint string             `json:"mountpoint"`
	UUID       string             `json:"uuid"`
	Slot       int                `json:"slot"`
	Since      time.Time          `json:"since"`
	VolumeLock lockglue.LockState `json:"volume_lock"`
	// FsLocks are the counts of every file-system lock of the mount since
	// it began, the volume lock and those given up since included.
	FsLocks lockglue.Stats `json:"fs_locks"`
	// LockRestarts counts the operations run again for a cluster lock
	// they found they needed (inode.Writer.LockRestarts).
	LockRestarts uint64 `json:"lock_restarts"`
}

// Info describes the mount.
func (mt *Mount) Info() MountInfo {
	mi := MountInfo{Device: mt.Device, Mountpoint: mt.Mountpoint, UUID: mt.UUID, Slot: mt.Slot, Since: mt.Started, VolumeLock: mt.LockState()}
	mi.FsLocks = mi.VolumeLock.Stats
	if mt.table != nil {
		mi.FsLocks.Add(mt.table.totals())
	}
	if mt.m != nil && mt.m.FS.W != nil {
		mi.LockRestarts = mt.m.FS.W.LockRestarts()
	}
	return mi
}

// RegisterControl adds fs.mount, fs.mounts and fs.locks to the agent's
// control server.
func (mg *Manager) RegisterControl(cs *node.ControlServer) {
	cs.Register("fs.mount", func(ctx context.Context, req *node.ControlRequest) (any, error) {
		var p MountParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		// The mount outlives the request: only its set-up is bounded.
		mctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		mt, err := mg.Mount(mctx, p.Device, p.Mountpoint, p.Options)
		if err != nil {
			return nil, err
		}
		return mt.Info(), nil
	})
	cs.Register("fs.mounts", func(ctx context.Context, req *node.ControlRequest) (any, error) {
		out := []MountInfo{}
		for _, mt := range mg.Mounts() {
			out = append(out, mt.Info())
		}
		return out, nil
	})
	cs.Register("fs.locks", func(ctx context.Context, req *node.ControlRequest) (any, error) {
		var p FsLocksParams
		if err := req.Decode(&p); err != nil {
			return nil, err
		}
		return mg.FsLocks(p)
	})
}
