package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// The sysconfig variables o2go reads. O2CB_* are O2CB's own, with its names
// and meanings (o2cb.sysconfig(5)); O2GO_* are o2go's, for what O2CB fixes
// or does not have.
const (
	VarEnabled            = "O2CB_ENABLED"
	VarStack              = "O2CB_STACK"
	VarBootCluster        = "O2CB_BOOTCLUSTER"
	VarHeartbeatThreshold = "O2CB_HEARTBEAT_THRESHOLD"
	VarIdleTimeout        = "O2CB_IDLE_TIMEOUT_MS"
	VarKeepaliveDelay     = "O2CB_KEEPALIVE_DELAY_MS"
	VarReconnectDelay     = "O2CB_RECONNECT_DELAY_MS"
	VarHeartbeatInterval  = "O2GO_HEARTBEAT_INTERVAL_MS"
	VarKillAckTimeout     = "O2GO_KILL_ACK_TIMEOUT_MS"
	VarFenceMethod        = "O2GO_FENCE_METHOD"
	VarSecretFile         = "O2GO_CLUSTER_SECRET_FILE"
)

// varDocs are the comments Set writes above a variable it adds.
var varDocs = map[string]string{
	VarEnabled:            "'true' starts the cluster stack at boot.",
	VarStack:              "the cluster stack; o2go implements o2cb.",
	VarBootCluster:        "the cluster of cluster.conf to start; empty for none.",
	VarHeartbeatThreshold: "heartbeat iterations without a write before a node is dead.",
	VarIdleTimeout:        "ms without traffic before a network connection is dead.",
	VarKeepaliveDelay:     "ms of silence after which a keepalive is sent.",
	VarReconnectDelay:     "ms between connection attempts to a peer.",
	VarHeartbeatInterval:  "ms between heartbeat writes (O2CB fixes it at 2000).",
	VarKillAckTimeout:     "ms survivors wait for a kill-block acknowledgement; 0 disables kill blocks.",
	VarFenceMethod:        "how this node fences itself: reset, panic or exit.",
	VarSecretFile:         "file holding the secret nodes authenticate each other with.",
}

func varDoc(key string) string { return varDocs[key] }

// Defaults, with O2CB's values where O2CB has the setting.
const (
	DefaultHeartbeatThreshold = 31                      // O2HB_DEFAULT_DEAD_THRESHOLD
	DefaultHeartbeatInterval  = 2000 * time.Millisecond // O2HB_REGION_TIMEOUT_MS
	DefaultIdleTimeout        = 30000 * time.Millisecond
	DefaultKeepaliveDelay     = 2000 * time.Millisecond
	DefaultReconnectDelay     = 2000 * time.Millisecond
	// DefaultKillAckIntervals is the kill-block acknowledgement timeout in
	// heartbeat intervals when O2GO_KILL_ACK_TIMEOUT_MS is unset.
	DefaultKillAckIntervals = 3
	DefaultStack            = "o2cb"
	DefaultFenceMethod      = FenceReset
	DefaultSecretFile       = "/etc/ocfs2/o2go.secret"
)

// Limits. The minimums of the O2CB values are those the o2cb init script
// enforces when it configures them (the kernel accepts less but the tools do
// not offer it); the maximums are the kernel's (configfs stores u32
// milliseconds and refuses (u32)-1).
const (
	MinHeartbeatThreshold = 7
	MaxHeartbeatThreshold = 65535 // o2go's bound: over a day at the default interval
	MinIdleTimeout        = 5000 * time.Millisecond
	MinKeepaliveDelay     = 1000 * time.Millisecond
	MinReconnectDelay     = 2000 * time.Millisecond
	MaxNetworkTimeout     = 4294967294 * time.Millisecond
	MinHeartbeatInterval  = 100 * time.Millisecond
	MaxHeartbeatInterval  = 30000 * time.Millisecond
)

