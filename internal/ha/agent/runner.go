// Package agent owns the HA resource agents of one node: it carries out the
// resource operations, event scripts and local checks the HA core
// (internal/ha) asks for. Service addresses are added and removed with
// netlink and announced with gratuitous ARP; file systems are checked (fsck)
// and mounted — o2go volumes with `o2go mount`, clustered ones through the
// node's agent and checked only while no node has them mounted
// (o2gofs.go); applications run their
// start/stop/monitor scripts; OCF resource agents run unchanged (OCF_ROOT,
// OCF_RESKEY_* parameters, the start/stop/monitor/meta-data actions and OCF's
// exit codes); processes are started and supervised (they die with the
// agent: PR_SET_PDEATHSIG). It also watches the interfaces of the configured
// networks (network_down/up, swap_adapter).
//
// agent is rank R4: it touches the outside world. Every operation is a
// blocking call bounded by its timeout; the node agent (internal/node/ha.go)
// runs them on goroutines, one operation per group at a time.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"o2go/internal/ha"
)

// Runner runs one node's resources.
type Runner struct {
	// Node is this node's name (O2GO_HA_NODE, OCF_RESKEY_CRM_meta_on_node).
	Node string
	// OCFRoot is where OCF resource agents live (default /usr/lib/ocf).
	OCFRoot string
	// O2go is the o2go binary that checks and mounts o2go volumes
	// (default: this executable).
	O2go string
	// AgentSocket is the control socket of this node's agent, through
	// which clustered o2go volumes mount and HA's volume locks are taken
	// (o2go mount/lock --socket). Empty: the agent of node Node at its
	// default socket (o2go mount/lock --node).
	AgentSocket string
	// Logf, when set, logs what the runner does.
	Logf func(format string, args ...any)

	mu    sync.Mutex
	cfg   *ha.Config
	procs map[string]*proc // supervised processes, by resource name
}

// NewRunner returns the runner of node name.
func NewRunner(name string) *Runner {
	r := &Runner{Node: name, OCFRoot: "/usr/lib/ocf", procs: map[string]*proc{}}
	if exe, err := os.Executable(); err == nil {
		r.O2go = exe
	}
	return r
}

// SetConfig tells the runner the configuration in force (networks).
func (r *Runner) SetConfig(c *ha.Config) {
	r.mu.Lock()
	r.cfg = c
	r.mu.Unlock()
}

func (r *Runner) config() *ha.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg == nil {
		return &ha.Config{}
	}
	return r.cfg
}

func (r *Runner) logf(format string, args ...any) {
	if r.Logf != nil {
		r.Logf(format, args...)
	}
}

// Do runs one operation and reports it; ctx bounds it along with the
// operation's timeout.
func (r *Runner) Do(ctx context.Context, op ha.Op) ha.OpResult {
	if op.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, op.Timeout)
		defer cancel()
	}
	var st ha.OpStatus
	var note string
	var err error
	res := &op.Resource
	switch res.Type {
	case ha.TypeIP:
		st, err = r.ip(ctx, op.Kind, res)
	case ha.TypeFS:
		st, note, err = r.fs(ctx, op.Kind, res)
	case ha.TypeApp:
		st, err = r.app(ctx, op.Kind, res)
	case ha.TypeOCF:
		st, err = r.ocf(ctx, op.Kind, res)
	case ha.TypeProcess:
		st, err = r.process(ctx, op.Kind, res)
	default:
		st, err = ha.OpFailed, fmt.Errorf("resource %s: unknown type %q", res.Name, res.Type)
	}
	out := ha.OpResult{ID: op.ID, Status: st, Detail: note}
	if err != nil {
		out.Status = ha.OpFailed
		out.Detail = err.Error()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			out.Detail = fmt.Sprintf("timed out after %v: %v", op.Timeout, err)
		}
	}
	r.logf("ha: %s %s (%s): %s %s", op.Kind, res.Name, res.Type, out.Status, out.Detail)
	return out
}

// RunScript runs an event script and reports its exit status.
func (r *Runner) RunScript(ctx context.Context, s ha.ScriptRun) ha.ScriptResult {
	if s.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.Timeout)
		defer cancel()
	}
	code, out, err := run(ctx, s.Path, s.Args, s.Env, "")
	res := ha.ScriptResult{ID: s.ID, Exit: code}
	switch {
	case err != nil:
		res.Exit, res.Detail = -1, err.Error()
	case code != 0:
		res.Detail = lastLine(out)
	}
	r.logf("ha: %s %s script %s: exit %d %s", s.Event, s.Phase, s.Path, res.Exit, res.Detail)
	return res
}

// run runs path with args and extra environment, killing its process group
// when ctx ends. It returns the exit code; err only when it could not run
// or was killed.
func run(ctx context.Context, path string, args, env []string, dir string) (int, string, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return -1, "", fmt.Errorf("%s: %w", path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), buf.String(), nil
		}
		if err != nil {
			return -1, buf.String(), err
		}
		return 0, buf.String(), nil
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return -1, buf.String(), fmt.Errorf("%s killed: %w", path, ctx.Err())
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// resEnv is the environment scripts and agents of a resource get.
func (r *Runner) resEnv(res *ha.Resource) []string {
	return append([]string{"O2GO_HA_NODE=" + r.Node, "O2GO_HA_RESOURCE=" + res.Name}, res.Env...)
}

