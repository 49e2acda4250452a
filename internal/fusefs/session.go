package fusefs

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// RunDir holds the per-volume lock files of this machine's o2go mounts.
var RunDir = "/run/o2go/volumes"

// Session is one mount of one volume: the lock that keeps a second mount
// of the same volume off this machine, the volume (mounted read-write or
// open read-only), the FUSE server, and the clean unmount when the kernel
// lets go of the mount point.
type Session struct {
	Device     string
	Mountpoint string
	Opts       MountOptions
	// LiveNodes reports node numbers heartbeating on the device (nil: not
	// checked). A volume in use by other nodes is never mounted without
	// the cluster.
	LiveNodes func(device string) ([]int, error)
	Log       *slog.Logger
	// ReadOnlyCause is set, before ready is called, when a read-write
	// mount came up read-only: errors=remount-ro met damage while
	// mounting (the error names the device and block).
	ReadOnlyCause error

	lockFile *os.File
}

// LockInfo is what a lock file says about the mount holding it.
type LockInfo struct {
	PID        int    `json:"pid"`
	Device     string `json:"device"`
	Mountpoint string `json:"mountpoint"`
	UUID       string `json:"uuid"`
	// Socket is the control socket of the agent serving a clustered
	// mount (RegisterAgentMount); empty for a mount of its own process.
	Socket string `json:"socket,omitempty"`
}

// RegisterAgentMount records a clustered mount an agent serves, beside the
// lock files of local mounts, so that o2go umount finds its agent and a
// -o nocluster mount of the same volume on this machine is refused. Several
// agents (test and demo nodes) may mount one volume on one machine: the
// record takes no lock. The returned function removes it.
func RegisterAgentMount(li LockInfo) (func(), error) {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return nil, err
	}
	name := li.UUID + strings.ReplaceAll(li.Mountpoint, "/", "_") + ".agent"
	p := filepath.Join(RunDir, name)
	raw, err := json.Marshal(li)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, append(raw, '\n'), 0o644); err != nil {
		return nil, err
	}
	return func() { os.Remove(p) }, nil
}

// Run mounts the volume, calls ready (with nil, or the error that stopped
// the mount), serves until the mount point is unmounted, then unmounts the
// volume cleanly (journal checkpointed and marked clean).
func (s *Session) Run(ready func(error)) error {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	err := s.run(ready)
	if err != nil && ready != nil {
		ready(err)
	}
	return err
}

func (s *Session) run(ready func(error)) error {
	if st, err := os.Stat(s.Mountpoint); err != nil {
		return err
	} else if !st.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", s.Mountpoint)
	}
	probe, err := volume.Open(s.Device, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		if n, blk, ok := volume.IntactBackup(s.Device); ok {
			return fmt.Errorf("%w\n(backup superblock %d at block %d is intact: restore it with o2go fsck -r %d %s, then mount)", err, n, blk, n, s.Device)
		}
		return err
	}
	uuid := probe.SB.UUIDString()
	local := probe.SB.Features.Incompat&ondisk.IncompatLocalMount != 0
	journalClean := s.journalClean(probe)
	probe.Close()
	if err := s.lock(uuid); err != nil {
		return err
	}
	defer s.unlock()
	if err := checkKernelMounts(s.Device); err != nil {
		return err
	}
	if !local && !s.Opts.NoCluster {
		return fmt.Errorf("%s is a clustered volume (UUID %s): mounting it on several nodes needs the o2go cluster agent; to use it on this node only, with no other node mounting it, add -o nocluster", s.Device, uuid)
	}
	if s.LiveNodes != nil {
		live, err := s.LiveNodes(s.Device)
		if err != nil {
			return fmt.Errorf("%s: reading the heartbeat area: %w", s.Device, err)
		}
		if len(live) > 0 {
			return fmt.Errorf("%s: nodes %v are heartbeating on this volume: it is in use elsewhere in the cluster; refusing a %s mount", s.Device, live, map[bool]string{true: "nocluster", false: "local"}[s.Opts.NoCluster])
		}
	}
	var f *FS
	var m *volume.Mounted
	policy := Options{NoUserXattr: !s.Opts.UserXattr, NoACL: !s.Opts.ACL, Errors: s.Opts.Errors, Log: s.Log, Panic: s.panic,
		BufferedCoherency: s.Opts.Coherency == "buffered"}
	readOnly := s.Opts.ReadOnly
	if !readOnly {
		m, err = volume.Mount(s.Device, s.Opts.Volume)
		if err != nil {
			if !isVolumeError(err) {
				return err
			}
			// Damage met while mounting: errors= decides.
			if s.Opts.Errors != ErrorsRemountRO && s.Opts.Errors != "" {
				hint := "repair the volume with fsck.ocfs2"
				if journalClean {
					hint += ", or mount it with -o ro or errors=remount-ro to read what is intact"
				}
				return fmt.Errorf("%w; not mounted (errors=%s): %s", err, s.Opts.Errors, hint)
			}
			if !journalClean {
				return fmt.Errorf("%w; not mounted: the journal is dirty (or its inode unreadable) and could not be replayed, so a read-only view could miss committed changes; repair the volume with fsck.ocfs2", err)
			}
			s.Log.Error("metadata error while mounting: mounted read-only (errors=remount-ro); run fsck.ocfs2 once it is unmounted", "device", s.Device, "err", err)
			s.ReadOnlyCause = err
			readOnly = true
		}
	}
	if readOnly {
		v, err := volume.Open(s.Device, volume.OpenOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer v.Close()
		for _, n := range v.Notes {
			s.Log.Warn(n, "device", s.Device)
		}
		policy.ReadOnly = true
		f = New(v.FS, policy)
	} else {
		if m.Load.WasDirty {
			s.Log.Info("recovered after an unclean shutdown", "device", s.Device, "replayed", m.Load.Replay != nil && m.Load.Replay.Needed)
		}
		policy.Statfs, policy.OnReadOnly = m.Statfs, m.SetReadOnly
		f = New(m.FS, policy)
		if n, err := m.FS.RecoverOrphans(); err != nil {
			err = fmt.Errorf("%s: orphan recovery: %w", s.Device, err)
			if !isVolumeError(err) || s.Opts.Errors == ErrorsPanic {
				m.Crash()
				return err
			}
			f.volumeError(err) // read-only (remount-ro) or logged (continue)
			s.ReadOnlyCause = f.ReadOnlyCause()
		} else if n > 0 {
			s.Log.Info("deleted orphan inodes left by a crash", "count", n)
		}
	}
	srv, err := Mount(f, s.Mountpoint, MountConfig{Device: s.Device, AllowOther: os.Geteuid() == 0, Debug: s.Opts.Debug})
	if err != nil {
		if m != nil {
			m.Unmount()
		}
		return err
	}
	if ready != nil {
		ready(nil)
		ready = nil
	}
	srv.Wait()
	if m != nil {
		// The kernel has let go of every inode: delete the unlinked ones
		// it still held (what it did not FORGET before unmounting).
		if _, err := m.FS.RecoverOrphans(); err != nil {
			s.Log.Error("deleting orphans at unmount; the next mount retries", "err", err)
		}
		if err := m.Unmount(); err != nil {
			s.Log.Error("unclean unmount: the journal will be replayed at the next mount", "device", s.Device, "err", err)
			return err
		}
	}
	return nil
}

