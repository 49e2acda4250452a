package config

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Format returns c as o2cb writes it: all cluster stanzas, then all
// heartbeat stanzas, then all node stanzas, attributes in o2cb's order, each
// stanza followed by a blank line. A configuration without clusters is an
// empty file, as o2cb leaves it after its last remove-cluster.
func (c *ClusterConf) Format() []byte {
	var b strings.Builder
	for _, cl := range c.Clusters {
		fmt.Fprintf(&b, "cluster:\n\tname = %s\n\theartbeat_mode = %s\n\tnode_count = %d\n\n",
			cl.Name, cl.HeartbeatMode, len(cl.Nodes))
	}
	for _, cl := range c.Clusters {
		for _, h := range cl.Heartbeats {
			fmt.Fprintf(&b, "heartbeat:\n\tcluster = %s\n\tregion = %s\n\n", cl.Name, h.Region)
		}
	}
	for _, cl := range c.Clusters {
		for _, n := range cl.Nodes {
			fmt.Fprintf(&b, "node:\n\tcluster = %s\n\tnumber = %d\n\tip_port = %d\n\tip_address = %s\n\tname = %s\n\n",
				cl.Name, n.Number, n.Port, n.Addr, n.Name)
		}
	}
	return []byte(b.String())
}

// ListClusters is `o2cb list-clusters`: one cluster name a line.
func (c *ClusterConf) ListClusters() string {
	var b strings.Builder
	for _, cl := range c.Clusters {
		b.WriteString(cl.Name)
		b.WriteByte('\n')
	}
	return b.String()
}

// ListHeartbeats is `o2cb list-heartbeats [--oneline]`. o2cb lists in its
// own key order, which differs from the file's.
func (cl *Cluster) ListHeartbeats(oneline bool) string {
	var b strings.Builder
	for _, h := range cl.Heartbeats {
		if oneline {
			fmt.Fprintf(&b, "heartbeat: %s %s\n", h.Region, cl.Name)
		} else {
			fmt.Fprintf(&b, "heartbeat:\n\tregion = %s\n\tcluster = %s\n\n", h.Region, cl.Name)
		}
	}
	return b.String()
}

// ListNodes is `o2cb list-nodes [--oneline]`.
func (cl *Cluster) ListNodes(oneline bool) string {
	var b strings.Builder
	for _, n := range cl.Nodes {
		if oneline {
			fmt.Fprintf(&b, "node: %d %s %s:%d %s\n", n.Number, n.Name, n.Addr, n.Port, cl.Name)
		} else {
			fmt.Fprintf(&b, "node:\n\tnumber = %d\n\tname = %s\n\tip_address = %s\n\tip_port = %d\n\tcluster = %s\n\n",
				n.Number, n.Name, n.Addr, n.Port, cl.Name)
		}
	}
	return b.String()
}

// List is `o2cb list-cluster [--oneline]`: heartbeats, nodes, then the
// cluster stanza, whose node_count is NodeCount: a stale count in the file
// is listed as o2cb lists it.
func (cl *Cluster) List(oneline bool) string {
	var b strings.Builder
	b.WriteString(cl.ListHeartbeats(oneline))
	b.WriteString(cl.ListNodes(oneline))
	// o2cb prints its unsigned count with %d.
	count := int32(uint32(cl.NodeCount()))
	if oneline {
		fmt.Fprintf(&b, "cluster: %d %s %s\n", count, cl.HeartbeatMode, cl.Name)
	} else {
		fmt.Fprintf(&b, "cluster:\n\tnode_count = %d\n\theartbeat_mode = %s\n\tname = %s\n\n",
			count, cl.HeartbeatMode, cl.Name)
	}
	return b.String()
}

// clusterJSON is the JSON form of a Cluster: cluster.conf's key names
// (node_count as List shows it), and empty lists as [] rather than null.
type clusterJSON struct {
	Name          string        `json:"name"`
	HeartbeatMode HeartbeatMode `json:"heartbeat_mode"`
	NodeCount     int           `json:"node_count"`
	Nodes         []Node        `json:"nodes"`
	Heartbeats    []Heartbeat   `json:"heartbeats"`
}

// MarshalJSON writes the cluster with cluster.conf's key names.
func (cl Cluster) MarshalJSON() ([]byte, error) {
	j := clusterJSON{Name: cl.Name, HeartbeatMode: cl.HeartbeatMode, NodeCount: cl.NodeCount(),
		Nodes: cl.Nodes, Heartbeats: cl.Heartbeats}
	if j.Nodes == nil {
		j.Nodes = []Node{}
	}
	if j.Heartbeats == nil {
		j.Heartbeats = []Heartbeat{}
	}
	return json.Marshal(j)
}
