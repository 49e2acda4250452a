package node

import (
	"fmt"
	"hash/fnv"
	"sort"

	"o2go/internal/cluster/config"
)

// ConfigDigest hashes what every node of a cluster must agree on in
// cluster.conf: the cluster's name, heartbeat mode, global heartbeat
// regions, and every node's name, number, address and port. Nodes exchange
// it in the handshake and refuse a peer whose digest differs.
func ConfigDigest(cl *config.Cluster) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "cluster %s mode %s\n", cl.Name, cl.HeartbeatMode)
	var regions []string
	for _, r := range cl.Heartbeats {
		regions = append(regions, r.Region)
	}
	sort.Strings(regions)
	for _, r := range regions {
		fmt.Fprintf(h, "region %s\n", r)
	}
	nodes := append([]config.Node(nil), cl.Nodes...)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Number < nodes[j].Number })
	for _, n := range nodes {
		fmt.Fprintf(h, "node %d %s %s\n", n.Number, n.Name, n.AddrPort())
	}
	return h.Sum64()
}
