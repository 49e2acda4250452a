package lockglue

import (
	"math"
	"slices"
)

// PosixType is a byte-range lock's type (fcntl(2)'s F_RDLCK, F_WRLCK).
type PosixType uint8

const (
	PosixRead PosixType = iota + 1
	PosixWrite
)

// PosixLock is one byte-range lock: bytes [Start, End] (End inclusive,
// math.MaxUint64 for "to the end of the file and beyond") held by Owner.
type PosixLock struct {
	Owner      uint64 // the kernel's lock owner (a process's file table)
	Pid        uint32 // for F_GETLK
	Start, End uint64
	Type       PosixType
}

// ToEOF is the End of a lock that runs to the end of the file.
const ToEOF = math.MaxUint64

func (l PosixLock) overlaps(start, end uint64) bool { return l.Start <= end && start <= l.End }

// conflicts says whether l excludes a lock of type t on [start, end] by
// another owner: they overlap and one of them writes.
func (l PosixLock) conflicts(start, end uint64, t PosixType) bool {
	return l.overlaps(start, end) && (l.Type == PosixWrite || t == PosixWrite)
}

// PosixTable holds the byte-range locks of one file on one node with
// fcntl(2)'s rules: an owner's locks never conflict with each other; a new
// lock replaces what its owner held on the range (converting, splitting)
// and merges with the owner's adjacent locks of the same type; an unlock
// splits. It does no I/O and no waiting: the cluster protocol decides
// when a lock may be set (no other node's lock conflicts).
type PosixTable struct {
	locks []PosixLock // sorted by owner, then Start; an owner's locks never overlap
}

// Conflict returns a lock of another owner that excludes t on
// [start, end], if any.
func (p *PosixTable) Conflict(owner, start, end uint64, t PosixType) (PosixLock, bool) {
	for _, l := range p.locks {
		if l.Owner != owner && l.conflicts(start, end, t) {
			return l, true
		}
	}
	return PosixLock{}, false
}

// Set gives owner a lock of type t on [start, end]. The caller has checked
// that nothing conflicts.
func (p *PosixTable) Set(owner uint64, pid uint32, start, end uint64, t PosixType) {
	p.Unlock(owner, start, end)
	n := PosixLock{Owner: owner, Pid: pid, Start: start, End: end, Type: t}
	// Merge with the owner's same-type locks that touch the range.
	kept := p.locks[:0]
	for _, l := range p.locks {
		touches := l.Owner == owner && l.Type == t &&
			(l.End != ToEOF && l.End+1 == n.Start || n.End != ToEOF && n.End+1 == l.Start)
		if touches {
			n.Start, n.End = min(n.Start, l.Start), max(n.End, l.End)
			continue
		}
		kept = append(kept, l)
	}
	p.locks = append(kept, n)
	p.sort()
}

// Unlock removes owner's locks on [start, end], splitting those that
// reach past it.
func (p *PosixTable) Unlock(owner, start, end uint64) {
	var out []PosixLock
	for _, l := range p.locks {
		if l.Owner != owner || !l.overlaps(start, end) {
			out = append(out, l)
			continue
		}
		if l.Start < start {
			left := l
			left.End = start - 1
			out = append(out, left)
		}
		if end != ToEOF && l.End > end {
			right := l
			right.Start = end + 1
			out = append(out, right)
		}
	}
	p.locks = out
	p.sort()
}

// Locks returns a copy of the locks held, by owner then start.
func (p *PosixTable) Locks() []PosixLock { return slices.Clone(p.locks) }

// Empty says whether no lock is held.
func (p *PosixTable) Empty() bool { return len(p.locks) == 0 }

func (p *PosixTable) sort() {
	slices.SortFunc(p.locks, func(a, b PosixLock) int {
		if a.Owner != b.Owner {
			if a.Owner < b.Owner {
				return -1
			}
			return 1
		}
		if a.Start < b.Start {
			return -1
		}
		if a.Start > b.Start {
			return 1
		}
		return 0
	})
}
