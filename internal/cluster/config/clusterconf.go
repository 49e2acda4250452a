package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"o2go/internal/base"
)

// Defaults and limits of cluster.conf, as o2cb and the kernel's O2CB have them.
const (
	// DefaultClusterConfPath is where o2cb(8) and the o2cb init script look.
	DefaultClusterConfPath = "/etc/ocfs2/cluster.conf"
	// DefaultPort is the node port o2cb add-node uses without --port
	// (O2CB_DEFAULT_IP_PORT).
	DefaultPort = 7777
	// MaxPort is the highest port the kernel's configfs accepts: it refuses
	// values >= (u16)-1, so 65535 is out.
	MaxPort = 65534
	// MaxClusterNameLen is OCFS2_CLUSTER_NAME_LEN: the stack stamp on disk
	// holds 16 bytes of cluster name.
	MaxClusterNameLen = 16
	// MaxNodeNameLen is O2NM_MAX_NAME_LEN, the longest node (host) name.
	MaxNodeNameLen = 64
	// MaxHeartbeatRegions is O2NM_MAX_REGIONS, the most global heartbeat
	// regions a cluster can have.
	MaxHeartbeatRegions = 32
	// RegionLen is the length of a heartbeat region name: a volume UUID as
	// 32 hex digits (O2HB_MAX_REGION_NAME_LEN).
	RegionLen = 32
)

// HeartbeatMode says where nodes heartbeat: on every mounted volume (local)
// or on the cluster's listed regions only (global).
type HeartbeatMode string

// The two heartbeat modes of O2CB.
const (
	HeartbeatLocal  HeartbeatMode = "local"
	HeartbeatGlobal HeartbeatMode = "global"
)

// ParseHeartbeatMode accepts "local" or "global" in any case, as o2cb does,
// and returns it in lower case.
func ParseHeartbeatMode(s string) (HeartbeatMode, error) {
	switch m := HeartbeatMode(strings.ToLower(s)); m {
	case HeartbeatLocal, HeartbeatGlobal:
		return m, nil
	}
	return "", fmt.Errorf("heartbeat mode '%s' is neither 'local' nor 'global'", s)
}

// ClusterConf is the content of a cluster.conf: every cluster it describes,
// in file order.
type ClusterConf struct {
	Clusters []Cluster

	// Warnings are what Parse found odd but accepted, as o2cb does: each
	// says what is odd and what o2go does about it. Format does not write
	// them; a file o2go wrote has none.
	Warnings []Warning
}

// Cluster is one cluster: its stanza plus the node and heartbeat stanzas
// that name it, each in file order.
type Cluster struct {
	Name          string
	HeartbeatMode HeartbeatMode
	Nodes         []Node
	Heartbeats    []Heartbeat

	line int // of the "cluster:" header when parsed, else 0
	// count is the node_count the file declares, valid when counted; an
	// edit drops it, and Format always writes len(Nodes).
	count   uint32
	counted bool
}

// NodeCount is the cluster's node_count as o2cb lists it: what the file
// declares, for a cluster read from a file and not edited since (o2cb keeps
// a stale count; Parse warns about it), else len(Nodes), which is also what
// Format writes.
func (cl *Cluster) NodeCount() int {
	if cl.counted {
		return int(cl.count)
	}
	return len(cl.Nodes)
}

// edited marks the cluster as changed in memory: its node_count is now
// what Format will write.
func (cl *Cluster) edited() { cl.count, cl.counted = 0, false }

// Node is one node stanza. The node's name is the host name (without
// domain) of the machine that runs it; Addr and Port are where its peers
// connect.
type Node struct {
	Name   string      `json:"name"`
	Number base.NodeID `json:"number"`
	Addr   netip.Addr  `json:"ip_address"`
	Port   uint16      `json:"ip_port"`

	line int
}

// AddrPort is where the node listens.
func (n Node) AddrPort() netip.AddrPort { return netip.AddrPortFrom(n.Addr, n.Port) }

