package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"o2go/internal/cluster/config"
	"o2go/internal/node"
)

// clusterOptions are the flags every `o2go cluster` subcommand shares.
type clusterOptions struct {
	configPath    string // --config: cluster.conf
	sysconfigPath string // --sysconfig: o2cb sysconfig file; "" = found like the init script does
	verbose       bool   // -v: say what an editing command did, like o2cb -v
}

// checkSysconfigFlag refuses a --sysconfig file that does not exist: only
// the default files may be absent (their defaults apply then); a typo in
// an explicit path must not silently run with O2CB's default timeouts.
func checkSysconfigFlag(path string) error {
	if path == "" {
		return nil
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("--sysconfig %s: %w (without --sysconfig, the defaults apply when neither /etc/sysconfig/o2cb nor /etc/default/o2cb exists)", path, err)
	}
	return nil
}

// sysconfig returns the sysconfig file to read.
func (o *clusterOptions) sysconfig() string {
	if o.sysconfigPath != "" {
		return o.sysconfigPath
	}
	return config.SysconfigPath("/")
}

// clusterSubcommands are the factories of `o2go cluster`'s subcommands.
// Another file of this package adds its own in an init func, e.g.
//
//	func init() { clusterSubcommands = append(clusterSubcommands, newClusterStatusCommand) }
//
// where newClusterStatusCommand(opts *clusterOptions) *cobra.Command reads
// opts.configPath and opts.sysconfig() when it runs.
var clusterSubcommands []func(*clusterOptions) *cobra.Command

func init() {
	subcommands = append(subcommands, newClusterCommand)
	clusterSubcommands = append(clusterSubcommands,
		newAddClusterCommand, newRemoveClusterCommand,
		newAddNodeCommand, newRemoveNodeCommand,
		newAddHeartbeatCommand, newRemoveHeartbeatCommand, newHeartbeatModeCommand,
		newListClustersCommand, newListClusterCommand, newListNodesCommand, newListHeartbeatsCommand,
		newClusterSettingsCommand,
	)
}

func newClusterCommand() *cobra.Command {
	opts := &clusterOptions{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Edit and show the cluster configuration (o2cb's commands)",
		Long: `The cluster subcommands edit and list cluster.conf with the names and flags of
o2cb(8), and write it in o2cb's format, so o2cb and o2go can both manage it.
o2go's own settings and the timeouts are in the o2cb sysconfig file
(o2cb.sysconfig(5)): see 'o2go cluster settings'.

KILL BLOCKS
  Survivors that evict a node which still reaches the disk write a kill
  order in their own kill block; the node reads it within a heartbeat
  interval, fences, acknowledges in its kill block, and the survivors go on
  without waiting out the dead time. A kill block is one sector per node
  number (magic O2GOKILL), written only by its owner:
    - on a volume (local heartbeat): in the heartbeat system file
      (//heartbeat), sector 256+N of the file for node N, after o2hb's slots
      0..254 and an unused sector 255. The file then needs 511 sectors: fs
      blocks of 1 KiB or more (mkfs.ocfs2 -b 4096 does it);
    - on a heartbeat-only device (mkfs.ocfs2 -H, global heartbeat): the 255
      sectors right after its file system's end (mkfs formats only the first
      1 MiB of the device), when the device is long enough.
  Neither the kernel's o2hb nor fsck.ocfs2 uses that space: o2hb is set up
  with 255 blocks and reads and writes only slots 0..254 (as debugfs.ocfs2
  -R hb shows them); fsck.ocfs2 checks the heartbeat file's inode and
  extent, never its contents, and refuses to open a heartbeat-only device,
  on which nothing is ever allocated. Where there is no room (512-byte fs
  blocks, 4 KiB sectors, a device cut at the file system's end) kill blocks
  are off for that region and 'o2go cluster doctor' says so: survivors then
  wait out the dead time, as O2CB does. O2GO_KILL_ACK_TIMEOUT_MS=0 turns
  them off everywhere.

EXIT STATUS
  0  success
  1  bad arguments, unknown cluster/node/region, invalid or unwritable file`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return checkSysconfigFlag(opts.sysconfigPath)
		},
	}
	f := cmd.PersistentFlags()
	f.StringVar(&opts.configPath, "config", config.DefaultClusterConfPath, "cluster configuration `FILE`")
	f.StringVar(&opts.configPath, "config-file", config.DefaultClusterConfPath, "o2cb's name for --config")
	_ = f.MarkHidden("config-file")
	f.StringVar(&opts.sysconfigPath, "sysconfig", "", "o2cb sysconfig `FILE` (default /etc/sysconfig/o2cb if it exists, else /etc/default/o2cb)")
	f.BoolVarP(&opts.verbose, "verbose", "v", false, "say what was changed")
	for _, add := range clusterSubcommands {
		cmd.AddCommand(add(opts))
	}
	return cmd
}

