package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"o2go/internal/cluster/config"
	"o2go/internal/clustermount"
	"o2go/internal/node"
)

func init() { subcommands = append(subcommands, newAgentCommand) }

// agentSetup is what every command that talks to or runs an agent needs.
type agentSetup struct {
	conf     *config.ClusterConf
	cluster  *config.Cluster
	settings config.Settings
	node     string // the node's name ("" when it could not be told)
}

// loadAgentSetup reads cluster.conf and the sysconfig file, picks the
// cluster (O2CB_BOOTCLUSTER, or the file's only one) and the node (--node,
// else this host's name, as o2cb does).
func loadAgentSetup(confPath, sysconfPath, nodeName string) (*agentSetup, error) {
	conf, err := config.Load(confPath)
	if err != nil {
		return nil, err
	}
	st, err := config.LoadSettings(sysconfPath)
	if err != nil {
		return nil, err
	}
	s := &agentSetup{conf: conf, settings: st}
	switch {
	case st.BootCluster != "":
		if s.cluster, err = conf.LookupCluster(st.BootCluster); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", config.VarBootCluster, st.BootCluster, err)
		}
	case len(conf.Clusters) == 1:
		s.cluster = &conf.Clusters[0]
	case len(conf.Clusters) == 0:
		return nil, fmt.Errorf("%s describes no cluster (o2go cluster add-cluster NAME)", confPath)
	default:
		return nil, fmt.Errorf("%s describes %d clusters: set %s in %s to the one this node runs",
			confPath, len(conf.Clusters), config.VarBootCluster, sysconfPath)
	}
	if nodeName == "" {
		if h, err := os.Hostname(); err == nil {
			h, _, _ = strings.Cut(h, ".")
			if s.cluster.Node(h) != nil {
				nodeName = h
			}
		}
	}
	if nodeName != "" && s.cluster.Node(nodeName) == nil {
		return nil, fmt.Errorf("node %q is not in cluster %s (its nodes: %s)", nodeName, s.cluster.Name, nodeNames(s.cluster))
	}
	s.node = nodeName
	return s, nil
}

func nodeNames(cl *config.Cluster) string {
	var names []string
	for _, n := range cl.Nodes {
		names = append(names, n.Name)
	}
	return strings.Join(names, ", ")
}

// socketFor finds the control socket of node name; without a name, the one
// agent running on this machine, if there is exactly one.
func socketFor(name string) (string, error) {
	if name != "" {
		return node.DefaultSocket(name), nil
	}
	socks, _ := filepath.Glob(filepath.Join(node.SocketDir, "*.sock"))
	switch len(socks) {
	case 1:
		return socks[0], nil
	case 0:
		return "", fmt.Errorf("%w on this machine (no socket in %s); start one with: o2go agent", node.ErrNoAgent, node.SocketDir)
	}
	var names []string
	for _, s := range socks {
		names = append(names, strings.TrimSuffix(filepath.Base(s), ".sock"))
	}
	return "", fmt.Errorf("several agents run on this machine (%s): choose one with --node", strings.Join(names, ", "))
}

// agentFlags are the flags o2go agent and o2go ha agent share.
type agentFlags struct {
	confPath, sysconfPath, nodeName, socket, faultFile string
	scan, heartbeats                                   []string
}

func (af *agentFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&af.confPath, "config", config.DefaultClusterConfPath, "cluster configuration `FILE`")
	f.StringVar(&af.sysconfPath, "sysconfig", "", "o2cb sysconfig `FILE` (default /etc/sysconfig/o2cb if it exists, else /etc/default/o2cb)")
	f.StringVar(&af.nodeName, "node", "", "this node's `NAME` in cluster.conf (default: the host name)")
	f.StringSliceVar(&af.scan, "scan", nil, "image files or folders to find volumes by UUID/label in (repeatable)")
	f.StringSliceVar(&af.heartbeats, "heartbeat", nil, "local mode: start heartbeating on `DEVICE` (path, UUID=... or LABEL=...) at start (repeatable)")
	f.StringVar(&af.socket, "socket", "", "control socket `PATH` (default /run/o2go/NODE.sock)")
	f.StringVar(&af.faultFile, "fault-file", "", "tests and benchmarks: stall heartbeat I/O while `FILE` says stall-until=<unix ms>")
	_ = f.MarkHidden("fault-file")
}