// journalClean reports whether the slot's journal needs no replay (its
// inode's dirty flag is off), read before the read-write mount: if that
// mount then fails on damage, a read-only fallback shows what is on disk
// only when nothing waits in the journal.
func (s *Session) journalClean(v *volume.Volume) bool {
	blk, err := v.SystemFile(ondisk.SysJournal, s.Opts.Volume.Slot)
	if err != nil {
		return false
	}
	d, err := v.Cache.Dinode(blk)
	if err != nil {
		return false
	}
	return d.Journal().Flags&ondisk.JournalDirty == 0
}

// panic is errors=panic: the server process exits at once, writing nothing
// more, as if it had been killed; the kernel's mount is left dead
// (ENOTCONN) until unmounted, and the next mount replays the journal.
// The adapter has logged err.
func (s *Session) panic(error) { os.Exit(PanicExitCode) }

// PanicExitCode is the exit status of a server stopped by errors=panic.
const PanicExitCode = 2

func (s *Session) lockPath(uuid string) string { return filepath.Join(RunDir, uuid+".lock") }

// lock takes the machine-wide lock of volume uuid: a second mount of the
// same volume on this machine is refused, naming the first.
func (s *Session) lock(uuid string) error {
	if err := os.MkdirAll(RunDir, 0o755); err != nil {
		return err
	}
	p := s.lockPath(uuid)
	fl, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if ms, _ := Mounts(); ms != nil {
		for _, m := range ms {
			if m.UUID == uuid && m.Socket != "" {
				fl.Close()
				return fmt.Errorf("volume %s (%s) is mounted on this machine through the cluster agent at %s (pid %d, %s): unmount it there first", uuid, s.Device, m.Mountpoint, m.PID, m.Socket)
			}
		}
	}
	if err := unix.Flock(int(fl.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		var li LockInfo
		raw, _ := os.ReadFile(p)
		json.Unmarshal(raw, &li)
		fl.Close()
		return fmt.Errorf("volume %s (%s) is already mounted on this machine by o2go pid %d at %s", uuid, s.Device, li.PID, li.Mountpoint)
	}
	abs, _ := filepath.Abs(s.Mountpoint)
	raw, _ := json.Marshal(LockInfo{PID: os.Getpid(), Device: s.Device, Mountpoint: abs, UUID: uuid})
	fl.Truncate(0)
	fl.WriteAt(append(raw, '\n'), 0)
	s.lockFile = fl
	return nil
}

func (s *Session) unlock() {
	if s.lockFile != nil {
		os.Remove(s.lockFile.Name())
		s.lockFile.Close()
	}
}

// Mounts lists this machine's o2go mounts from their lock files.
func Mounts() ([]LockInfo, error) {
	ents, err := os.ReadDir(RunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []LockInfo
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(RunDir, e.Name()))
		if err != nil {
			continue
		}
		var li LockInfo
		if json.Unmarshal(raw, &li) == nil && li.PID > 0 {
			if syscall.Kill(li.PID, 0) == nil {
				out = append(out, li)
			}
		}
	}
	return out, nil
}

// checkKernelMounts refuses a device the kernel's own ocfs2 has mounted.
func checkKernelMounts(device string) error {
	table, err := volume.ReadMountTable("/proc/mounts")
	if err != nil {
		return nil
	}
	want, _ := filepath.EvalSymlinks(device)
	for _, m := range table {
		if m.FSType != "ocfs2" {
			continue
		}
		if src, _ := filepath.EvalSymlinks(m.Source); src == want {
			return fmt.Errorf("%s is mounted by the kernel's ocfs2 at %s", device, m.Mountpoint)
		}
	}
	return nil
}