// app runs an application's scripts: monitor exits 0 when it runs, 7 when
// it is cleanly stopped (OCF's codes); without a monitor script the
// application counts as running once started.
func (r *Runner) app(ctx context.Context, kind ha.OpKind, res *ha.Resource) (ha.OpStatus, error) {
	env := r.resEnv(res)
	switch kind {
	case ha.OpStart, ha.OpStop:
		path := res.StartScript
		if kind == ha.OpStop {
			path = res.StopScript
		}
		argv := strings.Fields(path)
		code, out, err := run(ctx, argv[0], argv[1:], env, "")
		if err != nil {
			return ha.OpFailed, err
		}
		if code != 0 {
			return ha.OpFailed, fmt.Errorf("%s exited %d: %s", path, code, lastLine(out))
		}
		return ha.OpOK, nil
	}
	if res.MonitorScript == "" {
		return ha.OpOK, nil
	}
	argv := strings.Fields(res.MonitorScript)
	code, out, err := run(ctx, argv[0], argv[1:], env, "")
	return ocfMonitor(res.MonitorScript, code, out, err)
}

// OCF exit codes.
const (
	ocfSuccess    = 0
	ocfNotRunning = 7
)

func ocfMonitor(what string, code int, out string, err error) (ha.OpStatus, error) {
	switch {
	case err != nil:
		return ha.OpFailed, err
	case code == ocfSuccess:
		return ha.OpOK, nil
	case code == ocfNotRunning:
		return ha.OpNotRunning, nil
	}
	return ha.OpFailed, fmt.Errorf("%s exited %d (%s): %s", what, code, ocfCodeName(code), lastLine(out))
}

func ocfCodeName(code int) string {
	names := map[int]string{1: "generic error", 2: "invalid arguments", 3: "unimplemented", 4: "insufficient privileges",
		5: "not installed", 6: "not configured", 8: "running as master", 9: "failed as master"}
	if n, ok := names[code]; ok {
		return n
	}
	return "unknown code"
}

// OCFPath is where the agent of an ocf resource lives.
func (r *Runner) OCFPath(res *ha.Resource) string {
	if strings.HasPrefix(res.Agent, "/") {
		return res.Agent
	}
	prov, typ, _ := strings.Cut(res.Agent, ":")
	return r.OCFRoot + "/resource.d/" + prov + "/" + typ
}

// ocfEnv is an OCF agent's environment (the OCF resource agent API).
func (r *Runner) ocfEnv(res *ha.Resource, timeout time.Duration) []string {
	prov, typ, _ := strings.Cut(res.Agent, ":")
	if strings.HasPrefix(res.Agent, "/") {
		prov, typ = "", res.Agent[strings.LastIndexByte(res.Agent, '/')+1:]
	}
	env := []string{"OCF_ROOT=" + r.OCFRoot, "OCF_RA_VERSION_MAJOR=1", "OCF_RA_VERSION_MINOR=0",
		"OCF_RESOURCE_INSTANCE=" + res.Name, "OCF_RESOURCE_TYPE=" + typ, "OCF_RESOURCE_PROVIDER=" + prov,
		"OCF_RESKEY_CRM_meta_on_node=" + r.Node}
	if timeout > 0 {
		env = append(env, fmt.Sprintf("OCF_RESKEY_CRM_meta_timeout=%d", timeout.Milliseconds()))
	}
	for k, v := range res.Params {
		env = append(env, "OCF_RESKEY_"+k+"="+v)
	}
	return append(env, r.resEnv(res)...)
}

func (r *Runner) ocf(ctx context.Context, kind ha.OpKind, res *ha.Resource) (ha.OpStatus, error) {
	var timeout time.Duration
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	path := r.OCFPath(res)
	action := kind.String()
	code, out, err := run(ctx, path, []string{action}, r.ocfEnv(res, timeout), "")
	if kind == ha.OpMonitor {
		return ocfMonitor(path+" monitor", code, out, err)
	}
	if err != nil {
		return ha.OpFailed, err
	}
	if code != ocfSuccess {
		return ha.OpFailed, fmt.Errorf("%s %s exited %d (%s): %s", path, action, code, ocfCodeName(code), lastLine(out))
	}
	return ha.OpOK, nil
}

// OCFMetaData runs an OCF agent's meta-data action.
func (r *Runner) OCFMetaData(ctx context.Context, res *ha.Resource) (string, error) {
	code, out, err := run(ctx, r.OCFPath(res), []string{"meta-data"}, r.ocfEnv(res, 0), "")
	if err != nil {
		return "", err
	}
	if code != 0 {
		return "", fmt.Errorf("%s meta-data exited %d", r.OCFPath(res), code)
	}
	return out, nil
}
