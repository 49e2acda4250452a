package base

import (
	"slices"
	"testing"
)

func TestNodeMapSetOperations(t *testing.T) {
	a := NodeMapOf(0, 3, 64, 200, 254)
	b := NodeMapOf(3, 5, 254)
	if got := a.Nodes(); !slices.Equal(got, []NodeID{0, 3, 64, 200, 254}) {
		t.Fatalf("Nodes = %v", got)
	}
	if a.Len() != 5 || a.Lowest() != 0 || a.Next(3) != 64 || a.Next(254) != InvalidNode {
		t.Fatalf("Len/Lowest/Next wrong: %d %v %v", a.Len(), a.Lowest(), a.Next(3))
	}
	if got := a.Intersect(b).String(); got != "3 254" {
		t.Fatalf("Intersect = %q", got)
	}
	if got := a.Minus(b).String(); got != "0 64 200" {
		t.Fatalf("Minus = %q", got)
	}
	if got := a.Union(b).Len(); got != 6 {
		t.Fatalf("Union len = %d", got)
	}
	var e NodeMap
	if !e.Empty() || e.Lowest() != InvalidNode || e.String() != "" {
		t.Fatal("empty map misbehaves")
	}
	a.Remove(0)
	if a.Has(0) || a.Lowest() != 3 {
		t.Fatal("Remove failed")
	}
}

func TestRandIsReproducible(t *testing.T) {
	x, y := NewRand(42), NewRand(42)
	for i := 0; i < 100; i++ {
		if x.Uint64() != y.Uint64() {
			t.Fatal("same seed, different sequence")
		}
	}
	if NewRand(1).Uint64() == NewRand(2).Uint64() {
		t.Fatal("different seeds gave the same first value")
	}
}
