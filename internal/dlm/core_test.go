package dlm

import (
	"slices"
	"strings"
	"testing"

	"o2go/internal/base"
	cnet "o2go/internal/cluster/net"
)

func TestKeyIsO2DLMs(t *testing.T) {
	// ocfs2(7), DLM DEBUGGING: "Domain: 45F81E3B6F2B48CCAAD1AE7945AB2001
	// Key: 0x10748e61".
	if k := Key("45F81E3B6F2B48CCAAD1AE7945AB2001"); k != 0x10748e61 {
		t.Fatalf("Key = %#x, want 0x10748e61", k)
	}
}

func TestCompatibilityMatrix(t *testing.T) {
	// The standard matrix, row by row (NL CR CW PR PW EX).
	want := []string{"111111", "111110", "111000", "110100", "110000", "100000"}
	for a := ModeNL; a <= ModeEX; a++ {
		for b := ModeNL; b <= ModeEX; b++ {
			if got := Compatible(a, b); got != (want[a][b] == '1') {
				t.Errorf("Compatible(%s, %s) = %v", a, b, got)
			}
			if Compatible(a, b) != Compatible(b, a) {
				t.Errorf("not symmetric at %s, %s", a, b)
			}
		}
	}
	// Weaker: the down-conversions; CW and PR are not ordered.
	for _, c := range []struct {
		a, b Mode
		want bool
	}{{ModeNL, ModeEX, true}, {ModePR, ModeEX, true}, {ModeCR, ModePW, true}, {ModeCW, ModePW, true},
		{ModePR, ModePW, true}, {ModeCW, ModePR, false}, {ModePR, ModeCW, false}, {ModeEX, ModePR, false}, {ModePR, ModePR, false}} {
		if got := Weaker(c.a, c.b); got != c.want {
			t.Errorf("Weaker(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	// strongestCompatible: what a lock of unknown mode may have been.
	for _, c := range []struct {
		held []Mode
		want Mode
	}{{nil, ModeEX}, {[]Mode{ModeNL}, ModeEX}, {[]Mode{ModeCR}, ModePW}, {[]Mode{ModeCW}, ModeCW},
		{[]Mode{ModePR}, ModePR}, {[]Mode{ModePW}, ModeCR}, {[]Mode{ModeEX}, ModeNL}, {[]Mode{ModeCR, ModePR}, ModePR}} {
		var h uint8
		for _, m := range c.held {
			h |= 1 << m
		}
		if got := strongestCompatible(h); got != c.want {
			t.Errorf("strongestCompatible(%v) = %s, want %s", c.held, got, c.want)
		}
	}
	for _, s := range []string{"nl", "Cr", "CW", "pr", "PW", "ex"} {
		if _, err := ParseMode(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseMode("XX"); err == nil {
		t.Error("ParseMode(XX) accepted")
	}
}

func TestLVBRules(t *testing.T) {
	// Reads on grants that do not lower; writes lowering from PW/EX.
	for _, c := range []struct {
		from, to Mode
		op       lvbOp
	}{{ModeNone, ModeNL, lvbRead}, {ModeNL, ModeEX, lvbRead}, {ModePR, ModePR, lvbRead},
		{ModePR, ModeNL, lvbNone}, {ModePW, ModeEX, lvbRead}, {ModePW, ModePR, lvbWrite},
		{ModeEX, ModeEX, lvbWrite}, {ModeEX, ModeNone, lvbWrite}, {ModeCW, ModeCR, lvbNone}} {
		if got := lvbOpFor(c.from, c.to); got != c.op {
			t.Errorf("lvbOpFor(%s, %s) = %d, want %d", c.from, c.to, got, c.op)
		}
	}
}

// TestResourceLockLimit: a resource refuses a lock past
// MaxLocksPerResource, so its state always fits one frame.
func TestResourceLockLimit(t *testing.T) {
	net := newTestNet(1, 2)
	for _, x := range []base.NodeID{1, 2} {
		_ = net.call(x, func(n *Node) (Ready, error) { return n.Join("vol", false) })
	}
	net.settle(100000)
	var last AST
	net.onAST = func(x base.NodeID, a AST) { last = a }
	for i := 0; i <= MaxLocksPerResource; i++ {
		if _, err := net.lock(base.NodeID(1+i%2), "vol", "hot", ModeNL, 0); err != nil {
			t.Fatal(err)
		}
		net.settle(100000)
		if i < MaxLocksPerResource && last.Status != StatusOK {
			t.Fatalf("lock %d: %s", i, last.Status)
		}
	}
	if last.Status != StatusOverflow {
		t.Fatalf("lock past the limit: %s", last.Status)
	}
	for _, x := range []base.NodeID{1, 2} {
		d := net.node(x).byName["vol"]
		if r := d.res["hot"]; r != nil && r.m != nil {
			s := r.m.state("hot")
			b := encode(nil, envelope{MSeq: 1, Start: 1, Stream: 1, Seq: 1}, &transferMsg{Epoch: 1, Resources: []resState{s}})
			if len(b) > cnet.MaxPayload {
				t.Fatalf("a full resource's state takes %d bytes, more than a frame", len(b))
			}
		}
	}
}

func TestDebugViewsRoundTripThroughJSON(t *testing.T) {
	for m := ModeNone; m <= ModeEX; m++ {
		b, _ := m.MarshalText()
		var back Mode
		if err := back.UnmarshalText(b); err != nil || back != m {
			t.Fatalf("mode %s: %v %s", m, err, back)
		}
	}
	for _, f := range []Flags{0, NoQueue, Recovery, NoQueue | Recovery} {
		b, _ := f.MarshalText()
		var back Flags
		if err := back.UnmarshalText(b); err != nil || back != f {
			t.Fatalf("flags %s: %v %s", f, err, back)
		}
	}
	for o := OpNone; o < numOps; o++ {
		b, _ := o.MarshalText()
		var back Op
		if err := back.UnmarshalText(b); err != nil || back != o {
			t.Fatalf("op %s: %v %s", o, err, back)
		}
	}
}

// TestManyResourcesMigrate: thousands of resource states move in batches
// that fit the payload limit when a node joins and another leaves, and every
// lock is still where its holder thinks it is.
func TestManyResourcesMigrate(t *testing.T) {
	net := newTestNet(1, 2, 3)
	for _, x := range []base.NodeID{1, 2} {
		_ = net.call(x, func(n *Node) (Ready, error) { return n.Join("vol", false) })
	}
	net.settle(1 << 20)
	const count = 3000
	var v LVB
	copy(v[:], "kept")
	for i := 0; i < count; i++ {
		name := "R" + string(rune('a'+i%26)) + itoa(i)
		id, err := net.lock(1, "vol", name, ModeEX, 0)
		if err != nil {
			t.Fatal(err)
		}
		net.settle(1 << 20)
		if err := net.call(1, func(n *Node) (Ready, error) { return n.Convert(id, ModePR, 0, &v) }); err != nil {
			t.Fatal(err)
		}
	}
	net.settle(1 << 20)
	biggest := 0
	var hook func(from, to int, typ uint16, key uint32, p []byte)
	hook = func(from, to int, typ uint16, key uint32, p []byte) {
		if len(p) > biggest {
			biggest = len(p)
		}
	}
	traceHook = hook
	defer func() { traceHook = nil }()
	_ = net.call(3, func(n *Node) (Ready, error) { return n.Join("vol", false) })
	net.settle(1 << 20)
	_ = net.call(2, func(n *Node) (Ready, error) { return n.Leave("vol") })
	net.settle(1 << 20)
	if err := net.checkMasters(); err != nil {
		t.Fatal(err)
	}
	if biggest > 4096 {
		t.Fatalf("a message of %d bytes, more than the 4096-byte limit", biggest)
	}
	st := net.node(3).State()[0]
	if st.Mastered == 0 || st.Migrated[1] == 0 {
		t.Fatalf("node 3 took no resources over: %+v", st)
	}
	// The value blocks moved with them.
	rs, _ := net.node(3).Locks("vol", "")
	for _, r := range rs {
		if r.Mastered && (!r.LVBValid || r.LVBSeq != 1) {
			t.Fatalf("%s: value block not carried over: %+v", r.Name, r)
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

func TestDomainMembersIsTheStateViewsDomainMap(t *testing.T) {
	net := newTestNet(1, 2, 3)
	for _, x := range []base.NodeID{1, 3} {
		_ = net.call(x, func(n *Node) (Ready, error) { return n.Join("vol", false) })
	}
	net.settle(1 << 20)
	for _, x := range []base.NodeID{1, 3} {
		n := net.node(x)
		got, want := n.DomainMembers("vol"), n.State()[0].DomainMap
		if !slices.Equal(got, want) || len(got) != 2 {
			t.Fatalf("node %d: DomainMembers %v, state view's domain map %v", x, got, want)
		}
	}
	if got := net.node(2).DomainMembers("vol"); got != nil {
		t.Fatalf("node 2, not in the domain: %v", got)
	}
}

// TestStateBeforeMembership: a node that has no membership yet (its
// cluster stack has not given it a view) says it has no registrar, rather
// than naming node 255.
func TestStateBeforeMembership(t *testing.T) {
	n := New(Config{Self: 2})
	if _, err := n.Join("app", false); err != nil {
		t.Fatal(err)
	}
	st := n.State()
	if len(st) != 1 {
		t.Fatalf("state: %+v", st)
	}
	out := FormatState(st[0])
	if !strings.Contains(out, "State: JOINING") || !strings.Contains(out, "Registrar: none (this node has no cluster membership yet)") {
		t.Fatalf("state before membership:\n%s", out)
	}
}
