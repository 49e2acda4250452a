package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/base"
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
	socket    string
	out       []finding
	setup     *agentSetup
	self      config.Node
	selfLocal bool // self's ip_address is an address of this host
	status    *node.Status
	problems  []node.LinkProblem
	scan      []string
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
others. Each finding is OK, WARN or FAIL; a WARN or FAIL says what to do.

  configuration       cluster.conf and the sysconfig file read
  node name           this host's node (--node, else the host name) is in cluster.conf
  node number         the running agent is that node with that number, and
                      no other host heartbeats in its slot on a heartbeat volume
  cluster secret      the secret file exists, readable by root only
  address             the node's ip_address is an address of this host
  agent               this node's agent answers
  agent configuration the agent runs with cluster.conf and the timeouts as the
                      files are now (else it must be restarted)
  same configuration  no node was refused for a different cluster.conf,
  same secret         timeouts or secret (from the agent's handshakes)
  reachable           every other node's address and port accept a TCP
                      connection from this node's address
  heartbeat device    global mode: each configured region is found here by UUID
  same disk           every connected node heartbeats on each region
  stamp               the volume carries the o2cb stack and this cluster's name
  kill blocks         the volume has room for kill blocks
  I/O timeout         the disk's SCSI timeout is below the dead time
  clock skew          the nodes' clocks, from their heartbeat sectors (o2go
                      writes the wall clock in milliseconds there)

The heartbeat volumes checked are the agent's regions, global mode's
configured regions (found in --scan paths and /dev/disk/by-uuid), and, in
local mode, every OCFS2 volume in the --scan paths: a volume that does not
mount can be checked with --scan DEVICE while no agent heartbeats on it.

JSON (--json): a list of {check, level, detail, fix}.

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
	cmd.Flags().StringSliceVar(&scan, "scan", nil, "image files, devices or folders to find heartbeat volumes in (repeatable)")
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
	s, err := loadAgentSetup(confPath, sysconfPath, "")
	if err != nil {
		d.add("configuration", "fail", "fix the file; 'o2go cluster list-clusters' shows what o2go reads", "%v", err)
		return
	}
	d.setup = s
	d.add("configuration", "ok", "", "cluster %q from %s, %d nodes, %s heartbeat; timeouts from %s", s.cluster.Name, confPath,
		len(s.cluster.Nodes), s.cluster.HeartbeatMode, sysconfPath)
	if !d.checkNodeName(nodeName) {
		return
	}
	if _, err := config.LoadSecret(s.settings.SecretFile); err != nil {
		d.add("cluster secret", "fail", "create it on one node and copy it to every node: head -c 32 /dev/urandom | base64 > "+s.settings.SecretFile+"; chmod 600 "+s.settings.SecretFile, "%v", err)
	} else {
		d.add("cluster secret", "ok", "", "%s is readable by root only (every node must hold the same one)", s.settings.SecretFile)
	}
	d.checkAddress()
	d.askAgent()
	d.checkPeers()
	d.checkRegions()
}

// checkNodeName settles which node this host is; false when none.
func (d *doctor) checkNodeName(nodeName string) bool {
	s := d.setup
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	name := nodeName
	if name == "" {
		name = s.node
	}
	switch {
	case nodeName != "" && s.cluster.Node(nodeName) == nil:
		d.add("node name", "fail", fmt.Sprintf("give --node one of the nodes of cluster %s, or add this host: o2go cluster add-node %s NAME --ip ADDRESS --number N (on every node)", s.cluster.Name, s.cluster.Name),
			"node %q is not in cluster %s (its nodes: %s)", nodeName, s.cluster.Name, nodeNames(s.cluster))
		return false
	case name == "":
		d.add("node name", "fail", "name this host's node after its host name in cluster.conf, or run the agent and the tools with --node",
			"the host name %q is not a node of cluster %s (its nodes: %s)", host, s.cluster.Name, nodeNames(s.cluster))
		return false
	case name != host:
		n := s.cluster.Node(name)
		d.add("node name", "warn", "o2cb and mount.ocfs2 find the node by the host name; o2go needs --node everywhere on this host",
			"checking as node %s (number %d), which is not this host's name %q", n.Name, n.Number, host)
	default:
		n := s.cluster.Node(name)
		d.add("node name", "ok", "", "this host is node %s, number %d", n.Name, n.Number)
	}
	s.node = name
	d.self = *s.cluster.Node(name)
	return true
}

