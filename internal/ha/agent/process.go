package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"o2go/internal/ha"
)

// proc is a supervised process.
type proc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	output *tailBuffer
}

// tailBuffer keeps the last few KiB a process wrote.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = append([]byte(nil), t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

// process starts, checks and stops a supervised command. It runs in its
// own process group, dies with the agent (PR_SET_PDEATHSIG), and is stopped
// with SIGTERM, then SIGKILL at the stop timeout.
func (r *Runner) process(ctx context.Context, kind ha.OpKind, res *ha.Resource) (ha.OpStatus, error) {
	r.mu.Lock()
	p := r.procs[res.Name]
	r.mu.Unlock()
	alive := p != nil && !p.exited()
	switch kind {
	case ha.OpMonitor:
		if alive {
			return ha.OpOK, nil
		}
		if p != nil && p.err != nil {
			return ha.OpNotRunning, nil
		}
		return ha.OpNotRunning, nil
	case ha.OpStart:
		if alive {
			return ha.OpOK, nil
		}
		cmd := exec.Command(res.Command[0], res.Command[1:]...)
		cmd.Dir = res.Dir
		cmd.Env = append(os.Environ(), r.resEnv(res)...)
		tb := &tailBuffer{}
		cmd.Stdout, cmd.Stderr = tb, tb
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return ha.OpFailed, fmt.Errorf("starting %s: %w", res.Command[0], err)
		}
		np := &proc{cmd: cmd, done: make(chan struct{}), output: tb}
		go func() {
			np.err = cmd.Wait()
			close(np.done)
		}()
		r.mu.Lock()
		r.procs[res.Name] = np
		r.mu.Unlock()
		// A command that dies at once did not start.
		select {
		case <-np.done:
			return ha.OpFailed, fmt.Errorf("%s exited at once (%v): %s", res.Command[0], np.err, lastLine(string(tb.b)))
		case <-time.After(200 * time.Millisecond):
			return ha.OpOK, nil
		case <-ctx.Done():
			return ha.OpFailed, ctx.Err()
		}
	}
	// stop
	if !alive {
		r.mu.Lock()
		delete(r.procs, res.Name)
		r.mu.Unlock()
		return ha.OpOK, nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	grace := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		grace = time.Until(d) / 2
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-ctx.Done():
			return ha.OpFailed, fmt.Errorf("process %d of %s did not die: %w", p.cmd.Process.Pid, res.Name, ctx.Err())
		}
	}
	// The group may have children left behind.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	r.mu.Lock()
	delete(r.procs, res.Name)
	r.mu.Unlock()
	return ha.OpOK, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid returns the pid of the supervised process of resource name (0: none).
func (r *Runner) Pid(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.procs[name]; p != nil && !p.exited() {
		return p.cmd.Process.Pid
	}
	return 0
}
