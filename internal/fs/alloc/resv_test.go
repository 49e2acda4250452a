package alloc

import (
	"testing"

	"pgregory.net/rapid"
)

// naiveRun is findRun written the obvious way, bit by bit.
func naiveRun(bm []byte, from, limit, want int) (int, int) {
	bestS, bestN := 0, 0
	for i := from; i < limit; {
		if testBit(bm, i) {
			i++
			continue
		}
		j := i
		for j < limit && !testBit(bm, j) && j-i < want {
			j++
		}
		if j-i > bestN {
			bestS, bestN = i, j-i
		}
		if bestN >= want {
			return bestS, want
		}
		for j < limit && !testBit(bm, j) {
			j++
		}
		i = j
	}
	return bestS, bestN
}

func TestFindRunMatchesNaive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 300).Draw(t, "bits")
		bm := make([]byte, (n+7)/8+1)
		dense := rapid.Float64Range(0, 1).Draw(t, "density")
		for i := 0; i < n; i++ {
			if rapid.Float64Range(0, 1).Draw(t, "b") < dense {
				setBit(bm, i)
			}
		}
		from := rapid.IntRange(0, n).Draw(t, "from")
		want := rapid.IntRange(1, 64).Draw(t, "want")
		s1, n1 := findRun(bm, from, n, want)
		s2, n2 := naiveRun(bm, from, n, want)
		if n1 != n2 || (n1 > 0 && s1 != s2) {
			t.Fatalf("findRun = (%d,%d), naive (%d,%d)", s1, n1, s2, n2)
		}
		if got, want := countSet(bm, n), func() int {
			c := 0
			for i := 0; i < n; i++ {
				if testBit(bm, i) {
					c++
				}
			}
			return c
		}(); got != want {
			t.Fatalf("countSet = %d, want %d", got, want)
		}
	})
}

// TestReservationMapStateMachine drives a reservation map over a local
// alloc bitmap with random claims through random reservations, discards,
// frees and window moves, checking after every step what reservations.c
// checks under OCFS2_CHECK_RESERVATIONS: windows sorted, disjoint, inside
// the bitmap, non-empty and never over a used bit; and that a claim always
// lands on free bits at its window's start.
func TestReservationMapStateMachine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		level := rapid.IntRange(1, MaxResvLevel).Draw(t, "level")
		m := newReservationMap(level, rapid.IntRange(1, MaxResvLevel).Draw(t, "dirlevel"))
		size := rapid.IntRange(8, 600).Draw(t, "window")
		bm := make([]byte, (size+7)/8)
		m.restart(uint32(size))
		resvs := make([]*Reservation, rapid.IntRange(1, 8).Draw(t, "inodes"))
		for i := range resvs {
			resvs[i] = &Reservation{Dir: i%3 == 0}
		}
		used := 0
		check := func() {
			var prevEnd int = -1
			for _, w := range m.windows {
				if w.length == 0 || int(w.start) <= prevEnd || int(w.end()) >= size || w.owner != &m || !w.inUse {
					t.Fatalf("bad window [%d,+%d) after %d; windows %v", w.start, w.length, prevEnd, m.windows)
				}
				for b := w.start; b <= w.end(); b++ {
					if testBit(bm, int(b)) {
						t.Fatalf("window [%d,%d] covers used bit %d", w.start, w.end(), b)
					}
				}
				prevEnd = int(w.end())
			}
		}
		steps := rapid.IntRange(1, 200).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0: // the window moves: everything starts over
				clear(bm)
				used = 0
				m.restart(uint32(size))
			case 1: // an inode goes away
				m.discard(resvs[rapid.IntRange(0, len(resvs)-1).Draw(t, "who")])
			case 2: // a file's clusters are freed back (global) — the local bits stay set
			default: // claim
				if used == size {
					continue
				}
				var r *Reservation
				if k := rapid.IntRange(-1, len(resvs)-1).Draw(t, "who"); k >= 0 {
					r = resvs[k]
				} else {
					r = &Reservation{tmp: true}
				}
				want := rapid.IntRange(1, 8).Draw(t, "want")
				start, l, ok := m.resvBits(bm, r, uint32(want))
				if !ok {
					// Only when no window exists to cannibalize and no bit
					// is free.
					if len(m.windows) != 0 || countSet(bm, size) != size {
						t.Fatalf("no window, with %d windows and %d free bits", len(m.windows), size-countSet(bm, size))
					}
					continue
				}
				n := min(int(l), want)
				if !rangeClear(bm, int(start), n) {
					t.Fatalf("window [%d,+%d) not free", start, n)
				}
				for i := int(start); i < int(start)+n; i++ {
					setBit(bm, i)
				}
				used += n
				m.claimed(r, start, uint32(n))
				if r.tmp {
					m.discard(r)
				}
			}
			check()
		}
	})
}

// TestRoundRobinWindowsInMap: the manual's example at the map level: four
// inodes taking one bit each in turn end with each inode's bits in runs of
// a whole window.
func TestRoundRobinWindowsInMap(t *testing.T) {
	m := newReservationMap(DefaultResvLevel, DefaultResvLevel)
	const size = 2048
	bm := make([]byte, size/8)
	m.restart(size)
	resvs := []*Reservation{{}, {}, {}, {}}
	bits := make([][]int, 4)
	for round := 0; round < 100; round++ {
		for i, r := range resvs {
			start, _, ok := m.resvBits(bm, r, 1)
			if !ok {
				t.Fatal("no window")
			}
			setBit(bm, int(start))
			m.claimed(r, start, 1)
			bits[i] = append(bits[i], int(start))
		}
	}
	for i, b := range bits {
		runs := 1
		for j := 1; j < len(b); j++ {
			if b[j] != b[j-1]+1 {
				runs++
			}
		}
		if want := (100 + 15) / 16; runs > want {
			t.Errorf("inode %d: %d runs, want at most %d (one per 16-bit window)", i, runs, want)
		}
	}
}