func (d *doctor) checkAddress() {
	self := d.self
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		d.add("address", "warn", "check with 'ip address' that "+self.Addr.String()+" is on this host", "cannot list this host's addresses: %v", err)
		return
	}
	want := self.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Contains(want) {
			if p.Addr() == want || want.IsLoopback() {
				d.selfLocal = true
				d.add("address", "ok", "", "%s (ip_address of node %s) is an address of this host", want, self.Name)
				return
			}
		}
	}
	d.add("address", "fail", "set ip_address of node "+self.Name+" to one of this host's addresses (on every node), or add the address to an interface",
		"%s (ip_address of node %s) is not an address of this host: the agent cannot listen on it", want, self.Name)
}

func (d *doctor) askAgent() {
	name := d.self.Name
	sock := node.DefaultSocket(name)
	if d.socket != "" {
		sock = d.socket
	}
	cl, err := node.DialControl(sock)
	if err != nil {
		d.add("agent", "warn", "start it: o2go agent --node "+name, "no agent runs for node %s (%v): only the checks that need no agent ran", name, err)
		return
	}
	defer cl.Close()
	_ = cl.SetDeadline(time.Now().Add(10 * time.Second))
	var st node.Status
	if err := cl.Call("status", nil, &st); err != nil {
		d.add("agent", "fail", "see the agent's log (journalctl -u o2go-agent@"+name+"), or restart it", "the agent of node %s does not answer: %v", name, err)
		return
	}
	d.status = &st
	_ = cl.Call("links", nil, &d.problems)
	d.add("agent", "ok", "", "running for %s, membership epoch %d, members [%s]", st.Uptime, st.Epoch, nodeList(st.Members))
	d.checkAgentConfig(&st)
}

// checkAgentConfig compares what the running agent runs with against the
// files as they are now.
func (d *doctor) checkAgentConfig(st *node.Status) {
	s, self := d.setup, d.self
	restart := "restart the agent of node " + self.Name + " (o2go agent --node " + self.Name + ") once cluster.conf and the sysconfig file are the same on every node"
	if st.Cluster != s.cluster.Name || st.Node != self.Name || st.Number != self.Number {
		d.add("node number", "fail", restart+"; a node's name and number cannot change while its agent runs",
			"the agent at this node's socket runs as node %s, number %d, of cluster %s; cluster.conf says node %s is number %d of cluster %s",
			st.Node, st.Number, st.Cluster, self.Name, self.Number, s.cluster.Name)
	} else {
		d.add("node number", "ok", "", "the agent runs as node %s, number %d, as cluster.conf says", st.Node, st.Number)
	}
	var diffs []string
	if want := fmt.Sprintf("%016x", node.ConfigDigest(s.cluster)); st.ConfigDigest != "" && st.ConfigDigest != want {
		diffs = append(diffs, "cluster.conf (nodes, addresses, heartbeat mode or regions) changed since it started")
	}
	if st.HeartbeatMode != string(s.cluster.HeartbeatMode) {
		diffs = append(diffs, fmt.Sprintf("heartbeat mode %s, cluster.conf says %s", st.HeartbeatMode, s.cluster.HeartbeatMode))
	}
	t, at := s.settings.Timeouts, st.Timeouts
	for _, v := range []struct {
		name        string
		agent, file int64
	}{
		{config.VarHeartbeatThreshold, int64(at.HeartbeatThreshold), int64(t.HeartbeatThreshold)},
		{config.VarIdleTimeout, at.IdleTimeoutMs, t.IdleTimeout.Milliseconds()},
		{config.VarKeepaliveDelay, at.KeepaliveDelayMs, t.KeepaliveDelay.Milliseconds()},
		{config.VarReconnectDelay, at.ReconnectDelayMs, t.ReconnectDelay.Milliseconds()},
		{config.VarHeartbeatInterval, at.HeartbeatIntervalMs, t.HeartbeatInterval.Milliseconds()},
		{config.VarKillAckTimeout, at.KillAckTimeoutMs, t.KillAckTimeout.Milliseconds()},
	} {
		if v.agent != v.file {
			diffs = append(diffs, fmt.Sprintf("%s=%d, the file says %d", v.name, v.agent, v.file))
		}
	}
	if len(diffs) > 0 {
		d.add("agent configuration", "fail", restart, "the agent of node %s runs with another configuration than the files: %s", self.Name, strings.Join(diffs, "; "))
	} else {
		d.add("agent configuration", "ok", "", "the agent runs with cluster.conf and the timeouts as they are now")
	}
}

