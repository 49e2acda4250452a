package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/cluster/config"
	"o2go/internal/clustermount"
	"o2go/internal/fs/volume"
	"o2go/internal/fusefs"
	"o2go/internal/inspect"
	"o2go/internal/node"
	"o2go/internal/ondisk"
)

func init() { subcommands = append(subcommands, newMountCommand, newUmountCommand) }

const mountReadyFD = "O2GO_MOUNT_READY_FD"

func newMountCommand() *cobra.Command {
	var (
		optString  string
		foreground bool
		scan       []string
		nodeName   string
		socket     string
		confPath   string
	)
	cmd := &cobra.Command{
		Use:   "mount [--config FILE] [--node NAME] [-o OPTIONS] [-f] DEVICE|UUID=…|LABEL=… MOUNTPOINT",
		Short: "Mount an OCFS2 volume through FUSE",
		Long: `mount serves an OCFS2 volume at MOUNTPOINT through FUSE and returns once the
mount is ready; the file system keeps running in the background until the
mount point is unmounted (o2go umount, or plain umount). -f stays in the
foreground.

DEVICE is a block device or an image file, or UUID=… / LABEL=… to find the
volume by its UUID or label on this machine's block devices (and in --scan
paths), whatever its device name is here.

Options (-o, comma separated) are mount.ocfs2(8)'s that apply:
  ro, rw, data=ordered|writeback, commit=SECONDS, errors=remount-ro|panic|continue,
  atime_quantum=SECONDS, noatime, localalloc=MB, resv_level=0..8,
  dir_resv_level=0..8, coherency=full|buffered, user_xattr, nouser_xattr,
  acl, noacl, nocluster, preferred_slot=N; _netdev and defaults are accepted.
  node=NAME and socket=PATH choose the agent of a clustered volume, as
  --node and --socket do.

In /etc/fstab, with /sbin/mount.fuse.o2go a symbolic link to o2go (mount(8)
calls it for file systems of type fuse.o2go):
  UUID=…  /srv/shared  fuse.o2go  _netdev,node=node1  0 0

A local volume (mkfs --fs-features=local) mounts on this node. A clustered
volume needs the cluster agent, or -o nocluster when no other node uses it.
A volume is never mounted twice on one machine, nor while other nodes
heartbeat on it without the cluster.

errors= says what damaged metadata (a block that fails its checks) or a
journal abort does: remount-ro (the default) refuses every change from then
on and keeps serving reads, and mounts a volume damaged where a read-write
mount needs it read-only, with a warning; continue fails only the operation
that met the damage; panic stops the server at once (the next mount replays
the journal) and refuses a damaged volume. The log names the damaged block.
On a clustered volume, panic acts as remount-ro on the node that met the
damage; the other nodes carry on.

coherency= is the manual's: full (the default) serializes every write to a
file across the nodes; buffered lets writes through O_DIRECT descriptors
that overwrite data already written inside the file run at once from every
node (the file's lock held shared), for applications that order their own
I/O, such as databases. Such writes leave the file's times as they were;
writes that extend, fill holes or unshare reflinked data stay exclusive.

Known limits of a clustered mount, against OCFS2's kernel driver: the kernel
hands o2go a write(2) in pieces of at most 1 MiB; each piece is atomic on
every node, but another node's write (an O_APPEND one too) may land between
the pieces of a larger one (the kernel driver holds its read-write lock for
the whole call). read(2) and write(2) bypass the kernel's page cache, so
that every read sees the last write of any node. mmap(2) works, shared
mappings included (Linux 6.6 or later; older kernels refuse MAP_SHARED of
such files with ENODEV): on the node that maps the file, a store is what
its read(2) returns at once; other nodes see it once written back (msync,
fsync, munmap or the kernel's periodic write-back: FUSE tells o2go nothing
of a store, so it cannot take the cluster lock then as OCFS2 does); a
write on another node reaches the mapping a moment after that node took
the file's lock (this node then drops its pages), not at the same instant
as with read(2), and a process that takes a flock or fcntl lock sees it
there. A page written back carries only the bytes the mapping changed, so
it does not undo another node's write to the rest of the page (o2go keeps
what it gave the kernel for the last 64 MiB of mapped pages read in per
mount; an older page comes back whole), and never extends the file: what
another node truncated stays truncated.

EXIT STATUS
  0  mounted (or, with -f, served and cleanly unmounted)
  1  the mount failed; the message says why
  2  (-f) errors=panic stopped the server after a metadata error`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			// fstab entries choose the agent with options.
			optString, nodeName, socket = agentOptions(optString, nodeName, socket)
			opts, err := fusefs.ParseMountOptions(optString)
			if err != nil {
				return err
			}
			device, err := resolveVolume(args[0], scan)
			if err != nil && nodeName == "" && socket == "" {
				return err
			}
			if !opts.NoCluster && (nodeName != "" || socket != "" || isClustered(device)) {
				// A clustered volume mounts inside the node's agent.
				sock, err := mountAgentSocket(confPath, cmd.Flags().Changed("config"), nodeName, socket)
				if err != nil {
					return fmt.Errorf("%s is a clustered volume: its mount goes through this node's cluster agent: %w", args[0], err)
				}
				return mountThroughAgent(cmd, sock, args[0], args[1], optString)
			}
			if !foreground {
				return mountInBackground(cmd, device, args[1], optString)
			}
			s := &fusefs.Session{Device: device, Mountpoint: args[1], Opts: opts, LiveNodes: liveNodes}
			ready := func(err error) {}
			if fd := os.Getenv(mountReadyFD); fd != "" {
				pipe := os.NewFile(3, "ready")
				ready = func(err error) {
					if err != nil {
						fmt.Fprintf(pipe, "error: %v\n", err)
					} else {
						if s.ReadOnlyCause != nil {
							fmt.Fprintf(pipe, "warning: mounted read-only (errors=remount-ro): %v\n", s.ReadOnlyCause)
						}
						fmt.Fprintln(pipe, "ok")
					}
					pipe.Close()
				}
			}
			return s.Run(ready)
		},
	}
	cmd.Flags().StringVarP(&optString, "options", "o", "", "mount options, comma separated")
	cmd.Flags().BoolVarP(&foreground, "foreground", "f", false, "stay in the foreground")
	cmd.Flags().StringArrayVar(&scan, "scan", nil, "image files or folders to search for UUID=/LABEL=")
	cmd.Flags().StringVar(&confPath, "config", config.DefaultClusterConfPath, "clustered volumes: the cluster configuration `FILE` that tells which node this host is")
	cmd.Flags().StringVar(&nodeName, "node", "", "clustered volumes: mount through the agent of node `NAME` (default: this host's node in --config, else the only agent running here)")
	cmd.Flags().StringVar(&socket, "socket", "", "clustered volumes: the agent's control socket `PATH` (default /run/o2go/NODE.sock)")
	return cmd
}

