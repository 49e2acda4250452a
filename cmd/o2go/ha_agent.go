package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/cluster/config"
	"o2go/internal/ha/agent"
	"o2go/internal/node"
)

func init() { haSubcommands = append(haSubcommands, newHAAgentCommand) }

// startAgentHA starts the DLM and HA on agent a (before a.Run): what the
// agent command does for HA. dir "" is node.DefaultHADir.
func startAgentHA(a *node.Agent, d *node.DLM, dir string, logf func(string, ...any)) (*node.HA, error) {
	rt := agent.NewRunner(a.Self().Name)
	rt.Logf = logf
	return node.StartHA(a, d, rt, node.HAOptions{Dir: dir})
}

// newHAAgentCommand is `o2go agent` with the DLM and HA running in it, until
// the agent command starts them itself. SIGTERM is HACMP's "graceful with
// takeover": the node's groups are released for the others first.
func newHAAgentCommand(_ *haOptions) *cobra.Command {
	var confPath, sysconfPath, nodeName, socket, haDir, downMode string
	var scan, heartbeats []string
	cmd := &cobra.Command{
		Use:    "agent [agent flags] [--ha-dir DIR] [--down graceful|takeover|forced]",
		Short:  "Run this node's agent with the DLM and HA (o2go agent, plus HA)",
		Hidden: true,
		Long: `Run the cluster agent as 'o2go agent' does, with the lock manager and the HA
resource manager in it. SIGTERM or SIGINT first stop HA on this node as
--down says (default takeover: the groups are released and the other nodes
take them over; graceful: released and kept offline until this node is back;
forced: left running, unmanaged), then the agent.

EXIT STATUS
  0  stopped by a signal
  1  bad configuration or start-up failure
  99 fenced (O2GO_FENCE_METHOD=exit)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sysconfPath == "" {
				sysconfPath = config.SysconfigPath("/")
			}
			s, err := loadAgentSetup(confPath, sysconfPath, nodeName)
			if err != nil {
				return err
			}
			if s.node == "" {
				return fmt.Errorf("this host's name is not a node of cluster %s (%s): give the node with --node", s.cluster.Name, nodeNames(s.cluster))
			}
			secret, err := config.LoadSecret(s.settings.SecretFile)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			a, err := node.New(node.Config{Cluster: s.cluster, Node: s.node, Settings: s.settings, Secret: secret,
				Scan: splitList(scan), Socket: socket, Log: log})
			if err != nil {
				return err
			}
			d, err := node.StartDLM(a)
			if err != nil {
				return err
			}
			logf := func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
			h, err := startAgentHA(a, d, haDir, logf)
			if err != nil {
				return err
			}
			a.OnControl(d.RegisterControl)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sig := make(chan os.Signal, 2)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			defer signal.Stop(sig)
			go func() {
				select {
				case <-sig:
				case <-ctx.Done():
					return
				}
				sctx, scancel := context.WithTimeout(context.Background(), 60*time.Second)
				if err := h.Shutdown(sctx, downMode); err != nil {
					logf("ha: %v", err)
				}
				scancel()
				cancel()
			}()
			if len(heartbeats) > 0 {
				go func() {
					for _, hb := range splitList(heartbeats) {
						if _, err := a.StartHeartbeat(hb); err != nil {
							fmt.Fprintf(cmd.ErrOrStderr(), "o2go: heartbeat on %s: %v\n", hb, err)
						}
					}
				}()
			}
			err = a.Run(ctx)
			if errors.Is(err, node.ErrNodeFenced) {
				return &exitError{code: node.ExitFenced, err: err}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&confPath, "config", config.DefaultClusterConfPath, "cluster configuration `FILE`")
	f.StringVar(&sysconfPath, "sysconfig", "", "o2cb sysconfig `FILE`")
	f.StringVar(&nodeName, "node", "", "this node's `NAME` in cluster.conf (default: the host name)")
	f.StringSliceVar(&scan, "scan", nil, "image files or folders to find volumes by UUID/label in (repeatable)")
	f.StringSliceVar(&heartbeats, "heartbeat", nil, "local mode: heartbeat on `DEVICE` from the start (repeatable)")
	f.StringVar(&socket, "socket", "", "control socket `PATH` (default /run/o2go/NODE.sock)")
	f.StringVar(&haDir, "ha-dir", "", "keep the HA configuration, state and history in `DIR` (default /var/lib/o2go/ha/CLUSTER/NODE)")
	f.StringVar(&downMode, "down", "takeover", "what SIGTERM does to this node's groups: graceful, takeover or forced")
	return cmd
}
