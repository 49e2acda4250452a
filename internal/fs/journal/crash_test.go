package journal

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

var (
	longRun   = flag.Bool("long", false, "run the long crash-consistency target (also O2GO_LONG=1)")
	crashSeed = flag.Uint64("crash.seed", 0, "replay only this seed of the crash test")
)

func isLong() bool { return *longRun || os.Getenv("O2GO_LONG") == "1" }

// Block kinds of the crash model.
const (
	kMeta = iota // journaled metadata
	kFree        // freed: contents do not matter
	kData        // file data written around the journal
)

type mblock struct {
	kind    int
	content []byte // meta and data; never changed in place
	freedIn uint32 // transaction that freed it (kFree)
}

type mchange struct {
	i int
	b mblock
}

// model is what the volume's home blocks must hold after each committed
// transaction: base is the state after transaction baseSeq, changes the
// later transactions' changes in the order they happened.
type model struct {
	t       *testing.T
	seed    uint64
	l       layout
	v       *volume
	rng     *base.Rand
	crng    *base.Rand // draws for crash images, so crash checks do not shift the workload
	dev     *blockdev.Faulty
	c       *metacache.Cache
	j       *Journal
	base    []mblock
	baseSeq uint32
	cur     []mblock
	changes map[uint32][]mchange

	crashP      float64
	crashes     int
	replayCuts  int
	handles     int
	matchedLate int // crash images that matched a transaction after the acknowledged one
	logWrites   uint64
}

func (m *model) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("seed %d (go test -run TestCrashConsistency -crash.seed=%d): %s", m.seed, m.seed, fmt.Sprintf(format, args...))
}

func (m *model) set(seq uint32, i int, b mblock) {
	m.cur[i] = b
	m.changes[seq] = append(m.changes[seq], mchange{i, b})
}

// fold moves committed transactions into base.
func (m *model) fold(upto uint32) {
	for seqAfter(upto, m.baseSeq) {
		m.baseSeq++
		for _, ch := range m.changes[m.baseSeq] {
			m.base[ch.i] = ch.b
		}
		delete(m.changes, m.baseSeq)
	}
}

func (m *model) content() []byte {
	b := make([]byte, m.v.bs)
	switch m.rng.Intn(4) {
	case 0:
		for k := range b {
			b[k] = byte(m.rng.Uint64())
		}
	default:
		fill := byte(m.rng.Uint64())
		for k := range b {
			b[k] = fill
		}
		binary.LittleEndian.PutUint64(b[8:], m.rng.Uint64())
	}
	if m.rng.Chance(0.15) {
		binary.BigEndian.PutUint32(b, ondisk.JBD2Magic) // must be escaped in the log
	}
	return b
}

func (m *model) pick(kinds ...int) (int, bool) {
	start := m.rng.Intn(len(m.cur))
	for n := range m.cur {
		i := (start + n) % len(m.cur)
		for _, k := range kinds {
			if m.cur[i].kind == k {
				return i, true
			}
		}
	}
	return 0, false
}

// handle runs one handle of random operations.
func (m *model) handle() {
	h, err := m.j.Begin(8)
	if err != nil {
		m.fatalf("Begin: %v", err)
	}
	seq := h.Sequence()
	v := m.v
	for range 1 + m.rng.Intn(7) {
		switch r := m.rng.Float64(); {
		case r < 0.5: // change a metadata block
			i, ok := m.pick(kMeta)
			if !ok {
				continue
			}
			b, err := m.c.Get(v.homeStart + uint64(i))
			if err != nil {
				m.fatalf("Get: %v", err)
			}
			if !bytes.Equal(b.Data, m.cur[i].content) {
				m.fatalf("cache holds a stale copy of home block %d", i)
			}
			if err := h.Access(b); err != nil {
				m.fatalf("Access: %v", err)
			}
			nc := m.content()
			copy(b.Data, nc)
			h.Dirty(b, -1)
			m.set(seq, i, mblock{kind: kMeta, content: nc})
		case r < 0.6: // free a metadata block
			if i, ok := m.pick(kMeta); ok {
				h.Revoke(v.homeStart + uint64(i))
				m.set(seq, i, mblock{kind: kFree, freedIn: seq})
			}
		case r < 0.75: // allocate a metadata block
			i, ok := m.pick(kFree, kData)
			if !ok {
				continue
			}
			b, err := h.New(v.homeStart + uint64(i))
			if err != nil {
				m.fatalf("New: %v", err)
			}
			nc := m.content()
			copy(b.Data, nc)
			h.Dirty(b, -1)
			m.set(seq, i, mblock{kind: kMeta, content: nc})
		case r < 0.9: // write file data into a block freed by a committed transaction
			i, ok := m.pick(kFree)
			if !ok || !m.j.Committed(m.cur[i].freedIn) {
				continue
			}
			nc := m.content()
			if _, err := m.dev.WriteAt(nc, int64(v.homeStart+uint64(i))*int64(v.bs)); err != nil {
				m.fatalf("data write: %v", err)
			}
			m.set(seq, i, mblock{kind: kData, content: nc})
		default: // free a data block
			if i, ok := m.pick(kData); ok {
				m.set(seq, i, mblock{kind: kFree, freedIn: seq})
			}
		}
	}
	if err := h.Stop(); err != nil {
		m.fatalf("Stop: %v", err)
	}
	m.handles++
}

