package agent

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"o2go/internal/fs/volume"
	"o2go/internal/ha"
	"o2go/internal/ondisk"
)

// o2go volumes as file system resources.
//
// A clustered volume (no local feature, mounted without -o nocluster) is
// mounted through this node's agent, which runs the mount beside its lock
// manager; any number of nodes may have it mounted at once. That is the
// usual OCFS2 set-up: the volume in a concurrent group, mounted on every
// node, and the applications in groups of their own that move between
// nodes which all have their data.
//
// fsck runs first (unless no_fsck), but only when no node has the volume
// mounted: fsck rewrites the superblock and empties the slot map, which
// would wreck the volume under a node that uses it. The slot map says who
// has it: a valid slot belongs to a node that mounted the volume and has
// not unmounted it (it still runs, or died and its slot waits for
// recovery by the nodes that mount it). When some node holds a slot the
// fsck is skipped and the start's note says why (in the history). The
// check, the fsck and the mount of a clustered volume run under HA's lock
// of the volume (ha.FSLockName, taken EX through the agent), so that two
// nodes starting it at once take turns: the first checks and mounts, the
// next finds its slot taken and mounts beside it.

// o2goStart mounts an o2go volume for res, fsck first when no node has it
// mounted, and returns a note for the history (why fsck was skipped).
func (r *Runner) o2goStart(ctx context.Context, res *ha.Resource) (string, error) {
	if r.O2go == "" {
		return "", errors.New("the o2go binary is unknown: cannot mount o2go volumes")
	}
	dev, err := volumePath(res.Device)
	if err != nil {
		return "", err
	}
	st, err := readO2goVolume(dev)
	if err != nil {
		return "", err
	}
	if other := mountedFrom(dev); other != "" {
		return "", fmt.Errorf("%s is mounted on this node already, on %s: a volume is mounted once per node (unmount it there, or give this resource that mount point)", dev, other)
	}
	clustered := !st.local && !hasOption(res.Options, "nocluster")
	if clustered {
		release, err := r.holdLock(ctx, ha.FSLockName(st.uuid))
		if err != nil {
			return "", err
		}
		defer release()
		// The slot map may have changed while this node waited.
		if st, err = readO2goVolume(dev); err != nil {
			return "", err
		}
	}
	note := ""
	if !res.NoFsck {
		if note, err = r.fsckUnlessMounted(ctx, res, dev, st); err != nil {
			return "", err
		}
	}
	args := []string{"mount"}
	if clustered {
		args = append(args, r.agentArgs()...)
	}
	if res.Options != "" {
		args = append(args, "-o", res.Options)
	}
	args = append(args, dev, res.Mountpoint)
	code, out, err := run(ctx, r.O2go, args, r.resEnv(res), "")
	if err != nil || code != 0 {
		return "", fmt.Errorf("o2go %s: exit %d %v: %s", strings.Join(args, " "), code, err, lastLine(out))
	}
	return note, nil
}

// fsckUnlessMounted runs o2go fsck -p on dev when no node holds a slot in
// its slot map; otherwise it skips it and says why.
func (r *Runner) fsckUnlessMounted(ctx context.Context, res *ha.Resource, dev string, st *o2goVolume) (string, error) {
	if len(st.holders) > 0 {
		return fmt.Sprintf("fsck of %s skipped: nodes hold slots in its slot map — %s — so it is mounted there (or a node died with it mounted); fsck runs only while no node has the volume mounted",
			dev, st.holderList()), nil
	}
	code, out, err := run(ctx, r.O2go, []string{"fsck", "-p", dev}, r.resEnv(res), "")
	// 0: clean; 1: fixed, or journals replayed (fsck(8)'s codes).
	if err != nil || code > 1 {
		return "", fmt.Errorf("o2go fsck -p %s: exit %d %v: %s (repair it by hand, o2go fsck -f %s, before the group can start here)", dev, code, err, lastLine(out), dev)
	}
	r.logf("ha: %s: o2go fsck -p %s: exit %d", res.Name, dev, code)
	return "", nil
}

// o2goVolume is what a start needs to know of an o2go volume.
type o2goVolume struct {
	uuid    string
	local   bool       // the local feature: one node mounts it, without the cluster
	holders []slotUser // valid slots of the slot map
}

