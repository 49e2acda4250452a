package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"o2go/internal/dlm"
	"o2go/internal/node"
)

func init() { subcommands = append(subcommands, newDLMCommand) }

func newDLMCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlm",
		Short: "Inspect the distributed lock manager of a running agent",
		Long: `Show the state of this node's DLM, as o2dlm's debugfs files do (see the
DLM DEBUGGING section of ocfs2(7)): 'o2go dlm state' for each domain (its
members, recovery state, counts), 'o2go dlm locks' for the lock resources
(owner, granted/converting/blocked queues).`,
	}
	cmd.AddCommand(newDLMStateCommand(), newDLMLocksCommand())
	return cmd
}

func newDLMStateCommand() *cobra.Command {
	var nodeName, socket string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "state [--node NAME] [--json] [DOMAIN]",
		Short: "Show each DLM domain's state, as o2dlm's dlm_state",
		Long: `Show, for every DLM domain this node knows (or DOMAIN): its key, this node's
state in it (JOINING, JOINED, LEAVING, LEFT), the epoch of its view, the
domain map (its members) and the live map (the cluster's), the lock
resources in use and cached, those mastered here and this node's locks; the
registrar (the recovery master: the lowest live node); the dead nodes whose
locks wait for the file system's recovery; and, during a reconfiguration,
its epoch, dead nodes and target members, and each participant's progress
as this node sees it: FROZEN (its old traffic may still come), MARKED (it
is in), DONE (its transfers are in). The last line counts this node's DLM
messages: not acknowledged yet by their peers, sent again after a
connection came back (a broken one loses what is in flight), and received
twice or past a lost one (dropped; they come again in order).

EXIT STATUS
  0  the agent answered
  1  no agent, or no such domain`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := dialAgent(nodeName, socket)
			if err != nil {
				return err
			}
			defer cl.Close()
			var st []dlm.DomainState
			if err := cl.Call("dlm.state", nil, &st); err != nil {
				return err
			}
			if len(args) == 1 {
				var one []dlm.DomainState
				for _, s := range st {
					if s.Domain == args[0] {
						one = append(one, s)
					}
				}
				if len(one) == 0 {
					return fmt.Errorf("this node is not in DLM domain %q", args[0])
				}
				st = one
			}
			if asJSON {
				if st == nil {
					st = []dlm.DomainState{}
				}
				return writeJSON(cmd.OutOrStdout(), st)
			}
			if len(st) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no DLM domain on this node")
			}
			for i, s := range st {
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				fmt.Fprint(cmd.OutOrStdout(), dlm.FormatState(s))
			}
			return nil
		},
	}
	addAgentFlags(cmd, &nodeName, &socket)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newDLMLocksCommand() *cobra.Command {
	var nodeName, socket string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "locks [--node NAME] [--json] [NAME | DOMAIN [NAME] | DOMAIN/NAME]",
		Short: "Show lock resources, as debugfs.ocfs2's dlm_locks",
		Long: `Show the lock resources this node knows — of every domain, of DOMAIN, or
only resource NAME: in every domain with a bare NAME (debugfs.ocfs2's
"dlm_locks NAME"), in one with DOMAIN NAME or DOMAIN/NAME (as o2go lock
takes it); a single argument that names a domain of this node shows that
domain. For each: the owner (master), and where this node masters it the
value block's state and the queues — Granted, Converting, Blocked, with each
lock's node, granted mode, requested mode and cookie (node:id) — and the
locks dead nodes are taken to hold until the file system recovers them;
then this node's own locks on it.
To follow a hang (ocfs2(7), DLM DEBUGGING): find the blocked lock here, then
ask the owner's agent (--node) for the same resource to see who holds it.

EXIT STATUS
  0  the agent answered
  1  no agent, no such domain or resource`,
		Args: cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p node.LocksParams
			bare := ""
			switch len(args) {
			case 1:
				if d, n, ok := strings.Cut(args[0], "/"); ok {
					p.Domain, p.Name = d, n
				} else {
					bare = args[0]
				}
			case 2:
				p.Domain, p.Name = args[0], args[1]
			}
			cl, err := dialAgent(nodeName, socket)
			if err != nil {
				return err
			}
			defer cl.Close()
			domains := []string{p.Domain}
			search := false // a bare NAME looked up in every domain
			if p.Domain == "" {
				var st []dlm.DomainState
				if err := cl.Call("dlm.state", nil, &st); err != nil {
					return err
				}
				domains = domains[:0]
				for _, s := range st {
					domains = append(domains, s.Domain)
				}
				switch {
				case bare == "":
				case slices.Contains(domains, bare):
					p.Domain, domains = bare, []string{bare}
				default:
					p.Name, search = bare, true
				}
			}
			rs := []dlm.ResourceState{}
			var lastErr error
			for _, d := range domains {
				var one []dlm.ResourceState
				if err := cl.Call("dlm.locks", node.LocksParams{Domain: d, Name: p.Name}, &one); err != nil {
					if !search {
						return err
					}
					lastErr = err
					continue
				}
				rs = append(rs, one...)
			}
			if search && len(rs) == 0 {
				if lastErr != nil && !strings.Contains(lastErr.Error(), "is not known") {
					return lastErr
				}
				if len(domains) == 0 {
					return fmt.Errorf("resource %q: this node is in no DLM domain", p.Name)
				}
				return fmt.Errorf("resource %q is not known on this node in any of its domains (%s)", p.Name, strings.Join(domains, ", "))
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), rs)
			}
			w := cmd.OutOrStdout()
			if len(domains) == 0 {
				fmt.Fprintln(w, "no DLM domain on this node")
			}
			for i, r := range rs {
				if i > 0 {
					fmt.Fprintln(w)
				}
				if (p.Domain == "" || search) && (i == 0 || rs[i-1].Domain != r.Domain) {
					fmt.Fprintf(w, "Domain: %s\n", r.Domain)
				}
				fmt.Fprint(w, dlm.FormatResource(r))
			}
			return nil
		},
	}
	addAgentFlags(cmd, &nodeName, &socket)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func addAgentFlags(cmd *cobra.Command, nodeName, socket *string) {
	cmd.Flags().StringVar(nodeName, "node", "", "ask the agent of node `NAME` (default: this host's, or the only agent running here)")
	cmd.Flags().StringVar(socket, "socket", "", "the agent's control socket `PATH` (default /run/o2go/NODE.sock)")
	_ = cmd.Flags().MarkHidden("socket")
}