// Timeouts are the timing values every node of a cluster must share: a node
// whose values differ from its peers' is refused (see CheckPeer), as the
// kernel's O2CB refuses a connection whose idle timeout, keepalive delay or
// heartbeat timeout differ.
//
// Disk heartbeat: every HeartbeatInterval a node writes its sector of the
// heartbeat area and reads everyone's. A node whose sector has not changed
// for DeadTime is dead.
//
// Network: a connection is kept alive by a keepalive after KeepaliveDelay
// of silence and is dead after IdleTimeout without any message; a failed
// connection is retried every ReconnectDelay.
type Timeouts struct {
	// HeartbeatThreshold is O2CB_HEARTBEAT_THRESHOLD: how many heartbeat
	// iterations a node's sector may stay unchanged before the node is
	// dead; DeadTime = (HeartbeatThreshold-1) x HeartbeatInterval.
	// o2cb.sysconfig(5) gives the inverse: threshold = timeout/2s + 1.
	//
	// Default 31, a 60 s dead time: long enough to ride out a multipath
	// failover or a busy SAN (multipath users set 61, 120 s), short enough
	// that survivors do not stall for minutes. Range 7..65535 (7 is the
	// init script's minimum, a 12 s dead time).
	HeartbeatThreshold int

	// HeartbeatInterval is O2GO_HEARTBEAT_INTERVAL_MS: time between a node's
	// heartbeat writes, and between its reads of the other sectors.
	//
	// Default 2000 ms, O2CB's fixed O2HB_REGION_TIMEOUT_MS: one small
	// direct write per node per interval costs the disk nothing. O2CB has
	// no setting for it; o2go has, so that tests and small clusters can
	// detect failure faster without lowering the threshold under what
	// survives a few slow I/Os. Range 100..30000 ms.
	HeartbeatInterval time.Duration

	// IdleTimeout is O2CB_IDLE_TIMEOUT_MS: a connection that carried no
	// message (keepalives included) for this long is dead, and quorum
	// decides what the node does about the lost peer.
	//
	// Default 30000 ms: 15 keepalives may be lost before a link is given
	// up, and it is half the heartbeat dead time, so a cut network is
	// noticed before a dead disk heartbeat would be. Network bonding users
	// raise it to 60000 so a bond failover does not drop connections.
	// Range 5000..4294967294 ms, and above KeepaliveDelay (the kernel's
	// rule: otherwise a healthy idle link would time out).
	IdleTimeout time.Duration

	// KeepaliveDelay is O2CB_KEEPALIVE_DELAY_MS: after this long without
	// sending, a node sends a keepalive so the peer's idle timer does not
	// fire.
	//
	// Default 2000 ms. Range 1000 ms and up, below IdleTimeout.
	KeepaliveDelay time.Duration

	// ReconnectDelay is O2CB_RECONNECT_DELAY_MS: the least time between two
	// connection attempts to the same peer.
	//
	// Default 2000 ms: one attempt per heartbeat interval, so a peer that
	// just started heartbeating is reached within an interval or two
	// without hammering one that is down. Range 2000..4294967294 ms.
	ReconnectDelay time.Duration

	// KillAckTimeout is O2GO_KILL_ACK_TIMEOUT_MS: how long survivors wait
	// for a node they evicted through its kill block to acknowledge it
	// (which it does once fenced) before they fall back to waiting out
	// DeadTime. 0 disables kill blocks.
	//
	// Default when unset: 3 x HeartbeatInterval (6000 ms). The evicted node
	// reads its kill block once per interval and writes the
	// acknowledgement in the next, so two intervals is the least that can
	// work and the third absorbs one slow I/O. Range 2 x HeartbeatInterval
	// up to, not including, DeadTime (waiting longer gains nothing).
	KillAckTimeout time.Duration
}

// DefaultTimeouts returns O2CB's defaults and o2go's.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		HeartbeatThreshold: DefaultHeartbeatThreshold,
		HeartbeatInterval:  DefaultHeartbeatInterval,
		IdleTimeout:        DefaultIdleTimeout,
		KeepaliveDelay:     DefaultKeepaliveDelay,
		ReconnectDelay:     DefaultReconnectDelay,
		KillAckTimeout:     DefaultKillAckIntervals * DefaultHeartbeatInterval,
	}
}

