package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SocketDir is where agents put their control sockets: one per node name,
// so several agents can run on one machine.
const SocketDir = "/run/o2go"

// DefaultSocket is the control socket of the agent of node name.
func DefaultSocket(name string) string { return filepath.Join(SocketDir, name+".sock") }

// Cred is the peer credentials of a control client (SO_PEERCRED).
type Cred struct {
	PID int32
	UID uint32
	GID uint32
}

// ControlRequest is one request on the control socket.
type ControlRequest struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
	Cred   Cred            `json:"-"`
}

// Decode unmarshals the request's params into v (no params: v unchanged).
func (r *ControlRequest) Decode(v any) error {
	if len(r.Params) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Params, v); err != nil {
		return fmt.Errorf("%s: bad params: %w", r.Method, err)
	}
	return nil
}

type controlResponse struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
	// Event lines ({"event": ..., "data": ...}) are not answers: the agent
	// sends them on its own, between answers (ControlNotify).
	Event string          `json:"event,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// ControlHandler serves one method. The context ends when the client goes.
type ControlHandler func(ctx context.Context, req *ControlRequest) (any, error)

// ControlEvent is a line the agent sent on its own: Name says what it is
// (e.g. "dlm.bast"), Data its JSON body.
type ControlEvent struct {
	Name string
	Data json.RawMessage
}

// connOut is what is written to one client connection: answers, in order,
// and events, queued so that whoever raises one (the lock manager, on a
// network reader's goroutine) never waits for a slow client. An event
// with the key of one still queued replaces it.
type connOut struct {
	mu     sync.Mutex // one line at a time
	enc    *json.Encoder
	qmu    sync.Mutex
	queue  []queuedEvent
	wake   chan struct{}
	closed bool
}

type queuedEvent struct {
	key  string
	name string
	data any
}

// maxQueuedEvents bounds the events waiting for a client that does not
// read; past it the oldest go (events are hints: a client that needs to
// know reads them).
const maxQueuedEvents = 4096

func (o *connOut) write(v any) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.enc.Encode(v)
}

func (o *connOut) notify(key, name string, data any) {
	o.qmu.Lock()
	defer o.qmu.Unlock()
	if o.closed {
		return
	}
	for i := range o.queue {
		if key != "" && o.queue[i].key == key {
			o.queue[i] = queuedEvent{key, name, data}
			return
		}
	}
	if len(o.queue) >= maxQueuedEvents {
		o.queue = o.queue[1:]
	}
	o.queue = append(o.queue, queuedEvent{key, name, data})
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// sendEvents writes queued events until ctx ends.
func (o *connOut) sendEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			o.qmu.Lock()
			o.closed, o.queue = true, nil
			o.qmu.Unlock()
			return
		case <-o.wake:
		}
		for {
			o.qmu.Lock()
			if len(o.queue) == 0 {
				o.qmu.Unlock()
				break
			}
			e := o.queue[0]
			o.queue = o.queue[1:]
			o.qmu.Unlock()
			b, err := json.Marshal(e.data)
			if err != nil {
				continue
			}
			if err := o.write(controlResponse{Event: e.name, Data: b}); err != nil {
				return
			}
		}
	}
}

type connOutKey struct{}

// ControlNotify queues event name with data for the client of the
// connection ctx belongs to (a handler's context); it never blocks. A
// queued event with the same key (when not empty) is replaced. It reports
// false when ctx is not a control connection's.
func ControlNotify(ctx context.Context, key, name string, data any) bool {
	o, ok := ctx.Value(connOutKey{}).(*connOut)
	if !ok {
		return false
	}
	o.notify(key, name, data)
	return true
}

// ControlServer is the agent's local control API: a Unix stream socket
// where each line is a JSON request {"method": ..., "params": ...} and each
// answer a JSON line {"result": ...} or {"error": "..."}, in order; between
// answers the agent may send event lines {"event": ..., "data": ...} a
// method asked for (ControlNotify; e.g. dlm.lock's blocking notifications),
// which ControlClient keeps for NextEvent. Only root and the
// agent's own user may connect (the socket is mode 0600 and every client's
// SO_PEERCRED is checked); handlers see the client's pid, uid and gid.
// Commands extend the protocol by registering methods (o2go lock, dlm
// state, mount, ha ... later).
type ControlServer struct {
	path     string
	ln       *net.UnixListener
	mu       sync.RWMutex
	handlers map[string]ControlHandler
	wg       sync.WaitGroup
	done     chan struct{}
	logf     func(format string, args ...any)
	ownUID   uint32
}

// ListenControl creates the socket at path (replacing a stale one).
func ListenControl(path string, logf func(string, ...any)) (*ControlServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s is in use: another agent runs for this node", path)
	}
	_ = os.Remove(path)
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	s := &ControlServer{path: path, ln: ln, handlers: map[string]ControlHandler{}, done: make(chan struct{}),
		logf: logf, ownUID: uint32(os.Geteuid())}
	s.Register("ping", func(context.Context, *ControlRequest) (any, error) { return "pong", nil })
	s.Register("methods", func(context.Context, *ControlRequest) (any, error) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		var names []string
		for n := range s.handlers {
			names = append(names, n)
		}
		return names, nil
	})
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Path is the socket's path.
func (s *ControlServer) Path() string { return s.path }

// Register adds a method; a later registration of the same name replaces it.
func (s *ControlServer) Register(method string, h ControlHandler) {
	s.mu.Lock()
	s.handlers[method] = h
	s.mu.Unlock()
}

func (s *ControlServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			s.logf("control: accept: %v", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		cred, err := peerCred(c)
		if err != nil || (cred.UID != 0 && cred.UID != s.ownUID) {
			s.logf("control: refused a client (uid %d, pid %d): only root and uid %d may control this agent", cred.UID, cred.PID, s.ownUID)
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.serve(c, cred)
	}
}

func peerCred(c *net.UnixConn) (Cred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Cred{}, err
	}
	var uc *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) { uc, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return Cred{}, err
	}
	if serr != nil {
		return Cred{}, serr
	}
	return Cred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}, nil
}

func (s *ControlServer) serve(c *net.UnixConn, cred Cred) {
	defer s.wg.Done()
	defer c.Close()
	conn, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
			c.Close()
		case <-conn.Done():
		}
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := &connOut{enc: json.NewEncoder(c), wake: make(chan struct{}, 1)}
	// A new variable: the goroutine above reads conn while this one runs
	// (reassigning one both use tore the interface: a runtime crash).
	ctx := context.WithValue(conn, connOutKey{}, out)
	go out.sendEvents(ctx)
	for sc.Scan() {
		var req ControlRequest
		var resp controlResponse
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "malformed request: " + err.Error()
		} else {
			req.Cred = cred
			s.mu.RLock()
			h := s.handlers[req.Method]
			s.mu.RUnlock()
			if h == nil {
				resp.Error = fmt.Sprintf("unknown method %q", req.Method)
			} else if res, err := h(ctx, &req); err != nil {
				resp.Error = err.Error()
			} else if b, err := json.Marshal(res); err != nil {
				resp.Error = "encoding the result: " + err.Error()
			} else {
				resp.Result = b
			}
		}
		if err := out.write(resp); err != nil {
			return
		}
	}
}

// Close stops the server and removes the socket.
func (s *ControlServer) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// ErrNoAgent means nothing listens on the control socket.
var ErrNoAgent = errors.New("no agent is running")

// ControlClient talks to an agent's control socket. It is not safe for
// concurrent use.
type ControlClient struct {
	c      net.Conn
	sc     *bufio.Scanner
	enc    *json.Encoder
	events []ControlEvent // received during calls, not taken yet
}

// DialControl connects to the control socket at path.
func DialControl(path string) (*ControlClient, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%s: %w (start it with: o2go agent)", path, ErrNoAgent)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &ControlClient{c: c, sc: sc, enc: json.NewEncoder(c)}, nil
}

// Call sends one request and decodes its result into result (may be nil).
func (cl *ControlClient) Call(method string, params, result any) error {
	req := map[string]any{"method": method}
	if params != nil {
		req["params"] = params
	}
	if err := cl.enc.Encode(req); err != nil {
		return fmt.Errorf("control: %s: %w", method, err)
	}
	var resp controlResponse
	for {
		r, err := cl.readLine(method)
		if err != nil {
			return err
		}
		if r.Event == "" {
			resp = r
			break
		}
		cl.keep(ControlEvent{Name: r.Event, Data: r.Data})
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	if result != nil && len(resp.Result) > 0 {
		return json.Unmarshal(resp.Result, result)
	}
	return nil
}

func (cl *ControlClient) readLine(what string) (controlResponse, error) {
	var r controlResponse
	if !cl.sc.Scan() {
		if err := cl.sc.Err(); err != nil {
			return r, fmt.Errorf("control: %s: %w", what, err)
		}
		return r, fmt.Errorf("control: %s: the agent closed the connection", what)
	}
	if err := json.Unmarshal(cl.sc.Bytes(), &r); err != nil {
		return r, fmt.Errorf("control: %s: malformed answer: %w", what, err)
	}
	return r, nil
}

func (cl *ControlClient) keep(e ControlEvent) {
	if len(cl.events) >= maxQueuedEvents {
		cl.events = cl.events[1:]
	}
	cl.events = append(cl.events, e)
}

// NextEvent returns the oldest event the agent sent on this connection,
// waiting for one (bounded by SetDeadline) when none came during calls.
// Not while a Call runs (the client is not for concurrent use).
func (cl *ControlClient) NextEvent() (ControlEvent, error) {
	for len(cl.events) == 0 {
		r, err := cl.readLine("waiting for an event")
		if err != nil {
			return ControlEvent{}, err
		}
		if r.Event == "" {
			return ControlEvent{}, errors.New("control: an answer came with no call waiting for it")
		}
		cl.keep(ControlEvent{Name: r.Event, Data: r.Data})
	}
	e := cl.events[0]
	cl.events = cl.events[1:]
	return e, nil
}

// Hangup returns a channel that is closed once the agent's end of the
// connection is gone — the agent exited, was killed or fenced itself — or
// this client is closed. It looks every period without reading, so calls
// may go on meanwhile. Locks taken through this connection are released by
// the agent, or recovered by the other nodes once this node is declared
// dead: a holder must stop relying on them as soon as the channel closes.
func (cl *ControlClient) Hangup(period time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	sc, ok := cl.c.(syscall.Conn)
	if !ok {
		close(ch)
		return ch
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		close(ch)
		return ch
	}
	go func() {
		defer close(ch)
		t := time.NewTicker(period)
		defer t.Stop()
		for range t.C {
			gone := false
			err := raw.Control(func(fd uintptr) {
				fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
				if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
					gone = fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
				}
			})
			if err != nil || gone {
				return
			}
		}
	}()
	return ch
}

// SetDeadline bounds the next calls.
func (cl *ControlClient) SetDeadline(t time.Time) error { return cl.c.SetDeadline(t) }

// Close closes the connection.
func (cl *ControlClient) Close() error { return cl.c.Close() }