type slotUser struct{ slot, node int }

func (v *o2goVolume) holderList() string {
	var parts []string
	for _, h := range v.holders {
		parts = append(parts, fmt.Sprintf("node %d (slot %d)", h.node, h.slot))
	}
	return strings.Join(parts, ", ")
}

// readO2goVolume reads dev's superblock and slot map from the disk.
func readO2goVolume(dev string) (*o2goVolume, error) {
	v, err := volume.Open(dev, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer v.Close()
	st := &o2goVolume{uuid: v.SB.UUIDString(), local: v.SB.Features.Incompat&ondisk.IncompatLocalMount != 0}
	sm, err := v.ReadSlotMap()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the slot map: %w", dev, err)
	}
	for i, s := range sm.Slots {
		if s.Valid {
			st.holders = append(st.holders, slotUser{slot: i, node: int(s.Node)})
		}
	}
	return st, nil
}

// agentArgs are the flags that reach this node's agent.
func (r *Runner) agentArgs() []string {
	if r.AgentSocket != "" {
		return []string{"--socket", r.AgentSocket}
	}
	return []string{"--node", r.Node}
}

// holdLock takes lock name of HA's lock domain EX through this node's agent
// (o2go lock, holding it while a shell waits on a pipe) and returns its
// release. The lock goes when the holder's connection to the agent does:
// released, or the holder or the agent died.
func (r *Runner) holdLock(ctx context.Context, name string) (func(), error) {
	full := ha.LockDomain + "/" + name
	args := append(append([]string{"lock"}, r.agentArgs()...), full, "--", "/bin/sh", "-c", "echo held; read line")
	cmd := exec.Command(r.O2go, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("o2go lock %s: %w", full, err)
	}
	held := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if line == "held\n" {
			held <- nil
			return
		}
		held <- fmt.Errorf("the lock holder ended (%v)", err)
	}()
	stop := func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	select {
	case err := <-held:
		if err != nil {
			stop()
			return nil, fmt.Errorf("o2go lock %s: %v: %s", full, err, lastLine(stderr.String()))
		}
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		stop()
		return nil, fmt.Errorf("waiting for lock %s (another node is starting the volume): %w", full, ctx.Err())
	}
	r.logf("ha: holding lock %s", full)
	return func() {
		stop()
		r.logf("ha: released lock %s", full)
	}, nil
}

// volumePath turns a resource's device into a path: a path stays as it
// is; UUID=… and LABEL=… are found through udev's /dev/disk/by-uuid and
// /dev/disk/by-label links.
func volumePath(spec string) (string, error) {
	key, val, ok := strings.Cut(spec, "=")
	if !ok || (key != "UUID" && key != "LABEL") || strings.HasPrefix(spec, "/") {
		return spec, nil
	}
	var links []string
	if key == "LABEL" {
		links = []string{filepath.Join("/dev/disk/by-label", val)}
	} else {
		hex := strings.ToLower(strings.ReplaceAll(val, "-", ""))
		links = []string{filepath.Join("/dev/disk/by-uuid", val), filepath.Join("/dev/disk/by-uuid", hex)}
		if len(hex) == 32 {
			links = append(links, filepath.Join("/dev/disk/by-uuid", hex[:8]+"-"+hex[8:12]+"-"+hex[12:16]+"-"+hex[16:20]+"-"+hex[20:]))
		}
	}
	for _, l := range links {
		if p, err := filepath.EvalSymlinks(l); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no device with %s on this node (no %s): give the device's path, or check that udev sees the disk", spec, links[0])
}

// hasOption reports whether the comma-separated mount options include opt.
func hasOption(options, opt string) bool {
	for _, o := range strings.Split(options, ",") {
		if strings.TrimSpace(o) == opt {
			return true
		}
	}
	return false
}

// mountedFrom returns where dev is mounted through FUSE on this node ("":
// nowhere).
func mountedFrom(dev string) string {
	abs, err := filepath.Abs(dev)
	if err != nil {
		return ""
	}
	ms, err := volume.ReadMountTable("/proc/self/mounts")
	if err != nil {
		return ""
	}
	for _, m := range ms {
		if strings.HasPrefix(m.FSType, "fuse") && filepath.Clean(m.Source) == abs {
			return m.Mountpoint
		}
	}
	return ""
}