// DeadTime is how long a node's heartbeat sector may stay unchanged before
// its peers declare it dead: (HeartbeatThreshold-1) x HeartbeatInterval,
// 60 s by default.
func (t Timeouts) DeadTime() time.Duration {
	return time.Duration(t.HeartbeatThreshold-1) * t.HeartbeatInterval
}

// MaxWriteStall is the longest a node may go without completing a heartbeat
// write before it fences itself: DeadTime - HeartbeatInterval, 58 s by
// default. It is one interval shorter than DeadTime so that a node whose
// disk stalls has fenced itself (and latched its I/O off) before any
// survivor can declare it dead and start recovering its journal. O2CB arms
// the same timer at DeadTime (O2HB_MAX_WRITE_TIMEOUT_MS); o2go keeps an
// interval of margin because it fences from userspace.
func (t Timeouts) MaxWriteStall() time.Duration {
	return t.DeadTime() - t.HeartbeatInterval
}

// KillBlocks reports whether survivors evict nodes through kill blocks.
func (t Timeouts) KillBlocks() bool { return t.KillAckTimeout > 0 }

// Validate checks every value against its range and the rules between
// them; each problem names the variable, its value and what is allowed.
func (t Timeouts) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	thresholdOK := t.HeartbeatThreshold >= MinHeartbeatThreshold && t.HeartbeatThreshold <= MaxHeartbeatThreshold
	if !thresholdOK {
		bad("%s=%d is out of range %d..%d", VarHeartbeatThreshold, t.HeartbeatThreshold, MinHeartbeatThreshold, MaxHeartbeatThreshold)
	}
	msRange := func(name string, d, min, max time.Duration) bool {
		switch {
		case d%time.Millisecond != 0:
			bad("%s=%v is not a whole number of milliseconds", name, d)
		case d < min || d > max:
			bad("%s=%d is out of range %d..%d", name, d.Milliseconds(), min.Milliseconds(), max.Milliseconds())
		default:
			return true
		}
		return false
	}
	intervalOK := msRange(VarHeartbeatInterval, t.HeartbeatInterval, MinHeartbeatInterval, MaxHeartbeatInterval)
	idleOK := msRange(VarIdleTimeout, t.IdleTimeout, MinIdleTimeout, MaxNetworkTimeout)
	keepOK := msRange(VarKeepaliveDelay, t.KeepaliveDelay, MinKeepaliveDelay, MaxNetworkTimeout)
	msRange(VarReconnectDelay, t.ReconnectDelay, MinReconnectDelay, MaxNetworkTimeout)
	if idleOK && keepOK && t.KeepaliveDelay >= t.IdleTimeout {
		bad("%s=%d must be less than %s=%d, or idle links would time out between keepalives",
			VarKeepaliveDelay, t.KeepaliveDelay.Milliseconds(), VarIdleTimeout, t.IdleTimeout.Milliseconds())
	}
	switch k := t.KillAckTimeout; {
	case k == 0: // kill blocks disabled
	case k < 0:
		bad("%s=%d is negative; 0 disables kill blocks", VarKillAckTimeout, k.Milliseconds())
	case k%time.Millisecond != 0:
		bad("%s=%v is not a whole number of milliseconds", VarKillAckTimeout, k)
	case intervalOK && thresholdOK && (k < 2*t.HeartbeatInterval || k >= t.DeadTime()):
		bad("%s=%d is out of range: from %d (2 heartbeat intervals) to below the dead time of %d ms; 0 disables kill blocks",
			VarKillAckTimeout, k.Milliseconds(), (2 * t.HeartbeatInterval).Milliseconds(), t.DeadTime().Milliseconds())
	}
	return errors.Join(errs...)
}

// Var is one sysconfig variable and its value as the file writes it.
type Var struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// String is the variable as a sysconfig line writes it, quoted for the
// shell when it must be.
func (v Var) String() string { return v.Name + "=" + shellQuote(v.Value) }

// Vars lists the timeouts as sysconfig variables, in the file's order.
func (t Timeouts) Vars() []Var {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	return []Var{
		{VarHeartbeatThreshold, strconv.Itoa(t.HeartbeatThreshold)},
		{VarIdleTimeout, ms(t.IdleTimeout)},
		{VarKeepaliveDelay, ms(t.KeepaliveDelay)},
		{VarReconnectDelay, ms(t.ReconnectDelay)},
		{VarHeartbeatInterval, ms(t.HeartbeatInterval)},
		{VarKillAckTimeout, ms(t.KillAckTimeout)},
	}
}

