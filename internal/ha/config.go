package ha

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Config is the cluster-wide HA configuration: resource groups, the
// networks their service addresses live on, event scripts and the cluster's
// defaults. It is the same on every node: the coordinator commits a new
// version (Version+1) and distributes it; `o2go ha verify` checks that every
// node holds the same Digest.
type Config struct {
	// Version counts committed changes; 0 is the empty configuration.
	Version  uint64         `json:"version"`
	Settings Settings       `json:"settings"`
	Networks []Network      `json:"networks,omitempty"`
	Groups   []Group        `json:"groups,omitempty"`
	Events   []EventScripts `json:"events,omitempty"`
}

// Settings are the cluster-wide defaults. Zero means the default named on
// each field.
type Settings struct {
	// RestartAttempts is how many times a resource whose monitor fails is
	// restarted in place, within RestartInterval, before its group falls
	// over. Default 3: HACMP's application monitor restart count (Oracle
	// CRS's RESTART_ATTEMPTS, 5 in the seed notes, says the same thing).
	// -1 means never restart: the first failure falls over.
	RestartAttempts int `json:"restart_attempts,omitempty"`
	// RestartInterval is the window the restarts are counted in: failures
	// older than it are forgotten. Default 10 minutes (CRS's
	// FAILURE_INTERVAL).
	RestartInterval Duration `json:"restart_interval,omitempty"`
	// MonitorInterval is how often a running resource is checked, and the
	// stabilization delay before its first check. Default 10 s.
	MonitorInterval Duration `json:"monitor_interval,omitempty"`
	// MonitorTimeout bounds one check (a hung check counts as a failure).
	// Default 20 s.
	MonitorTimeout Duration `json:"monitor_timeout,omitempty"`
	// StartTimeout and StopTimeout bound one start or stop. Default 60 s.
	StartTimeout Duration `json:"start_timeout,omitempty"`
	StopTimeout  Duration `json:"stop_timeout,omitempty"`
	// ScriptTimeout bounds one event script. Default 60 s.
	ScriptTimeout Duration `json:"script_timeout,omitempty"`
	// ConfigTooLong is how long an event may take before config_too_long
	// is raised (and raised again every as long while it lasts). Default
	// 6 minutes, as HACMP's.
	ConfigTooLong Duration `json:"config_too_long,omitempty"`
	// SettlingTime: a group with start-up policy "first" that is offline
	// waits this long after its first eligible node appears for a higher
	// priority node to join, unless its home node is there. Default 0
	// (HACMP's default).
	SettlingTime Duration `json:"settling_time,omitempty"`
	// StopFailure is what happens when a resource cannot be stopped:
	// "fence" (default: the node fences itself so the group can move
	// safely) or "unmanaged" (the group stays where it is, its lock held,
	// until the operator acts).
	StopFailure string `json:"stop_failure,omitempty"`
}

// Defaults, documented on Settings.
const (
	DefaultRestartAttempts = 3
	DefaultRestartInterval = 10 * time.Minute
	DefaultMonitorInterval = 10 * time.Second
	DefaultMonitorTimeout  = 20 * time.Second
	DefaultStartTimeout    = 60 * time.Second
	DefaultStopTimeout     = 60 * time.Second
	DefaultScriptTimeout   = 60 * time.Second
	DefaultConfigTooLong   = 6 * time.Minute
)

// Stop-failure policies.
const (
	StopFailureFence     = "fence"
	StopFailureUnmanaged = "unmanaged"
)

// Network is a logical network: on each node, the interfaces that carry it,
// the first healthy one active and the others standby (HACMP's service and
// standby adapters). A service address on the network is added to the
// active interface; when it fails and a standby is healthy the address moves
// there (swap_adapter); when none is healthy the node has lost the network
// (network_down) and the groups that need it fall over.
type Network struct {
	Name string `json:"name"`
	// Interfaces are the interface names on every node, in order of
	// preference; PerNode overrides them for some nodes.
	Interfaces []string            `json:"interfaces"`
	PerNode    map[string][]string `json:"per_node,omitempty"`
}

// InterfacesOn returns the network's interfaces on node name.
func (n *Network) InterfacesOn(name string) []string {
	if l, ok := n.PerNode[name]; ok {
		return l
	}
	return n.Interfaces
}

// Start-up policies (HACMP: online on home node only / on first available
// node / on all available nodes).
const (
	StartupHome  = "home"
	StartupFirst = "first"
	StartupAll   = "all" // concurrent
)

// Fallover policies: to the next priority node, or bring the group offline.
const (
	FalloverNext    = "next"
	FalloverOffline = "offline"
)

// Fallback policies: to a higher priority node when one joins, or never.
const (
	FallbackHigher = "higher"
	FallbackNever  = "never"
)

