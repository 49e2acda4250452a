package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"o2go/internal/base"
)

// Errors the editing operations' errors match (errors.Is), for callers that
// branch on them.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// editError is an editing error whose message says it all and that matches
// one of the sentinels above.
type editError struct {
	msg  string
	kind error
}

func (e *editError) Error() string        { return e.msg }
func (e *editError) Is(target error) bool { return target == e.kind }

func notFound(format string, args ...any) error {
	return &editError{msg: fmt.Sprintf(format, args...), kind: ErrNotFound}
}

func exists(format string, args ...any) error {
	return &editError{msg: fmt.Sprintf(format, args...), kind: ErrExists}
}

// Cluster returns the named cluster, or nil.
func (c *ClusterConf) Cluster(name string) *Cluster {
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			return &c.Clusters[i]
		}
	}
	return nil
}

// LookupCluster is Cluster with an error that names the file's clusters.
func (c *ClusterConf) LookupCluster(name string) (*Cluster, error) {
	if cl := c.Cluster(name); cl != nil {
		return cl, nil
	}
	names := make([]string, len(c.Clusters))
	for i, cl := range c.Clusters {
		names[i] = cl.Name
	}
	if len(names) == 0 {
		return nil, notFound("unknown cluster '%s' (no cluster is configured)", name)
	}
	return nil, notFound("unknown cluster '%s' (configured: %s)", name, strings.Join(names, ", "))
}

// AddCluster is `o2cb add-cluster`: a new cluster with local heartbeat and
// no nodes.
func (c *ClusterConf) AddCluster(name string) (*Cluster, error) {
	if err := checkClusterName(name); err != nil {
		return nil, err
	}
	if c.Cluster(name) != nil {
		return nil, exists("cluster '%s' already exists", name)
	}
	c.Clusters = append(c.Clusters, Cluster{Name: name, HeartbeatMode: HeartbeatLocal})
	return &c.Clusters[len(c.Clusters)-1], nil
}

// RemoveCluster is `o2cb remove-cluster`: the cluster with its nodes and
// heartbeat regions.
func (c *ClusterConf) RemoveCluster(name string) error {
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			c.Clusters = append(c.Clusters[:i], c.Clusters[i+1:]...)
			return nil
		}
	}
	_, err := c.LookupCluster(name)
	return err
}

// Auto, as NodeSpec.Number, asks AddNode for the lowest unused node number;
// as NodeSpec.Port, for DefaultPort.
const Auto = -1

// NodeSpec is what `o2cb add-node` takes: Number and Port may be Auto, and
// IP "" means the address the node's name resolves to.
type NodeSpec struct {
	Name   string
	IP     string
	Port   int
	Number int
}

// Resolver returns the IPv4 address of a host name, for add-node without an
// address (o2cb uses the first address getaddrinfo returns).
type Resolver func(host string) (netip.Addr, error)

// Node returns the named node, or nil.
func (cl *Cluster) Node(name string) *Node {
	for i := range cl.Nodes {
		if cl.Nodes[i].Name == name {
			return &cl.Nodes[i]
		}
	}
	return nil
}

// NodeByNumber returns the node with number n, or nil.
func (cl *Cluster) NodeByNumber(n base.NodeID) *Node {
	for i := range cl.Nodes {
		if cl.Nodes[i].Number == n {
			return &cl.Nodes[i]
		}
	}
	return nil
}

