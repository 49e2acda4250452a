package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/ha"
	"o2go/internal/node"
)

func init() { subcommands = append(subcommands, newHACommand) }

// haOptions are the flags every ha subcommand shares.
type haOptions struct {
	node   string
	socket string
}

var haSubcommands []func(*haOptions) *cobra.Command

func newHACommand() *cobra.Command {
	o := &haOptions{}
	cmd := &cobra.Command{
		Use:   "ha",
		Short: "HA resource manager: resource groups, failover, events (HACMP/PowerHA-style)",
		Long: `Manage the HA resource manager that runs in the cluster agents: resource
groups of service addresses, file systems, applications (scripts or OCF
agents) and processes, each kept online on one node of its node list (or on
all of them), moved when a node, a network or the service fails, and moved
on request.

Every command talks to this node's agent (or --node's); the agents'
coordinator (the lowest-numbered member) carries out changes and orders the
cluster-wide event history.`,
	}
	cmd.PersistentFlags().StringVar(&o.node, "node", "", "talk to the agent of node `NAME` (default: the one agent on this machine)")
	cmd.PersistentFlags().StringVar(&o.socket, "socket", "", "control socket `PATH` of the agent")
	_ = cmd.PersistentFlags().MarkHidden("socket")
	for _, add := range haSubcommands {
		cmd.AddCommand(add(o))
	}
	return cmd
}