func (d *doctor) checkPeers() {
	cl, self := d.setup.cluster, d.self
	byNode := map[string]string{}
	for _, p := range d.problems {
		if n := cl.NodeByNumber(p.Node); n != nil {
			byNode[n.Name] = p.Reason
		}
	}
	same := true
	from := "this node's address " + self.Addr.String()
	dialer := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: self.Addr.AsSlice()}}
	if !d.selfLocal {
		from, dialer.LocalAddr = "this host (its ip_address is not on it)", nil
	}
	for _, n := range cl.Nodes {
		if n.Number == self.Number {
			continue
		}
		if r := byNode[n.Name]; r != "" {
			switch {
			case strings.Contains(r, "configuration differs") || strings.Contains(r, "O2CB_") || strings.Contains(r, "O2GO_") ||
				strings.Contains(r, "protocol version") || strings.Contains(r, "is in cluster"):
				same = false
				d.add("same configuration", "fail", "make cluster.conf and the O2CB_*/O2GO_* timing of the sysconfig file identical on every node, then restart the agents that differ",
					"node %s: %s", n.Name, r)
			case strings.Contains(r, "authentication failed"):
				same = false
				d.add("same secret", "fail", "copy this node's "+d.setup.settings.SecretFile+" to node "+n.Name+" and restart its agent",
					"node %s: %s", n.Name, r)
			default:
				d.add("link", "warn", "see 'o2go cluster status' on both nodes", "node %s: %s", n.Name, r)
			}
		}
		c, err := dialer.Dial("tcp4", n.AddrPort().String())
		if err != nil {
			d.add("reachable", "fail", reachFix(self, n, err), "node %s at %s, from %s: %v", n.Name, n.AddrPort(), from, err)
			continue
		}
		c.Close()
		d.add("reachable", "ok", "", "node %s at %s accepts connections from %s", n.Name, n.AddrPort(), from)
	}
	if same && d.status != nil {
		d.add("same configuration", "ok", "", "no node was refused for a different configuration, timeouts or secret")
	}
}

// reachFix says what to do about a failed connection from self to peer.
func reachFix(self, peer config.Node, err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "start the agent on " + peer.Name + " (o2go agent --node " + peer.Name + "), or open TCP port " + strconv.Itoa(int(peer.Port)) + " in its firewall"
	case self.Addr.IsLoopback() && !peer.Addr.IsLoopback():
		return "node " + self.Name + " has a loopback ip_address, which reaches this host only: give every node an address the others reach, in cluster.conf on every node"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "set ip_address of node " + self.Name + " to one of this host's addresses"
	}
	return "check the network between this host and " + peer.Addr.String() + " (routes, firewall, ip_address of node " + peer.Name + " in cluster.conf)"
}

