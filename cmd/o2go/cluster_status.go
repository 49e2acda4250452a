package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/node"
)

func init() { clusterSubcommands = append(clusterSubcommands, newClusterStatusCommand) }

// statusReport is what o2go cluster status prints, and its --json form.
type statusReport struct {
	// Online: the node's agent answered.
	Online bool `json:"online"`
	// O2CBOnline is what o2cb's "Checking O2CB cluster" line says: the agent
	// answered and, in global heartbeat mode, heartbeats on a region.
	O2CBOnline bool `json:"o2cb_online"`
	// Reason says why the agent did not answer.
	Reason string      `json:"reason,omitempty"`
	Status node.Status `json:"status"`
}

func newClusterStatusCommand(opts *clusterOptions) *cobra.Command {
	var asJSON bool
	var nodeName, socket string
	cmd := &cobra.Command{
		Use:   "status [--node NAME] [--json]",
		Short: "Show the cluster stack's state, as service o2cb status does, and every node's",
		Long: `Show the cluster stack's state, asked from the running agent of this node (or of
--node). The output has two parts.

First, the lines 'service o2cb status' (/etc/init.d/o2cb status, ocfs2-tools
1.8.7) prints about the cluster stack, word for word and in its order: the
stack plugin, "Checking O2CB cluster", the four timeouts, the heartbeat mode,
"Checking O2CB heartbeat" and, in global heartbeat mode, the active regions
("  UUID DEVICE") and "Nodes in O2CB cluster" (the nodes heartbeating on
any region, each followed by a space, as the kernel's o2hb/livenodes reads).
o2cb's lines about kernel modules and pseudo-file systems (configfs,
ocfs2_dlmfs, stack glue, debugfs, userdlm domains) are left out: o2go uses
none of them. Where o2cb prints /dev/NAME, o2go prints the device's path
(an image file's path as it is, a /dev link resolved to the kernel's name).
Without an agent the cluster is "Offline" and, as with o2cb, nothing else
of it is printed; in global heartbeat mode o2cb calls a cluster with no
active region offline too.

Then o2go's own part, after a blank line: this node's agent (or why it does
not answer), the membership view and quorum, the heartbeat interval, dead
time and kill acknowledgement timeout, a table of the heartbeat regions
(device, steady or settling, kill blocks, live nodes, nodes not yet
resolved; in global mode also how many devices this node needs, a strict
majority of those configured, and each device it cannot use with why: a
missing device counts as lost, and a node with fewer than a majority does
not heartbeat, its devices idle) and a table of the nodes: heartbeat live
or dead, how long ago its heartbeat last changed (with the beats missed
since), the connection to it (and the last failed handshake's reason), its
heartbeat slot, its slot in the first region's slot map (a node that
mounted the volume) and, when it is not in the cluster, why.

JSON (--json): {"online", "o2cb_online", "reason", "status"}. "status" holds
stack, cluster, node, number, generation, timeouts {heartbeat_dead_threshold,
network_idle_timeout_ms, network_keepalive_delay_ms, network_reconnect_delay_ms,
heartbeat_interval_ms, kill_ack_timeout_ms, dead_time_ms}, heartbeat_mode,
heartbeat_regions [{uuid, device, steady, kill_area, live_nodes,
unresolved_nodes, idle}], heartbeat_regions_configured,
heartbeat_regions_needed, missing_heartbeat_regions [{uuid, reason}] (the
last three in global mode), steady, view_epoch, view_seq, view_members,
leader, quorum, frozen, fenced, uptime, config_digest and nodes [{name,
number, address, self, live, generation, heartbeat_age_ms (-1: never seen),
missed_beats, connection, in_view, heartbeat_slot, mount_slot (-1: none),
why_not_in_cluster}].

EXIT STATUS
  0  the status was shown, whether the agent runs or not (as o2cb's)
  1  bad configuration or arguments, or an agent that does not answer`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			setup, err := loadAgentSetup(opts.configPath, opts.sysconfig(), nodeName)
			if err != nil {
				return err
			}
			name := setup.node
			if nodeName != "" {
				name = nodeName
			}
			sock, err := socketFor(name)
			if socket != "" {
				sock, err = socket, nil
			}
			var rep statusReport
			if err == nil {
				var cl *node.ControlClient
				if cl, err = node.DialControl(sock); err == nil {
					defer cl.Close()
					_ = cl.SetDeadline(time.Now().Add(10 * time.Second))
					if err = cl.Call("status", nil, &rep.Status); err == nil {
						rep.Online = true
					}
				}
			}
			if !rep.Online {
				rep.Status = *node.OfflineStatus(setup.cluster, setup.settings, name)
				rep.Reason = err.Error()
			}
			rep.O2CBOnline = rep.Online && (rep.Status.HeartbeatMode != "global" || len(activeRegions(&rep.Status)) > 0)
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printStatus(cmd.OutOrStdout(), &rep)
			}
			if !rep.Online && !errors.Is(err, node.ErrNoAgent) {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON (fields: see above)")
	cmd.Flags().StringVar(&socket, "socket", "", "the agent's control socket `PATH` (default /run/o2go/NODE.sock)")
	_ = cmd.Flags().MarkHidden("socket")
	cmd.Flags().StringVar(&nodeName, "node", "", "ask the agent of node `NAME` (default: this host's node, or the only agent running here)")
	return cmd
}

func nodeList(ns node.NodeList) string {
	var s []string
	for _, n := range ns {
		s = append(s, fmt.Sprint(n))
	}
	return strings.Join(s, " ")
}

// printStatus prints o2cb's lines, then o2go's part.
func printStatus(w io.Writer, rep *statusReport) {
	for _, l := range o2cbStatusLines(&rep.Status, rep.Online) {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	printAgentStatus(w, rep)
}

// activeRegions are the regions the agent heartbeats on, sorted as o2cb
// lists configfs' heartbeat directory (ls -1 under LC_ALL=C).
func activeRegions(st *node.Status) []node.RegionStatus {
	var out []node.RegionStatus
	for _, r := range st.Regions {
		if r.Device != "" && !r.Idle {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b node.RegionStatus) int { return strings.Compare(a.UUID, b.UUID) })
	return out
}

// o2cbDevice is the device as o2cb names it: the kernel's name under /dev
// (a /dev/disk link resolved), or, for an image file, its path.
func o2cbDevice(path string) string {
	if real, err := filepath.EvalSymlinks(path); err == nil && strings.HasPrefix(real, "/dev/") {
		return real
	}
	return path
}

// o2cbStatusLines are the lines /etc/init.d/o2cb status prints about the
// cluster stack (online_status_o2cb and the stack plugin line), given the
// agent's status; agentUp says whether the agent answered.
func o2cbStatusLines(st *node.Status, agentUp bool) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	active := activeRegions(st)
	global := st.HeartbeatMode == "global"
	if agentUp {
		add("Stack plugin \"%s\": Loaded", st.Stack)
	}
	if !agentUp || global && len(active) == 0 {
		add("Checking O2CB cluster \"%s\": Offline", st.Cluster)
		return out
	}
	add("Checking O2CB cluster \"%s\": Online", st.Cluster)
	t := st.Timeouts
	add("  Heartbeat dead threshold: %d", t.HeartbeatThreshold)
	add("  Network idle timeout: %d", t.IdleTimeoutMs)
	add("  Network keepalive delay: %d", t.KeepaliveDelayMs)
	add("  Network reconnect delay: %d", t.ReconnectDelayMs)
	mode := "Local"
	if global {
		mode = "Global"
	}
	add("  Heartbeat mode: %s", mode)
	if len(active) == 0 {
		add("Checking O2CB heartbeat: Not active")
		return out
	}
	add("Checking O2CB heartbeat: Active")
	if !global {
		return out
	}
	var live [256]bool
	for _, r := range active {
		add("  %s %s", r.UUID, o2cbDevice(r.Device))
		for _, n := range r.Live {
			live[n] = true
		}
	}
	var nodes strings.Builder
	for n, l := range live {
		if l {
			fmt.Fprintf(&nodes, "%d ", n)
		}
	}
	add("Nodes in O2CB cluster: %s", nodes.String())
	return out
}

// printAgentStatus prints o2go's part: the agent, the regions, the nodes.
func printAgentStatus(w io.Writer, rep *statusReport) {
	st := &rep.Status
	if !rep.Online {
		who := "o2go agent"
		if st.Node != "" {
			who += " of node " + st.Node
		}
		fmt.Fprintf(w, "%s: not running (%s)\n", who, rep.Reason)
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tNUMBER\tADDRESS\tHB SLOT")
		for _, n := range st.Nodes {
			name := n.Name
			if n.Self {
				name += "*"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", name, n.Number, n.Address, n.Slot)
		}
		tw.Flush()
		return
	}
	fmt.Fprintf(w, "o2go agent of node %s (number %d, generation %s), up %s\n", st.Node, st.Number, st.Generation, st.Uptime)
	if !rep.O2CBOnline {
		fmt.Fprintln(w, "  No global heartbeat region is active: o2cb calls the cluster offline until one is")
	}
	leader := "none"
	if st.Leader != nil {
		leader = fmt.Sprint(*st.Leader)
	}
	fmt.Fprintf(w, "  Membership: epoch %d, %d events, members [%s], leader %s\n", st.Epoch, st.Seq, nodeList(st.Members), leader)
	fmt.Fprintf(w, "  Quorum: %s\n", st.Quorum)
	t := st.Timeouts
	fmt.Fprintf(w, "  Heartbeat interval: %d ms, dead time %d ms, kill block ack timeout: %d ms (0 = off)\n",
		t.HeartbeatIntervalMs, t.DeadTimeMs, t.KillAckTimeoutMs)
	if st.Frozen {
		fmt.Fprintln(w, "  FROZEN: the shared disk is unreachable from every node; writes wait")
	}
	if st.Fenced {
		fmt.Fprintln(w, "  FENCED: this node fenced itself")
	}
	if len(st.Regions)+len(st.MissingRegions) > 0 {
		fmt.Fprintln(w)
		printRegionTable(w, st)
	}
	fmt.Fprintln(w)
	printNodeTable(w, st.Nodes)
}

// printRegionTable prints one row per heartbeat region, then, in global
// mode, the configured devices this node does not heartbeat on and why.
func printRegionTable(w io.Writer, st *node.Status) {
	if st.RegionsConfigured > 0 {
		fmt.Fprintf(w, "Global heartbeat: %d of %d devices in use; this node needs %d (a strict majority), a missing one counts as lost\n",
			st.RegionsConfigured-len(st.MissingRegions), st.RegionsConfigured, st.RegionsNeeded)
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tDEVICE\tHEARTBEAT\tKILL BLOCKS\tLIVE NODES\tWAITING ON")
	for _, r := range st.Regions {
		state := "settling"
		if r.Steady {
			state = "steady"
		}
		if r.Idle {
			state = "idle: too few devices"
		}
		kill := "no"
		if r.KillArea {
			kill = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.UUID, orDash(r.Device), state, kill, orDash(nodeList(r.Live)), orDash(nodeList(r.Unresolved)))
	}
	for _, r := range st.MissingRegions {
		fmt.Fprintf(tw, "%s\t-\tmissing\t-\t-\t-\n", r.UUID)
	}
	tw.Flush()
	for _, r := range st.MissingRegions {
		fmt.Fprintf(w, "MISSING %s: %s\n", r.UUID, r.Reason)
	}
}

// printNodeTable prints one row per configured node.
func printNodeTable(w io.Writer, nodes []node.NodeStatus) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNUMBER\tADDRESS\tHEARTBEAT\tLAST BEAT\tCONNECTION\tHB SLOT\tMOUNT SLOT\tIN CLUSTER")
	for _, n := range nodes {
		name := n.Name
		if n.Self {
			name += "*"
		}
		hb := "dead"
		if n.Live {
			hb = "live"
		}
		age := "never"
		if n.HeartbeatAgeMs >= 0 {
			age = (time.Duration(n.HeartbeatAgeMs) * time.Millisecond).Round(100*time.Millisecond).String() + " ago"
			if n.Missed > 0 {
				age += fmt.Sprintf(" (%d missed)", n.Missed)
			}
		}
		in := "yes"
		if !n.InView {
			in = "no: " + n.Reason
		}
		mslot := "-"
		if n.MountSlot >= 0 {
			mslot = fmt.Sprint(n.MountSlot)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", name, n.Number, n.Address, hb, age, n.Connection, n.Slot, mslot, in)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
