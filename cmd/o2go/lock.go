package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	ossignal "os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"o2go/internal/dlm"
	"o2go/internal/node"
)

func init() { subcommands = append(subcommands, newLockCommand) }

// exitTempFail is EX_TEMPFAIL (sysexits.h): the lock was busy (--try) or
// the wait timed out (--timeout).
const exitTempFail = 75

func newLockCommand() *cobra.Command {
	var nodeName, socket, modeName, lvbSet string
	var try, lvbGet bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "lock [--node NAME] [--mode EX|PW|PR|CW|CR] [--try] [--timeout D] [--lvb-get] [--lvb-set VALUE] DOMAIN/NAME [-- COMMAND...]",
		Short: "Run a command while holding a cluster-wide lock, like flock(1) across the cluster",
		Long: `Take lock NAME of DLM domain DOMAIN through this node's agent (or --node's),
run COMMAND while holding it, then release it. The domain is an application
domain, joined on first use, as a dlmfs directory is. The lock is released
too when this command dies: it belongs to its connection to the agent.

--mode is the DLM lock mode (default EX): EX excludes every other holder,
PW excludes writers and protected readers (compatible with CR), PR is shared
with other PR and CR holders, CW with CW and CR, CR with all but EX.

--try does not wait: a lock another node holds in a conflicting mode fails
at once. --timeout gives up after the duration (e.g. 10s).

If the agent goes away while COMMAND runs (it was killed, or fenced this
node), the lock no longer protects anything — the other nodes recover it
once they declare this node dead — so COMMAND is killed (SIGKILL) at once
and this command fails. Without a terminal, COMMAND runs in a process group
of its own, and signals and the kill reach everything it started.

The lock's 64-byte value block (LVB) travels with it: --lvb-get prints the
value read when the lock was granted (empty when invalid: a holder that could
have written it died); --lvb-set VALUE stores VALUE when the lock is released
(the mode must be PW or EX). Without COMMAND, --lvb-get and --lvb-set just
take the lock, read or write, and release it.

EXIT STATUS
  the exit status of COMMAND (128+N if it died of signal N), else 0
  1   bad arguments, no agent, the agent refused, or the agent went away
      while COMMAND held the lock (COMMAND was killed)
  75  the lock is busy (--try) or the wait timed out (--timeout)`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			domain, name, ok := strings.Cut(args[0], "/")
			if !ok || domain == "" || name == "" {
				return fmt.Errorf("lock %q: give it as DOMAIN/NAME", args[0])
			}
			command := args[1:]
			if n := cmd.ArgsLenAtDash(); n >= 0 && n != 1 {
				return fmt.Errorf("give one DOMAIN/NAME before -- COMMAND")
			}
			mode := dlm.ModeEX
			if modeName != "" {
				m, err := dlm.ParseMode(modeName)
				if err != nil || m == dlm.ModeNL {
					return fmt.Errorf("--mode %q: one of EX, PW, PR, CW, CR", modeName)
				}
				mode = m
			}
			var setVal *dlm.LVB
			if cmd.Flags().Changed("lvb-set") {
				if mode != dlm.ModeEX && mode != dlm.ModePW {
					return fmt.Errorf("--lvb-set needs --mode PW or EX (the value block is stored when a PW or EX lock is released)")
				}
				if len(lvbSet) > dlm.LVBLen {
					return fmt.Errorf("--lvb-set: %d bytes, the value block holds %d", len(lvbSet), dlm.LVBLen)
				}
				setVal = new(dlm.LVB)
				copy(setVal[:], lvbSet)
			}
			if timeout < 0 {
				return fmt.Errorf("--timeout %v: give a positive duration (or leave it out to wait)", timeout)
			}
			if len(command) == 0 && !lvbGet && setVal == nil {
				return fmt.Errorf("nothing to do: give -- COMMAND, --lvb-get or --lvb-set")
			}
			cl, err := dialAgent(nodeName, socket)
			if err != nil {
				return err
			}
			defer cl.Close()
			var res node.LockResult
			if err := cl.Call("dlm.lock", node.LockParams{Domain: domain, Name: name, Mode: mode.String(), Try: try,
				TimeoutMs: timeout.Milliseconds()}, &res); err != nil {
				return err
			}
			switch res.Status {
			case "ok":
			case "busy":
				return &exitError{code: exitTempFail, err: fmt.Errorf("%s/%s is busy (held by another in a conflicting mode)", domain, name)}
			case "timed out":
				err := fmt.Errorf("%s/%s: not granted within %v", domain, name, timeout)
				if res.Detail != "" {
					err = fmt.Errorf("%s/%s: not granted within %v: %s", domain, name, timeout, res.Detail)
				}
				return &exitError{code: exitTempFail, err: err}
			default:
				return fmt.Errorf("%s/%s: %s", domain, name, res.Status)
			}
			if lvbGet {
				v, err := node.ParseLVBHex(res.LVB)
				if err != nil {
					return err
				}
				if res.LVBValid {
					fmt.Fprintln(cmd.OutOrStdout(), lvbString(v))
				} else {
					fmt.Fprintln(cmd.ErrOrStderr(), "o2go: the value block is invalid (a holder that could have written it died)")
					fmt.Fprintln(cmd.OutOrStdout())
				}
			}
			code := 0
			if len(command) > 0 {
				var lost bool
				if code, lost = runHolding(cmd, command, cl.Hangup(50*time.Millisecond)); lost {
					return fmt.Errorf("%s/%s: lost the lock: the agent went away (killed or fenced) while COMMAND held it; COMMAND was killed", domain, name)
				}
			}
			up := node.UnlockParams{ID: res.ID}
			if setVal != nil {
				up.LVB = node.LVBHex(setVal)
			}
			if err := cl.Call("dlm.unlock", up, nil); err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&nodeName, "node", "", "use the agent of node `NAME` (default: this host's, or the only agent running here)")
	f.StringVar(&socket, "socket", "", "the agent's control socket `PATH` (default /run/o2go/NODE.sock)")
	_ = f.MarkHidden("socket")
	f.StringVar(&modeName, "mode", "EX", "lock `MODE`: EX, PW, PR, CW or CR")
	f.BoolVar(&try, "try", false, "fail at once (exit 75) if the lock is busy")
	f.DurationVar(&timeout, "timeout", 0, "give up (exit 75) after `D`, e.g. 10s (default: wait)")
	f.BoolVar(&lvbGet, "lvb-get", false, "print the lock value block read when the lock was granted")
	f.StringVar(&lvbSet, "lvb-set", "", "store `VALUE` in the lock value block on release (PW or EX)")
	return cmd
}