// runningAgent is an agent set up with its lock manager and clustered
// mounts, not yet running.
type runningAgent struct {
	a   *node.Agent
	dlm *node.DLM
	log *slog.Logger
}

// start sets the agent up from the flags: configuration, secret, the
// cluster stack, the lock manager (clustered mounts and applications: o2go
// lock, o2go dlm) and the clustered mounts.
func (af *agentFlags) start(cmd *cobra.Command) (*runningAgent, error) {
	if err := checkSysconfigFlag(af.sysconfPath); err != nil {
		return nil, err
	}
	sysconf := af.sysconfPath
	if sysconf == "" {
		sysconf = config.SysconfigPath("/")
	}
	s, err := loadAgentSetup(af.confPath, sysconf, af.nodeName)
	if err != nil {
		return nil, err
	}
	if s.node == "" {
		return nil, fmt.Errorf("this host's name is not a node of cluster %s (%s): give the node with --node", s.cluster.Name, nodeNames(s.cluster))
	}
	secret, err := config.LoadSecret(s.settings.SecretFile)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	for _, w := range s.conf.Warnings {
		log.Warn(w.String())
	}
	a, err := node.New(node.Config{Cluster: s.cluster, Node: s.node, Settings: s.settings, Secret: secret,
		Scan: splitList(af.scan), Socket: af.socket, FaultFile: af.faultFile, Log: log})
	if err != nil {
		return nil, err
	}
	d, err := node.StartDLM(a)
	if err != nil {
		return nil, err
	}
	a.OnControl(d.RegisterControl)
	mg := clustermount.Start(a, d, s.cluster.Name, log)
	a.OnControl(mg.RegisterControl)
	return &runningAgent{a: a, dlm: d, log: log}, nil
}

// run starts the --heartbeat regions and runs the agent until ctx ends; a
// fenced node exits with its status.
func (ra *runningAgent) run(ctx context.Context, cmd *cobra.Command, heartbeats []string) error {
	if len(heartbeats) > 0 {
		go func() {
			for _, h := range splitList(heartbeats) {
				if _, err := ra.a.StartHeartbeat(h); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "o2go: heartbeat on %s: %v\n", h, err)
				}
			}
		}()
	}
	err := ra.a.Run(ctx)
	if errors.Is(err, node.ErrNodeFenced) {
		return &exitError{code: node.ExitFenced, err: err}
	}
	return err
}

func newAgentCommand() *cobra.Command {
	var af agentFlags
	cmd := &cobra.Command{
		Use:   "agent [--config FILE] [--sysconfig FILE] [--node NAME] [--scan PATH...] [--heartbeat DEVICE...]",
		Short: "Run this node's cluster stack in the foreground",
		Long: `Run this node's cluster stack: disk heartbeat, authenticated messaging with
the other nodes, quorum, fencing, kill blocks, the membership events the DLM,
the file system and HA subscribe to, and the local control socket
(/run/o2go/NODE.sock) that 'o2go cluster status', 'o2go cluster heartbeat'
and the other commands talk to.

The cluster is O2CB_BOOTCLUSTER from the sysconfig file, or the only cluster
of cluster.conf; the node is --node, or this host's name. Several agents with
different --node names can run on one machine (tests, demos). The cluster
secret is read from O2GO_CLUSTER_SECRET_FILE.

In global heartbeat mode the agent heartbeats on the cluster's heartbeat
regions, found by UUID in the --scan paths (image files, or folders of them)
and under /dev/disk/by-uuid. In local mode it heartbeats on the volumes it
is told to: --heartbeat at start, 'o2go cluster heartbeat start' later.

SIGTERM or SIGINT stop the heartbeat cleanly (the others see the node leave
at once). When the node must fence, it latches its writes off and resets the
machine, panics it, or exits with status 99, as O2GO_FENCE_METHOD says.

EXIT STATUS
  0   stopped by a signal, heartbeat stopped cleanly
  1   bad configuration or start-up failure
  99  fenced (O2GO_FENCE_METHOD=exit)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ra, err := af.start(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return ra.run(ctx, cmd, af.heartbeats)
		},
	}
	af.bind(cmd)
	return cmd
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
