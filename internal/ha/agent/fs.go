package agent

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"o2go/internal/fs/volume"
	"o2go/internal/ha"
)

// fs mounts and unmounts a file system. An o2go volume (fstype "o2go") is
// mounted with `o2go mount` — a clustered one through this node's agent —
// after `o2go fsck -p` when no node has it mounted (o2gofs.go); any other
// type gets `fsck -p` first (exit 0 or 1: clean or fixed) unless NoFsck,
// then mount(8). A start may return a note for the history.
func (r *Runner) fs(ctx context.Context, kind ha.OpKind, res *ha.Resource) (ha.OpStatus, string, error) {
	mounted, fstype, err := mountedAt(res.Mountpoint)
	if err != nil {
		return ha.OpFailed, "", err
	}
	switch kind {
	case ha.OpMonitor:
		if !mounted {
			return ha.OpNotRunning, "", nil
		}
		if !fsTypeMatches(res.FSType, fstype) {
			return ha.OpFailed, "", fmt.Errorf("%s is mounted as %s, not %s", res.Mountpoint, fstype, res.FSType)
		}
		if _, err := os.Stat(res.Mountpoint); err != nil {
			return ha.OpFailed, "", fmt.Errorf("%s does not answer: %v", res.Mountpoint, err)
		}
		return ha.OpOK, "", nil
	case ha.OpStart:
		if mounted {
			if fsTypeMatches(res.FSType, fstype) {
				return ha.OpOK, "", nil
			}
			return ha.OpFailed, "", fmt.Errorf("%s is already mounted (%s): unmount it first", res.Mountpoint, fstype)
		}
		if err := os.MkdirAll(res.Mountpoint, 0o755); err != nil {
			return ha.OpFailed, "", err
		}
		if res.FSType == "o2go" {
			note, err := r.o2goStart(ctx, res)
			if err != nil {
				return ha.OpFailed, "", err
			}
			return ha.OpOK, note, nil
		}
		env := r.resEnv(res)
		if !res.NoFsck {
			code, out, err := run(ctx, "fsck", []string{"-p", "-t", res.FSType, res.Device}, env, "")
			if err != nil || code > 1 {
				return ha.OpFailed, "", fmt.Errorf("fsck -p %s: exit %d %v: %s (repair it by hand before the group can start here)", res.Device, code, err, lastLine(out))
			}
		}
		args := []string{"-t", res.FSType}
		if res.Options != "" {
			args = append(args, "-o", res.Options)
		}
		args = append(args, res.Device, res.Mountpoint)
		code, out, err := run(ctx, "mount", args, env, "")
		if err != nil || code != 0 {
			return ha.OpFailed, "", fmt.Errorf("mount %s %s: exit %d %v: %s", res.Device, res.Mountpoint, code, err, lastLine(out))
		}
		return ha.OpOK, "", nil
	}
	// stop
	if !mounted {
		return ha.OpOK, "", nil
	}
	code, out, err := run(ctx, "umount", []string{res.Mountpoint}, r.resEnv(res), "")
	if err != nil || code != 0 {
		return ha.OpFailed, "", fmt.Errorf("umount %s: exit %d %v: %s (is it busy? fuser -vm %s)", res.Mountpoint, code, err, lastLine(out), res.Mountpoint)
	}
	// A FUSE server finishes in the background: wait until the mount is gone.
	for i := 0; i < 100; i++ {
		if m, _, _ := mountedAt(res.Mountpoint); !m {
			return ha.OpOK, "", nil
		}
		select {
		case <-ctx.Done():
			return ha.OpFailed, "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return ha.OpFailed, "", fmt.Errorf("%s is still mounted after umount", res.Mountpoint)
}

func fsTypeMatches(want, got string) bool {
	if want == "o2go" {
		return strings.HasPrefix(got, "fuse")
	}
	return want == got
}

// mountedAt reports whether something is mounted at mp, and its type
// (the last mount there: the one in use).
func mountedAt(mp string) (bool, string, error) {
	ms, err := volume.ReadMountTable("/proc/self/mounts")
	if err != nil {
		return false, "", err
	}
	mp = strings.TrimRight(mp, "/")
	if mp == "" {
		mp = "/"
	}
	found, fstype := false, ""
	for _, m := range ms {
		if m.Mountpoint == mp {
			found, fstype = true, m.FSType
		}
	}
	return found, fstype, nil
}
