package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/ha"
)

func init() {
	haSubcommands = append(haSubcommands, newHAShowCommand, newHAAddCommand, newHARemoveCommand, newHAApplyCommand, newHASnapshotCommand)
}

// config reads the configuration in force on this node.
func (o *haOptions) config() (*ha.Config, error) {
	var c ha.Config
	if err := o.call("ha.config", nil, &c, 10*time.Second); err != nil {
		return nil, err
	}
	return &c, nil
}

// commit sends a new configuration (edited from cfg's version) to the
// coordinator, which validates it, verifies it on every node and
// distributes it — or refuses all of it.
func (o *haOptions) commit(w io.Writer, next *ha.Config) error {
	var res ha.ConfigResult
	if err := o.request(&ha.Request{Op: ha.ReqConfig, Config: next}, &res); err != nil {
		return err
	}
	fmt.Fprintf(w, "configuration version %d (%s) committed on every node\n", res.Version, res.Digest)
	return nil
}

func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

func newHAShowCommand(o *haOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the HA configuration in force (JSON: the format of add, apply and snapshots)",
		Long: `Print this node's copy of the cluster-wide HA configuration: settings,
networks, resource groups with their resources, policies and dependencies,
and event scripts. Edit it and give it back with 'o2go ha apply'.

EXIT STATUS
  0  printed
  1  no agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.config()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(c.Marshal())
			return err
		},
	}
}

func newHAAddCommand(o *haOptions) *cobra.Command {
	var file, group string
	cmd := &cobra.Command{
		Use:   "add -f FILE [--group GROUP]",
		Short: "Add resource groups, resources, networks or event scripts",
		Long: `Add what FILE (JSON; - for standard input) describes to the cluster-wide
configuration: a group (an object with "name", "nodes", "resources"...), a
resource (an object with "name" and "type") to the group --group names, or
an object with any of "groups", "networks", "events", and "group" with
"resources". 'o2go ha show' prints the format.

The coordinator checks the new configuration (names, nodes, policies,
addresses, dependency cycles...) and verifies it on every node (scripts
exist and are executable, interfaces exist, addresses are free) before it
commits it: a refused change is refused whole, with what to fix.

EXIT STATUS
  0  committed on every node
  1  refused (each problem is listed), or no agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("give the file to add with -f FILE (- for standard input)")
			}
			b, err := readInput(file)
			if err != nil {
				return err
			}
			frag, err := ha.ParseFragment(b, group)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			cur, err := o.config()
			if err != nil {
				return err
			}
			next, err := cur.Add(frag)
			if err != nil {
				return err
			}
			return o.commit(cmd.OutOrStdout(), next)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "JSON `FILE` to add (- for standard input)")
	cmd.Flags().StringVar(&group, "group", "", "add the resources in FILE to `GROUP`")
	return cmd
}

func newHARemoveCommand(o *haOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "remove group|resource|network|event NAME",
		Short: "Remove a resource group, a resource, a network or an event's scripts",
		Long: `Remove NAME from the cluster-wide configuration. A group or resource that
is online is stopped first on its node (DARE), then the change is committed
everywhere. A group others depend on cannot be removed before the
dependency.

EXIT STATUS
  0  committed on every node
  1  refused, or no agent`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cur, err := o.config()
			if err != nil {
				return err
			}
			next, err := cur.Remove(args[0], args[1])
			if err != nil {
				return err
			}
			return o.commit(cmd.OutOrStdout(), next)
		},
	}
}

func newHAApplyCommand(o *haOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "apply FILE",
		Short: "Replace the configuration with FILE (edited from 'o2go ha show')",
		Long: `Replace the cluster-wide configuration with FILE (JSON, as 'o2go ha show'
prints it; - for standard input). Its "version" must be the version in
force: a change made meanwhile from another node is not overwritten (show
the configuration again, redo the edit, apply). Checked and verified as
'add' is.

EXIT STATUS
  0  committed on every node
  1  refused, or no agent`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := readInput(args[0])
			if err != nil {
				return err
			}
			next, err := ha.ParseConfig(b)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return o.commit(cmd.OutOrStdout(), next)
		},
	}
}

func newHASnapshotCommand(o *haOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot save|restore FILE",
		Short: "Save the HA configuration to a snapshot, or restore one (cluster snapshot)",
		Long: `save writes the cluster-wide configuration, the sticky locations and the
groups the operator stopped to FILE. restore makes FILE's configuration the
configuration in force — checked and verified on every node as 'add' is —
and its sticky locations and stopped groups the cluster's. As with HACMP's
snapshots, the scripts themselves are not saved: they live on the nodes.

EXIT STATUS
  0  saved, or restored on every node
  1  refused, or no agent`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch args[0] {
			case "save":
				cur, err := o.config()
				if err != nil {
					return err
				}
				st, err := o.status()
				if err != nil {
					return err
				}
				snap := &ha.Snapshot{Format: ha.SnapshotFormat, Saved: time.Now().UTC().Format(time.RFC3339), Config: cur,
					Sticky: map[string]string{}}
				for _, g := range st.Groups {
					if g.Sticky != "" {
						snap.Sticky[g.Name] = g.Sticky
					}
					if g.Offline {
						snap.Stopped = append(snap.Stopped, g.Name)
					}
				}
				f, err := os.Create(args[1])
				if err != nil {
					return err
				}
				if err := writeJSON(f, snap); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "saved configuration version %d to %s\n", cur.Version, args[1])
				return nil
			case "restore":
				b, err := readInput(args[1])
				if err != nil {
					return err
				}
				snap, err := ha.ParseSnapshot(b)
				if err != nil {
					return fmt.Errorf("%s: %w", args[1], err)
				}
				cur, err := o.config()
				if err != nil {
					return err
				}
				next := snap.Config.Clone()
				next.Version = cur.Version
				var res ha.ConfigResult
				if err := o.request(&ha.Request{Op: ha.ReqRestore, Config: next, StickyOn: snap.Sticky, Stopped: snap.Stopped}, &res); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "restored %s as configuration version %d (%s)\n", args[1], res.Version, res.Digest)
				return nil
			}
			return fmt.Errorf("snapshot %q: use save or restore", args[0])
		},
	}
	return cmd
}