// edit is one o2cb editing command on --config (config.Edit), with the
// warnings about the file it read on stderr.
func (o *clusterOptions) edit(cmd *cobra.Command, change func(*config.ClusterConf) error) error {
	warnings, err := config.Edit(o.configPath, change)
	printConfigWarnings(cmd.ErrOrStderr(), warnings)
	return err
}

// load reads --config as o2cb does (a missing file is empty), with the
// warnings about it on stderr.
func (o *clusterOptions) load(cmd *cobra.Command) (*config.ClusterConf, error) {
	c, err := config.LoadOrEmpty(o.configPath)
	if err == nil {
		printConfigWarnings(cmd.ErrOrStderr(), c.Warnings)
	}
	return c, err
}

// printConfigWarnings prints what o2go found odd in cluster.conf but
// accepted, as o2cb does: each warning says what o2go does about it.
func printConfigWarnings(w io.Writer, warnings []config.Warning) {
	for _, x := range warnings {
		fmt.Fprintf(w, "o2go: warning: %s\n", x)
	}
}

// say prints an editing command's report under -v.
func (o *clusterOptions) say(cmd *cobra.Command, format string, args ...any) {
	if o.verbose {
		fmt.Fprintf(cmd.OutOrStdout(), format+"\n", args...)
	}
}

func newAddClusterCommand(opts *clusterOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "add-cluster CLUSTER",
		Short: "Add a cluster to the configuration file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := opts.edit(cmd, func(c *config.ClusterConf) error {
				_, err := c.AddCluster(args[0])
				return err
			})
			if err == nil {
				opts.say(cmd, "Added cluster '%s'", args[0])
			}
			return err
		},
	}
}

func newRemoveClusterCommand(opts *clusterOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-cluster CLUSTER",
		Short: "Remove a cluster, its nodes and heartbeat regions from the configuration file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := opts.edit(cmd, func(c *config.ClusterConf) error {
				return c.RemoveCluster(args[0])
			})
			if err == nil {
				opts.say(cmd, "Removed cluster '%s'", args[0])
			}
			return err
		},
	}
}

// lookupIPv4 resolves a node name as o2cb does when add-node has no --ip.
func lookupIPv4(host string) (netip.Addr, error) {
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(addrs) == 0 {
		return netip.Addr{}, errors.New("no IPv4 address")
	}
	return addrs[0].Unmap(), nil
}