// Group is a resource group: resources started in order and stopped in
// reverse on one node at a time (or on every node, when concurrent), with
// an ordered node list and policies.
type Group struct {
	Name string `json:"name"`
	// Nodes are the nodes that may run the group, highest priority first;
	// the first is the home node.
	Nodes    []string `json:"nodes"`
	Startup  string   `json:"startup,omitempty"`  // home | first (default) | all
	Fallover string   `json:"fallover,omitempty"` // next (default) | offline
	Fallback string   `json:"fallback,omitempty"` // higher (default for home) | never (default for first)
	// FallbackDelay: with fallback "higher", wait this long after a higher
	// priority node became eligible before moving back (HACMP's delayed
	// fallback timer). 0: at once.
	FallbackDelay Duration   `json:"fallback_delay,omitempty"`
	Resources     []Resource `json:"resources,omitempty"`
	// Dependencies on other groups.
	Parents       []string `json:"parents,omitempty"`        // online only where and while each parent is online somewhere
	SameNode      []string `json:"same_node,omitempty"`      // online only on the node the named group is on
	DifferentNode []string `json:"different_node,omitempty"` // never on the node the named group is on
}

// Concurrent reports whether the group runs on every eligible node at once.
func (g *Group) Concurrent() bool { return g.Startup == StartupAll }

// Resource types.
const (
	TypeIP      = "ip"      // service address
	TypeFS      = "fs"      // file system mount
	TypeApp     = "app"     // start/stop/monitor scripts
	TypeOCF     = "ocf"     // an OCF resource agent, unchanged
	TypeProcess = "process" // a supervised command
)

// Resource is one resource of a group. Which fields apply depends on Type.
type Resource struct {
	Name string `json:"name"`
	Type string `json:"type"`

	// ip: Address in CIDR form (10.0.0.10/24) on Network's active
	// interface, or on Interface when no network is named.
	Address   string `json:"address,omitempty"`
	Network   string `json:"network,omitempty"`
	Interface string `json:"interface,omitempty"`

	// fs: Device mounted on Mountpoint. FSType "o2go" mounts an OCFS2
	// volume with o2go's FUSE mount: a clustered volume through the
	// node's agent, on as many nodes as run the group (a concurrent group
	// mounts it everywhere), after o2go fsck -p only while no node has it
	// mounted (unless NoFsck); Options "nocluster" mounts it on one node
	// without the cluster. Any other type is mounted with mount(8) after
	// fsck -p (unless NoFsck), and cannot be in a concurrent group.
	Device     string `json:"device,omitempty"`
	Mountpoint string `json:"mountpoint,omitempty"`
	FSType     string `json:"fstype,omitempty"`
	Options    string `json:"options,omitempty"`
	NoFsck     bool   `json:"no_fsck,omitempty"`

	// app: scripts run with no argument; Monitor exits 0 when the
	// application runs, 7 when it is cleanly stopped, anything else on
	// failure (OCF's codes).
	StartScript   string `json:"start,omitempty"`
	StopScript    string `json:"stop,omitempty"`
	MonitorScript string `json:"monitor,omitempty"`

	// ocf: Agent is "provider:type" under $OCF_ROOT/resource.d (e.g.
	// heartbeat:IPaddr2) or an absolute path; Params become OCF_RESKEY_*.
	Agent  string            `json:"agent,omitempty"`
	Params map[string]string `json:"params,omitempty"`

	// process: Command (argv) run and supervised by the agent.
	Command []string `json:"command,omitempty"`
	Dir     string   `json:"dir,omitempty"`
	// Env adds NAME=value pairs to the environment of scripts, agents and
	// commands.
	Env []string `json:"env,omitempty"`

	// Per-resource overrides of the Settings (0: the cluster's).
	MonitorInterval Duration `json:"monitor_interval,omitempty"`
	MonitorTimeout  Duration `json:"monitor_timeout,omitempty"`
	StartTimeout    Duration `json:"start_timeout,omitempty"`
	StopTimeout     Duration `json:"stop_timeout,omitempty"`
	RestartAttempts int      `json:"restart_attempts,omitempty"`
	RestartInterval Duration `json:"restart_interval,omitempty"`
}

// EventScripts are the scripts run around one cluster event (HACMP's
// pre-event, post-event, notify and recovery commands). Notify runs when the
// event starts and when it completes and is not waited for; Pre runs before
// the event's work and Post after it; when the work fails, Recovery runs and
// the work is tried again, up to Retries times.
type EventScripts struct {
	Event    string `json:"event"`
	Pre      string `json:"pre,omitempty"`
	Post     string `json:"post,omitempty"`
	Notify   string `json:"notify,omitempty"`
	Recovery string `json:"recovery,omitempty"`
	Retries  int    `json:"retries,omitempty"`
}