// dialAgent connects to the control socket of node name's agent.
func dialAgent(name, socket string) (*node.ControlClient, error) {
	if socket == "" {
		var err error
		if socket, err = socketFor(name); err != nil {
			return nil, err
		}
	}
	return node.DialControl(socket)
}

// runHolding runs command with the terminal, and returns its exit status.
// SIGINT and SIGTERM go to the command, not to this process: the lock is
// released after the command ends. When hangup closes first (the agent
// that holds the lock is gone), the command is killed and lost is true.
func runHolding(cmd *cobra.Command, command []string, hangup <-chan struct{}) (code int, lost bool) {
	c := exec.Command(command[0], command[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
	// Without a terminal COMMAND gets a process group of its own, so that
	// signals and a lost lock reach everything it started. On a terminal it
	// stays in the foreground group (job control, the terminal's signals).
	group := !onTerminal(os.Stdin)
	if group {
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	signal := func(s syscall.Signal) {
		if group {
			_ = syscall.Kill(-c.Process.Pid, s)
		} else {
			_ = c.Process.Signal(s)
		}
	}
	sig := make(chan os.Signal, 2)
	ossignal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer ossignal.Stop(sig)
	if err := c.Start(); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "o2go: %v\n", err)
		return 127, false
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	for {
		select {
		case s := <-sig:
			signal(s.(syscall.Signal))
		case <-hangup:
			signal(syscall.SIGKILL)
			<-done
			return 1, true
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal()), false
				}
				return ee.ExitCode(), false
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "o2go: %v\n", err)
				return 1, false
			}
			return 0, false
		}
	}
}

// onTerminal reports whether f is a terminal.
func onTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// lvbString renders a value block: its bytes up to the trailing zeros, as
// text when printable, else as hex.
func lvbString(v *dlm.LVB) string {
	h := node.LVBHex(v)
	b := v[:len(h)/2]
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return "hex:" + h
		}
	}
	return string(b)
}