// matches reports whether img's home blocks hold state s.
func (m *model) matches(img []byte, s []mblock) (bool, string) {
	for i, b := range s {
		if b.kind == kFree {
			continue
		}
		if got := m.v.home(img, i); !bytes.Equal(got, b.content) {
			return false, fmt.Sprintf("home block %d (kind %d) is %x..., want %x...", i, b.kind, got[:12], b.content[:12])
		}
	}
	return true, ""
}

// check replays a crash image and requires that it holds the state after
// some transaction between acked (the last commit that returned) and hi
// (the last one closed): never less, never a mix.
func (m *model) check(img []byte, acked, hi uint32, what string) []byte {
	mem := blockdev.NewMemoryFrom("crash", img, 512)
	rep, err := Replay(m.v.cache(mem, 0), fixtureIno, m.l.cfg())
	if err != nil {
		m.fatalf("%s: replay of a crash image: %v", what, err)
	}
	// Torn blocks of an uncommitted transaction may look damaged; a log
	// without an end never may (one log block always stays free).
	if rep.Damage != nil && strings.Contains(rep.Damage.Error(), "no end") {
		m.fatalf("%s: %v", what, rep.Damage)
	}
	got := mem.Snapshot()
	s := append([]mblock(nil), m.base...)
	k := m.baseSeq
	apply := func(seq uint32) {
		for _, ch := range m.changes[seq] {
			s[ch.i] = ch.b
		}
	}
	for seqAfter(acked, k) {
		k++
		apply(k)
	}
	var first string
	for {
		ok, why := m.matches(got, s)
		if ok {
			if k != acked {
				m.matchedLate++
			}
			return got
		}
		if first == "" {
			first = why
		}
		if !seqAfter(hi, k) {
			m.fatalf("%s: crash image after replay matches no state from transaction %d (acknowledged) to %d: at %d, %s", what, acked, hi, acked, first)
		}
		k++
		apply(k)
	}
}

// crashPoint is the Faulty rule: at random I/O operations it takes a crash
// image and checks it, sometimes also cutting the replay itself short.
func (m *model) crashPoint(op blockdev.Op, off int64, n int) (blockdev.Fault, bool) {
	if m.j == nil || !m.crng.Chance(m.crashP) {
		return blockdev.Fault{}, false
	}
	st := m.j.Stats()
	img, err := m.dev.CrashImage(m.crng)
	if err != nil {
		m.fatalf("crash image: %v", err)
	}
	m.crashes++
	want := m.check(img, st.CommittedSeq, st.RunningSeq-1, fmt.Sprintf("crash %d (op %d at %d)", m.crashes, op, off))
	if m.crng.Chance(0.25) {
		m.cutReplay(img, want)
	}
	return blockdev.Fault{}, false
}

// cutReplay crashes a replay of img part way, replays the result again and
// requires the outcome of an uninterrupted replay.
func (m *model) cutReplay(img, want []byte) {
	f := blockdev.NewFaulty(blockdev.NewMemoryFrom("replay", img, 512))
	var cut []byte
	at := m.crng.Intn(12)
	ops := 0
	f.AddRule(func(op blockdev.Op, off int64, n int) (blockdev.Fault, bool) {
		if ops++; ops == at+1 && cut == nil {
			cut, _ = f.CrashImage(m.crng)
		}
		return blockdev.Fault{}, false
	})
	if _, err := Replay(m.v.cache(f, 0), fixtureIno, m.l.cfg()); err != nil {
		m.fatalf("replay: %v", err)
	}
	if cut == nil {
		return // the replay did fewer I/Os than the cut point
	}
	m.replayCuts++
	again := blockdev.NewMemoryFrom("again", cut, 512)
	if _, err := Replay(m.v.cache(again, 0), fixtureIno, m.l.cfg()); err != nil {
		m.fatalf("replay after a crash during replay: %v", err)
	}
	got := again.Snapshot()
	for i := range m.cur {
		if !bytes.Equal(m.v.home(got, i), m.v.home(want, i)) {
			m.fatalf("replay cut after %d I/Os then redone: home block %d differs from an uninterrupted replay", at, i)
		}
	}
}

// mount (re)loads the journal over dev.
func (m *model) mount(mem *blockdev.Memory) {
	m.dev = blockdev.NewFaulty(mem)
	m.dev.AddRule(m.crashPoint)
	m.c = m.v.cache(m.dev, 40)
	j, _, err := Load(m.c, fixtureIno, m.l.cfg())
	if err != nil {
		m.fatalf("Load: %v", err)
	}
	m.j = j
	st := j.Stats()
	m.baseSeq = st.RunningSeq - 1
}