// agentOptions takes node=NAME and socket=PATH (how an fstab entry says
// which agent mounts a clustered volume) out of a -o list; the flags, when
// given, win.
func agentOptions(opts, nodeName, socket string) (string, string, string) {
	var keep []string
	for _, o := range strings.Split(opts, ",") {
		switch k, v, _ := strings.Cut(o, "="); k {
		case "node":
			if nodeName == "" {
				nodeName = v
			}
		case "socket":
			if socket == "" {
				socket = v
			}
		default:
			keep = append(keep, o)
		}
	}
	return strings.Join(keep, ","), nodeName, socket
}

// isClustered reports whether device holds a volume that is not local.
func isClustered(device string) bool {
	v, err := volume.Open(device, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		return false
	}
	defer v.Close()
	return v.SB.Features.Incompat&ondisk.IncompatLocalMount == 0
}

// mountAgentSocket chooses the agent that mounts a clustered volume:
// --socket, else --node's, else the node cluster.conf names after this
// host (as o2cb tells the local node), else the only agent running on
// this machine. A --config given explicitly must load and name this host.
func mountAgentSocket(confPath string, confGiven bool, nodeName, socket string) (string, error) {
	switch {
	case socket != "":
		return socket, nil
	case nodeName != "":
		return node.DefaultSocket(nodeName), nil
	}
	conf, err := config.Load(confPath)
	if err != nil {
		if confGiven {
			return "", err
		}
		return socketFor("")
	}
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	var all []string
	for i := range conf.Clusters {
		cl := &conf.Clusters[i]
		if cl.Node(host) != nil {
			return node.DefaultSocket(host), nil
		}
		all = append(all, nodeNames(cl))
	}
	if confGiven {
		return "", fmt.Errorf("%s has no node named after this host (%s): choose one with --node (its nodes: %s)", confPath, host, strings.Join(all, ", "))
	}
	return socketFor("")
}

// mountThroughAgent asks the agent at socket to mount a clustered volume
// (it runs the mount beside its lock manager) and waits for the answer.
func mountThroughAgent(cmd *cobra.Command, socket, spec, mountpoint, options string) error {
	if abs, err := filepath.Abs(spec); err == nil && !strings.Contains(spec, "=") {
		spec = abs
	}
	mp, err := filepath.Abs(mountpoint)
	if err != nil {
		return err
	}
	cl, err := node.DialControl(socket)
	if err != nil {
		return fmt.Errorf("%s is a clustered volume: its mount goes through the node's cluster agent, which does not answer at %s (%v): start it with o2go agent, or mount with -o nocluster if no other node uses the volume", spec, socket, err)
	}
	defer cl.Close()
	var res clustermount.MountInfo
	if err := cl.Call("fs.mount", clustermount.MountParams{Device: spec, Mountpoint: mp, Options: options}, &res); err != nil {
		return fmt.Errorf("mount %s on %s: %w", spec, mp, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s mounted on %s (slot %d, node agent %s)\n", res.Device, res.Mountpoint, res.Slot, socket)
	return nil
}

// mountInBackground starts `o2go mount -f` detached and waits until it
// says the mount is ready (or why it is not).
func mountInBackground(cmd *cobra.Command, device, mountpoint, opts string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	logPath := filepath.Join(filepath.Dir(fusefs.RunDir), "mount.log")
	os.MkdirAll(filepath.Dir(logPath), 0o755)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		logf, _ = os.Open(os.DevNull)
	}
	defer logf.Close()
	child := exec.Command(self, "mount", "-f", "-o", opts, device, mountpoint)
	child.Env = append(os.Environ(), mountReadyFD+"=3")
	child.ExtraFiles = []*os.File{w}
	child.Stdout, child.Stderr = logf, logf
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		w.Close()
		return err
	}
	w.Close()
	rd := bufio.NewReader(r)
	line, _ := rd.ReadString('\n')
	line = strings.TrimSpace(line)
	for strings.HasPrefix(line, "warning: ") {
		fmt.Fprintln(os.Stderr, "o2go:", line)
		line, _ = rd.ReadString('\n')
		line = strings.TrimSpace(line)
	}
	switch {
	case line == "ok":
		child.Process.Release()
		return nil
	case strings.HasPrefix(line, "error: "):
		child.Wait()
		return errors.New(strings.TrimPrefix(line, "error: "))
	}
	err = child.Wait()
	return fmt.Errorf("the mount process ended without saying why (%v); see %s", err, logPath)
}