// Heartbeat is one global heartbeat region: the UUID of the volume that
// carries it, 32 hex digits.
type Heartbeat struct {
	Region string `json:"region"`

	line int
}

// ParseError is one problem in a configuration file, at a line when it has
// one. Parse and Load return all problems of a file joined (errors.Join);
// errors.As finds the first.
type ParseError struct {
	File string // as given to Parse; "" for a configuration built in memory
	Line int    // 1-based; 0 when the problem has no single line
	Msg  string
}

func (e *ParseError) Error() string { return located(e.File, e.Line, e.Msg) }

// Warning is something odd in a cluster.conf that o2cb accepts and so does
// o2go: a stale node_count, an attribute or stanza neither knows, a stanza
// of no cluster. Its text says what o2go does about it.
type Warning struct {
	File string
	Line int
	Msg  string
}

func (w Warning) String() string { return located(w.File, w.Line, w.Msg) }

func located(file string, line int, msg string) string {
	switch {
	case file != "" && line > 0:
		return fmt.Sprintf("%s:%d: %s", file, line, msg)
	case file != "":
		return fmt.Sprintf("%s: %s", file, msg)
	}
	return msg
}

// maxReported bounds how many problems one error lists, and how many
// warnings Parse keeps.
const maxReported = 30

// problems collects ParseErrors and Warnings.
type problems struct {
	file  string
	list  []*ParseError
	warns []Warning
}

