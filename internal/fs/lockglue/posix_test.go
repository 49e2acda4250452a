package lockglue

import (
	"testing"

	"pgregory.net/rapid"
)

// The model: per owner, the type held on each byte 0..span-1; byte span
// stands for every byte past span-1 (what ToEOF reaches).
const span = 24

type posixModel map[uint64]*[span + 1]PosixType

func (m posixModel) owner(o uint64) *[span + 1]PosixType {
	if m[o] == nil {
		m[o] = &[span + 1]PosixType{}
	}
	return m[o]
}

func modelIndex(b uint64) int {
	if b >= span {
		return span
	}
	return int(b)
}

func (m posixModel) set(o, start, end uint64, t PosixType) {
	bs := m.owner(o)
	for i := modelIndex(start); i <= modelIndex(end); i++ {
		bs[i] = t
	}
}

func (m posixModel) conflict(o, start, end uint64, t PosixType) bool {
	for other, bs := range m {
		if other == o {
			continue
		}
		for i := modelIndex(start); i <= modelIndex(end); i++ {
			if bs[i] != 0 && (bs[i] == PosixWrite || t == PosixWrite) {
				return true
			}
		}
	}
	return false
}

func TestPosixTableMatchesByteModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var p PosixTable
		m := posixModel{}
		for step := 0; step < 40; step++ {
			o := rapid.Uint64Range(1, 3).Draw(t, "owner")
			start := rapid.Uint64Range(0, span-1).Draw(t, "start")
			end := uint64(ToEOF)
			if !rapid.Bool().Draw(t, "toEOF") {
				end = rapid.Uint64Range(start, span-1).Draw(t, "end")
			}
			typ := PosixType(rapid.IntRange(0, 2).Draw(t, "type")) // 0: unlock
			if typ == 0 {
				p.Unlock(o, start, end)
				m.set(o, start, end, 0)
			} else {
				_, got := p.Conflict(o, start, end, typ)
				if want := m.conflict(o, start, end, typ); got != want {
					t.Fatalf("step %d: Conflict(owner %d, [%d,%d], %d) = %v, model says %v; locks %+v", step, o, start, end, typ, got, want, p.Locks())
				}
				if got {
					continue
				}
				p.Set(o, 0, start, end, typ)
				m.set(o, start, end, typ)
			}
			checkAgainstModel(t, &p, m)
		}
	})
}

func checkAgainstModel(t *rapid.T, p *PosixTable, m posixModel) {
	got := posixModel{}
	locks := p.Locks()
	for i, l := range locks {
		if l.Start > l.End {
			t.Fatalf("empty lock %+v", l)
		}
		got.set(l.Owner, l.Start, l.End, l.Type)
		if i > 0 && locks[i-1].Owner == l.Owner {
			prev := locks[i-1]
			if prev.End >= l.Start {
				t.Fatalf("owner %d holds overlapping locks %+v and %+v", l.Owner, prev, l)
			}
			if prev.End+1 == l.Start && prev.Type == l.Type {
				t.Fatalf("owner %d holds adjacent same-type locks %+v and %+v, not merged", l.Owner, prev, l)
			}
		}
	}
	for o, bs := range m {
		gs := got.owner(o)
		if *gs != *bs {
			t.Fatalf("owner %d: table covers %v, model %v; locks %+v", o, *gs, *bs, locks)
		}
	}
	for o, gs := range got {
		if m[o] == nil && *gs != [span + 1]PosixType{} {
			t.Fatalf("owner %d holds locks the model does not: %+v", o, locks)
		}
	}
}

func TestPosixTableSQLiteBytes(t *testing.T) {
	// SQLite's lock bytes: adjacent single bytes held by different
	// processes must not conflict.
	const pending = 0x40000000
	var p PosixTable
	p.Set(1, 100, pending, pending, PosixWrite)     // PENDING
	p.Set(2, 200, pending+1, pending+1, PosixWrite) // RESERVED, another owner
	if l, ok := p.Conflict(3, pending+2, pending+511, PosixRead); ok {
		t.Fatalf("SHARED range conflicts with %+v", l)
	}
	if l, ok := p.Conflict(3, pending, pending, PosixRead); !ok || l.Pid != 100 {
		t.Fatalf("PENDING byte: conflict %+v %v, want owner 1's write lock", l, ok)
	}
	p.Unlock(1, 0, ToEOF)
	if _, ok := p.Conflict(3, pending, pending, PosixWrite); ok {
		t.Fatal("an unlocked byte still conflicts")
	}
}
