package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/node"
)

func init() { clusterSubcommands = append(clusterSubcommands, newClusterHeartbeatCommand) }

func newClusterHeartbeatCommand(opts *clusterOptions) *cobra.Command {
	var nodeName, socket string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "heartbeat start|stop DEVICE|UUID=...|LABEL=...  |  heartbeat list",
		Short: "Start or stop a volume's disk heartbeat (local mode), as ocfs2_hb_ctl -S/-K",
		Long: `Start or stop heartbeating on a volume, through the running agent: what
ocfs2_hb_ctl -S and -K do for mount.ocfs2 in O2CB's local heartbeat mode.
The volume is a device or image path, UUID=<uuid> (32 hex digits or blkid's
dashed form) or LABEL=<label>, found in the agent's --scan paths and under
/dev/disk/by-uuid and by-label. 'start' returns once the heartbeat has
settled; starting a volume that already heartbeats counts one more user,
and only the last 'stop' ends it (cleanly: the other nodes see this node
leave the region at once).

EXIT STATUS
  0  done
  1  bad arguments, volume not found, refused (stamped for another cluster...)
  2  no agent runs for this node`,
		Args:      cobra.RangeArgs(1, 2),
		ValidArgs: []string{"start", "stop", "list"},
		RunE: func(cmd *cobra.Command, args []string) error {
			method := ""
			switch args[0] {
			case "start", "stop":
				if len(args) != 2 {
					return fmt.Errorf("heartbeat %s needs a volume: a device, UUID=... or LABEL=...", args[0])
				}
				method = "heartbeat." + args[0]
			case "list":
				if len(args) != 1 {
					return fmt.Errorf("heartbeat list takes no volume")
				}
				method = "heartbeat.list"
			default:
				return fmt.Errorf("unknown heartbeat action %q: use start, stop or list", args[0])
			}
			if nodeName == "" {
				if s, err := loadAgentSetup(opts.configPath, opts.sysconfig(), ""); err == nil {
					nodeName = s.node
				}
			}
			sock, err := socketFor(nodeName)
			if socket != "" {
				sock, err = socket, nil
			}
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			cl, err := node.DialControl(sock)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer cl.Close()
			_ = cl.SetDeadline(time.Now().Add(10 * time.Minute))
			var params any
			if len(args) == 2 {
				params = map[string]string{"device": args[1]}
			}
			if method == "heartbeat.list" {
				var rs []node.RegionInfo
				if err := cl.Call(method, params, &rs); err != nil {
					return err
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), nonNil(rs))
				}
				for _, r := range rs {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s users=%d kill-blocks=%v\n", r.UUID, r.Device, r.Refs, r.KillArea)
				}
				return nil
			}
			var r node.RegionInfo
			if err := cl.Call(method, params, &r); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			opts.say(cmd, "Heartbeat %s on region %s (%s), users %d", args[0], r.UUID, r.Device, r.Refs)
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "the agent's control socket `PATH` (default /run/o2go/NODE.sock)")
	cmd.Flags().StringVar(&nodeName, "node", "", "the agent of node `NAME` (default: this host's node, or the only agent running here)")
	_ = cmd.Flags().MarkHidden("socket")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the region as JSON")
	return cmd
}