// resolveVolume turns UUID=… or LABEL=… into a device path.
func resolveVolume(spec string, scan []string) (string, error) {
	key, val, ok := strings.Cut(spec, "=")
	if !ok || (key != "UUID" && key != "LABEL") {
		return spec, nil
	}
	var devices []string
	for _, p := range scan {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				if !e.IsDir() {
					devices = append(devices, filepath.Join(p, e.Name()))
				}
			}
		} else {
			devices = append(devices, p)
		}
	}
	var found []inspect.MountedVolume
	if len(devices) > 0 {
		found, _ = inspect.FindVolumes(inspect.MountedOptions{Devices: devices})
	}
	all, _ := inspect.FindVolumes(inspect.MountedOptions{})
	found = append(found, all...)
	var match []string
	for _, v := range found {
		if key == "UUID" && strings.EqualFold(strings.ReplaceAll(v.UUID, "-", ""), strings.ReplaceAll(val, "-", "")) ||
			key == "LABEL" && v.Label == val {
			match = append(match, v.Device)
		}
	}
	switch len(match) {
	case 0:
		return "", fmt.Errorf("no OCFS2 volume with %s on this machine's block devices%s", spec, map[bool]string{true: " or the --scan paths", false: " (use --scan for image files)"}[len(scan) > 0])
	case 1:
		return match[0], nil
	}
	return "", fmt.Errorf("%s matches several devices: %s", spec, strings.Join(match, ", "))
}

// liveNodes returns the nodes heartbeating on device.
func liveNodes(device string) ([]int, error) {
	found, errs := inspect.FindVolumes(inspect.MountedOptions{Devices: []string{device}, Full: true})
	if len(errs) > 0 {
		return nil, errs[0]
	}
	var live []int
	for _, v := range found {
		for _, n := range v.Heartbeating {
			live = append(live, n.Node)
		}
	}
	return live, nil
}

// waitAgentUnmounted waits until the agent at socket no longer serves mp.
func waitAgentUnmounted(socket, mp string, deadline time.Time) error {
	for {
		var ms []clustermount.MountInfo
		cl, err := node.DialControl(socket)
		if err == nil {
			err = cl.Call("fs.mounts", nil, &ms)
			cl.Close()
		}
		if err != nil {
			return fmt.Errorf("%s is unmounted; asking its agent (%s) whether it left the volume cleanly: %w", mp, socket, err)
		}
		if !slices.ContainsFunc(ms, func(m clustermount.MountInfo) bool { return m.Mountpoint == mp }) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is unmounted, but its agent (%s) is still leaving the volume", mp, socket)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newUmountCommand() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "umount MOUNTPOINT",
		Short: "Unmount an o2go mount and wait until its volume is clean",
		Long: `umount unmounts MOUNTPOINT and waits until the o2go process serving it has
flushed, checkpointed its journal and marked it clean. (Plain umount works
too; it just does not wait for the volume to be clean.)

EXIT STATUS
  0  unmounted and clean
  1  not an o2go mount, busy, or the server did not finish in time`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mp, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			mounts, err := fusefs.Mounts()
			if err != nil {
				return err
			}
			pid, agent := 0, ""
			for _, m := range mounts {
				if m.Mountpoint == mp {
					pid, agent = m.PID, m.Socket
				}
			}
			if err := syscall.Unmount(mp, 0); err != nil {
				return fmt.Errorf("unmounting %s: %w", mp, err)
			}
			if pid == 0 {
				return nil
			}
			deadline := time.Now().Add(timeout)
			if agent != "" {
				// A clustered mount: the agent goes on serving the others;
				// wait until it has left this one (slot, locks, domain).
				return waitAgentUnmounted(agent, mp, deadline)
			}
			for syscall.Kill(pid, 0) == nil {
				if time.Now().After(deadline) {
					return fmt.Errorf("%s is unmounted, but the o2go process %d is still cleaning up after %v", mp, pid, timeout)
				}
				time.Sleep(20 * time.Millisecond)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the volume to be clean")
	return cmd
}
