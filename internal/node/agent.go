package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/cluster/config"
	"o2go/internal/cluster/heartbeat"
	cnet "o2go/internal/cluster/net"
	"o2go/internal/cluster/quorum"
	"o2go/internal/node/member"
	"o2go/internal/transport"
)

// Config is what an agent runs with.
type Config struct {
	Cluster  *config.Cluster
	Node     string // this node's name in Cluster
	Settings config.Settings
	Secret   []byte
	Scan     []string // --scan: image files or folders where volumes are found by UUID/label
	// Socket is the control socket path ("" for DefaultSocket(Node), "-" for none).
	Socket string
	// Network makes the endpoint (nil: TCP on the node's ip_address:ip_port).
	Network func(transport.Identity, transport.Logger) (transport.Endpoint, error)
	Log     *slog.Logger
	Fence   FenceAction          // nil: DefaultFenceAction
	Clock   func() time.Duration // nil: BootClock
	Wall    func() time.Time     // nil: time.Now
	// FaultFile injects disk stalls into the heartbeat I/O (tests and
	// benchmarks only; see faultfile.go).
	FaultFile string
}

// ErrNodeFenced is what Run returns when the node fenced and the fence
// action returned (it does only in tests).
var ErrNodeFenced = errors.New("this node fenced itself")

// Handler handles a message of a registered (type, key); its return value
// is the status a caller waiting with Call receives.
type Handler func(from base.NodeID, key uint32, payload []byte) int32

// Agent is one node of the cluster: it runs the node's cluster stack
// (node/member) against real disks, sockets and clocks. See the package
// doc for its goroutines.
type Agent struct {
	cfg    Config
	self   config.Node
	log    *slog.Logger
	mode   heartbeat.Mode
	gen    uint64
	m      *member.Member
	clock  func() time.Duration
	wall   func() time.Time
	cmds   chan func()
	ep     transport.Endpoint
	ctl    *ControlServer
	latch  blockdev.Latch
	gate   *gate
	fencer *fencer
	hub    *hub
	finder Finder

	// loop-owned
	regions  map[member.RegionID]*regionIO
	conns    map[cnet.ConnID]*peerConn
	waiters  []*regionWaiter
	stopping bool
	dialErr  map[base.NodeID]string

	peersMu sync.RWMutex
	peers   map[base.NodeID]*peerConn

	handlersMu sync.RWMutex
	handlers   cnet.Registry[Handler]

	callsMu sync.Mutex
	calls   map[uint32]*pendingCall
	msgNum  atomic.Uint32

	regsMu  sync.Mutex
	regRefs map[string]*regionRef // by UUID: local-mode heartbeat start/stop counts
	// volumeUsers counts, in global mode, the users of volumes that have
	// no region of their own (by UUID).
	volumeUsers map[string]*volumeUse

	snapMu sync.RWMutex
	snap   *Status

	refused  sync.Map // base.NodeID -> string: the last inbound connection refused
	histMu   sync.Mutex
	history  []EventRecord
	loopBeat atomic.Int64
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	done     chan struct{}
	startAt  time.Duration
}

// New checks the configuration and prepares an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Cluster == nil {
		return nil, errors.New("agent: no cluster")
	}
	n := cfg.Cluster.Node(cfg.Node)
	if n == nil {
		var names []string
		for _, x := range cfg.Cluster.Nodes {
			names = append(names, x.Name)
		}
		return nil, fmt.Errorf("node %q is not in cluster %q (its nodes: %v); give the node's name with --node", cfg.Node, cfg.Cluster.Name, names)
	}
	if err := cfg.Settings.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Secret) < config.MinSecretLen {
		return nil, fmt.Errorf("agent: the cluster secret must hold at least %d bytes", config.MinSecretLen)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.Fence == nil {
		cfg.Fence = DefaultFenceAction
	}
	if cfg.Clock == nil {
		cfg.Clock = BootClock
	}
	if cfg.Wall == nil {
		cfg.Wall = time.Now
	}
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket(cfg.Node)
	}
	a := &Agent{
		cfg: cfg, self: *n, log: cfg.Log.With("node", n.Name), clock: cfg.Clock, wall: cfg.Wall,
		cmds: make(chan func(), 4096), regions: map[member.RegionID]*regionIO{}, conns: map[cnet.ConnID]*peerConn{},
		peers: map[base.NodeID]*peerConn{}, calls: map[uint32]*pendingCall{}, regRefs: map[string]*regionRef{}, volumeUsers: map[string]*volumeUse{},
		finder: Finder{Scan: cfg.Scan}, done: make(chan struct{}), dialErr: map[base.NodeID]string{},
	}
	a.mode = heartbeat.Local
	if cfg.Cluster.HeartbeatMode == config.HeartbeatGlobal {
		a.mode = heartbeat.Global
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	a.gen = binary.LittleEndian.Uint64(b[:]) | 1
	var nodes base.NodeMap
	for _, x := range cfg.Cluster.Nodes {
		nodes.Add(x.Number)
	}
	a.m = member.New(member.Config{Self: n.Number, Nodes: nodes, Timeouts: cfg.Settings.Timeouts, Mode: a.mode, Generation: a.gen})
	a.gate = &gate{clock: a.clock}
	a.gate.onFence = a.fenceFromOutside
	a.fencer = &fencer{latch: &a.latch, g: a.gate, action: cfg.Fence, method: cfg.Settings.FenceMethod,
		logf: a.logf, latched: make(chan struct{}), acted: make(chan struct{}), timeout: 2 * cfg.Settings.Timeouts.HeartbeatInterval}
	a.hub = newHub()
	return a, nil
}

