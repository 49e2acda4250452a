package base

import (
	"fmt"
	"math/bits"
	"strings"
)

// MaxNodes is the number of node numbers an O2CB cluster can use (0..254).
// O2NM_MAX_NODES in the kernel; the heartbeat area has one sector per number.
const MaxNodes = 255

// NodeID is a cluster node number as written in cluster.conf ("number = N")
// and in the heartbeat block (hb_node). Valid values are 0..MaxNodes-1.
type NodeID uint8

// InvalidNode marks "no node" (O2NM_INVALID_NODE_NUM in the kernel).
const InvalidNode NodeID = 255

// Valid reports whether n is a usable node number.
func (n NodeID) Valid() bool { return n < MaxNodes }

func (n NodeID) String() string {
	if !n.Valid() {
		return "none"
	}
	return fmt.Sprintf("%d", uint8(n))
}

// NodeMap is a set of node numbers with ascending iteration order. It is a
// value type (a 256-bit bitmap) so that maps can be compared with == and
// copied freely; the pure protocol cores rely on that to stay deterministic.
type NodeMap struct{ w [4]uint64 }

// NodeMapOf returns the set holding the given nodes.
func NodeMapOf(nodes ...NodeID) NodeMap {
	var m NodeMap
	for _, n := range nodes {
		m.Add(n)
	}
	return m
}

// Add puts n in the set.
func (m *NodeMap) Add(n NodeID) { m.w[n>>6] |= 1 << (n & 63) }

// Remove takes n out of the set.
func (m *NodeMap) Remove(n NodeID) { m.w[n>>6] &^= 1 << (n & 63) }

// Has reports whether n is in the set.
func (m NodeMap) Has(n NodeID) bool { return m.w[n>>6]&(1<<(n&63)) != 0 }

// Len is the number of nodes in the set.
func (m NodeMap) Len() int {
	return bits.OnesCount64(m.w[0]) + bits.OnesCount64(m.w[1]) +
		bits.OnesCount64(m.w[2]) + bits.OnesCount64(m.w[3])
}

// Empty reports whether the set has no nodes.
func (m NodeMap) Empty() bool { return m.w == [4]uint64{} }

// Union returns m ∪ o.
func (m NodeMap) Union(o NodeMap) NodeMap {
	for i := range m.w {
		m.w[i] |= o.w[i]
	}
	return m
}

// Intersect returns m ∩ o.
func (m NodeMap) Intersect(o NodeMap) NodeMap {
	for i := range m.w {
		m.w[i] &= o.w[i]
	}
	return m
}

// Minus returns m \ o.
func (m NodeMap) Minus(o NodeMap) NodeMap {
	for i := range m.w {
		m.w[i] &^= o.w[i]
	}
	return m
}

// Lowest returns the smallest node in the set, or InvalidNode when empty.
func (m NodeMap) Lowest() NodeID {
	for i, w := range m.w {
		if w != 0 {
			return NodeID(i*64 + bits.TrailingZeros64(w))
		}
	}
	return InvalidNode
}

// Next returns the smallest node in the set greater than n, or InvalidNode.
func (m NodeMap) Next(n NodeID) NodeID {
	for i := int(n) + 1; i < MaxNodes; i++ {
		if m.Has(NodeID(i)) {
			return NodeID(i)
		}
	}
	return InvalidNode
}

// Nodes lists the set in ascending order.
func (m NodeMap) Nodes() []NodeID {
	out := make([]NodeID, 0, m.Len())
	for i, w := range m.w {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, NodeID(i*64+b))
			w &^= 1 << b
		}
	}
	return out
}

// String prints the set the way the kernel's debug files do: "0 3 7".
func (m NodeMap) String() string {
	var sb strings.Builder
	for i, n := range m.Nodes() {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%d", n)
	}
	return sb.String()
}
