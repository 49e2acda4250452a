package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/blockdev"
	"o2go/internal/cluster/config"
	"o2go/internal/node"
	"o2go/internal/ondisk"
)

func init() { clusterSubcommands = append(clusterSubcommands, newClusterDoctorCommand) }

// finding is one check's outcome.
type finding struct {
	Check  string `json:"check"`
	Level  string `json:"level"` // ok, warn, fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

type doctor struct {
	socket   string
	out      []finding
	setup    *agentSetup
	status   *node.Status
	problems []node.LinkProblem
	scan     []string
}

func (d *doctor) add(check, level, fix, format string, args ...any) {
	d.out = append(d.out, finding{Check: check, Level: level, Detail: fmt.Sprintf(format, args...), Fix: fix})
}

func newClusterDoctorCommand(opts *clusterOptions) *cobra.Command {
	var nodeName, socket string
	var asJSON bool
	var scan []string
	cmd := &cobra.Command{
		Use:   "doctor [--node NAME] [--scan PATH...] [--json]",
		Short: "Check what makes a mount fail on some nodes and not on others",
		Long: `Run the checks an operator runs when a volume mounts on some nodes and not on
others: the configuration and this node's name and number in it; the cluster
secret; that every node runs with the same configuration and timeouts (as the
running agent learnt from its handshakes); that every node's address and port
can be reached from this node's address; that the heartbeat volumes are found
here by the UUID the cluster uses, carry the cluster's stack and name, and see
the same nodes heartbeating; the host I/O timeout against the dead time;
kill-block room; and the clock skew between the nodes (read from their
heartbeat sectors). Each finding says what to do.

EXIT STATUS
  0  no check failed (warnings may remain)
  1  a check failed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := &doctor{scan: splitList(scan), socket: socket}
			d.run(opts.configPath, opts.sysconfig(), nodeName)
			failed := false
			for _, f := range d.out {
				failed = failed || f.Level == "fail"
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), d.out); err != nil {
					return err
				}
			} else {
				printFindings(cmd.OutOrStdout(), d.out)
			}
			if failed {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&nodeName, "node", "", "check as node `NAME` (default: this host's node)")
	cmd.Flags().StringSliceVar(&scan, "scan", nil, "image files or folders to find heartbeat volumes in (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the findings as JSON")
	cmd.Flags().StringVar(&socket, "socket", "", "the agent's control socket `PATH` (default /run/o2go/NODE.sock)")
	_ = cmd.Flags().MarkHidden("socket")
	return cmd
}

func printFindings(w io.Writer, fs []finding) {
	for _, f := range fs {
		fmt.Fprintf(w, "[%-4s] %s: %s\n", strings.ToUpper(f.Level), f.Check, f.Detail)
		if f.Fix != "" && f.Level != "ok" {
			fmt.Fprintf(w, "       -> %s\n", f.Fix)
		}
	}
}

func (d *doctor) run(confPath, sysconfPath, nodeName string) {
	s, err := loadAgentSetup(confPath, sysconfPath, nodeName)
	if err != nil {
		d.add("configuration", "fail", "fix the file; 'o2go cluster list-cluster' shows what o2go reads", "%v", err)
		return
	}
	d.setup = s
	d.add("configuration", "ok", "", "cluster %q from %s, %d nodes, %s heartbeat; timeouts from %s", s.cluster.Name, confPath,
		len(s.cluster.Nodes), s.cluster.HeartbeatMode, sysconfPath)
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	switch {
	case s.node == "":
		d.add("node name", "fail", "name this host's node after its host name in cluster.conf, or run the agent with --node",
			"the host name %q is not a node of cluster %s (%s)", host, s.cluster.Name, nodeNames(s.cluster))
		return
	case s.node != host:
		n := s.cluster.Node(s.node)
		d.add("node name", "warn", "o2cb and mount.ocfs2 find the node by the host name; o2go needs --node everywhere on this host",
			"checking as node %s (number %d), which is not this host's name %q", n.Name, n.Number, host)
	default:
		n := s.cluster.Node(s.node)
		d.add("node name", "ok", "", "this host is node %s, number %d", n.Name, n.Number)
	}
	self := *s.cluster.Node(s.node)
	if _, err := config.LoadSecret(s.settings.SecretFile); err != nil {
		d.add("cluster secret", "fail", "create it on one node and copy it to every node: head -c 32 /dev/urandom | base64 > "+s.settings.SecretFile+"; chmod 600 "+s.settings.SecretFile, "%v", err)
	} else {
		d.add("cluster secret", "ok", "", "%s is readable by root only (every node must hold the same one)", s.settings.SecretFile)
	}
	d.checkAddress(self)
	d.askAgent(s.node)
	d.checkPeers(self)
	d.checkRegions(self)
}

func (d *doctor) checkAddress(self config.Node) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		d.add("address", "warn", "", "cannot list this host's addresses: %v", err)
		return
	}
	want := self.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Contains(want) {
			if p.Addr() == want || want.IsLoopback() {
				d.add("address", "ok", "", "%s (ip_address of node %s) is an address of this host", want, self.Name)
				return
			}
		}
	}
	d.add("address", "fail", "set ip_address of node "+self.Name+" to one of this host's addresses, or add the address to an interface",
		"%s (ip_address of node %s) is not an address of this host", want, self.Name)
}

func (d *doctor) askAgent(name string) {
	sock := node.DefaultSocket(name)
	if d.socket != "" {
		sock = d.socket
	}
	cl, err := node.DialControl(sock)
	if err != nil {
		d.add("agent", "warn", "start it: o2go agent --node "+name, "no agent runs for node %s: only the checks that need no agent ran", name)
		return
	}
	defer cl.Close()
	_ = cl.SetDeadline(time.Now().Add(10 * time.Second))
	var st node.Status
	if err := cl.Call("status", nil, &st); err != nil {
		d.add("agent", "fail", "see the agent's log", "the agent of node %s does not answer: %v", name, err)
		return
	}
	d.status = &st
	_ = cl.Call("links", nil, &d.problems)
	d.add("agent", "ok", "", "running for %s, membership epoch %d, members [%s]", st.Uptime, st.Epoch, nodeList(st.Members))
}

func (d *doctor) checkPeers(self config.Node) {
	cl := d.setup.cluster
	byNode := map[string]string{}
	for _, p := range d.problems {
		if n := cl.NodeByNumber(p.Node); n != nil {
			byNode[n.Name] = p.Reason
		}
	}
	same := true
	for _, n := range cl.Nodes {
		if n.Number == self.Number {
			continue
		}
		if r := byNode[n.Name]; r != "" {
			switch {
			case strings.Contains(r, "configuration differs") || strings.Contains(r, "O2CB_") || strings.Contains(r, "O2GO_") ||
				strings.Contains(r, "protocol version") || strings.Contains(r, "is in cluster"):
				same = false
				d.add("same configuration", "fail", "make cluster.conf and the O2CB_*/O2GO_* timing of the sysconfig file identical on every node",
					"node %s: %s", n.Name, r)
			case strings.Contains(r, "authentication failed"):
				same = false
				d.add("same secret", "fail", "copy this node's "+d.setup.settings.SecretFile+" to node "+n.Name,
					"node %s: %s", n.Name, r)
			default:
				d.add("link", "warn", "see 'o2go cluster status' on both nodes", "node %s: %s", n.Name, r)
			}
		}
		// Reachability: a TCP connection from this node's address.
		dialer := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: self.Addr.AsSlice()}}
		c, err := dialer.Dial("tcp4", n.AddrPort().String())
		if err != nil {
			fix := "start the agent on " + n.Name + ", or open TCP port " + strconv.Itoa(int(n.Port)) + " in its firewall"
			if strings.Contains(err.Error(), "timeout") || strings.Contains(err.Error(), "no route") {
				fix = "check the network between this host and " + n.AddrPort().Addr().String() + " (routes, firewall, ip_address in cluster.conf)"
			}
			d.add("reachable", "fail", fix, "node %s at %s: %v", n.Name, n.AddrPort(), err)
			continue
		}
		c.Close()
		d.add("reachable", "ok", "", "node %s at %s accepts connections", n.Name, n.AddrPort())
	}
	if same && d.status != nil {
		d.add("same configuration", "ok", "", "no node was refused for a different configuration, timeouts or secret")
	}
}

func (d *doctor) checkRegions(self config.Node) {
	cl := d.setup.cluster
	t := d.setup.settings.Timeouts
	finder := node.Finder{Scan: d.scan}
	var devices []string
	if cl.HeartbeatMode == config.HeartbeatGlobal {
		for _, hb := range cl.Heartbeats {
			info, err := finder.Find("UUID=" + hb.Region)
			if err != nil {
				d.add("heartbeat device", "fail", "make the device visible on this node (same LUN, multipath), or give image folders with --scan",
					"global heartbeat region %s: %v", hb.Region, err)
				continue
			}
			d.add("heartbeat device", "ok", "", "region %s is %s here", hb.Region, info.Path)
			devices = append(devices, info.Path)
		}
	}
	if d.status != nil {
		for _, r := range d.status.Regions {
			if cl.HeartbeatMode != config.HeartbeatGlobal {
				devices = append(devices, r.Device)
			}
			var absent []string
			for _, n := range d.status.Nodes {
				if n.Self || n.Connection != "up" {
					continue
				}
				found := false
				for _, l := range r.Live {
					if l == n.Number {
						found = true
					}
				}
				if !found {
					absent = append(absent, n.Name)
				}
			}
			if len(absent) > 0 {
				d.add("same disk", "warn", "check that these nodes see the volume by the same UUID (blkid, o2go cluster heartbeat list on them) and have started its heartbeat",
					"region %s: node(s) %s are connected but do not heartbeat on it", r.UUID, strings.Join(absent, ", "))
			} else {
				d.add("same disk", "ok", "", "region %s: every connected node heartbeats on it (live: %s)", r.UUID, nodeList(r.Live))
			}
		}
	}
	if len(devices) == 0 {
		d.add("heartbeat device", "warn", "local mode: mount a volume or run o2go cluster heartbeat start DEVICE", "no heartbeat region to check on this node")
	}
	for _, dev := range devices {
		info, err := node.ProbeVolume(dev)
		if err != nil {
			d.add("stamp", "fail", "", "%s: %v", dev, err)
			continue
		}
		switch {
		case info.Stack != "" && info.Stack != "o2cb":
			d.add("stamp", "fail", "o2go runs the o2cb stack: reformat, or tunefs.ocfs2 --update-cluster-stack", "%s is stamped for the %q stack", dev, info.Stack)
		case info.ClusterName != "" && info.ClusterName != cl.Name:
			d.add("stamp", "fail", "tunefs.ocfs2 --update-cluster-stack on the volume, or use the cluster it belongs to",
				"%s is stamped for cluster %q, this node runs cluster %q", dev, info.ClusterName, cl.Name)
		case info.ClusterName != "" && info.GlobalHeartbeat != (cl.HeartbeatMode == config.HeartbeatGlobal):
			d.add("stamp", "warn", "set heartbeat_mode in cluster.conf to what the volume was formatted for",
				"%s was formatted for %s heartbeat, the cluster uses %s", dev, map[bool]string{true: "global", false: "local"}[info.GlobalHeartbeat], cl.HeartbeatMode)
		default:
			stamp := "classic o2cb (no cluster name)"
			if info.ClusterName != "" {
				stamp = "o2cb, cluster " + info.ClusterName
			}
			d.add("stamp", "ok", "", "%s (UUID %s): %s", dev, info.UUID, stamp)
		}
		if !info.Geometry.HasKill && t.KillBlocks() {
			d.add("kill blocks", "warn", "format volumes with fs blocks of 1 KiB or more (mkfs.ocfs2 -b 4096), heartbeat devices on disks longer than 1.25 MiB",
				"%s has no room for kill blocks: survivors wait out the dead time (%v) before recovering a cut-off node", dev, t.DeadTime())
		}
		d.checkIOTimeout(dev)
		d.checkSkew(info)
	}
}

// checkIOTimeout compares a block device's SCSI command timeout with the
// bound o2go's safety needs (dead time minus four intervals).
func (d *doctor) checkIOTimeout(dev string) {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return
	}
	st, err := os.Stat(real)
	if err != nil || st.Mode()&os.ModeDevice == 0 {
		return
	}
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(real), "device", "timeout"))
	if err != nil {
		return
	}
	secs, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return
	}
	t := d.setup.settings.Timeouts
	bound := t.DeadTime() - 4*t.HeartbeatInterval
	if time.Duration(secs)*time.Second >= bound {
		d.add("I/O timeout", "warn", fmt.Sprintf("lower /sys/block/%s/device/timeout (and multipath no_path_retry) below %v, or raise O2CB_HEARTBEAT_THRESHOLD", filepath.Base(real), bound),
			"%s: SCSI timeout %ds; a write stuck longer than %v could land after the others recovered this node", dev, secs, bound)
	} else {
		d.add("I/O timeout", "ok", "", "%s: SCSI timeout %ds, below %v", dev, secs, bound)
	}
}

// checkSkew reads the heartbeat sectors: o2go writes the wall clock in
// milliseconds in hb_seq, so their age against this host's clock shows how
// far the nodes' clocks differ.
func (d *doctor) checkSkew(info *node.VolumeInfo) {
	dev, err := blockdev.Open(info.Path, blockdev.OpenOptions{ReadOnly: true})
	if err != nil {
		return
	}
	defer dev.Close()
	g := info.Geometry
	read := func() map[string]int64 {
		seqs := map[string]int64{}
		for _, n := range d.setup.cluster.Nodes {
			s := blockdev.AlignedBuffer(g.SectorSize, 4096)
			if _, err := dev.ReadAt(s, g.SlotOffset(n.Number)); err == nil && ondisk.VerifyHeartbeat(s) == nil {
				seqs[n.Name] = int64(binary.LittleEndian.Uint64(s))
			}
		}
		return seqs
	}
	// Only nodes whose sector changes are alive: read twice, two intervals apart.
	interval := d.setup.settings.Timeouts.HeartbeatInterval
	first := read()
	time.Sleep(2 * interval)
	second := read()
	now := time.Now().UnixMilli()
	worst := int64(0)
	var notes []string
	for _, n := range d.setup.cluster.Nodes {
		seq, ok := second[n.Name]
		if !ok || seq == first[n.Name] || seq < 1e12 {
			continue // not beating, or not o2go (a kernel node writes seconds)
		}
		skew := seq - now
		if skew < 0 && skew > -interval.Milliseconds() {
			skew = 0 // within one interval: the sector is at most that old
		} else if skew < 0 {
			skew += interval.Milliseconds()
		}
		notes = append(notes, fmt.Sprintf("%s %+dms", n.Name, skew))
		if abs64(skew) > abs64(worst) {
			worst = skew
		}
	}
	if len(notes) == 0 {
		return
	}
	level, fix := "ok", ""
	if abs64(worst) > 2000 {
		level, fix = "warn", "run NTP (chrony) on every node: file times and logs disagree otherwise (the cluster stack itself uses no wall clock)"
	}
	d.add("clock skew", level, fix, "%s: %s (relative to this host, within one heartbeat interval)", info.Path, strings.Join(notes, ", "))
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