// Events, as the HACMP guide names them.
const (
	EvNodeUp        = "node_up"
	EvNodeDown      = "node_down" // argument: graceful, takeover, forced or failed
	EvNetworkDown   = "network_down"
	EvNetworkUp     = "network_up"
	EvSwapAdapter   = "swap_adapter"
	EvRGOnline      = "rg_online"       // a node acquires a group
	EvRGOffline     = "rg_offline"      // a node releases a group
	EvRGMove        = "rg_move"         // the operator moves, starts or stops a group
	EvResourceFail  = "resource_failed" // a monitor failed: restart, or give up
	EvRGError       = "rg_error"        // a group failed on a node and falls over
	EvConfigTooLong = "config_too_long"
	EvReconfig      = "reconfig" // a new configuration (DARE)
)

// EventNames lists the events scripts can be attached to.
var EventNames = []string{EvNodeUp, EvNodeDown, EvNetworkDown, EvNetworkUp, EvSwapAdapter, EvRGOnline,
	EvRGOffline, EvRGMove, EvResourceFail, EvRGError, EvConfigTooLong, EvReconfig}

// Duration is a time.Duration written as "10s" in JSON.
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes "10s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "10s", or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration %s: want a string such as \"10s\" or a number of seconds", string(b))
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %v", s, err)
	}
	*d = Duration(v)
	return nil
}

// or returns d, or def when d is zero.
func or(d Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.D()
}

// Effective values of the settings.

func (s *Settings) restartAttempts() int {
	if s.RestartAttempts == 0 {
		return DefaultRestartAttempts
	}
	if s.RestartAttempts < 0 {
		return 0
	}
	return s.RestartAttempts
}

func (s *Settings) configTooLong() time.Duration {
	return or(s.ConfigTooLong, DefaultConfigTooLong)
}

func (s *Settings) scriptTimeout() time.Duration { return or(s.ScriptTimeout, DefaultScriptTimeout) }

// fence reports whether a stop failure fences the node.
func (s *Settings) fence() bool { return s.StopFailure != StopFailureUnmanaged }

// Timings are a resource's effective timings.
type Timings struct {
	MonitorInterval time.Duration
	MonitorTimeout  time.Duration
	StartTimeout    time.Duration
	StopTimeout     time.Duration
	RestartAttempts int
	RestartInterval time.Duration
}

// TimingsOf resolves r's timings against the settings s.
func TimingsOf(s *Settings, r *Resource) Timings {
	t := Timings{
		MonitorInterval: or(r.MonitorInterval, or(s.MonitorInterval, DefaultMonitorInterval)),
		MonitorTimeout:  or(r.MonitorTimeout, or(s.MonitorTimeout, DefaultMonitorTimeout)),
		StartTimeout:    or(r.StartTimeout, or(s.StartTimeout, DefaultStartTimeout)),
		StopTimeout:     or(r.StopTimeout, or(s.StopTimeout, DefaultStopTimeout)),
		RestartInterval: or(r.RestartInterval, or(s.RestartInterval, DefaultRestartInterval)),
		RestartAttempts: s.restartAttempts(),
	}
	switch {
	case r.RestartAttempts > 0:
		t.RestartAttempts = r.RestartAttempts
	case r.RestartAttempts < 0:
		t.RestartAttempts = 0
	}
	return t
}

// Group returns the group named name, or nil.
func (c *Config) Group(name string) *Group {
	for i := range c.Groups {
		if c.Groups[i].Name == name {
			return &c.Groups[i]
		}
	}
	return nil
}

// Network returns the network named name, or nil.
func (c *Config) Network(name string) *Network {
	for i := range c.Networks {
		if c.Networks[i].Name == name {
			return &c.Networks[i]
		}
	}
	return nil
}

// EventScripts returns the scripts of event ev (zero value: none).
func (c *Config) EventScripts(ev string) EventScripts {
	for _, e := range c.Events {
		if e.Event == ev {
			return e
		}
	}
	return EventScripts{Event: ev}
}

// Clone returns a deep copy (through JSON: configurations are small).
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("ha: encoding a configuration: %v", err)) // only plain data: cannot fail
	}
	var out Config
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("ha: decoding a configuration: %v", err))
	}
	return &out
}

// Digest is a short hash of the configuration's content (its version
// included): two nodes hold the same configuration when their digests are
// equal.
func (c *Config) Digest() string {
	b, _ := json.Marshal(c) // map keys are sorted: the encoding is canonical
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// ParseConfig decodes a configuration, refusing unknown fields so that a
// misspelt key is an error rather than a silently ignored setting.
func ParseConfig(b []byte) (*Config, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("HA configuration: %w", err)
	}
	return &c, nil
}

// Marshal encodes the configuration as indented JSON (the file format of
// `o2go ha show` and of snapshots).
func (c *Config) Marshal() []byte {
	b, _ := json.MarshalIndent(c, "", "  ")
	return append(b, '\n')
}