func (a *Agent) logf(format string, args ...any) { a.log.Info(fmt.Sprintf(format, args...)) }

// Self is this node's configuration.
func (a *Agent) Self() config.Node { return a.self }

// Generation is this incarnation's heartbeat generation.
func (a *Agent) Generation() uint64 { return a.gen }

// Control is the control server, for commands that add methods.
func (a *Agent) Control() *ControlServer { return a.ctl }

// do runs fn on the event loop.
func (a *Agent) do(fn func()) {
	select {
	case a.cmds <- fn:
	case <-a.done:
	}
}

// doSync runs fn on the event loop and waits for it.
func (a *Agent) doSync(fn func()) error {
	ch := make(chan struct{})
	select {
	case a.cmds <- func() { fn(); close(ch) }:
	case <-a.done:
		return errors.New("the agent is stopping")
	}
	select {
	case <-ch:
		return nil
	case <-a.done:
		return errors.New("the agent is stopping")
	}
}

func (a *Agent) wallMs() uint64 { return uint64(a.wall().UnixMilli()) }

// Run runs the agent until ctx ends (it then stops its heartbeat cleanly)
// or the node fences.
func (a *Agent) Run(ctx context.Context) error {
	a.ctx, a.cancel = context.WithCancel(ctx)
	defer a.cancel()
	a.startAt = a.clock()
	id := transport.Identity{Secret: a.cfg.Secret, Hello: cnet.Hello{Version: cnet.ProtocolVersion, From: a.self.Number,
		Cluster: a.cfg.Cluster.Name, Incarnation: a.gen, Timeouts: a.cfg.Settings.Timeouts, Digest: ConfigDigest(a.cfg.Cluster),
		Names: cnet.NamesOf(a.cfg.Cluster)}}
	var err error
	if a.cfg.Network != nil {
		a.ep, err = a.cfg.Network(id, a.logf)
	} else {
		peers := map[base.NodeID]netip.AddrPort{}
		for _, x := range a.cfg.Cluster.Nodes {
			peers[x.Number] = x.AddrPort()
		}
		a.ep, err = transport.ListenTCP(transport.TCPConfig{Identity: id, Listen: a.self.AddrPort(), Peers: peers, Log: a.logf,
			OnRefuse: func(n base.NodeID, addr string, err error) {
				if n.Valid() {
					a.refused.Store(n, fmt.Sprintf("refused its connection from %s: %v", addr, err))
				}
			}})
	}
	if err != nil {
		return err
	}
	defer a.ep.Close()
	if a.cfg.Socket != "-" {
		a.ctl, err = ListenControl(a.cfg.Socket, a.logf)
		if err != nil {
			return err
		}
		defer a.ctl.Close()
		a.registerControl()
	}
	a.logf("o2go agent: node %s (number %d) of cluster %s, generation %016x, heartbeat mode %s, listening on %s",
		a.self.Name, a.self.Number, a.cfg.Cluster.Name, a.gen, a.cfg.Cluster.HeartbeatMode, a.ep.Addr())
	a.wg.Add(3)
	go func() { defer a.wg.Done(); a.hub.run() }()
	go func() { defer a.wg.Done(); a.acceptLoop() }()
	go func() { defer a.wg.Done(); a.watchdog() }()
	var startErr error
	if a.mode == heartbeat.Global {
		// The regions start through the loop: start them beside it.
		go func() {
			if err := a.startGlobalRegions(); err != nil {
				startErr = err
				a.cancel()
				return
			}
			notify("READY=1\nSTATUS=cluster " + a.cfg.Cluster.Name + ": node " + a.self.Name)
		}()
	} else {
		notify("READY=1\nSTATUS=cluster " + a.cfg.Cluster.Name + ": node " + a.self.Name)
	}
	err = a.loop()
	if startErr != nil {
		return startErr
	}
	return err
}

