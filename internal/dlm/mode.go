package dlm

import (
	"fmt"
	"strings"
)

// Mode is a lock mode of the VMS/Linux DLM: NL, CR, CW, PR, PW, EX (o2dlm
// has only NL, PR and EX). The numeric order is the conventional one, from
// weakest to strongest; it is not a total order of exclusion (CW and PR
// exclude each other), so code that compares strength uses Weaker.
type Mode int8

// The six modes, and ModeNone for "no mode" (a lock not granted yet).
const (
	ModeNone Mode = -1
	ModeNL   Mode = 0 // null: holds a place, excludes nothing
	ModeCR   Mode = 1 // concurrent read
	ModeCW   Mode = 2 // concurrent write
	ModePR   Mode = 3 // protected read (shared)
	ModePW   Mode = 4 // protected write (update)
	ModeEX   Mode = 5 // exclusive
)

const numModes = 6

var modeNames = [numModes]string{"NL", "CR", "CW", "PR", "PW", "EX"}

// Valid reports whether m is one of the six modes.
func (m Mode) Valid() bool { return m >= ModeNL && m <= ModeEX }

func (m Mode) String() string {
	if m.Valid() {
		return modeNames[m]
	}
	if m == ModeNone {
		return "-"
	}
	return fmt.Sprintf("Mode(%d)", int8(m))
}

// ParseMode accepts a mode name in any case ("ex", "PR", ...).
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if strings.EqualFold(s, n) {
			return Mode(i), nil
		}
	}
	return ModeNone, fmt.Errorf("lock mode %q is not one of NL, CR, CW, PR, PW, EX", s)
}

// compat is the standard compatibility matrix: compat[a][b] is true when a
// lock granted in mode a lets another lock be granted in mode b. It is
// symmetric.
var compat = [numModes][numModes]bool{
	/*        NL    CR     CW     PR     PW     EX */
	/*NL*/ {true, true, true, true, true, true},
	/*CR*/ {true, true, true, true, true, false},
	/*CW*/ {true, true, true, false, false, false},
	/*PR*/ {true, true, false, true, false, false},
	/*PW*/ {true, true, false, false, false, false},
	/*EX*/ {true, false, false, false, false, false},
}

// Compatible reports whether locks in modes a and b may be granted at the same
// time on one resource. ModeNone is compatible with everything.
func Compatible(a, b Mode) bool {
	if a == ModeNone || b == ModeNone {
		return true
	}
	return compat[a][b]
}

// conflictSet is the set of modes m excludes, as a bit mask over modes.
func conflictSet(m Mode) uint8 {
	if !m.Valid() {
		return 0
	}
	var s uint8
	for b := ModeNL; b <= ModeEX; b++ {
		if !compat[m][b] {
			s |= 1 << b
		}
	}
	return s
}

// Weaker reports whether a excludes no mode that b does not exclude, and
// a != b: converting from b to a can never be refused (a down-conversion).
// PR and CW are not weaker than each other.
func Weaker(a, b Mode) bool {
	if a == b {
		return false
	}
	if a == ModeNone {
		return true
	}
	if b == ModeNone {
		return false
	}
	ca, cb := conflictSet(a), conflictSet(b)
	return ca&^cb == 0
}

// weakerOrEqual is Weaker(a, b) || a == b.
func weakerOrEqual(a, b Mode) bool { return a == b || Weaker(a, b) }

// lvbOp is what a transition from one mode to another does with the lock
// value block.
type lvbOp int8

const (
	lvbNone  lvbOp = iota // the value block is left alone
	lvbRead               // the resource's value is returned to the holder
	lvbWrite              // the holder's value (if it sends one) is stored
)

// lvbOps[from+1][to+1] is the standard LVB rule (the fs/dlm table): a grant
// that does not lower the mode reads; a conversion down from PW or EX (and
// an EX->EX or PW->PW conversion) writes; lowering from NL..PR does nothing.
// Row and column 0 are "no lock" (a new request, or an unlock).
var lvbOps = [numModes + 1][numModes + 1]lvbOp{
	/*            none      NL        CR        CW        PR        PW        EX */
	/*none*/ {lvbNone, lvbRead, lvbRead, lvbRead, lvbRead, lvbRead, lvbRead},
	/*NL*/ {lvbNone, lvbRead, lvbRead, lvbRead, lvbRead, lvbRead, lvbRead},
	/*CR*/ {lvbNone, lvbNone, lvbRead, lvbRead, lvbRead, lvbRead, lvbRead},
	/*CW*/ {lvbNone, lvbNone, lvbNone, lvbRead, lvbRead, lvbRead, lvbRead},
	/*PR*/ {lvbNone, lvbNone, lvbNone, lvbNone, lvbRead, lvbRead, lvbRead},
	/*PW*/ {lvbWrite, lvbWrite, lvbWrite, lvbWrite, lvbWrite, lvbWrite, lvbRead},
	/*EX*/ {lvbWrite, lvbWrite, lvbWrite, lvbWrite, lvbWrite, lvbWrite, lvbWrite},
}

// lvbOpFor returns the value-block rule for a transition; to == ModeNone is
// an unlock.
func lvbOpFor(from, to Mode) lvbOp { return lvbOps[from+1][to+1] }

// writesLVB reports whether a holder in mode m may store a value block when it
// lowers or releases its lock (PW and EX holders).
func writesLVB(m Mode) bool { return m == ModePW || m == ModeEX }

// strongestCompatible returns the mode that excludes the most while staying
// compatible with every mode in held: what a lock whose mode is unknown may
// have been, given the locks known to have been granted beside it. Used to
// stand in for the locks of a dead node whose master died too.
func strongestCompatible(held uint8) Mode {
	best := ModeNL
	for m := ModeNL; m <= ModeEX; m++ {
		ok := true
		for h := ModeNL; h <= ModeEX; h++ {
			if held&(1<<h) != 0 && !compat[m][h] {
				ok = false
				break
			}
		}
		if ok && Weaker(best, m) {
			best = m
		}
	}
	return best
}

// LVBLen is the size of a lock value block, as in o2dlm and fs/dlm (64).
const LVBLen = 64

// LVB is a lock value block: a small value that travels with a lock.
type LVB [LVBLen]byte

// IsZero reports whether every byte is 0.
func (v *LVB) IsZero() bool { return *v == LVB{} }