// Mismatch is one timing value on which two nodes differ.
type Mismatch struct {
	Var   string
	Local string
	Peer  string
}

// Mismatches lists the values in which peer differs from t, in the file's
// order.
func (t Timeouts) Mismatches(peer Timeouts) []Mismatch {
	var out []Mismatch
	mine, theirs := t.Vars(), peer.Vars()
	for i := range mine {
		if mine[i].Value != theirs[i].Value {
			out = append(out, Mismatch{Var: mine[i].Name, Local: mine[i].Value, Peer: theirs[i].Value})
		}
	}
	return out
}

// ErrTimeoutsDiffer is wrapped by CheckPeer's error.
var ErrTimeoutsDiffer = errors.New("every node of a cluster must use the same timeouts")

// CheckPeer returns nil when peer, the timeouts node peerName runs with,
// equal t; otherwise an error that says which values differ, e.g.
// "node 'b' has O2CB_IDLE_TIMEOUT_MS=20000, this node 30000".
func (t Timeouts) CheckPeer(peerName string, peer Timeouts) error {
	ms := t.Mismatches(peer)
	if len(ms) == 0 {
		return nil
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s=%s, this node %s", m.Var, m.Peer, m.Local)
	}
	return fmt.Errorf("node '%s' has %s: %w", peerName, strings.Join(parts, "; "), ErrTimeoutsDiffer)
}

// FenceMethod is how a node fences itself once it has latched its I/O off.
type FenceMethod string

// The fence methods: O2CB's two (o2nm_fence_method_desc) and o2go's exit.
const (
	FenceReset FenceMethod = "reset" // reboot the machine at once (O2CB's default)
	FencePanic FenceMethod = "panic" // panic the kernel, leaving a crash dump
	FenceExit  FenceMethod = "exit"  // end the o2go process only: tests, containers
)

// ParseFenceMethod accepts reset, panic or exit, in any case (as the
// kernel's fence_method attribute does).
func ParseFenceMethod(s string) (FenceMethod, error) {
	switch m := FenceMethod(strings.ToLower(s)); m {
	case FenceReset, FencePanic, FenceExit:
		return m, nil
	}
	return "", fmt.Errorf("%s=%s is not a fence method; use reset, panic or exit", VarFenceMethod, s)
}

// Settings is everything o2go reads from the o2cb sysconfig file.
type Settings struct {
	// Enabled is O2CB_ENABLED: start the cluster stack at boot. As in the
	// o2cb init script, only the value "true" enables it.
	Enabled bool
	// Stack is O2CB_STACK, the cluster stack under OCFS2; o2go implements
	// "o2cb" (the default) and refuses the others (pcmk, cman).
	Stack string
	// BootCluster is O2CB_BOOTCLUSTER: the cluster of cluster.conf this node
	// runs in; empty for none.
	BootCluster string
	// Timeouts must be equal on every node.
	Timeouts Timeouts
	// FenceMethod is O2GO_FENCE_METHOD. Default reset, as O2CB's.
	FenceMethod FenceMethod
	// SecretFile is O2GO_CLUSTER_SECRET_FILE: the file with the secret that
	// nodes prove to each other (see LoadSecret). The secret is kept out of
	// the sysconfig file, which is world-readable.
	SecretFile string
}

// DefaultSettings is what a node runs with when the sysconfig file is
// missing or silent.
func DefaultSettings() Settings {
	return Settings{
		Stack:       DefaultStack,
		Timeouts:    DefaultTimeouts(),
		FenceMethod: DefaultFenceMethod,
		SecretFile:  DefaultSecretFile,
	}
}