// call makes one control call to the agent.
func (o *haOptions) call(method string, params, result any, timeout time.Duration) error {
	cl, err := dialAgent(o.node, o.socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	_ = cl.SetDeadline(time.Now().Add(timeout))
	return cl.Call(method, params, result)
}

// request sends an operator request to the coordinator through the agent.
func (o *haOptions) request(req *ha.Request, result any) error {
	var raw json.RawMessage
	if err := o.call("ha.request", req, &raw, 90*time.Second); err != nil {
		return err
	}
	if result != nil && len(raw) > 0 {
		return json.Unmarshal(raw, result)
	}
	return nil
}

func (o *haOptions) status() (*ha.Status, error) {
	var st ha.Status
	err := o.request(&ha.Request{Op: ha.ReqStatus}, &st)
	if err != nil {
		if errors.Is(err, node.ErrNoAgent) {
			return nil, err
		}
		var local ha.Status
		if lerr := o.call("ha.local", nil, &local, 10*time.Second); lerr != nil {
			return nil, err
		}
		return &local, nil
	}
	return &st, nil
}

func init() {
	haSubcommands = append(haSubcommands, newHAStatusCommand, newHAMoveCommand, newHAStartStopCommand("start"),
		newHAStartStopCommand("stop"), newHAEventsCommand, newHAEmulateCommand, newHAVerifyCommand)
}

func newHAStatusCommand(o *haOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show every resource group's state and node, its resources, and the last events (clstat, clRGinfo)",
		Long: `Show, as the coordinator sees it, every resource group: its state (online,
offline, moving, error, unmanaged), the node(s) it is online on, where the
placement wants it and why, its sticky or preferred node and the nodes it
failed on; for every node that has it, the phase and each resource's state
and restarts; then the last events. When the coordinator cannot be asked,
this node's own view is shown (marked partial).

EXIT STATUS
  0  shown
  1  no agent, or it does not run HA`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := o.status()
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			printHAStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printHAStatus(w io.Writer, st *ha.Status) {
	part := ""
	if st.Partial {
		part = " (this node's view only: the coordinator did not answer)"
	}
	fmt.Fprintf(w, "HA: coordinator %s, configuration version %d (%s), members %s%s\n",
		st.Coordinator, st.ConfigVersion, st.ConfigDigest, strings.Join(st.Members, " "), part)
	if len(st.Groups) == 0 {
		fmt.Fprintln(w, "no resource group (add one with: o2go ha add -f GROUP.json)")
	} else {
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tSTATE\tNODE\tTARGET\tWHY")
		for _, g := range st.Groups {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", g.Name, g.State, dash(strings.Join(g.Nodes, ",")), dash(strings.Join(g.Target, ",")), g.Why)
		}
		tw.Flush()
		for _, g := range st.Groups {
			var extra []string
			if g.Sticky != "" {
				extra = append(extra, "sticky on "+g.Sticky)
			}
			if g.Prefer != "" {
				extra = append(extra, "moved to "+g.Prefer)
			}
			if len(g.Failed) > 0 {
				extra = append(extra, "failed on "+strings.Join(g.Failed, ","))
			}
			if len(extra) > 0 {
				fmt.Fprintf(w, "  %s: %s\n", g.Name, strings.Join(extra, "; "))
			}
			for _, on := range g.OnNodes {
				var rs []string
				for _, r := range on.Resources {
					s := r.Name + "=" + r.State
					if r.Restarts > 0 {
						s += fmt.Sprintf("(restarted %d)", r.Restarts)
					}
					rs = append(rs, s)
				}
				line := fmt.Sprintf("  %s on %s: %s %s", g.Name, on.Node, on.Phase, strings.Join(rs, " "))
				if on.Detail != "" {
					line += " — " + on.Detail
				}
				fmt.Fprintln(w, line)
			}
		}
	}
	if len(st.Events) > 0 {
		fmt.Fprintln(w, "last events:")
		for _, r := range st.Events {
			fmt.Fprintf(w, "  %s %v\n", time.UnixMilli(r.At).Format("15:04:05.000"), r)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// waitGroup polls the status until group is online on want (any node when
// want is empty; offline when offline), or the timeout.
func (o *haOptions) waitGroup(w io.Writer, group, want string, offline bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := o.status()
		if err == nil {
			for _, g := range st.Groups {
				if g.Name != group {
					continue
				}
				switch {
				case offline && g.State == "offline":
					fmt.Fprintf(w, "group %s is offline\n", group)
					return nil
				case !offline && g.State == "online" && (want == "" || strings.Join(g.Nodes, ",") == want):
					fmt.Fprintf(w, "group %s is online on %s\n", group, strings.Join(g.Nodes, ","))
					return nil
				case g.State == "error" || g.State == "unmanaged":
					return fmt.Errorf("group %s is %s: %s (see o2go ha status)", group, g.State, g.Why)
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %s did not settle within %v (see o2go ha status and o2go ha events)", group, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func newHAMoveCommand(o *haOptions) *cobra.Command {
	var sticky bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "move GROUP NODE|default [--sticky] [--wait D]",
		Short: "Move a resource group to a node (DARE migration); 'default' clears stickiness",
		Long: `Move GROUP to NODE: its resources stop on the node that has them (in
reverse order, then its lock is released) and start on NODE. A non-sticky
move lasts until NODE fails or a node of higher priority joins (for a group
with fallback "higher"); --sticky keeps the group on NODE whenever NODE is
available, as HACMP's sticky migration. NODE "default" clears both and lets
the group's policies place it again.

The command waits until the group is online on NODE (--wait, default 2m;
0: do not wait).

EXIT STATUS
  0  moved
  1  refused (the message says why), or the group did not get there in time`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res ha.MoveResult
			if err := o.request(&ha.Request{Op: ha.ReqMove, Group: args[0], Node: args[1], Sticky: sticky}, &res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "group %s: going to %s (%s)\n", res.Group, dash(strings.Join(res.Target, ",")), res.Why)
			if wait == 0 {
				return nil
			}
			want := args[1]
			if want == ha.MoveDefault {
				want = strings.Join(res.Target, ",")
			}
			return o.waitGroup(cmd.OutOrStdout(), args[0], want, len(res.Target) == 0, wait)
		},
	}
	cmd.Flags().BoolVar(&sticky, "sticky", false, "keep the group on NODE whenever NODE is available")
	cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "wait up to `D` for the group to be online there (0: do not wait)")
	return cmd
}

func newHAStartStopCommand(op string) func(o *haOptions) *cobra.Command {
	return func(o *haOptions) *cobra.Command {
		var wait time.Duration
		short := "Bring a resource group online again (clears failures, parking, unmanaged)"
		long := `Bring GROUP online where its policies place it: a group the operator
stopped, that fallover policy "offline" took down, or that failed on every
node. Failures are forgotten; an unmanaged group is managed again (its
monitors resume).`
		if op == "stop" {
			short = "Bring a resource group offline and keep it offline"
			long = `Bring GROUP offline everywhere (its resources stop in reverse order, its lock
is released) and keep it offline — across failures, node joins and cluster
restarts — until 'o2go ha start'. On a group that is unmanaged after a failed
stop, the stop is tried again.`
		}
		cmd := &cobra.Command{
			Use:   op + " GROUP [--wait D]",
			Short: short,
			Long: long + `

EXIT STATUS
  0  done
  1  refused, or the group did not settle in time`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var res ha.MoveResult
				if err := o.request(&ha.Request{Op: op, Group: args[0]}, &res); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "group %s: %s\n", res.Group, res.Why)
				if wait == 0 {
					return nil
				}
				return o.waitGroup(cmd.OutOrStdout(), args[0], strings.Join(res.Target, ","), op == "stop" || len(res.Target) == 0, wait)
			},
		}
		cmd.Flags().DurationVar(&wait, "wait", 2*time.Minute, "wait up to `D` for the group to settle (0: do not wait)")
		return cmd
	}
}

func newHAEventsCommand(o *haOptions) *cobra.Command {
	var follow, asJSON bool
	var last int
	cmd := &cobra.Command{
		Use:   "events [--follow] [-n N] [--json]",
		Short: "Show the cluster-wide event history (with --follow, as it grows)",
		Long: `Show the last events of the cluster-wide, ordered history: node_up,
node_down, rg_online, rg_offline, rg_move, resource_failed, rg_error,
network_down/up, swap_adapter, config_too_long, reconfig — each with its
phases (start, notify, pre, post, recovery, complete or failed), the node it
ran on and what it said. Every node keeps the same history; the numbers
order it. --follow keeps printing new events until interrupted.

EXIT STATUS
  0  shown
  1  no agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var after uint64
			first := true
			for {
				var recs []ha.Record
				p := node.HAEventsParams{After: after}
				if first {
					p.Max = last
				}
				if err := o.call("ha.events", p, &recs, 10*time.Second); err != nil {
					return err
				}
				first = false
				for _, r := range recs {
					if asJSON {
						b, _ := json.Marshal(r)
						fmt.Fprintln(cmd.OutOrStdout(), string(b))
					} else {
						fmt.Fprintf(cmd.OutOrStdout(), "%s %v\n", time.UnixMilli(r.At).Format("2006-01-02 15:04:05.000"), r)
					}
					after = r.Seq
				}
				if !follow {
					return nil
				}
				time.Sleep(300 * time.Millisecond)
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	cmd.Flags().IntVarP(&last, "lines", "n", 50, "show the last `N` events (0: all kept)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON record per line")
	return cmd
}

func newHAEmulateCommand(o *haOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "emulate EVENT [ARGS...]",
		Short: "Show what an event would do, without doing it (event emulation, --dry-run)",
		Long: `Emulate EVENT as HACMP's event emulator does: the coordinator runs the
placement on the cluster as it would be after the event and shows the
scripts that would run and where, the groups that would move, and each
node's actions. Nothing is done.

Events:
  ` + strings.ReplaceAll(ha.EmulateUsage, "\n", "\n  ") + `

EXIT STATUS
  0  shown
  1  unknown event or bad arguments`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p ha.Plan
			if err := o.request(&ha.Request{Op: ha.ReqEmulate, Event: args[0], Args: args[1:]}, &p); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), p)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "emulating %s %s (nothing is done)\n", p.Event, strings.Join(p.Args, " "))
			for _, n := range p.Notes {
				fmt.Fprintf(w, "  note: %s\n", n)
			}
			for _, m := range p.Moves {
				fmt.Fprintf(w, "  group %s: %s -> %s (%s)\n", m.Group, dash(strings.Join(m.From, ",")), dash(strings.Join(m.To, ",")), m.Why)
			}
			if len(p.Scripts) > 0 {
				fmt.Fprintln(w, "  scripts, in order:")
				for _, s := range p.Scripts {
					fmt.Fprintf(w, "    %s\n", s)
				}
			}
			if len(p.Actions) > 0 {
				fmt.Fprintln(w, "  actions:")
				for _, a := range p.Actions {
					fmt.Fprintf(w, "    %s\n", a)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newHAVerifyCommand(o *haOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [--json]",
		Short: "Check the configuration and every node (clverify)",
		Long: `Check, like HACMP's clverify, that the configuration is valid for this
cluster, that every node holds the same version of it, and on every node
that the event scripts and the groups' scripts, agents and commands exist
and are executable, that the networks' interfaces exist, and that no service
address is in use outside HA. Each problem names the node and what to fix.

EXIT STATUS
  0  no problem
  1  problems found (listed), or no agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v ha.VerifyReport
			if err := o.request(&ha.Request{Op: ha.ReqVerify}, &v); err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), v); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "configuration version %d (%s), checked on %d node(s)\n", v.ConfigVersion, v.ConfigDigest, len(v.Nodes))
				for _, n := range v.Nodes {
					fmt.Fprintf(w, "  %s: version %d (%s), %d problem(s)\n", n.Node, n.ConfigVersion, n.ConfigDigest, len(n.Problems))
				}
				for _, p := range v.Problems {
					fmt.Fprintf(w, "PROBLEM: %s\n", p)
				}
			}
			if len(v.Problems) > 0 {
				return &exitError{code: 1, err: fmt.Errorf("verify found %d problem(s)", len(v.Problems))}
			}
			if !asJSON {
				fmt.Fprintln(cmd.OutOrStdout(), "verify: OK")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
