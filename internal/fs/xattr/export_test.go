package xattr

import (
	"testing"

	"o2go/internal/base"
)

// Test helpers shared with the external tests (package xattr_test), which
// run on real volumes through fs/volume and so cannot live in this package.

type Layout = layout

func LayoutOf(t testing.TB, x Inode) Layout { return layoutOf(t, x) }

func CountTransitions(seen map[string]int, a, b Layout) { transitions(seen, a, b) }

func NameGen(r *base.Rand, n int) []string { return nameGen(r, n) }

func ValueGen(r *base.Rand, big bool) []byte { return valueGen(r, big) }

// HasDeepValue says whether some value tree of the layout has an extent
// block.
func HasDeepValue(l Layout) bool { return l.deepValue }