// Validate checks all settings; each problem names its variable.
func (s Settings) Validate() error {
	var errs []error
	if s.Stack != DefaultStack {
		errs = append(errs, fmt.Errorf("%s=%s: o2go implements only the o2cb stack", VarStack, s.Stack))
	}
	if s.BootCluster != "" {
		if err := checkClusterName(s.BootCluster); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", VarBootCluster, err))
		}
	}
	if err := s.Timeouts.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := ParseFenceMethod(string(s.FenceMethod)); err != nil || s.FenceMethod != FenceMethod(strings.ToLower(string(s.FenceMethod))) {
		errs = append(errs, fmt.Errorf("%s=%s is not a fence method; use reset, panic or exit", VarFenceMethod, s.FenceMethod))
	}
	if !strings.HasPrefix(s.SecretFile, "/") {
		errs = append(errs, fmt.Errorf("%s=%s is not an absolute path", VarSecretFile, s.SecretFile))
	}
	return errors.Join(errs...)
}

// Vars lists all settings as sysconfig variables, in the file's order.
func (s Settings) Vars() []Var {
	enabled := "false"
	if s.Enabled {
		enabled = "true"
	}
	vars := []Var{{VarEnabled, enabled}, {VarStack, s.Stack}, {VarBootCluster, s.BootCluster}}
	vars = append(vars, s.Timeouts.Vars()...)
	return append(vars, Var{VarFenceMethod, string(s.FenceMethod)}, Var{VarSecretFile, s.SecretFile})
}

// Settings decodes the file's variables over DefaultSettings. An unset or
// empty variable keeps its default, as in the init script. Errors name the
// file, line and variable.
func (s *Sysconfig) Settings() (Settings, error) {
	st := DefaultSettings()
	p := &problems{file: s.file}
	get := func(key string) (string, bool) {
		v, ok := s.Get(key)
		return v, ok && v != ""
	}
	if v, ok := s.Get(VarEnabled); ok {
		st.Enabled = v == "true"
	}
	if v, ok := get(VarStack); ok {
		st.Stack = v
	}
	if v, ok := s.Get(VarBootCluster); ok {
		st.BootCluster = v
	}
	count := func(key string, dst *int) {
		if v, ok := get(key); ok {
			n, err := parseDecimal(v, 1<<31-1)
			if err != nil {
				p.add(s.line(key), "%s: %v", key, err)
				return
			}
			*dst = int(n)
		}
	}
	millis := func(key string, dst *time.Duration) bool {
		if v, ok := get(key); ok {
			n, err := parseDecimal(v, 1<<40) // Validate checks the real range

			if err != nil {
				p.add(s.line(key), "%s: %v (milliseconds)", key, err)
				return false
			}
			*dst = time.Duration(n) * time.Millisecond
			return true
		}
		return false
	}
	t := &st.Timeouts
	count(VarHeartbeatThreshold, &t.HeartbeatThreshold)
	millis(VarIdleTimeout, &t.IdleTimeout)
	millis(VarKeepaliveDelay, &t.KeepaliveDelay)
	millis(VarReconnectDelay, &t.ReconnectDelay)
	millis(VarHeartbeatInterval, &t.HeartbeatInterval)
	if !millis(VarKillAckTimeout, &t.KillAckTimeout) {
		t.KillAckTimeout = DefaultKillAckIntervals * t.HeartbeatInterval
	}
	if v, ok := get(VarFenceMethod); ok {
		m, err := ParseFenceMethod(v)
		if err != nil {
			p.add(s.line(VarFenceMethod), "%v", err)
		} else {
			st.FenceMethod = m
		}
	}
	if v, ok := get(VarSecretFile); ok {
		st.SecretFile = v
	}
	if err := p.err(); err != nil {
		return st, err
	}
	if err := st.Validate(); err != nil {
		return st, fmt.Errorf("%s: %w", s.file, err)
	}
	return st, nil
}

// SetSettings writes every setting into the file (see Set).
func (s *Sysconfig) SetSettings(st Settings) error {
	for _, v := range st.Vars() {
		if err := s.Set(v.Name, v.Value); err != nil {
			return err
		}
	}
	return nil
}

// LoadSettings reads the settings of the sysconfig file at path; a missing
// file gives DefaultSettings.
func LoadSettings(path string) (Settings, error) {
	s, err := LoadSysconfig(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultSettings(), nil
	}
	if err != nil {
		return Settings{}, err
	}
	return s.Settings()
}
