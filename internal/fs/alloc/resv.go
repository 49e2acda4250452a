package alloc

import (
	"slices"

	"o2go/internal/base"
)

// Reservation levels (mount options resv_level and dir_resv_level): a
// window is 4 << level bits (8, 16, ... 1024 at levels 1..8); level 0
// turns reservations off.
const (
	DefaultResvLevel = 2
	MaxResvLevel     = 8
)

// Reservation is one inode's window in its slot's local alloc: clusters
// held back for the inode's next extensions so that files written
// round-robin stay contiguous. The zero value is an empty window for a
// regular file; set Dir for a directory. Callers keep one per in-memory
// inode and give it back with ClusterAllocator.DiscardReservation when the
// inode is dropped or truncated.
//
// A window never covers a used bit of the local alloc: it is found among
// free bits, between the other windows, and shrinks from its start as the
// inode claims from it (reservations.c). Windows live only in memory and
// vanish when the local alloc moves to a new window of the global bitmap.
type Reservation struct {
	// Dir sizes the window by dir_resv_level.
	Dir bool

	start, length      uint32 // current window (empty when length == 0)
	lastStart, lastLen uint32 // most recent claim: where the next window goes
	inUse, tmp         bool
	lru                uint64 // last use; the oldest window is cannibalized first
	owner              *reservationMap
}

// Window returns the reservation's current window in local alloc bits.
func (r *Reservation) Window() (start, length uint32) { return r.start, r.length }

func (r *Reservation) empty() bool { return r.length == 0 }

func (r *Reservation) end() uint32 {
	if r.length == 0 {
		return r.start
	}
	return r.start + r.length - 1
}

// reservationMap holds the windows of one local alloc, sorted by start
// (the kernel's rbtree), with their use order (its LRU list).
type reservationMap struct {
	level, dirLevel int
	bitmapLen       uint32
	windows         []*Reservation
	clock           uint64
}

func newReservationMap(level, dirLevel int) reservationMap {
	return reservationMap{level: level, dirLevel: dirLevel}
}

// disabled reports whether reservations are off (resv_level=0).
func (m *reservationMap) disabled() bool { return m.level == 0 }

func (m *reservationMap) windowBits(r *Reservation) uint32 {
	if r.Dir {
		return 4 << m.dirLevel
	}
	return 4 << m.level
}

// restart drops every window: the local alloc now covers clen new bits.
func (m *reservationMap) restart(clen uint32) {
	for len(m.windows) > 0 {
		m.discard(m.windows[len(m.windows)-1])
	}
	m.bitmapLen = clen
}

// discard empties r and forgets where it last claimed.
func (m *reservationMap) discard(r *Reservation) {
	r.start, r.length = 0, 0
	r.lastStart, r.lastLen = 0, 0
	m.remove(r)
}

func (m *reservationMap) remove(r *Reservation) {
	if !r.inUse {
		return
	}
	if i := slices.Index(m.windows, r); i >= 0 {
		m.windows = slices.Delete(m.windows, i, i+1)
	}
	r.inUse, r.owner = false, nil
}

func (m *reservationMap) touch(r *Reservation) {
	m.clock++
	r.lru = m.clock
}

func (m *reservationMap) insert(r *Reservation) {
	i, _ := slices.BinarySearchFunc(m.windows, r.start, func(w *Reservation, s uint32) int {
		switch {
		case w.start < s:
			return -1
		case w.start > s:
			return 1
		}
		return 0
	})
	if i < len(m.windows) {
		base.Assert(r.end() < m.windows[i].start, "reservation [%d,%d] overlaps the window at %d", r.start, r.end(), m.windows[i].start)
	}
	if i > 0 {
		base.Assert(m.windows[i-1].end() < r.start, "reservation [%d,%d] overlaps the window [%d,%d]", r.start, r.end(), m.windows[i-1].start, m.windows[i-1].end())
	}
	base.Assert(r.end() < m.bitmapLen, "reservation [%d,%d] past the %d-bit local alloc", r.start, r.end(), m.bitmapLen)
	m.windows = slices.Insert(m.windows, i, r)
	r.inUse, r.owner = true, m
	m.touch(r)
}

// lhs is the window holding goal, else the last one starting before it.
func (m *reservationMap) lhs(goal uint32) *Reservation {
	var prev *Reservation
	for _, w := range m.windows {
		if w.start <= goal && w.end() >= goal {
			return w
		}
		if w.start > goal {
			return prev
		}
		prev = w
	}
	return prev
}

// freeBits searches the local alloc bitmap bm over [start, start+n) the
// way ocfs2_resmap_find_free_bits does.
func (m *reservationMap) freeBits(bm []byte, wanted, start, n uint32) (uint32, uint32) {
	limit := min(uint64(start)+uint64(n), uint64(m.bitmapLen))
	s, l := findRun(bm, int(start), int(limit), int(wanted))
	return uint32(s), uint32(l)
}

