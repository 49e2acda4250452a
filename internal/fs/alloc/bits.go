package alloc

import "math/bits"

// Bitmaps here are OCFS2's: bit i is byte i/8, bit i%8, least significant
// first; 1 = used.

func testBit(bm []byte, i int) bool { return bm[i>>3]&(1<<(i&7)) != 0 }
func setBit(bm []byte, i int)       { bm[i>>3] |= 1 << (i & 7) }
func clearBit(bm []byte, i int)     { bm[i>>3] &^= 1 << (i & 7) }

// nextZero returns the first clear bit in [from, limit), or limit.
func nextZero(bm []byte, from, limit int) int {
	i := from
	for i < limit {
		if i&7 == 0 && i+8 <= limit && bm[i>>3] == 0xFF {
			i += 8
			continue
		}
		if !testBit(bm, i) {
			return i
		}
		i++
	}
	return limit
}

// nextSet returns the first set bit in [from, limit), or limit.
func nextSet(bm []byte, from, limit int) int {
	i := from
	for i < limit {
		if i&7 == 0 && i+8 <= limit && bm[i>>3] == 0 {
			i += 8
			continue
		}
		if testBit(bm, i) {
			return i
		}
		i++
	}
	return limit
}

// countSet is the number of set bits in [0, limit).
func countSet(bm []byte, limit int) int {
	n := 0
	for i := 0; i < limit>>3; i++ {
		n += bits.OnesCount8(bm[i])
	}
	for i := limit &^ 7; i < limit; i++ {
		if testBit(bm, i) {
			n++
		}
	}
	return n
}

// rangeClear reports whether [start, start+n) has no set bit.
func rangeClear(bm []byte, start, n int) bool { return nextSet(bm, start, start+n) == start+n }

// rangeSet reports whether every bit of [start, start+n) is set.
func rangeSet(bm []byte, start, n int) bool { return nextZero(bm, start, start+n) == start+n }

// findRun searches [from, limit) the way the kernel's
// ocfs2_block_group_find_clear_bits does: it returns the first run of at
// least want clear bits (cut to want), or else the longest run it saw (the
// first of equal length). n is 0 when every bit is set.
func findRun(bm []byte, from, limit, want int) (start, n int) {
	i := from
	for i < limit {
		z := nextZero(bm, i, limit)
		if z >= limit {
			break
		}
		e := nextSet(bm, z, min(limit, z+want))
		if e-z > n {
			start, n = z, e-z
		}
		if n >= want {
			return start, want
		}
		i = e
	}
	return start, n
}