func newAddNodeCommand(opts *clusterOptions) *cobra.Command {
	spec := config.NodeSpec{}
	cmd := &cobra.Command{
		Use:   "add-node CLUSTER NODE [--ip ADDRESS] [--port PORT] [--number N]",
		Short: "Add a node to a cluster in the configuration file",
		Long: `Add a node to a cluster. NODE is the node's host name without its domain.
Without --ip the address is the one NODE resolves to; without --port it is 7777;
without --number the node gets the lowest number not in use.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec.Name = args[1]
			var n config.Node
			err := opts.edit(cmd, func(c *config.ClusterConf) error {
				cl, err := c.LookupCluster(args[0])
				if err != nil {
					return err
				}
				n, err = cl.AddNode(spec, lookupIPv4)
				return err
			})
			if err == nil {
				opts.say(cmd, "Added node '%s' in cluster '%s' having ip '%s', port '%d' and number '%d'",
					n.Name, args[0], n.Addr, n.Port, n.Number)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&spec.IP, "ip", "", "the node's IPv4 `ADDRESS` (default: what NODE resolves to)")
	cmd.Flags().IntVar(&spec.Port, "port", config.Auto, "TCP `PORT` the node listens on (default 7777)")
	cmd.Flags().IntVar(&spec.Number, "number", config.Auto, "node number `N`, 0..254 (default: lowest unused)")
	return cmd
}

func newRemoveNodeCommand(opts *clusterOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-node CLUSTER NODE",
		Short: "Remove a node from a cluster in the configuration file",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := opts.edit(cmd, func(c *config.ClusterConf) error {
				cl, err := c.LookupCluster(args[0])
				if err != nil {
					return err
				}
				return cl.RemoveNode(args[1])
			})
			if err == nil {
				opts.say(cmd, "Removed node '%s' from cluster '%s'", args[1], args[0])
			}
			return err
		},
	}
}

// heartbeatRegion turns add-heartbeat's and remove-heartbeat's argument
// into the region name, as o2cb does: a block device (or, for o2go, an
// image file) is read for its volume UUID; anything else must be the UUID.
func heartbeatRegion(arg string) (string, error) {
	st, err := os.Stat(arg)
	if err != nil {
		if strings.Contains(arg, "/") {
			return "", fmt.Errorf("reading the volume UUID of %s: %w", arg, err)
		}
		return config.ParseRegion(arg)
	}
	if !st.Mode().IsRegular() && st.Mode()&os.ModeDevice == 0 {
		return "", fmt.Errorf("%s is neither a device nor an image file: give the volume's device or its UUID", arg)
	}
	info, err := node.ProbeVolume(arg)
	if err != nil {
		return "", fmt.Errorf("reading the volume UUID of %s: %w", arg, err)
	}
	return info.UUID, nil
}

func newAddHeartbeatCommand(opts *clusterOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "add-heartbeat CLUSTER UUID|DEVICE",
		Short: "Add a global heartbeat region (a volume's UUID or device) to a cluster",
		Long: `Add a global heartbeat region to a cluster: the UUID of the volume that
carries it, as 32 hex digits or in blkid's dashed form, or the volume itself
(a device, or an image file), whose UUID is read from its superblock — as
'o2cb add-heartbeat mycluster /dev/sda1' does.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			region, err := heartbeatRegion(args[1])
			if err != nil {
				return err
			}
			err = opts.edit(cmd, func(c *config.ClusterConf) error {
				cl, err := c.LookupCluster(args[0])
				if err != nil {
					return err
				}
				region, err = cl.AddHeartbeat(region)
				return err
			})
			if err == nil {
				opts.say(cmd, "Added heartbeat region '%s' to cluster '%s'", region, args[0])
			}
			return err
		},
	}
}

func newRemoveHeartbeatCommand(opts *clusterOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-heartbeat CLUSTER UUID|DEVICE",
		Short: "Remove a global heartbeat region (a volume's UUID or device) from a cluster",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			region, err := heartbeatRegion(args[1])
			if err != nil {
				return err
			}
			err = opts.edit(cmd, func(c *config.ClusterConf) error {
				cl, err := c.LookupCluster(args[0])
				if err != nil {
					return err
				}
				return cl.RemoveHeartbeat(region)
			})
			if err == nil {
				opts.say(cmd, "Removed heartbeat region '%s' from cluster '%s'", region, args[0])
			}
			return err
		},
	}
}