// loop is the event loop: the only goroutine that touches the member.
func (a *Agent) loop() error {
	t := a.cfg.Settings.Timeouts
	period := t.HeartbeatInterval / 10
	if period < 10*time.Millisecond {
		period = 10 * time.Millisecond
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case fn := <-a.cmds:
			fn()
		case <-tick.C:
			a.m.Tick(a.clock(), a.wallMs())
		case <-a.ctx.Done():
			a.stopAll()
			return nil
		case <-a.fencer.latched:
			// The fence action ends the process; when it returns (tests),
			// the agent stops without writing anything more.
			<-a.fencer.acted
			a.shutdown()
			return ErrNodeFenced
		}
		a.process()
		a.loopBeat.Store(int64(a.clock()))
	}
}

// process carries out what the member asks.
func (a *Agent) process() {
	for round := 0; round < 64; round++ {
		r := a.m.Ready()
		for _, n := range r.Notes {
			a.logf("%s", n)
		}
		if r.Fence != nil {
			a.startFence(r.Fence)
			return
		}
		for id, why := range r.RegionFailures {
			a.logf("heartbeat region refused: %s", why)
			if rio := a.regions[id]; rio != nil {
				a.closeRegion(rio, errors.New(why))
			}
		}
		if len(r.Events) > 0 {
			for _, e := range r.Events {
				a.logf("membership: %v", e)
			}
			a.hub.publish(r.Events)
			a.histMu.Lock()
			for _, e := range r.Events {
				a.history = append(a.history, recordOf(e, a.wall()))
			}
			if len(a.history) > historySize {
				a.history = append([]EventRecord(nil), a.history[len(a.history)-historySize:]...)
			}
			a.histMu.Unlock()
		}
		for _, rd := range r.Reads {
			a.issueRead(rd)
		}
		for _, w := range r.Writes {
			a.issueWrite(w)
		}
		for _, w := range r.Stops {
			a.issueStop(w)
		}
		for _, d := range r.Dials {
			a.dial(d)
		}
		for _, c := range r.Closes {
			if pc := a.conns[c.Conn]; pc != nil {
				a.dropConn(pc, c.Reason)
			}
		}
		for _, f := range r.Frames {
			if pc := a.conns[f.Conn]; pc != nil {
				pc.enqueue(f)
			}
		}
		if len(r.Notes)+len(r.Reads)+len(r.Writes)+len(r.Stops)+len(r.Dials)+len(r.Closes)+len(r.Frames)+len(r.Events) == 0 && r.RegionFailures == nil {
			break
		}
	}
	a.publishGate()
	a.checkWaiters()
}

func (a *Agent) publishGate() {
	s := gateState{frozen: a.m.Frozen()}
	if exp, ok := a.m.LeaseExpiry(); ok {
		s.leaseExp = int64(exp)
	}
	s.overdue = errors.Is(a.m.MayWrite(a.clock()), member.ErrSlowDisk)
	a.gate.publish(s)
}

// startFence runs the member's fence: latch, acknowledgements, action.
func (a *Agent) startFence(f *member.Fence) {
	acks := f.Acks
	go a.fencer.fence(f.Message, acks, a.writeAck)
}

// writeAck writes a fencing acknowledgement to a region's kill block
// through the raw device: the one write after the latch.
func (a *Agent) writeAck(ack member.AckWrite) error {
	a.regsMu.Lock()
	var rio *regionIO
	for _, ref := range a.regRefs {
		if ref.rio != nil && ref.rio.id == ack.Region {
			rio = ref.rio
		}
	}
	a.regsMu.Unlock()
	if rio == nil || !rio.info.Geometry.HasKill {
		return nil
	}
	_, err := rio.raw.WriteAt(ack.Kill, rio.info.Geometry.KillOffset(a.self.Number))
	if err == nil {
		err = rio.raw.Sync()
	}
	return err
}

// fenceFromOutside: the gate or the watchdog found this node must fence.
// The gate refuses every write from here on; the fencer latches (waiting
// a bounded time for writes in flight: one may hang on the very disk that
// made this node fence). It asks the loop for the acknowledgement; if the
// loop does not answer in time the action goes ahead without it.
func (a *Agent) fenceFromOutside(reason string) {
	if a.gate.fenced.Swap(true) {
		return
	}
	go func() {
		got := make(chan *member.Fence, 1)
		go a.do(func() {
			a.m.Fence(a.clock(), heartbeat.FenceHang, reason)
			f, _ := a.m.Fenced()
			got <- f
		})
		select {
		case f := <-got:
			if f == nil {
				f = &member.Fence{Message: reason}
			}
			a.fencer.fence(f.Message, f.Acks, a.writeAck)
		case <-time.After(a.fencer.timeout):
			a.fencer.fence(reason, nil, nil)
		}
	}()
}