func (d *doctor) checkRegions() {
	cl := d.setup.cluster
	finder := node.Finder{Scan: d.scan}
	var devices []string
	seen := map[string]bool{}
	addDevice := func(p string) {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			real = p
		}
		if !seen[real] {
			seen[real] = true
			devices = append(devices, p)
		}
	}
	if cl.HeartbeatMode == config.HeartbeatGlobal {
		for _, hb := range cl.Heartbeats {
			info, err := finder.Find("UUID=" + hb.Region)
			if err != nil {
				d.add("heartbeat device", "fail", "make the device visible on this node (same LUN, multipath), or give image folders with --scan",
					"global heartbeat region %s: %v", hb.Region, err)
				continue
			}
			d.add("heartbeat device", "ok", "", "region %s is %s here", hb.Region, info.Path)
			addDevice(info.Path)
		}
	}
	if d.status != nil {
		for _, r := range d.status.Regions {
			if cl.HeartbeatMode != config.HeartbeatGlobal && r.Device != "" {
				addDevice(r.Device)
			}
			d.checkSameDisk(r)
		}
	}
	if cl.HeartbeatMode != config.HeartbeatGlobal {
		for _, p := range scanVolumes(d.scan) {
			addDevice(p)
		}
	}
	if len(devices) == 0 {
		d.add("heartbeat device", "warn", "local mode: mount a volume or run o2go cluster heartbeat start DEVICE, or name the volume with --scan",
			"no heartbeat region to check on this node")
	}
	for _, dev := range devices {
		d.checkVolume(dev)
	}
}

// scanVolumes lists the OCFS2 volumes among the --scan paths (files,
// devices, or the files of folders).
func scanVolumes(scan []string) []string {
	var out []string
	for _, p := range scan {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		paths := []string{p}
		if st.IsDir() {
			paths = nil
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				if !e.IsDir() {
					paths = append(paths, filepath.Join(p, e.Name()))
				}
			}
		}
		for _, q := range paths {
			if _, err := node.ProbeVolume(q); err == nil {
				out = append(out, q)
			}
		}
	}
	return out
}