// findWindowFrom places r in the first gap at or after goal holding wanted
// free bits, else in the largest free run any gap holds.
func (m *reservationMap) findWindowFrom(bm []byte, r *Reservation, goal, wanted uint32) {
	if len(m.windows) == 0 {
		if goal >= m.bitmapLen {
			return
		}
		s, l := m.freeBits(bm, wanted, goal, m.bitmapLen-goal)
		if l == 0 {
			return
		}
		r.start, r.length = s, l
		m.insert(r)
		return
	}
	var bestStart, bestLen uint32
	prevIdx := -1
	if prev := m.lhs(goal); prev == nil {
		next := m.windows[0]
		if s, l := m.freeBits(bm, wanted, goal, next.start-goal); l > 0 {
			bestStart, bestLen = s, l
			if l == wanted {
				r.start, r.length = bestStart, bestLen
				m.insert(r)
				return
			}
		}
		prevIdx = 0
	} else {
		prevIdx = slices.Index(m.windows, prev)
	}
	for i := prevIdx; i < len(m.windows); i++ {
		gapStart := m.windows[i].end() + 1
		gapEnd := m.bitmapLen // exclusive
		if i+1 < len(m.windows) {
			gapEnd = m.windows[i+1].start
		}
		if gapEnd <= gapStart || gapEnd-gapStart <= bestLen {
			continue
		}
		s, l := m.freeBits(bm, wanted, gapStart, gapEnd-gapStart)
		if l == wanted {
			bestStart, bestLen = s, l
			break
		}
		if l > bestLen {
			bestStart, bestLen = s, l
		}
	}
	if bestLen > 0 {
		r.start, r.length = bestStart, bestLen
		m.insert(r)
	}
}

// cannibalize gives r all or half of the least recently used window.
func (m *reservationMap) cannibalize(r *Reservation, wanted uint32) {
	if len(m.windows) == 0 {
		return
	}
	minBits := m.windowBits(r) >> 1
	if r.tmp {
		minBits = wanted
	}
	lru := m.windows[0]
	for _, w := range m.windows {
		if w.lru < lru.lru {
			lru = w
		}
	}
	if lru.length <= minBits {
		r.start, r.length = lru.start, lru.length
		m.discard(lru)
	} else {
		shrink := lru.length / 2
		if r.tmp {
			shrink = minBits
		}
		lru.length -= shrink
		r.start, r.length = lru.end()+1, shrink
	}
	m.insert(r)
}

// findWindow gives the empty r a window of about wanted bits: right after
// its last claim if it can, else anywhere, else taken from the oldest
// window.
func (m *reservationMap) findWindow(bm []byte, r *Reservation, wanted uint32) {
	goal := uint32(0)
	if r.lastLen != 0 {
		goal = r.lastStart + r.lastLen
		if goal >= m.bitmapLen {
			goal = 0
		}
	}
	m.findWindowFrom(bm, r, goal, wanted)
	if r.empty() && goal != 0 {
		m.findWindowFrom(bm, r, 0, wanted)
	}
	if r.empty() {
		m.cannibalize(r, wanted)
	}
}

// resvBits returns r's window, finding one first if it is empty (wanted:
// the bits the caller asks for). ok is false when reservations are off or
// no free bit is left.
func (m *reservationMap) resvBits(bm []byte, r *Reservation, clen uint32) (start, length uint32, ok bool) {
	if r == nil || m.disabled() {
		return 0, 0, false
	}
	if r.owner != m && (r.inUse || !r.empty()) {
		// A window of another local alloc (before a remount or a
		// shutdown): it means nothing here.
		*r = Reservation{Dir: r.Dir, tmp: r.tmp}
	}
	if r.empty() {
		wanted := m.windowBits(r)
		if r.tmp || wanted < clen {
			wanted = clen
		}
		m.findWindow(bm, r, wanted)
	}
	if r.empty() {
		return 0, 0, false
	}
	return r.start, r.length, true
}

// claimed records that r's window gave [cstart, cstart+clen): the window
// shrinks from its start (or goes), and the next one goes after it.
func (m *reservationMap) claimed(r *Reservation, cstart, clen uint32) {
	if r == nil || m.disabled() {
		return
	}
	base.Assert(cstart == r.start && cstart+clen-1 <= r.end(), "claim [%d,+%d) outside window [%d,%d]", cstart, clen, r.start, r.end())
	if cstart+clen-1 == r.end() {
		m.discard(r)
	} else {
		r.start = cstart + clen
		r.length -= clen
	}
	r.lastStart, r.lastLen = cstart, clen
	if !r.empty() {
		m.touch(r)
	}
}