// AddNode is `o2cb add-node`. resolve may be nil when spec.IP is set.
func (cl *Cluster) AddNode(spec NodeSpec, resolve Resolver) (Node, error) {
	name := strings.TrimSpace(spec.Name) // o2cb strips the name
	if err := checkNodeName(name); err != nil {
		return Node{}, err
	}
	if cl.Node(name) != nil {
		return Node{}, exists("node '%s' already exists in cluster '%s'", name, cl.Name)
	}
	n := Node{Name: name}
	if spec.IP != "" {
		a, err := parseIPv4(spec.IP)
		if err != nil {
			return Node{}, fmt.Errorf("bad IP address: %w", err)
		}
		n.Addr = a
	} else {
		if resolve == nil {
			return Node{}, fmt.Errorf("node '%s' has no IP address and none can be looked up; give one", name)
		}
		a, err := resolve(name)
		if err != nil {
			return Node{}, fmt.Errorf("looking up the IP address of '%s' (give one with --ip): %w", name, err)
		}
		if err := checkNodeAddr(a); err != nil {
			return Node{}, fmt.Errorf("'%s' resolves to %s: %w", name, a, err)
		}
		n.Addr = a
	}
	switch {
	case spec.Number == Auto:
		free := false
		for i := 0; i < base.MaxNodes && !free; i++ {
			if cl.NodeByNumber(base.NodeID(i)) == nil {
				n.Number, free = base.NodeID(i), true
			}
		}
		if !free {
			return Node{}, fmt.Errorf("cluster '%s' is full: all %d node numbers are in use", cl.Name, base.MaxNodes)
		}
	case spec.Number < 0 || spec.Number >= base.MaxNodes:
		return Node{}, fmt.Errorf("node number %d is out of range 0..%d", spec.Number, base.MaxNodes-1)
	default:
		n.Number = base.NodeID(spec.Number)
		if o := cl.NodeByNumber(n.Number); o != nil {
			return Node{}, exists("node number %d is in use by node '%s'; choose another", spec.Number, o.Name)
		}
	}
	switch {
	case spec.Port == Auto:
		n.Port = DefaultPort
	case spec.Port < 1 || spec.Port > MaxPort:
		return Node{}, fmt.Errorf("port %d is out of range 1..%d", spec.Port, MaxPort)
	default:
		n.Port = uint16(spec.Port)
	}
	for _, o := range cl.Nodes {
		if o.AddrPort() == n.AddrPort() {
			return Node{}, exists("address %s is in use by node '%s'; give another IP address or port", n.AddrPort(), o.Name)
		}
	}
	cl.Nodes = append(cl.Nodes, n)
	cl.edited()
	return n, nil
}

// RemoveNode is `o2cb remove-node`.
func (cl *Cluster) RemoveNode(name string) error {
	for i := range cl.Nodes {
		if cl.Nodes[i].Name == name {
			cl.Nodes = append(cl.Nodes[:i], cl.Nodes[i+1:]...)
			cl.edited()
			return nil
		}
	}
	return notFound("unknown node '%s' in cluster '%s'", name, cl.Name)
}

// AddHeartbeat is `o2cb add-heartbeat` with a UUID (see ParseRegion for the
// forms accepted). It returns the region as stored.
func (cl *Cluster) AddHeartbeat(uuid string) (string, error) {
	r, err := ParseRegion(uuid)
	if err != nil {
		return "", err
	}
	if cl.heartbeatIndex(r) >= 0 {
		return "", exists("heartbeat region '%s' already exists in cluster '%s'", r, cl.Name)
	}
	if len(cl.Heartbeats) >= MaxHeartbeatRegions {
		return "", fmt.Errorf("cluster '%s' already has the most heartbeat regions O2CB allows (%d)", cl.Name, MaxHeartbeatRegions)
	}
	cl.Heartbeats = append(cl.Heartbeats, Heartbeat{Region: r})
	cl.edited()
	return r, nil
}

// RemoveHeartbeat is `o2cb remove-heartbeat` with a UUID.
func (cl *Cluster) RemoveHeartbeat(uuid string) error {
	r, err := ParseRegion(uuid)
	if err != nil {
		return err
	}
	i := cl.heartbeatIndex(r)
	if i < 0 {
		return notFound("unknown heartbeat region '%s' in cluster '%s'", r, cl.Name)
	}
	cl.Heartbeats = append(cl.Heartbeats[:i], cl.Heartbeats[i+1:]...)
	cl.edited()
	return nil
}

func (cl *Cluster) heartbeatIndex(region string) int {
	for i, h := range cl.Heartbeats {
		if strings.EqualFold(h.Region, region) {
			return i
		}
	}
	return -1
}

// SetHeartbeatMode is `o2cb heartbeat-mode`.
func (cl *Cluster) SetHeartbeatMode(mode string) error {
	m, err := ParseHeartbeatMode(mode)
	if err != nil {
		return err
	}
	cl.HeartbeatMode = m
	cl.edited()
	return nil
}
