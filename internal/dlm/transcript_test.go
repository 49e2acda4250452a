package dlm

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"o2go/internal/base"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden output of testdata/*.txt")

// TestTranscripts runs the scripted scenarios of testdata/*.txt on the test
// network and compares what happens with the recorded story. The format is
// etcd-io/raft's: a command, "----", the output it must produce, a blank
// line. -rewrite records the current output instead.
//
// Commands (N is a node number, ID a lock id as printed):
//
//	nodes N...                         start a cluster of these nodes
//	join N DOMAIN [gate]               join (gate: keep dead locks until recovery-done)
//	leave N DOMAIN
//	lock N DOMAIN NAME MODE [noqueue] [recovery]
//	convert N ID MODE [noqueue] [lvb=TEXT]
//	unlock N ID [lvb=TEXT]
//	cancel N ID
//	deadline N ID DURATION
//	tick DURATION                      advance every node's clock
//	deliver                            deliver everything until quiet
//	deliver-one FROM TO                deliver one message of that link
//	membership                         deliver pending membership events only
//	crash N / restart N
//	partition N... | N...   /   heal
//	reset N M / reconnect N M          break a connection (in flight: lost) / bring it back (LinkUp)
//	streams N                          what node N's streams did (sent again, dropped)
//	recovery-done N DOMAIN DEAD
//	state N DOMAIN                     the dlm_state view
//	locks N DOMAIN [NAME]              the dlm_locks view
//	check                              one master per resource, holders agree
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runTranscript(t, f)
		})
	}
}

type transcript struct {
	t   *testing.T
	net *testNet
	out *strings.Builder
}

func runTranscript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var rewritten bytes.Buffer
	tr := &transcript{t: t, out: &strings.Builder{}}
	failed := false
	for i := 0; i < len(lines); {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			rewritten.WriteString(line + "\n")
			i++
			continue
		}
		cmdLine := i + 1
		var cmds []string
		for i < len(lines) && lines[i] != "----" {
			cmds = append(cmds, lines[i])
			i++
		}
		if i >= len(lines) {
			t.Fatalf("%s:%d: command without ----", path, cmdLine)
		}
		i++ // ----
		var want []string
		for i < len(lines) && lines[i] != "" {
			want = append(want, lines[i])
			i++
		}
		tr.out.Reset()
		for _, c := range cmds {
			tr.run(c)
		}
		got := strings.TrimRight(tr.out.String(), "\n")
		for _, c := range cmds {
			rewritten.WriteString(c + "\n")
		}
		rewritten.WriteString("----\n")
		if got != "" {
			rewritten.WriteString(got + "\n")
		}
		if w := strings.Join(want, "\n"); got != w && !*rewrite {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, cmdLine, strings.Join(cmds, "; "), got, w)
			failed = true
		}
	}
	if *rewrite {
		out := strings.TrimRight(rewritten.String(), "\n") + "\n"
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = failed
}

func (tr *transcript) printf(format string, args ...any) {
	fmt.Fprintf(tr.out, format+"\n", args...)
}

func parseNode(s string) base.NodeID {
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v >= base.MaxNodes {
		panic(fmt.Sprintf("bad node %q", s))
	}
	return base.NodeID(v)
}

func lvbText(v *LVB) string {
	b := bytes.TrimRight(v[:], "\x00")
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return fmt.Sprintf("%x", b)
		}
	}
	return string(b)
}

func (tr *transcript) hook() {
	net := tr.net
	net.onAST = func(x base.NodeID, a AST) {
		s := fmt.Sprintf("n%d: ast %s %d:%d %s/%s %s %s", x, a.Op, x, a.ID, a.Domain, a.Name, a.Status, a.Mode)
		if a.LVBRead {
			if a.LVBValid {
				s += fmt.Sprintf(" lvb=%q", lvbText(&a.LVB))
			} else {
				s += " lvb=INVALID"
			}
		}
		tr.printf("%s", s)
	}
	net.onBAST = func(x base.NodeID, b BAST) {
		tr.printf("n%d: bast %d:%d %s/%s wants %s", x, x, b.ID, b.Domain, b.Name, b.Mode)
	}
	net.onEvent = func(x base.NodeID, e Event) {
		switch e.Kind {
		case EventRecovered, EventReleased:
			tr.printf("n%d: event %s %s node %d", x, e.Kind, e.Domain, e.Dead.Node)
		case EventDeadlock:
			tr.printf("n%d: event deadlock %s/%s: %s", x, e.Domain, e.Resource, e.Detail)
		default:
			s := fmt.Sprintf("n%d: event %s %s", x, e.Kind, e.Domain)
			if e.Detail != "" {
				s += ": " + e.Detail
			}
			tr.printf("%s", s)
		}
	}
	net.onErr = func(x base.NodeID, err error) {
		tr.printf("n%d: error: %v", x, err)
	}
}

func (tr *transcript) run(line string) {
	f := strings.Fields(line)
	cmd, args := f[0], f[1:]
	net := tr.net
	flagsOf := func(rest []string) (Flags, *LVB) {
		var fl Flags
		var v *LVB
		for _, a := range rest {
			switch {
			case a == "noqueue":
				fl |= NoQueue
			case a == "recovery":
				fl |= Recovery
			case strings.HasPrefix(a, "lvb="):
				v = new(LVB)
				copy(v[:], strings.TrimPrefix(a, "lvb="))
			default:
				panic("unknown option " + a)
			}
		}
		return fl, v
	}
	report := func(x base.NodeID, err error) {
		if err != nil {
			tr.printf("n%d: %v", x, err)
		}
	}
	switch cmd {
	case "nodes":
		var ids []base.NodeID
		for _, a := range args {
			ids = append(ids, parseNode(a))
		}
		tr.net = newTestNet()
		tr.net.onErr = nil
		tr.hook()
		// Start the nodes through the hooks so their startup is logged too.
		for _, x := range ids {
			tr.net.events = append(tr.net.events, memberEvent{up: true, node: x})
		}
		for _, x := range ids {
			tr.net.nodes[x] = &testNode{id: x, alive: true}
		}
		for _, x := range ids {
			tn := tr.net.nodes[x]
			tn.n = New(Config{Self: x, MaxPayload: 4096})
			tn.next = len(tr.net.events)
			tr.net.handle(x, tn.n.Membership(uint64(len(tr.net.events)), tr.net.liveMap()))
		}
	case "join":
		x := parseNode(args[0])
		gate := len(args) > 2 && args[2] == "gate"
		report(x, net.call(x, func(n *Node) (Ready, error) { return n.Join(args[1], gate) }))
	case "leave":
		x := parseNode(args[0])
		report(x, net.call(x, func(n *Node) (Ready, error) { return n.Leave(args[1]) }))
	case "lock":
		x := parseNode(args[0])
		mode, err := ParseMode(args[3])
		if err != nil {
			panic(err)
		}
		fl, _ := flagsOf(args[4:])
		n := net.node(x)
		id, rd, err := n.Lock(args[1], args[2], mode, fl)
		if err != nil {
			report(x, err)
		} else {
			tr.printf("n%d: lock %d:%d %s/%s %s requested", x, x, id, args[1], args[2], mode)
		}
		net.handle(x, rd)
	case "convert":
		x := parseNode(args[0])
		id, _ := strconv.Atoi(args[1])
		mode, err := ParseMode(args[2])
		if err != nil {
			panic(err)
		}
		fl, v := flagsOf(args[3:])
		report(x, net.call(x, func(n *Node) (Ready, error) { return n.Convert(LockID(id), mode, fl, v) }))
	case "unlock":
		x := parseNode(args[0])
		id, _ := strconv.Atoi(args[1])
		_, v := flagsOf(args[2:])
		report(x, net.call(x, func(n *Node) (Ready, error) { return n.Unlock(LockID(id), v) }))
	case "cancel":
		x := parseNode(args[0])
		id, _ := strconv.Atoi(args[1])
		report(x, net.call(x, func(n *Node) (Ready, error) { return n.Cancel(LockID(id)) }))
	case "deadline":
		x := parseNode(args[0])
		id, _ := strconv.Atoi(args[1])
		d, err := time.ParseDuration(args[2])
		if err != nil {
			panic(err)
		}
		report(x, net.node(x).SetDeadline(LockID(id), net.now+d))
	case "tick":
		d, err := time.ParseDuration(args[0])
		if err != nil {
			panic(err)
		}
		net.tick(d)
	case "deliver":
		if !net.settle(100000) {
			tr.printf("deliver: no quiescence")
		}
	case "deliver-one":
		k := [2]base.NodeID{parseNode(args[0]), parseNode(args[1])}
		if len(net.links[k]) == 0 {
			tr.printf("nothing from %d to %d", k[0], k[1])
			return
		}
		m := net.links[k][0]
		tr.printf("%d->%d %s", k[0], k[1], kind(m.typ-MsgTypeFirst))
		net.deliver(k)
	case "membership":
		for {
			_, evs := net.deliverable()
			if len(evs) == 0 {
				break
			}
			net.deliverEvent(evs[0])
		}
	case "crash":
		x := parseNode(args[0])
		net.crash(x)
	case "restart":
		x := parseNode(args[0])
		net.restart(x)
	case "partition":
		var a, b []base.NodeID
		cur := &a
		for _, s := range args {
			if s == "|" {
				cur = &b
				continue
			}
			*cur = append(*cur, parseNode(s))
		}
		net.partition(a, b)
	case "heal":
		net.heal()
	case "reset":
		net.reset(parseNode(args[0]), parseNode(args[1]))
	case "reconnect":
		net.reconnect(parseNode(args[0]), parseNode(args[1]))
	case "streams":
		st := net.node(parseNode(args[0])).Streams()
		tr.printf("n%s: streams: %d sent again, %d duplicates, %d past a gap, %d stale dropped; %d unacknowledged", args[0], st.Resent, st.Duplicates, st.Gaps, st.Stale, st.Unacked)
	case "recovery-done":
		x := parseNode(args[0])
		dead := parseNode(args[2])
		report(x, net.call(x, func(n *Node) (Ready, error) { return n.RecoveryDone(args[1], dead) }))
	case "state":
		x := parseNode(args[0])
		for _, s := range net.node(x).State() {
			if s.Domain == args[1] {
				tr.out.WriteString(FormatState(s))
			}
		}
	case "locks":
		x := parseNode(args[0])
		name := ""
		if len(args) > 2 {
			name = args[2]
		}
		rs, err := net.node(x).Locks(args[1], name)
		if err != nil {
			tr.printf("%v", err)
			return
		}
		for _, r := range rs {
			tr.out.WriteString(FormatResource(r))
		}
	case "check":
		if err := net.checkMasters(); err != nil {
			tr.printf("check: %v", err)
		} else {
			tr.printf("check: ok")
		}
		for _, x := range net.liveIDs() {
			if err := net.nodes[x].n.CheckInvariants(); err != nil {
				tr.printf("check: %v", err)
			}
		}
	default:
		panic("unknown command " + cmd)
	}
}
