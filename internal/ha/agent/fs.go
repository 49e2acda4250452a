package agent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"o2go/internal/ha"
)

// fs mounts and unmounts a file system. An o2go volume (fstype "o2go") is
// mounted with `o2go mount` (its own checks and recovery run at mount);
// any other type gets `fsck -p` first (exit 0 or 1: clean or fixed) unless
// NoFsck, then mount(8).
func (r *Runner) fs(ctx context.Context, kind ha.OpKind, res *ha.Resource) (ha.OpStatus, error) {
	mounted, fstype, err := mountedAt(res.Mountpoint)
	if err != nil {
		return ha.OpFailed, err
	}
	switch kind {
	case ha.OpMonitor:
		if !mounted {
			return ha.OpNotRunning, nil
		}
		if !fsTypeMatches(res.FSType, fstype) {
			return ha.OpFailed, fmt.Errorf("%s is mounted as %s, not %s", res.Mountpoint, fstype, res.FSType)
		}
		if _, err := os.Stat(res.Mountpoint); err != nil {
			return ha.OpFailed, fmt.Errorf("%s does not answer: %v", res.Mountpoint, err)
		}
		return ha.OpOK, nil
	case ha.OpStart:
		if mounted {
			if fsTypeMatches(res.FSType, fstype) {
				return ha.OpOK, nil
			}
			return ha.OpFailed, fmt.Errorf("%s is already mounted (%s): unmount it first", res.Mountpoint, fstype)
		}
		if err := os.MkdirAll(res.Mountpoint, 0o755); err != nil {
			return ha.OpFailed, err
		}
		env := r.resEnv(res)
		if res.FSType == "o2go" {
			args := []string{"mount"}
			if res.Options != "" {
				args = append(args, "-o", res.Options)
			}
			args = append(args, res.Device, res.Mountpoint)
			code, out, err := run(ctx, r.O2go, args, env, "")
			if err != nil || code != 0 {
				return ha.OpFailed, fmt.Errorf("o2go mount %s %s: exit %d %v: %s", res.Device, res.Mountpoint, code, err, lastLine(out))
			}
			return ha.OpOK, nil
		}
		if !res.NoFsck {
			code, out, err := run(ctx, "fsck", []string{"-p", "-t", res.FSType, res.Device}, env, "")
			if err != nil || code > 1 {
				return ha.OpFailed, fmt.Errorf("fsck -p %s: exit %d %v: %s (repair it by hand before the group can start here)", res.Device, code, err, lastLine(out))
			}
		}
		args := []string{"-t", res.FSType}
		if res.Options != "" {
			args = append(args, "-o", res.Options)
		}
		args = append(args, res.Device, res.Mountpoint)
		code, out, err := run(ctx, "mount", args, env, "")
		if err != nil || code != 0 {
			return ha.OpFailed, fmt.Errorf("mount %s %s: exit %d %v: %s", res.Device, res.Mountpoint, code, err, lastLine(out))
		}
		return ha.OpOK, nil
	}
	// stop
	if !mounted {
		return ha.OpOK, nil
	}
	code, out, err := run(ctx, "umount", []string{res.Mountpoint}, r.resEnv(res), "")
	if err != nil || code != 0 {
		return ha.OpFailed, fmt.Errorf("umount %s: exit %d %v: %s (is it busy? fuser -vm %s)", res.Mountpoint, code, err, lastLine(out), res.Mountpoint)
	}
	// A FUSE server finishes in the background: wait until the mount is gone.
	for i := 0; i < 100; i++ {
		if m, _, _ := mountedAt(res.Mountpoint); !m {
			return ha.OpOK, nil
		}
		select {
		case <-ctx.Done():
			return ha.OpFailed, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return ha.OpFailed, fmt.Errorf("%s is still mounted after umount", res.Mountpoint)
}

func fsTypeMatches(want, got string) bool {
	if want == "o2go" {
		return strings.HasPrefix(got, "fuse")
	}
	return want == got
}

// mountedAt reports whether something is mounted at mp, and its type.
func mountedAt(mp string) (bool, string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	mp = strings.TrimRight(mp, "/")
	if mp == "" {
		mp = "/"
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found, fstype := false, ""
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		if unescapeMount(fields[4]) != mp {
			continue
		}
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" && i+1 < len(fields) {
				found, fstype = true, fields[i+1]
			}
		}
	}
	return found, fstype, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
