package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/node"
)

func init() { clusterSubcommands = append(clusterSubcommands, newClusterStatusCommand) }

func newClusterStatusCommand(opts *clusterOptions) *cobra.Command {
	var asJSON bool
	var nodeName, socket string
	cmd := &cobra.Command{
		Use:   "status [--node NAME] [--json]",
		Short: "Show the cluster stack's state, as service o2cb status does, and every node's",
		Long: `Show what 'service o2cb status' shows — the stack, the cluster, the timeouts,
the heartbeat mode and active regions, the nodes — asked from the running
agent of this node (or of --node), and for every node: whether it is live,
how long ago its heartbeat last changed, the connection to it, its heartbeat
slot, and why it is not in the cluster when it is not. Without a running
agent, the configuration is shown as offline.

EXIT STATUS
  0  the agent answered
  1  bad configuration or arguments
  2  no agent runs for this node (the configuration was shown)`,
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
			var st node.Status
			online := false
			if err == nil {
				var cl *node.ControlClient
				if cl, err = node.DialControl(sock); err == nil {
					defer cl.Close()
					_ = cl.SetDeadline(time.Now().Add(10 * time.Second))
					if err = cl.Call("status", nil, &st); err == nil {
						online = true
					}
				}
			}
			if !online {
				if !errors.Is(err, node.ErrNoAgent) {
					return err
				}
				st = *node.OfflineStatus(setup.cluster, setup.settings, name)
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), map[string]any{"online": online, "status": st}); err != nil {
					return err
				}
			} else {
				printStatus(cmd.OutOrStdout(), &st, online)
			}
			if !online {
				return &exitError{code: 2, err: err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
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

// printStatus prints in the words of the o2cb init script's status, then
// the node table.
func printStatus(w io.Writer, st *node.Status, online bool) {
	fmt.Fprintf(w, "Stack: %s (o2go)\n", st.Stack)
	state := "Offline"
	if online {
		state = "Online"
	}
	fmt.Fprintf(w, "Checking O2CB cluster %q: %s\n", st.Cluster, state)
	t := st.Timeouts
	fmt.Fprintf(w, "  Heartbeat dead threshold: %d\n", t.HeartbeatThreshold)
	fmt.Fprintf(w, "  Network idle timeout: %d\n", t.IdleTimeoutMs)
	fmt.Fprintf(w, "  Network keepalive delay: %d\n", t.KeepaliveDelayMs)
	fmt.Fprintf(w, "  Network reconnect delay: %d\n", t.ReconnectDelayMs)
	fmt.Fprintf(w, "  Heartbeat interval: %d (o2go; dead time %d ms)\n", t.HeartbeatIntervalMs, t.DeadTimeMs)
	fmt.Fprintf(w, "  Kill block ack timeout: %d (o2go; 0 = off)\n", t.KillAckTimeoutMs)
	mode := "Local"
	if st.HeartbeatMode == "global" {
		mode = "Global"
	}
	fmt.Fprintf(w, "  Heartbeat mode: %s\n", mode)
	if !online {
		fmt.Fprintf(w, "Agent of node %q: not running\n", st.Node)
	} else {
		hb := "Not active"
		if len(st.Regions) > 0 {
			hb = "Active"
		}
		fmt.Fprintf(w, "Checking O2CB heartbeat: %s\n", hb)
		if len(st.Regions) > 0 {
			fmt.Fprintln(w, "  Active heartbeat regions:")
			for _, r := range st.Regions {
				notes := []string{}
				if r.Steady {
					notes = append(notes, "steady")
				} else {
					notes = append(notes, "settling")
				}
				if r.KillArea {
					notes = append(notes, "kill blocks")
				}
				if len(r.Unresolved) > 0 {
					notes = append(notes, "waiting on node(s) "+nodeList(r.Unresolved))
				}
				fmt.Fprintf(w, "    %s %s (%s) live: %s\n", r.UUID, r.Device, strings.Join(notes, ", "), nodeList(r.Live))
			}
		}
		var live node.NodeList
		for _, n := range st.Nodes {
			if n.Live {
				live = append(live, n.Number)
			}
		}
		fmt.Fprintf(w, "Nodes in O2CB cluster: %s\n", nodeList(live))
		fmt.Fprintf(w, "This node: %s (number %d, generation %s), up %s\n", st.Node, st.Number, st.Generation, st.Uptime)
		leader := "none"
		if st.Leader != nil {
			leader = fmt.Sprint(*st.Leader)
		}
		fmt.Fprintf(w, "Membership: epoch %d, %d events, members [%s], leader %s\n", st.Epoch, st.Seq, nodeList(st.Members), leader)
		fmt.Fprintf(w, "Quorum: %s\n", st.Quorum)
		if st.Frozen {
			fmt.Fprintln(w, "FROZEN: the shared disk is unreachable from every node; writes wait")
		}
		if st.Fenced {
			fmt.Fprintln(w, "FENCED: this node fenced itself")
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNUMBER\tADDRESS\tHEARTBEAT\tLAST BEAT\tCONNECTION\tHB SLOT\tMOUNT SLOT\tIN CLUSTER")
	for _, n := range st.Nodes {
		name := n.Name
		if n.Self {
			name += "*"
		}
		hb := "dead"
		if n.Live {
			hb = "live"
		}
		if !online {
			hb = "?"
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