// watchdog is OPROCD: it wakes every interval/4 on the boot clock; when it
// finds that this process was stopped past the write lease (SIGSTOP, a VM
// stall, a suspend) or that the lease ran out while the loop is stuck, it
// fences before anything else writes — the gate refuses every write from
// the same moment.
func (a *Agent) watchdog() {
	t := a.cfg.Settings.Timeouts
	period := t.HeartbeatInterval / 4
	tick := time.NewTicker(period)
	defer tick.Stop()
	last := a.clock()
	sdEvery := sdWatchdogInterval()
	lastSD := last
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.done:
			return
		case <-tick.C:
		}
		now := a.clock()
		gap := now - last
		last = now
		if gap > t.MaxWriteStall() {
			a.fenceFromOutside(fmt.Sprintf("this agent did not run for %v (stopped, or the machine stalled); the bound is %v", gap, t.MaxWriteStall()))
			continue
		}
		if s := a.gate.st.Load(); s != nil && s.leaseExp != 0 && int64(now) >= s.leaseExp && !s.frozen && !a.gate.fenced.Load() {
			// The loop fences on its own tick; this catches a loop that
			// is stuck.
			if time.Duration(int64(now)-s.leaseExp) > t.HeartbeatInterval {
				a.fenceFromOutside("the write lease ran out and the event loop does not answer")
			}
		}
		if sdEvery > 0 && now-lastSD >= sdEvery && now-time.Duration(a.loopBeat.Load()) < 2*t.HeartbeatInterval {
			notify("WATCHDOG=1")
			lastSD = now
		}
	}
}

// stopAll stops every region cleanly (generation 0) and waits for it.
func (a *Agent) stopAll() {
	a.stopping = true
	var rios []*regionIO
	for _, r := range a.regions {
		rios = append(rios, r)
	}
	sort.Slice(rios, func(i, j int) bool { return rios[i].id < rios[j].id })
	for _, rio := range rios {
		a.m.RemoveRegion(a.clock(), a.wallMs(), rio.id)
	}
	a.process()
	deadline := time.After(2 * a.cfg.Settings.Timeouts.HeartbeatInterval)
	for _, rio := range rios {
		select {
		case <-rio.stopped:
		case <-deadline:
		}
	}
	a.shutdown()
}

func (a *Agent) shutdown() {
	select {
	case <-a.done:
		return
	default:
	}
	close(a.done)
	a.hub.close()
	for _, pc := range a.conns {
		pc.close()
	}
	if a.ep != nil {
		a.ep.Close()
	}
	a.cancel()
	a.wg.Wait()
}

// historySize is how many membership events the agent remembers.
const historySize = 1000

// EventRecord is a membership event as the control API shows it, with the
// wall-clock time it was delivered.
type EventRecord struct {
	Seq        uint64      `json:"seq"`
	Epoch      uint64      `json:"epoch"`
	Node       base.NodeID `json:"node"`
	Generation string      `json:"generation"`
	Kind       string      `json:"kind"` // up, down, left
	Members    NodeList    `json:"members"`
	Initial    bool        `json:"initial,omitempty"`
	At         time.Time   `json:"at"`
}

func recordOf(e MembershipEvent, at time.Time) EventRecord {
	return EventRecord{Seq: e.Seq, Epoch: e.Epoch, Node: e.Node, Generation: fmt.Sprintf("%016x", e.Generation),
		Kind: e.Kind.String(), Members: nonNilNodes(e.Members.Nodes()), Initial: e.Initial, At: at}
}

// Events returns the last membership events delivered, oldest first.
func (a *Agent) Events() []EventRecord {
	a.histMu.Lock()
	defer a.histMu.Unlock()
	return append([]EventRecord{}, a.history...)
}

// View is the committed membership view as the loop sees it.
func (a *Agent) View() quorum.View {
	var v quorum.View
	_ = a.doSync(func() { v = a.m.View() })
	return v
}

// Subscribe registers fn for membership events, called from one delivery
// goroutine in priority order (PriorityDLM, PriorityFS, PriorityHA): every
// subscriber sees an event before any sees the next. A new subscriber first
// gets Initial events for the membership as it stands. fn must not block
// for long. The returned func unsubscribes.
func (a *Agent) Subscribe(name string, priority int, fn func(MembershipEvent)) func() {
	return a.hub.subscribe(name, priority, fn)
}

// SubscribeChan is Subscribe with a channel: events are sent in order; the
// delivery goroutine waits while the channel is full.
func (a *Agent) SubscribeChan(name string, priority, buffer int) (<-chan MembershipEvent, func()) {
	ch := make(chan MembershipEvent, buffer)
	stop := a.Subscribe(name, priority, func(e MembershipEvent) {
		select {
		case ch <- e:
		case <-a.done:
		}
	})
	return ch, stop
}