func (p *problems) add(line int, format string, args ...any) {
	p.list = append(p.list, &ParseError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) warn(line int, format string, args ...any) {
	p.warns = append(p.warns, Warning{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	sort.SliceStable(p.list, func(i, j int) bool { return p.list[i].Line < p.list[j].Line })
	var errs []error
	for i, e := range p.list {
		if i == maxReported {
			errs = append(errs, fmt.Errorf("... and %d more problems", len(p.list)-maxReported))
			break
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// warnings returns the warnings in line order, at most maxReported of them
// (the last one then says how many more there were).
func (p *problems) warnings() []Warning {
	if len(p.warns) == 0 {
		return nil
	}
	w := append([]Warning(nil), p.warns...)
	sort.SliceStable(w, func(i, j int) bool { return w[i].Line < w[j].Line })
	if len(w) > maxReported {
		more := len(w) - maxReported
		w = append(w[:maxReported], Warning{File: p.file, Msg: fmt.Sprintf("... and %d more warnings", more)})
	}
	return w
}

// rawAttr and rawStanza are the syntax layer: what jconfig would hold.
type rawAttr struct {
	key, value string
	line       int
}

type rawStanza struct {
	kind  string
	line  int
	attrs []rawAttr
}

func (s *rawStanza) get(key string) (rawAttr, bool) {
	for _, a := range s.attrs {
		if a.key == key {
			return a, true
		}
	}
	return rawAttr{}, false
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func identPrefix(s string) string {
	i := 0
	for i < len(s) && isIdentByte(s[i]) {
		i++
	}
	return s[:i]
}

// cSpace is what C's isspace() accepts: jconfig trims values with it and
// strtoul skips it.
const cSpace = " \t\n\v\f\r"

// scan splits data into stanzas with the rules of ocfs2-tools' jconfig.
// It stops at the first syntax error: what follows cannot be trusted.
//
// jconfig's value syntax, which scan follows: the value starts at the
// first character after '=' that is not a blank and runs to the end of the
// line, whatever it holds ('#', '\r'); trailing white space (C's isspace)
// is dropped. A backslash at the end of a line continues the value on the
// next line, which is taken whole, with a line break in between. An
// attribute set twice keeps its last value.
func scan(file string, data []byte) ([]*rawStanza, []Warning, error) {
	p := &problems{file: file}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		p.add(1+bytes.Count(data[:i], []byte("\n")), "NUL byte in line")
		return nil, nil, p.err()
	}
	var stanzas []*rawStanza
	var cur *rawStanza
	var crLines []int // lines whose value ends in a carriage return
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the file ends with a newline
	}
	crError := func(n int, where string) error {
		p.add(n, "carriage return in %s (CRLF line endings?); o2cb refuses it too", where)
		return p.err()
	}
	for i := 0; i < len(lines); i++ {
		ln, n := lines[i], i+1
		if strings.Trim(ln, " \t") == "" {
			cur = nil // a blank line ends a stanza
			continue
		}
		switch c := ln[0]; {
		case c == '#':
			continue
		case c == ' ' || c == '\t':
			rest := strings.TrimLeft(ln, " \t")
			key := identPrefix(rest)
			if key == "" {
				switch rest[0] {
				case '#':
					p.add(n, "comment does not start in the first column")
				case '\r':
					return nil, nil, crError(n, "a blank line")
				default:
					p.add(n, "invalid character %q in attribute name", rest[0])
				}
				return nil, nil, p.err()
			}
			if cur == nil {
				p.add(n, "attribute '%s' is not in a stanza (a blank line ends a stanza)", key)
				return nil, nil, p.err()
			}
			after := strings.TrimLeft(rest[len(key):], " \t")
			if after == "" || after[0] != '=' {
				if after != "" && after[0] == '\r' {
					return nil, nil, crError(n, "attribute name '"+key+"'")
				}
				p.add(n, "expected '=' after attribute name '%s'", key)
				return nil, nil, p.err()
			}
			value := strings.TrimLeft(after[1:], " \t")
			for strings.HasSuffix(value, `\`) {
				value = value[:len(value)-1]
				if i+1 == len(lines) {
					break // jconfig drops a backslash at the end of the file
				}
				i++
				value += "\n" + lines[i]
			}
			if strings.HasSuffix(strings.TrimRight(value, " \t"), "\r") {
				crLines = append(crLines, n)
			}
			value = strings.TrimRight(value, cSpace)
			a := rawAttr{key: key, value: value, line: n}
			if j := cur.index(key); j >= 0 {
				p.warn(n, "'%s' is set twice in this %s stanza (first on line %d): the last value counts, as with o2cb", key, cur.kind, cur.attrs[j].line)
				cur.attrs[j] = a
				continue
			}
			cur.attrs = append(cur.attrs, a)
		default:
			name := identPrefix(ln)
			if name == "" {
				if c == '\r' {
					return nil, nil, crError(n, "a blank line")
				}
				p.add(n, "invalid character %q at the start of a line (stanza names are letters, digits and '_')", c)
				return nil, nil, p.err()
			}
			rest := ln[len(name):]
			switch {
			case strings.ContainsRune(rest, '\r'):
				return nil, nil, crError(n, "stanza header '"+name+"'")
			case rest == "":
				p.add(n, "stanza name '%s' lacks ':'", name)
				return nil, nil, p.err()
			case rest[0] != ':':
				p.add(n, "invalid character %q after stanza name '%s' (expected ':')", rest[0], name)
				return nil, nil, p.err()
			case strings.Trim(rest[1:], " \t") != "":
				p.add(n, "text after '%s:'", name)
				return nil, nil, p.err()
			}
			cur = &rawStanza{kind: name, line: n}
			stanzas = append(stanzas, cur)
		}
	}
	if len(crLines) > 0 {
		more := ""
		if len(crLines) > 1 {
			more = fmt.Sprintf(" (and %d more lines)", len(crLines)-1)
		}
		p.warn(crLines[0], "value ends in a carriage return%s: o2go ignores it, as o2cb does, and o2go's next rewrite of the file drops it", more)
	}
	return stanzas, p.warns, nil
}

func (s *rawStanza) index(key string) int {
	for i, a := range s.attrs {
		if a.key == key {
			return i
		}
	}
	return -1
}

// stanzaKeys lists the attributes each stanza kind has. o2cb ignores any
// other, and so does o2go, with a warning; but one that looks like a typo
// of a known one is an error (see nearMiss).
var stanzaKeys = map[string][]string{
	"cluster":   {"name", "heartbeat_mode", "node_count"},
	"node":      {"cluster", "number", "ip_port", "ip_address", "name"},
	"heartbeat": {"cluster", "region"},
}

var stanzaKinds = []string{"cluster", "node", "heartbeat"}

// dropped is the end of every warning about something o2go ignores.
const dropped = "o2go ignores it, as o2cb does, and the next rewrite of the file (by o2go or o2cb) drops it"

// Parse reads a cluster.conf. file names the source in error messages. A
// syntax error ends the reading; past the syntax every problem is reported,
// each with its line. What o2cb accepts but is odd is accepted with a
// warning in the result's Warnings.
func Parse(file string, data []byte) (*ClusterConf, error) {
	stanzas, warns, err := scan(file, data)
	if err != nil {
		return nil, err
	}
	p := &problems{file: file, warns: warns}
	conf := &ClusterConf{}
	named := map[string]int{}          // cluster name -> node stanzas naming it
	countLines := map[string]int{}     // cluster name -> line of its node_count
	index := map[string]int{}          // cluster name -> index in conf.Clusters
	var names []string                 // of the clusters, in file order
	var nodes, heartbeats []*rawStanza // attached after all clusters are known

	for _, s := range stanzas {
		keys, known := stanzaKeys[s.kind]
		if !known {
			if k := nearMiss(s.kind, stanzaKinds); k != "" {
				p.add(s.line, "unknown stanza '%s:': is it a misspelt '%s:'? (o2cb would silently ignore the stanza)", s.kind, k)
			} else {
				p.warn(s.line, "unknown stanza '%s:' (cluster.conf has cluster:, node: and heartbeat:; o2go's own settings belong in the o2cb sysconfig file): %s", s.kind, dropped)
			}
			continue
		}
		for _, a := range s.attrs {
			if contains(keys, a.key) {
				continue
			}
			if k := nearMiss(a.key, keys); k != "" {
				p.add(a.line, "unknown attribute '%s' in %s stanza: is it a misspelt '%s'? (o2cb would silently ignore it; known: %s)", a.key, s.kind, k, strings.Join(keys, ", "))
			} else {
				p.warn(a.line, "unknown attribute '%s' in %s stanza (known: %s): %s", a.key, s.kind, strings.Join(keys, ", "), dropped)
			}
		}
		switch s.kind {
		case "cluster":
			c, countLine := parseClusterStanza(p, s)
			if c.Name == "" {
				continue
			}
			if _, dup := index[c.Name]; dup {
				// Reported by check(); keep the first definition.
				conf.Clusters = append(conf.Clusters, c)
				continue
			}
			index[c.Name] = len(conf.Clusters)
			countLines[c.Name] = countLine
			names = append(names, c.Name)
			conf.Clusters = append(conf.Clusters, c)
		case "node":
			nodes = append(nodes, s)
		case "heartbeat":
			heartbeats = append(heartbeats, s)
		}
	}
	// owner is the cluster a node or heartbeat stanza belongs to. o2cb
	// reads a cluster's stanzas by their 'cluster' value and never looks
	// at the others; o2go ignores them too, and asks about a near miss
	// (a warning, not an error: db1 beside a leftover db3 is no typo).
	owner := func(s *rawStanza) (*Cluster, bool) {
		a, ok := s.get("cluster")
		if !ok || a.value == "" {
			p.warn(s.line, "%s stanza has no 'cluster', so it belongs to no cluster: %s", s.kind, dropped)
			return nil, false
		}
		i, ok := index[a.value]
		if !ok {
			if c := nearMiss(a.value, names); c != "" {
				p.warn(a.line, "%s stanza names cluster '%s', which has no cluster: stanza: is it a misspelt '%s'? %s", s.kind, a.value, c, dropped)
			} else {
				p.warn(a.line, "%s stanza names cluster '%s', which has no cluster: stanza: %s", s.kind, a.value, dropped)
			}
			return nil, false
		}
		return &conf.Clusters[i], true
	}
	for _, s := range nodes {
		c, has := owner(s)
		if !has {
			continue
		}
		named[c.Name]++
		if n, ok := parseNodeStanza(p, s); ok {
			c.Nodes = append(c.Nodes, n)
		}
	}
	for _, s := range heartbeats {
		c, has := owner(s)
		if !has {
			continue
		}
		a, ok := s.get("region")
		if !ok || a.value == "" {
			p.add(s.line, "heartbeat stanza lacks 'region'")
			continue
		}
		if !oneLine(p, a) {
			continue
		}
		c.Heartbeats = append(c.Heartbeats, Heartbeat{Region: a.value, line: a.line})
	}
	for _, name := range names {
		c := &conf.Clusters[index[name]]
		if c.counted && uint64(c.count) != uint64(named[name]) {
			p.warn(countLines[name], "cluster '%s' has node_count = %d but %d node stanza%s: o2go goes by the node stanzas, and writes node_count = %d when it next rewrites the file (o2cb would keep the stale count)",
				name, c.count, named[name], plural(named[name]), named[name])
		}
	}
	conf.check(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	conf.Warnings = p.warnings()
	return conf, nil
}

// parseClusterStanza reports the stanza's own problems and returns what it
// could read, with the line of its node_count; Name is "" when the stanza
// has none.
func parseClusterStanza(p *problems, s *rawStanza) (c Cluster, countLine int) {
	c.line = s.line
	if a, has := s.get("name"); !has || a.value == "" {
		p.add(s.line, "cluster stanza lacks 'name'")
	} else if oneLine(p, a) {
		c.Name = a.value
	}
	c.HeartbeatMode = HeartbeatLocal
	if a, has := s.get("heartbeat_mode"); has && oneLine(p, a) {
		m, err := ParseHeartbeatMode(a.value)
		if err != nil {
			p.add(a.line, "%v", err)
			m = HeartbeatLocal // reported; do not report it again in check
		}
		c.HeartbeatMode = m
	}
	a, has := s.get("node_count")
	if !has || a.value == "" {
		p.add(s.line, "cluster stanza lacks 'node_count' (o2cb refuses such a file)")
		return c, 0
	}
	if !oneLine(p, a) {
		return c, 0
	}
	n, err := parseUnsigned(a.value, 1<<32-1)
	if err != nil {
		p.add(a.line, "node_count: %v", err)
		return c, 0
	}
	c.count, c.counted = uint32(n), true
	return c, a.line
}

func parseNodeStanza(p *problems, s *rawStanza) (n Node, ok bool) {
	n.line = s.line
	ok = true
	need := func(key string) (rawAttr, bool) {
		a, has := s.get(key)
		if !has || a.value == "" {
			p.add(s.line, "node stanza lacks '%s'", key)
			ok = false
			return a, false
		}
		if !oneLine(p, a) {
			ok = false
			return a, false
		}
		return a, true
	}
	if a, has := need("name"); has {
		n.Name = a.value
	}
	if a, has := need("number"); has {
		v, err := parseUnsigned(a.value, base.MaxNodes-1)
		if err != nil {
			p.add(a.line, "number: %v", err)
			ok = false
		}
		n.Number = base.NodeID(v)
	}
	if a, has := need("ip_address"); has {
		addr, err := parseIPv4(a.value)
		if err != nil {
			p.add(a.line, "ip_address: %v", err)
			ok = false
		}
		n.Addr = addr
	}
	if a, has := need("ip_port"); has {
		v, err := parseUnsigned(a.value, 1<<32-1)
		if err == nil && (v == 0 || v > MaxPort) {
			err = fmt.Errorf("%d is out of range 1..%d (the kernel's O2CB refuses it too)", v, MaxPort)
		}
		if err != nil {
			p.add(a.line, "ip_port: %v", err)
			ok = false
		}
		n.Port = uint16(v)
	}
	return n, ok
}

// oneLine refuses a value that a trailing backslash continued onto the
// next line (see scan): no value of a known attribute holds a line break.
func oneLine(p *problems, a rawAttr) bool {
	if strings.ContainsRune(a.value, '\n') {
		p.add(a.line, "the value of '%s' goes on to the next line (it ends in a backslash); no valid %s holds a line break", a.key, a.key)
		return false
	}
	return true
}

// parseUnsigned reads a cluster.conf number as o2cb does (strtoul in base
// 10): leading white space, an optional sign, decimal digits. A '-'
// negates modulo 2^64, so of the negative numbers only -0 is in range. It
// refuses values above max.
func parseUnsigned(s string, max uint64) (uint64, error) {
	t := strings.TrimLeft(s, cSpace)
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg, t = t[0] == '-', t[1:]
	}
	if t == "" || strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Errorf("'%s' is not a decimal number", s)
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || v > max || neg && v != 0 {
		return 0, fmt.Errorf("%s is out of range 0..%d", s, max)
	}
	return v, nil
}

// parseDecimal accepts plain decimal digits up to max.
func parseDecimal(s string, max uint64) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty value")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("'%s' is not a decimal number", s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%s is out of range 0..%d", s, max)
	}
	return v, nil
}

// parseIPv4 accepts a dotted-quad IPv4 address a node can be reached at.
func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("'%s' is not an IPv4 address (O2CB nodes have dotted-quad IPv4 addresses)", s)
	}
	return a, checkNodeAddr(a)
}

func checkNodeAddr(a netip.Addr) error {
	switch {
	case !a.Is4():
		return fmt.Errorf("'%s' is not an IPv4 address", a)
	case a.IsUnspecified():
		return errors.New("0.0.0.0 is not an address a node can be reached at")
	case a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%s is a multicast or broadcast address, not a node's", a)
	}
	return nil
}

// checkClusterName applies o2cb's rule: 1..16 characters [0-9A-Za-z].
func checkClusterName(name string) error {
	if name == "" {
		return errors.New("cluster name is empty")
	}
	if len(name) > MaxClusterNameLen {
		return fmt.Errorf("cluster name '%s' is longer than %d characters", name, MaxClusterNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return fmt.Errorf("cluster name '%s' has %q; only letters and digits are allowed", name, c)
		}
	}
	return nil
}

// checkNodeName accepts host names without a domain: 1..64 of letters,
// digits, '.', '-', '_'.
func checkNodeName(name string) error {
	if name == "" {
		return errors.New("node name is empty")
	}
	if len(name) > MaxNodeNameLen {
		return fmt.Errorf("node name '%s' is longer than %d characters", name, MaxNodeNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '-' || c == '_') {
			return fmt.Errorf("node name '%s' has %q; a node is named by its host name (letters, digits, '.', '-', '_')", name, c)
		}
	}
	return nil
}

// checkRegion accepts a region exactly as cluster.conf must hold it: 32 hex
// digits.
func checkRegion(r string) error {
	if len(r) != RegionLen || !isHex(r) {
		return fmt.Errorf("region '%s' is not a volume UUID of %d hex digits", r, RegionLen)
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// ParseRegion turns a volume UUID as users write it — 32 hex digits as o2cb
// and debugfs.ocfs2 print it, or the dashed form blkid prints — into the
// region name cluster.conf holds: 32 upper-case hex digits.
func ParseRegion(s string) (string, error) {
	if strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("'%s' is a device path, not a volume UUID (o2go cluster add-heartbeat reads a device's UUID; blkid -s UUID -o value %s prints it)", s, s)
	}
	r := s
	if len(r) == 36 && r[8] == '-' && r[13] == '-' && r[18] == '-' && r[23] == '-' {
		r = r[:8] + r[9:13] + r[14:18] + r[19:23] + r[24:]
	}
	if len(r) != RegionLen || !isHex(r) {
		return "", fmt.Errorf("'%s' is not a volume UUID (32 hex digits, dashes allowed as blkid prints them)", s)
	}
	return strings.ToUpper(r), nil
}

// Validate checks everything Parse checks that a configuration built or
// changed in memory can get wrong: names, ranges, uniqueness.
func (c *ClusterConf) Validate() error {
	p := &problems{}
	c.check(p)
	return p.err()
}

// check reports the structural problems of c. Lines are those of parsed
// stanzas (0 for stanzas made in memory).
func (c *ClusterConf) check(p *problems) {
	firstCluster := map[string]*Cluster{}
	for ci := range c.Clusters {
		cl := &c.Clusters[ci]
		if err := checkClusterName(cl.Name); err != nil {
			p.add(cl.line, "%v", err)
		}
		if first, dup := firstCluster[cl.Name]; dup {
			p.add(cl.line, "cluster '%s' is defined twice%s", cl.Name, firstOn(first.line))
		} else {
			firstCluster[cl.Name] = cl
		}
		if _, err := ParseHeartbeatMode(string(cl.HeartbeatMode)); err != nil || cl.HeartbeatMode != HeartbeatMode(strings.ToLower(string(cl.HeartbeatMode))) {
			p.add(cl.line, "cluster '%s': heartbeat_mode '%s' is neither 'local' nor 'global'", cl.Name, cl.HeartbeatMode)
		}
		byName := map[string]*Node{}
		byNumber := map[base.NodeID]*Node{}
		byAddr := map[netip.AddrPort]*Node{}
		for ni := range cl.Nodes {
			n := &cl.Nodes[ni]
			if err := checkNodeName(n.Name); err != nil {
				p.add(n.line, "cluster '%s': %v", cl.Name, err)
			}
			if !n.Number.Valid() {
				p.add(n.line, "cluster '%s': node '%s': number %d is out of range 0..%d", cl.Name, n.Name, n.Number, base.MaxNodes-1)
			}
			if err := checkNodeAddr(n.Addr); err != nil {
				p.add(n.line, "cluster '%s': node '%s': ip_address: %v", cl.Name, n.Name, err)
			}
			if n.Port == 0 || n.Port > MaxPort {
				p.add(n.line, "cluster '%s': node '%s': ip_port %d is out of range 1..%d", cl.Name, n.Name, n.Port, MaxPort)
			}
			if o, dup := byName[n.Name]; dup {
				p.add(n.line, "cluster '%s': node name '%s' is used twice%s", cl.Name, n.Name, firstOn(o.line))
			} else {
				byName[n.Name] = n
			}
			if o, dup := byNumber[n.Number]; dup {
				p.add(n.line, "cluster '%s': node '%s' has number %d, already used by node '%s'%s", cl.Name, n.Name, n.Number, o.Name, onLine(o.line))
			} else {
				byNumber[n.Number] = n
			}
			if o, dup := byAddr[n.AddrPort()]; dup && n.Addr.IsValid() {
				p.add(n.line, "cluster '%s': node '%s' has address %s, already used by node '%s'%s", cl.Name, n.Name, n.AddrPort(), o.Name, onLine(o.line))
			} else {
				byAddr[n.AddrPort()] = n
			}
		}
		regions := map[string]*Heartbeat{}
		for hi := range cl.Heartbeats {
			h := &cl.Heartbeats[hi]
			if err := checkRegion(h.Region); err != nil {
				p.add(h.line, "cluster '%s': %v", cl.Name, err)
			}
			key := strings.ToUpper(h.Region)
			if o, dup := regions[key]; dup {
				p.add(h.line, "cluster '%s': heartbeat region %s is listed twice%s", cl.Name, h.Region, firstOn(o.line))
			} else {
				regions[key] = h
			}
			if hi == MaxHeartbeatRegions {
				p.add(h.line, "cluster '%s' has more than %d heartbeat regions", cl.Name, MaxHeartbeatRegions)
			}
		}
	}
}

func firstOn(line int) string {
	if line > 0 {
		return fmt.Sprintf(" (first on line %d)", line)
	}
	return ""
}

func onLine(line int) string {
	if line > 0 {
		return fmt.Sprintf(" (line %d)", line)
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
