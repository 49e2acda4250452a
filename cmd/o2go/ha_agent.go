package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"o2go/internal/ha/agent"
	"o2go/internal/node"
)

func init() { haSubcommands = append(haSubcommands, newHAAgentCommand) }

// startAgentHA starts the DLM and HA on agent a (before a.Run): what the
// agent command does for HA. dir "" is node.DefaultHADir.
func startAgentHA(a *node.Agent, d *node.DLM, dir, socket string, logf func(string, ...any)) (*node.HA, error) {
	rt := agent.NewRunner(a.Self().Name)
	rt.Logf = logf
	if socket != "" {
		// Clustered file systems mount through this agent's socket.
		abs, err := filepath.Abs(socket)
		if err != nil {
			return nil, err
		}
		rt.AgentSocket = abs
	}
	return node.StartHA(a, d, rt, node.HAOptions{Dir: dir})
}

// newHAAgentCommand is `o2go agent` with the DLM and HA running in it, until
// the agent command starts them itself. SIGTERM is HACMP's "graceful with
// takeover": the node's groups are released for the others first.
func newHAAgentCommand(_ *haOptions) *cobra.Command {
	var af agentFlags
	var haDir, downMode string
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
			ra, err := af.start(cmd)
			if err != nil {
				return err
			}
			logf := func(format string, args ...any) { ra.log.Info(fmt.Sprintf(format, args...)) }
			h, err := startAgentHA(ra.a, ra.dlm, haDir, af.socket, logf)
			if err != nil {
				return err
			}
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
			return ra.run(ctx, cmd, af.heartbeats)
		},
	}
	f := cmd.Flags()
	af.bind(cmd)
	f.StringVar(&haDir, "ha-dir", "", "keep the HA configuration, state and history in `DIR` (default /var/lib/o2go/ha/CLUSTER/NODE)")
	f.StringVar(&downMode, "down", "takeover", "what SIGTERM does to this node's groups: graceful, takeover or forced")
	return cmd
}