func runCrashModel(t *testing.T, seed uint64, l layout, handles int, crashP float64) *model {
	v := l.build(t)
	m := &model{t: t, seed: seed, l: l, v: v, rng: base.NewRand(seed), changes: map[uint32][]mchange{}, crashP: crashP}
	m.crng = m.rng.Fork()
	m.base = make([]mblock, l.homeBlocks)
	for i := range m.base {
		m.base[i] = mblock{kind: kMeta, content: v.initialHome(i)}
	}
	m.cur = append([]mblock(nil), m.base...)
	m.mount(v.mem)
	for range handles {
		m.handle()
		switch r := m.rng.Float64(); {
		case r < 0.2:
			if err := m.j.CommitAndWait(); err != nil {
				m.fatalf("CommitAndWait: %v", err)
			}
		case r < 0.25:
			if err := m.j.Checkpoint(); err != nil {
				m.fatalf("Checkpoint: %v", err)
			}
		case r < 0.265: // clean unmount and mount again
			j := m.j
			m.j = nil
			m.logWrites += j.Stats().LogWrites
			if err := j.Shutdown(); err != nil {
				m.fatalf("Shutdown: %v", err)
			}
			m.fold(j.Stats().CommittedSeq)
			mem := blockdev.NewMemoryFrom("remount", m.dev.Device.(*blockdev.Memory).Snapshot(), 512)
			m.mount(mem)
			m.base = append([]mblock(nil), m.cur...)
		case r < 0.28: // power cut, then mount what is left and go on
			st := m.j.Stats()
			img, err := m.dev.CrashImage(m.crng)
			if err != nil {
				m.fatalf("crash image: %v", err)
			}
			m.logWrites += st.LogWrites
			m.j.Abandon()
			m.j = nil
			// Find the state the crash left, and continue from it.
			got := m.check(img, st.CommittedSeq, st.RunningSeq-1, "power cut")
			var k uint32
			s := append([]mblock(nil), m.base...)
			for k = m.baseSeq; ; {
				if ok, _ := m.matches(got, s); ok && !seqAfter(st.CommittedSeq, k) {
					break
				}
				k++
				for _, ch := range m.changes[k] {
					s[ch.i] = ch.b
				}
			}
			m.mount(blockdev.NewMemoryFrom("after-crash", img, 512))
			m.base, m.cur, m.changes = s, append([]mblock(nil), s...), map[uint32][]mchange{}
			// Blocks freed by the lost transactions are freed by committed
			// ones now, or not at all.
			for i := range m.cur {
				if m.cur[i].kind == kFree {
					m.cur[i].freedIn = m.baseSeq
					m.base[i].freedIn = m.baseSeq
				}
			}
		}
		if m.j != nil {
			m.fold(m.j.Stats().CommittedSeq)
		}
	}
	m.logWrites += m.j.Stats().LogWrites
	if err := m.j.Shutdown(); err != nil {
		m.fatalf("final Shutdown: %v", err)
	}
	img := m.dev.Device.(*blockdev.Memory).Snapshot()
	if ok, why := m.matches(img, m.cur); !ok {
		m.fatalf("after a clean shutdown: %s", why)
	}
	return m
}

// TestCrashConsistency runs random transactions (changes, frees with
// revokes, reuse as metadata and as file data) with commits, checkpoints,
// remounts and power cuts over a small log that wraps many times. At
// random I/Os it takes a crash image (every unsynced sector holds any of
// its versions) and replays it: the home blocks must hold exactly the
// state after the last acknowledged commit or a later one, and a replay
// cut short by a crash and redone must give the same blocks.
func TestCrashConsistency(t *testing.T) {
	type target struct {
		l       layout
		handles int
		crashP  float64
	}
	targets := []target{
		{layout{bs: 1024, journalBlocks: 48, homeBlocks: 40}, 400, 0.03},
		{layout{bs: 512, journalBlocks: 64, homeBlocks: 40, is64: true, fragmented: true}, 300, 0.03},
		{layout{bs: 4096, journalBlocks: 40, homeBlocks: 24, fragmented: true}, 250, 0.03},
	}
	seeds := []uint64{1, 2, 3}
	if isLong() {
		seeds = nil
		for s := range 60 {
			seeds = append(seeds, uint64(1000+s))
		}
	}
	if *crashSeed != 0 {
		seeds = []uint64{*crashSeed}
	}
	if s, err := strconv.ParseUint(os.Getenv("O2GO_CRASH_SEED"), 10, 64); err == nil {
		seeds = []uint64{s}
	}
	total, cuts, late := 0, 0, 0
	for _, seed := range seeds {
		for ti, tg := range targets {
			m := runCrashModel(t, seed*10+uint64(ti), tg.l, tg.handles, tg.crashP)
			total += m.crashes
			cuts += m.replayCuts
			late += m.matchedLate
			if capacity := tg.l.journalBlocks; m.logWrites < 10*uint64(capacity) {
				t.Errorf("seed %d target %d: the log did not wrap many times (%d log writes, %d journal blocks)", seed, ti, m.logWrites, capacity)
			}
		}
	}
	t.Logf("%d crash images checked (%d matched a not yet acknowledged commit), %d replays cut and redone", total, late, cuts)
	if !isLong() && *crashSeed == 0 && total < 200 {
		t.Errorf("only %d crash points; the test promises a few hundred", total)
	}
}