func (d *doctor) checkSameDisk(r node.RegionStatus) {
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

// checkVolume checks one heartbeat volume: its stamp, kill-block room, the
// disk's I/O timeout, who heartbeats in this node's slot, the clocks.
func (d *doctor) checkVolume(dev string) {
	cl := d.setup.cluster
	t := d.setup.settings.Timeouts
	info, err := node.ProbeVolume(dev)
	if err != nil {
		d.add("stamp", "fail", "check that "+dev+" is the OCFS2 volume meant (blkid "+dev+"), and fsck.ocfs2 -n it", "%s: %v", dev, err)
		return
	}
	switch {
	case info.Stack != "" && info.Stack != "o2cb":
		d.add("stamp", "fail", "o2go runs the o2cb stack: o2go tunefs --update-cluster-stack (or tunefs.ocfs2 on a node of this cluster) while no node mounts it, or reformat",
			"%s is stamped for the %q stack", dev, info.Stack)
	case info.ClusterName != "" && info.ClusterName != cl.Name:
		d.add("stamp", "fail", "if the volume belongs to this cluster: o2go tunefs --update-cluster-stack "+dev+" while no node mounts it; else use it on the cluster it belongs to",
			"%s is stamped for cluster %q, this node runs cluster %q: mount and heartbeat refuse it", dev, info.ClusterName, cl.Name)
	case info.Local:
		d.add("stamp", "fail", "a local volume mounts on one node only: tunefs.ocfs2 -M cluster "+dev+" to share it",
			"%s is a local (single-node) volume: it has no cluster heartbeat", dev)
	case !info.HeartbeatDevice && info.GlobalHeartbeat != (cl.HeartbeatMode == config.HeartbeatGlobal):
		d.add("stamp", "fail", "set the cluster's mode to what the volume was formatted for (o2go cluster heartbeat-mode), or restamp the volume with o2go tunefs --update-cluster-stack",
			"%s was formatted for %s heartbeat, the cluster uses %s: mount and heartbeat refuse it (heartbeat mode is invalid)", dev, map[bool]string{true: "global", false: "local"}[info.GlobalHeartbeat], cl.HeartbeatMode)
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
	first, second, now, err := d.readSlotsTwice(info)
	if err != nil {
		d.add("node number", "warn", "check that this host can read "+dev+" (permissions, paths)", "cannot read the heartbeat slots of %s: %v", dev, err)
		return
	}
	d.checkOwnSlot(info, first, second)
	d.checkSkew(info, first, second, now)
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

// slotBlocks are the valid heartbeat blocks of the configured nodes.
type slotBlocks map[base.NodeID]*ondisk.HeartbeatBlock

// readSlotsTwice reads every configured node's heartbeat sector, twice,
// two heartbeat intervals apart: a node whose sector changed in between
// is beating. now is this host's wall clock just after the second read.
func (d *doctor) readSlotsTwice(info *node.VolumeInfo) (first, second slotBlocks, now time.Time, err error) {
	dev, err := blockdev.Open(info.Path, blockdev.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, time.Time{}, err
	}
	defer dev.Close()
	g := info.Geometry
	read := func() (slotBlocks, error) {
		blocks := slotBlocks{}
		s := blockdev.AlignedBuffer(g.SectorSize, 4096)
		for _, n := range d.setup.cluster.Nodes {
			if _, err := dev.ReadAt(s, g.SlotOffset(n.Number)); err != nil {
				return nil, fmt.Errorf("node %d's slot at byte %d: %w", n.Number, g.SlotOffset(n.Number), err)
			}
			if ondisk.VerifyHeartbeat(s) != nil {
				continue // a torn or foreign sector: a missed sample, as to o2hb
			}
			if hb, err := ondisk.DecodeHeartbeatBlock(s); err == nil {
				blocks[n.Number] = hb
			}
		}
		return blocks, nil
	}
	if first, err = read(); err != nil {
		return nil, nil, time.Time{}, err
	}
	time.Sleep(2 * d.setup.settings.Timeouts.HeartbeatInterval)
	if second, err = read(); err != nil {
		return nil, nil, time.Time{}, err
	}
	return first, second, time.Now(), nil
}

// beating is the block of node n when its sector changed between the reads.
func beating(first, second slotBlocks, n base.NodeID) *ondisk.HeartbeatBlock {
	b := second[n]
	if b == nil || b.Generation == 0 {
		return nil
	}
	if a := first[n]; a != nil && a.Seq == b.Seq && a.Generation == b.Generation {
		return nil
	}
	return b
}

// checkOwnSlot: a sector in this node's slot that changes must be this
// node's agent's; else another host runs as the same node number, and o2hb
// (and o2go) refuse to heartbeat, and the two would corrupt the volume.
func (d *doctor) checkOwnSlot(info *node.VolumeInfo, first, second slotBlocks) {
	self := d.self
	b := beating(first, second, self.Number)
	if b == nil {
		if d.status == nil {
			d.add("node number", "ok", "", "%s: nobody heartbeats in slot %d (node %s's)", info.Path, self.Number, self.Name)
		}
		return
	}
	gen := fmt.Sprintf("%016x", b.Generation)
	if d.status != nil && d.status.Generation == gen {
		d.add("node number", "ok", "", "%s: slot %d carries this node's agent's heartbeat (generation %s)", info.Path, self.Number, gen)
		return
	}
	who := "and no agent of node " + self.Name + " answers here"
	if d.status != nil {
		who = "not this node's agent (generation " + d.status.Generation + ")"
	}
	d.add("node number", "fail", fmt.Sprintf("find the host that runs as node number %d (o2go cluster status on the others shows its address) and give each host its own node in cluster.conf, the same file on every node", self.Number),
		"%s: another host heartbeats in slot %d, node %s's (generation %s), %s: two hosts use number %d", info.Path, self.Number, self.Name, gen, who, self.Number)
}

// checkSkew: o2go writes the wall clock in milliseconds in hb_seq, so a
// beating sector's value against this host's clock shows how far the
// nodes' clocks differ, within one heartbeat interval (the sector's age).
func (d *doctor) checkSkew(info *node.VolumeInfo, first, second slotBlocks, now time.Time) {
	interval := d.setup.settings.Timeouts.HeartbeatInterval.Milliseconds()
	nowMs := now.UnixMilli()
	worst := int64(0)
	var notes []string
	for _, n := range d.setup.cluster.Nodes {
		b := beating(first, second, n.Number)
		if b == nil || b.Seq < 1e12 {
			continue // not beating, or not o2go (the kernel writes seconds)
		}
		skew := int64(b.Seq) - nowMs
		switch {
		case skew < 0 && skew > -interval:
			skew = 0 // within one interval: the sector is at most that old
		case skew < 0:
			skew += interval
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
