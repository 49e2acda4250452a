package xattr

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/base"
	"o2go/internal/fs/extent"
	"o2go/internal/ondisk"
)

// layout is what the storage of an inode's attributes looks like, to see
// which transitions an operation made.
type layout struct {
	inline, block, indexed bool
	runs                   map[uint32]uint32 // run cpos -> clusters
	buckets                int
	where                  map[string]Where
	local                  map[string]bool
	deepValue              bool
}

func layoutOf(t testing.TB, x Inode) layout {
	t.Helper()
	l := layout{where: map[string]Where{}, local: map[string]bool{}, runs: map[uint32]uint32{}}
	d := x.Inode
	l.inline = d.DynFeatures&ondisk.DynInlineXattr != 0
	l.block = d.XattrLoc != 0
	attrs, err := x.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range attrs {
		l.where[a.Name] = a.Where
		l.local[a.Name] = a.Entry.Local()
		if !a.Entry.Local() && a.Entry.Root.List.TreeDepth > 0 {
			l.deepValue = true
		}
	}
	if l.block {
		xb, err := x.C.XattrBlock(d.XattrLoc)
		if err != nil {
			t.Fatal(err)
		}
		l.indexed = xb.Indexed()
		if l.indexed {
			if err := extent.Walk(x.C, &xb.Tree.List, "test", func(r ondisk.ExtentRec) error {
				l.runs[r.Cpos] = r.Clusters
				fh, err := x.Bucket(r.Blkno)
				if err != nil {
					return err
				}
				l.buckets += int(fh.NumBuckets)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return l
}

// transitions counts what changed between two layouts.
func transitions(seen map[string]int, a, b layout) {
	add := func(cond bool, what string) {
		if cond {
			seen[what]++
		}
	}
	add(!a.inline && b.inline, "inode area taken")
	add(a.inline && !b.inline, "inode area given back")
	add(!a.block && b.block, "xattr block created")
	add(a.block && !b.block, "xattr block freed")
	add(!a.indexed && b.indexed, "block indexed")
	add(b.indexed && a.indexed && b.buckets > a.buckets, "bucket added")
	add(b.indexed && a.indexed && len(b.runs) > len(a.runs), "bucket run added")
	for cpos, n := range b.runs {
		if m, ok := a.runs[cpos]; ok && n > m {
			seen["bucket run grown"]++
		}
	}
	add(!a.deepValue && b.deepValue, "value tree deeper than its root")
	for name, w := range b.where {
		old, ok := a.where[name]
		if !ok {
			continue
		}
		add(old == InInode && w != InInode, "attr inode -> outside")
		add(old != InInode && w == InInode, "attr outside -> inode")
		add(a.local[name] && !b.local[name], "value local -> clusters")
		add(!a.local[name] && b.local[name], "value clusters -> local")
	}
}

// nameGen makes attribute names of all lengths in the three namespaces.
func nameGen(r *base.Rand, n int) []string {
	prefixes := []string{"user.", "trusted.", "security."}
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		p := prefixes[r.Intn(len(prefixes))]
		l := 1 + r.Intn(16)
		switch k := r.Intn(20); {
		case k == 0:
			l = MaxNameLen - len(p)
		case k < 3:
			l = 1 + r.Intn(MaxNameLen-len(p))
		}
		var sb strings.Builder
		sb.WriteString(p)
		for i := 0; i < l; i++ {
			sb.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789._-"[r.Intn(39)])
		}
		if s := sb.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// valueGen makes values of every size class: local, one block, several
// clusters, up to the 64 KiB limit.
func valueGen(r *base.Rand, big bool) []byte {
	var n int
	switch k := r.Intn(20); {
	case k < 10:
		n = r.Intn(ondisk.XattrInlineValueMax + 1)
	case k < 17:
		n = ondisk.XattrInlineValueMax + 1 + r.Intn(4096)
	case big:
		n = r.Intn(MaxValueLen + 1)
	default:
		n = r.Intn(9000)
	}
	if r.Chance(0.02) {
		n = MaxValueLen
	}
	v := make([]byte, n)
	x := r.Uint64()
	for i := range v {
		x = x*6364136223846793005 + 1442695040888963407
		v[i] = byte(x >> 56)
	}
	return v
}

// modelRun drives random changes against a map, checking after each.
type modelRun struct {
	t       testing.TB
	v       *memVolume
	r       *base.Rand
	model   map[string][]byte
	names   []string
	seen    map[string]int
	fullAt  int // check every value every fullAt ops
	bigVals bool
}

func (m *modelRun) step(op int) {
	t := m.t
	before := layoutOf(t, m.v.reader())
	name := m.names[m.r.Intn(len(m.names))]
	old, exists := m.model[name]
	var err error
	var wantErr syscall.Errno
	switch k := m.r.Intn(10); {
	case k < 6:
		val := valueGen(m.r, m.bigVals)
		flags := SetFlags(0)
		switch m.r.Intn(6) {
		case 0:
			flags = Create
			if exists {
				wantErr = syscall.EEXIST
			}
		case 1:
			flags = Replace
			if !exists {
				wantErr = syscall.ENODATA
			}
		}
		err = m.v.set(name, val, flags)
		if err == nil {
			m.model[name] = val
		}
	case k < 9:
		err = m.v.remove(name)
		if !exists {
			wantErr = syscall.ENODATA
		}
		if err == nil {
			delete(m.model, name)
		}
	default:
		// Rewrite an existing value with one of another size class.
		if !exists {
			return
		}
		val := valueGen(m.r, m.bigVals)
		if len(old) > ondisk.XattrInlineValueMax && len(val) > ondisk.XattrInlineValueMax {
			val = val[:m.r.Intn(ondisk.XattrInlineValueMax+1)]
		}
		err = m.v.set(name, val, Replace)
		if err == nil {
			m.model[name] = val
		}
	}
	if errors.Is(err, ErrFreedFull) {
		m.v.flushLog()
		m.seen["truncate log flush needed"]++
		return
	}
	if wantErr != 0 {
		if !errors.Is(err, wantErr) {
			t.Fatalf("op %d on %q: got %v, want %v", op, name, err, wantErr)
		}
	} else if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			m.seen["ENOSPC"]++
		} else {
			t.Fatalf("op %d on %q: %v", op, name, err)
		}
	}
	after := layoutOf(t, m.v.reader())
	transitions(m.seen, before, after)
	m.check(op, name, op%m.fullAt == 0)
}

// check compares the inode with the model: the names always, the value
// just touched, and every value when full.
func (m *modelRun) check(op int, touched string, full bool) {
	t := m.t
	x := m.v.reader()
	attrs, err := x.List()
	if err != nil {
		t.Fatalf("op %d: list: %v", op, err)
	}
	var got, want []string
	for _, a := range attrs {
		got = append(got, a.Name)
	}
	for n := range m.model {
		want = append(want, n)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("op %d: names differ:\n got %d: %.300q\nwant %d: %.300q", op, len(got), got, len(want), want)
	}
	for _, a := range attrs {
		if !full && a.Name != touched {
			continue
		}
		v, err := x.Value(a)
		if err != nil {
			t.Fatalf("op %d: %s: %v", op, a.Name, err)
		}
		if !bytes.Equal(v, m.model[a.Name]) {
			t.Fatalf("op %d: %s: value of %d bytes differs from the model's %d", op, a.Name, len(v), len(m.model[a.Name]))
		}
	}
	if full || op%7 == 0 {
		m.v.checkAccounting(t)
	}
}

func TestModelMemory(t *testing.T) {
	type cfg struct {
		memConfig
		ops, names int
		seeds      int
	}
	var cases []cfg
	for _, bs := range []int{512, 1024, 2048, 4096} {
		for _, cs := range []int{4096, 16384} {
			cases = append(cases, cfg{memConfig{bs: bs, cs: cs, metaECC: bs == 1024 || bs == 4096, fragment: 0.3, logCap: 24}, 1000, 120, 1})
		}
	}
	cases = append(cases,
		cfg{memConfig{bs: 4096, cs: 4096, fragment: 0, inodeKind: "inline"}, 800, 60, 2},
		cfg{memConfig{bs: 2048, cs: 8192, fragment: 0.8, inodeKind: "dir", metaECC: true}, 800, 200, 2},
		cfg{memConfig{bs: 4096, cs: 65536, fragment: 0.5, inodeKind: "inlinedir"}, 600, 150, 1},
		cfg{memConfig{bs: 1024, cs: 4096, fragment: 0.5, inodeKind: "file"}, 2000, 400, 1},
		cfg{memConfig{bs: 4096, cs: 4096, fragment: 0.2, logCap: 20}, 1000, 12, 2},
		cfg{memConfig{bs: 512, cs: 8192, fragment: 0.2}, 800, 10, 1},
	)
	total := map[string]int{}
	for _, c := range cases {
		for seed := uint64(1); seed <= uint64(c.seeds); seed++ {
			name := fmt.Sprintf("bs%d-cs%d-%s-ecc%v-seed%d", c.bs, c.cs, c.inodeKind, c.metaECC, seed)
			t.Run(name, func(t *testing.T) {
				r := base.NewRand(seed*7919 + uint64(c.bs+c.cs))
				m := &modelRun{t: t, v: newMemVolume(t, c.memConfig, seed), r: r, model: map[string][]byte{},
					names: nameGen(r, c.names), seen: map[string]int{}, fullAt: 100, bigVals: c.cs >= 16384}
				for op := 1; op <= c.ops; op++ {
					m.step(op)
				}
				// Empty it again: everything must go back.
				for name := range m.model {
					before := layoutOf(t, m.v.reader())
					for {
						err := m.v.remove(name)
						if errors.Is(err, ErrFreedFull) {
							m.v.flushLog()
							continue
						}
						if err != nil {
							t.Fatalf("final remove %s: %v", name, err)
						}
						break
					}
					transitions(m.seen, before, layoutOf(t, m.v.reader()))
					delete(m.model, name)
				}
				m.check(c.ops+1, "", true)
				for k, n := range m.seen {
					total[k] += n
				}
				t.Logf("transitions: %v", m.seen)
			})
		}
	}
	for _, want := range []string{"inode area taken", "inode area given back", "xattr block created", "xattr block freed",
		"block indexed", "bucket added", "bucket run added", "bucket run grown", "value tree deeper than its root",
		"attr inode -> outside", "attr outside -> inode", "value local -> clusters", "value clusters -> local",
		"truncate log flush needed"} {
		if total[want] == 0 {
			t.Errorf("no run exercised %q", want)
		}
	}
	t.Logf("all transitions: %v", total)
}