func newHeartbeatModeCommand(opts *clusterOptions) *cobra.Command {
	return &cobra.Command{
		Use:       "heartbeat-mode CLUSTER local|global",
		Short:     "Set a cluster's heartbeat mode",
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{"local", "global"},
		RunE: func(cmd *cobra.Command, args []string) error {
			err := opts.edit(cmd, func(c *config.ClusterConf) error {
				cl, err := c.LookupCluster(args[0])
				if err != nil {
					return err
				}
				return cl.SetHeartbeatMode(args[1])
			})
			if err == nil {
				opts.say(cmd, "Changed heartbeat mode in cluster '%s' to '%s'", args[0], args[1])
			}
			return err
		},
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newListClustersCommand(opts *clusterOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list-clusters",
		Short: "List the clusters in the configuration file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := opts.load(cmd)
			if err != nil {
				return err
			}
			if asJSON {
				clusters := c.Clusters
				if clusters == nil {
					clusters = []config.Cluster{}
				}
				return writeJSON(cmd.OutOrStdout(), clusters)
			}
			_, err = io.WriteString(cmd.OutOrStdout(), c.ListClusters())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print every cluster, with its nodes and regions, as JSON")
	return cmd
}

// newClusterListCommand makes list-cluster, list-nodes and list-heartbeats:
// text is the o2cb listing, value what --json prints.
func newClusterListCommand(opts *clusterOptions, use, short string,
	text func(cl *config.Cluster, oneline bool) string, value func(cl *config.Cluster) any) *cobra.Command {
	var asJSON, oneline bool
	cmd := &cobra.Command{
		Use:   use + " CLUSTER",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := opts.load(cmd)
			if err != nil {
				return err
			}
			cl, err := c.LookupCluster(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), value(cl))
			}
			_, err = io.WriteString(cmd.OutOrStdout(), text(cl, oneline))
			return err
		},
	}
	cmd.Flags().BoolVar(&oneline, "oneline", false, "one line per stanza")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.MarkFlagsMutuallyExclusive("oneline", "json")
	return cmd
}

func newListClusterCommand(opts *clusterOptions) *cobra.Command {
	return newClusterListCommand(opts, "list-cluster", "List a cluster with its nodes and heartbeat regions",
		(*config.Cluster).List, func(cl *config.Cluster) any { return cl })
}

func newListNodesCommand(opts *clusterOptions) *cobra.Command {
	return newClusterListCommand(opts, "list-nodes", "List the nodes of a cluster",
		(*config.Cluster).ListNodes, func(cl *config.Cluster) any { return nonNil(cl.Nodes) })
}

func newListHeartbeatsCommand(opts *clusterOptions) *cobra.Command {
	return newClusterListCommand(opts, "list-heartbeats", "List the heartbeat regions of a cluster",
		(*config.Cluster).ListHeartbeats, func(cl *config.Cluster) any { return nonNil(cl.Heartbeats) })
}

// nonNil makes an empty list print as [] in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func newClusterSettingsCommand(opts *clusterOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "Show the timeouts and o2go settings this node runs with",
		Long: `Show the settings this node reads from the o2cb sysconfig file, defaults
filled in, as sysconfig lines, followed by the values derived from them.
Every node of a cluster must run with the same timeouts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := opts.sysconfig()
			st, err := config.LoadSettings(path)
			if err != nil {
				return err
			}
			t := st.Timeouts
			if asJSON {
				vars := map[string]string{}
				for _, v := range st.Vars() {
					vars[v.Name] = v.Value
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{
					"file":               path,
					"variables":          vars,
					"dead_time_ms":       t.DeadTime().Milliseconds(),
					"max_write_stall_ms": t.MaxWriteStall().Milliseconds(),
				})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "# %s\n", path)
			for _, v := range st.Vars() {
				fmt.Fprintln(w, v)
			}
			fmt.Fprintf(w, "# heartbeat dead time: %v = (%s-1) x %s\n", t.DeadTime(), config.VarHeartbeatThreshold, config.VarHeartbeatInterval)
			fmt.Fprintf(w, "# a node fences itself after its heartbeat writes stall for %v\n", t.MaxWriteStall())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}
