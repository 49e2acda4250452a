package alloc

import (
	"errors"
	"fmt"
	"slices"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

const (
	structAllocator = "chain allocator"
	structGroup     = "group descriptor"
)

// ChainAllocator is one chain allocator inode: the global bitmap (bits are
// clusters) or a suballocator (global_inode_alloc, inode_alloc:N,
// extent_alloc:N; bits are blocks).
//
// Claims search as the kernel's ocfs2_claim_suballoc_bits does: first the
// hint group (the caller's, else the last group this allocator used), then
// the chain with the most free bits (the "victim"), then every other chain
// with free bits in order. Inside a chain the first group holding a fitting
// run wins; inside a group the first run of the full length wins, else the
// longest one (when it is at least the minimum). When the winning group of
// the victim chain was not the chain's head and keeps more free bits than
// the claim takes, it is moved to the head of its chain (the kernel's
// relink), so the next search finds it first.
//
// A suballocator that runs out of free bits grows by one block group taken
// from the global bitmap (see Grow); the global bitmap never grows here.
type ChainAllocator struct {
	c      *metacache.Cache
	geo    Geometry
	blkno  uint64
	name   string
	global bool // the global bitmap (bits are clusters)
	// slot is what objects from this suballocator carry in
	// *_suballoc_slot: the owning slot, or 0xFFFF for global_inode_alloc.
	slot uint16
	// clusters claims new groups (suballocators only).
	clusters *GlobalBitmap
	// hint is the last group used (the kernel's ac_last_group), 0 if none.
	hint uint64
	// growHint is the global bitmap group the last new group came from.
	growHint uint64
	// guard, when set, runs before the allocator reads its inode to use
	// it (SetGuard).
	guard func() error
}

// SetGuard has fn run before every use of the allocator that reads its
// inode (every claim and free): on a clustered mount, the check that the
// running operation holds the allocator's cluster lock, which must come
// before anything is read under it.
func (a *ChainAllocator) SetGuard(fn func() error) { a.guard = fn }

func (a *ChainAllocator) checkGuard() error {
	if a.guard == nil {
		return nil
	}
	return a.guard()
}

// GlobalInodeAllocSlot is the i_suballoc_slot of objects allocated from
// global_inode_alloc (OCFS2_INVALID_SLOT): the system inodes.
const GlobalInodeAllocSlot = 0xFFFF

// OpenSuballocator returns the suballocator at inode blkno. slot is the
// slot it belongs to (0xFFFF, GlobalInodeAllocSlot, for global_inode_alloc);
// global provides the clusters of new groups. name names it in messages
// ("inode_alloc:0000").
func OpenSuballocator(c *metacache.Cache, geo Geometry, blkno uint64, slot uint16, global *GlobalBitmap, name string) (*ChainAllocator, error) {
	a := &ChainAllocator{c: c, geo: geo, blkno: blkno, name: name, slot: slot, clusters: global}
	if a.name == "" {
		a.name = fmt.Sprintf("allocator %d", blkno)
	}
	if _, err := a.load(); err != nil {
		return nil, err
	}
	return a, nil
}

// Blkno is the allocator inode's block.
func (a *ChainAllocator) Blkno() uint64 { return a.blkno }

// Name is the allocator's name in messages.
func (a *ChainAllocator) Name() string { return a.name }

// Slot is the suballoc slot objects from this allocator carry.
func (a *ChainAllocator) Slot() uint16 { return a.slot }

// Usage is an allocator's bitmap1: bits used and total.
type Usage struct {
	Used, Total uint32
}

// Free is Total - Used.
func (u Usage) Free() uint32 { return u.Total - u.Used }

// Usage reads the allocator's bit counts.
func (a *ChainAllocator) Usage() (Usage, error) {
	d, err := a.load()
	if err != nil {
		return Usage{}, err
	}
	bm := d.d.Bitmap()
	return Usage{Used: bm.Used, Total: bm.Total}, nil
}

// ClustersPerGroup is cl_cpg: the clusters a full group covers.
func (a *ChainAllocator) ClustersPerGroup() (int, error) {
	ai, err := a.load()
	if err != nil {
		return 0, err
	}
	return int(ai.d.Chain.CPG), nil
}

// corrupt builds the error for damage at blkno.
func (a *ChainAllocator) corrupt(blkno uint64, structName, field, format string, args ...any) error {
	return a.c.Annotate(&ondisk.CorruptError{Struct: structName, Field: field, Msg: fmt.Sprintf(format, args...)}, blkno)
}

func (a *ChainAllocator) noSpace(format string, args ...any) error {
	return fmt.Errorf("%s: %s (inode %d): %s: %w", a.c.Device().Name(), a.name, a.blkno, fmt.Sprintf(format, args...), ErrNoSpace)
}

// allocInode is the allocator's dinode read for change: buf is its cached
// block, d a private copy the caller may change and then write.
type allocInode struct {
	buf *metacache.Buffer
	d   *ondisk.Dinode
}

// load reads and checks the allocator inode and returns a private copy.
func (a *ChainAllocator) load() (*allocInode, error) {
	if err := a.checkGuard(); err != nil {
		return nil, err
	}
	shared, err := a.c.Dinode(a.blkno)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.name, err)
	}
	if err := a.checkInode(shared); err != nil {
		return nil, err
	}
	buf, err := a.c.Get(a.blkno)
	if err != nil {
		return nil, err
	}
	d := *shared
	ch := *shared.Chain
	ch.Recs = slices.Clone(shared.Chain.Recs)
	d.Chain = &ch
	return &allocInode{buf: buf, d: &d}, nil
}

// checkInode checks what an allocator inode must hold before anything is
// computed from it: the flags, the chain list geometry and that bitmap1
// equals the sums over the chain records (fsck's CHAIN_GROUP_BITS).
func (a *ChainAllocator) checkInode(d *ondisk.Dinode) error {
	if d.Flags&ondisk.InodeChain == 0 || d.Flags&ondisk.InodeBitmap == 0 || d.Chain == nil {
		return a.corrupt(a.blkno, structAllocator, "i_flags", "is 0x%x, a chain allocator needs CHAIN_FL|BITMAP_FL", d.Flags)
	}
	cl := d.Chain
	if cl.CPG == 0 {
		return a.corrupt(a.blkno, structAllocator, "cl_cpg", "is 0")
	}
	wantBPC := a.geo.BlocksPerCluster
	if a.global {
		wantBPC = 1
	}
	if int(cl.BPC) != wantBPC {
		return a.corrupt(a.blkno, structAllocator, "cl_bpc", "is %d, want %d", cl.BPC, wantBPC)
	}
	maxBits := 8 * (a.geo.BlockSize - ondisk.GroupDescBitmapOffset)
	if cl.BitsPerGroup() > maxBits {
		return a.corrupt(a.blkno, structAllocator, "cl_cpg", "%d clusters of %d bits is more than the %d bits a group bitmap holds", cl.CPG, cl.BPC, maxBits)
	}
	bm := d.Bitmap()
	if bm.Used > bm.Total {
		return a.corrupt(a.blkno, structAllocator, "bitmap1.i_used", "is %d, more than i_total %d", bm.Used, bm.Total)
	}
	var free, total uint64
	for i, r := range cl.Recs {
		if r.Free > r.Total {
			return a.corrupt(a.blkno, structAllocator, fmt.Sprintf("cl_recs[%d].c_free", i), "is %d, more than c_total %d", r.Free, r.Total)
		}
		if (r.Blkno == 0) != (r.Total == 0) {
			return a.corrupt(a.blkno, structAllocator, fmt.Sprintf("cl_recs[%d].c_blkno", i), "is %d with c_total %d", r.Blkno, r.Total)
		}
		free += uint64(r.Free)
		total += uint64(r.Total)
	}
	if total != uint64(bm.Total) || total-free != uint64(bm.Used) {
		return a.corrupt(a.blkno, structAllocator, "bitmap1", "says %d used of %d, but the chains say %d used of %d", bm.Used, bm.Total, total-free, total)
	}
	if a.global && bm.Total != a.geo.Clusters {
		return a.corrupt(a.blkno, structAllocator, "bitmap1.i_total", "is %d, but the volume has %d clusters", bm.Total, a.geo.Clusters)
	}
	return nil
}

// readGroup reads group blkno of chain ci and checks it against its
// parent (signature, identity and generation are checked by the cache).
func (a *ChainAllocator) readGroup(blkno uint64, d *ondisk.Dinode, ci int) (*ondisk.GroupDesc, error) {
	if blkno >= a.c.Blocks() {
		return nil, a.corrupt(a.blkno, structAllocator, fmt.Sprintf("cl_recs[%d]", ci), "chain reaches block %d, beyond the device's %d blocks", blkno, a.c.Blocks())
	}
	g, err := a.c.GroupDesc(blkno)
	if err != nil {
		return nil, fmt.Errorf("%s chain %d: %w", a.name, ci, err)
	}
	if err := g.CheckParent(a.blkno, d.Chain); err != nil {
		return nil, a.c.Annotate(err, blkno)
	}
	if int(g.Chain) != ci {
		return nil, a.corrupt(blkno, structGroup, "bg_chain", "is %d, but the group is linked in chain %d of %s", g.Chain, ci, a.name)
	}
	if g.Bits == 0 || !g.Test(0) {
		return nil, a.corrupt(blkno, structGroup, "bg_bitmap", "bit 0 (the descriptor itself) is clear")
	}
	if a.global {
		first, idx, ok := a.geo.globalGroupFirstCluster(blkno)
		if !ok {
			return nil, a.corrupt(blkno, structGroup, "bg_blkno", "no global bitmap group descriptor lives at block %d", blkno)
		}
		if want := ondisk.GlobalBitmapGroupBits(idx, a.geo.Clusters, a.geo.GlobalCPG); int(g.Bits) != want {
			return nil, a.corrupt(blkno, structGroup, "bg_bits", "is %d, global bitmap group %d (clusters from %d) has %d", g.Bits, idx, first, want)
		}
	} else if g.Discontig() {
		n := 0
		for _, r := range g.List.Recs {
			n += int(r.Clusters) * int(d.Chain.BPC)
		}
		if n != int(g.Bits) || g.List.Recs[0].Blkno != blkno {
			return nil, a.corrupt(blkno, structGroup, "bg_list", "extents cover %d bits from block %d, want bg_bits %d from the descriptor", n, g.List.Recs[0].Blkno, g.Bits)
		}
	}
	return g, nil
}

// chainGroups walks chain ci and checks it: no loop, every group valid,
// and the group counts summing to the chain record. It returns the groups
// in chain order.
func (a *ChainAllocator) chainGroups(d *ondisk.Dinode, ci int) ([]*ondisk.GroupDesc, error) {
	rec := d.Chain.Recs[ci]
	var out []*ondisk.GroupDesc
	seen := map[uint64]bool{}
	var free, total uint64
	for blk := rec.Blkno; blk != 0; {
		if seen[blk] {
			return nil, a.corrupt(out[len(out)-1].Blkno, structGroup, "bg_next_group", "chain %d of %s loops back to block %d", ci, a.name, blk)
		}
		if blk >= a.c.Blocks() {
			if len(out) == 0 {
				return nil, a.corrupt(a.blkno, structAllocator, fmt.Sprintf("cl_recs[%d].c_blkno", ci), "is %d, beyond the device's %d blocks", blk, a.c.Blocks())
			}
			return nil, a.corrupt(out[len(out)-1].Blkno, structGroup, "bg_next_group", "is %d, beyond the device's %d blocks", blk, a.c.Blocks())
		}
		seen[blk] = true
		g, err := a.readGroup(blk, d, ci)
		if err != nil {
			return nil, err
		}
		free += uint64(g.FreeBitsCount)
		total += uint64(g.Bits)
		if total > uint64(rec.Total) {
			break // reported below; stop walking a chain that is too long
		}
		out = append(out, g)
		blk = g.NextGroup
	}
	if free != uint64(rec.Free) || total != uint64(rec.Total) {
		return nil, a.corrupt(a.blkno, structAllocator, fmt.Sprintf("cl_recs[%d]", ci), "says c_free %d of c_total %d, but its groups hold %d free of %d", rec.Free, rec.Total, free, total)
	}
	return out, nil
}

// forChange returns a private copy of g after checking its free count
// against its bitmap: counts are only ever changed on a group whose counts
// are right.
func (a *ChainAllocator) forChange(g *ondisk.GroupDesc) (*ondisk.GroupDesc, error) {
	if used := g.CountSet(); int(g.Bits)-used != int(g.FreeBitsCount) {
		return nil, a.corrupt(g.Blkno, structGroup, "bg_free_bits_count", "is %d, but the bitmap has %d of %d bits free", g.FreeBitsCount, int(g.Bits)-used, g.Bits)
	}
	cp := *g
	cp.Bitmap = slices.Clone(g.Bitmap)
	if g.List != nil {
		l := *g.List
		l.Recs = slices.Clone(g.List.Recs)
		cp.List = &l
	}
	return &cp, nil
}

// writeGroup writes a changed group descriptor through tx.
func (a *ChainAllocator) writeGroup(tx metacache.Tx, g *ondisk.GroupDesc) error {
	buf, err := a.c.Get(g.Blkno)
	if err != nil {
		return err
	}
	if err := tx.Access(buf); err != nil {
		return err
	}
	if err := g.Encode(buf.Data); err != nil {
		return fmt.Errorf("%s: group %d: %w", a.name, g.Blkno, err)
	}
	tx.Dirty(buf, ondisk.GroupDescCheckOffset)
	return nil
}

// writeInode writes the changed allocator inode through tx.
func (a *ChainAllocator) writeInode(tx metacache.Tx, ai *allocInode) error {
	if err := tx.Access(ai.buf); err != nil {
		return err
	}
	if err := ai.d.Encode(ai.buf.Data); err != nil {
		return fmt.Errorf("%s: inode %d: %w", a.name, a.blkno, err)
	}
	tx.Dirty(ai.buf, ondisk.DinodeCheckOffset)
	return nil
}

// searchLimit is how many bits of g a search may use: bg_bits, except that
// the global bitmap never trusts a group past the volume's last cluster.
func (a *ChainAllocator) searchLimit(g *ondisk.GroupDesc) int {
	limit := min(int(g.Bits), 8*len(g.Bitmap))
	if a.global {
		first, _, _ := a.geo.globalGroupFirstCluster(g.Blkno)
		limit = min(limit, int(a.geo.Clusters-first))
	}
	return limit
}

// claimRequest is one search.
type claimRequest struct {
	want, min int
	hint      uint64 // group to try first, 0: a.hint
	goalBit   int    // in the hint group, search from this bit first (-1: none)
	noRelink  bool
}

// claimed is where a claim landed.
type claimed struct {
	group    *ondisk.GroupDesc // after the claim
	bit, n   int
	bitsLeft int
}

// searchGroup looks for a run in g; ok when one of at least min bits exists.
func (a *ChainAllocator) searchGroup(g *ondisk.GroupDesc, from, want, min int) (bit, n int, ok bool) {
	if g.FreeBitsCount == 0 {
		return 0, 0, false
	}
	bit, n = findRun(g.Bitmap, from, a.searchLimit(g), want)
	return bit, n, n > 0 && n >= min
}

// claim takes a run of req.min..req.want bits, in the kernel's search order.
func (a *ChainAllocator) claim(tx metacache.Tx, req claimRequest) (claimed, error) {
	if req.want <= 0 || req.min <= 0 || req.min > req.want {
		return claimed{}, fmt.Errorf("%s: claim of %d..%d bits", a.name, req.min, req.want)
	}
	ai, err := a.load()
	if err != nil {
		return claimed{}, err
	}
	d := ai.d
	bm := d.Bitmap()
	if bm.Total-bm.Used < uint32(req.min) {
		return claimed{}, a.noSpace("%d bits wanted, %d free", req.min, bm.Total-bm.Used)
	}

	// 1. The hint group.
	hint := req.hint
	if hint == 0 {
		hint = a.hint
	}
	if hint != 0 {
		if res, ok, err := a.claimInHint(tx, ai, hint, req); err != nil || ok {
			return res, err
		}
	}

	// 2. The chain with the most free bits, then 3. every other one.
	if len(d.Chain.Recs) == 0 {
		return claimed{}, a.noSpace("the allocator has no groups")
	}
	victim := 0
	for i, r := range d.Chain.Recs {
		if r.Free > d.Chain.Recs[victim].Free {
			victim = i
		}
	}
	order := []int{victim}
	for i, r := range d.Chain.Recs {
		if i != victim && r.Free != 0 {
			order = append(order, i)
		}
	}
	for k, ci := range order {
		if d.Chain.Recs[ci].Free == 0 {
			continue
		}
		groups, err := a.chainGroups(d, ci)
		if err != nil {
			return claimed{}, err
		}
		for gi, g := range groups {
			bit, n, ok := a.searchGroup(g, 0, req.want, req.min)
			if !ok {
				continue
			}
			var prev *ondisk.GroupDesc
			if gi > 0 && k == 0 && !req.noRelink {
				prev = groups[gi-1]
			}
			return a.commitClaim(tx, ai, ci, g, prev, bit, n, req.min)
		}
	}
	return claimed{}, a.noSpace("no run of %d bits (of %d wanted) in any group", req.min, req.want)
}

// claimInHint tries the hint group; ok is false (and err nil) when it does
// not exist in this allocator or has no fitting run.
func (a *ChainAllocator) claimInHint(tx metacache.Tx, ai *allocInode, hint uint64, req claimRequest) (claimed, bool, error) {
	d := ai.d
	if hint >= a.c.Blocks() {
		return claimed{}, false, nil
	}
	g, err := a.c.GroupDesc(hint)
	if err != nil || g.ParentDinode != a.blkno || int(g.Chain) >= len(d.Chain.Recs) {
		return claimed{}, false, nil // a stale hint is not damage
	}
	from := 0
	if req.goalBit > 0 {
		from = req.goalBit
	}
	bit, n, ok := a.searchGroup(g, from, req.want, req.min)
	if !ok && from > 0 {
		bit, n, ok = a.searchGroup(g, 0, req.want, req.min)
	}
	if !ok {
		return claimed{}, false, nil
	}
	ci := int(g.Chain)
	groups, err := a.chainGroups(d, ci)
	if err != nil {
		return claimed{}, false, err
	}
	idx := slices.IndexFunc(groups, func(x *ondisk.GroupDesc) bool { return x.Blkno == hint })
	if idx < 0 {
		return claimed{}, false, nil
	}
	res, err := a.commitClaim(tx, ai, ci, groups[idx], nil, bit, n, req.min)
	return res, err == nil, err
}

// commitClaim sets bits [bit, bit+n) of g (in chain ci) and every count
// that follows, relinking g to the head of its chain when prev is given and
// g stays reasonably empty.
func (a *ChainAllocator) commitClaim(tx metacache.Tx, ai *allocInode, ci int, shared *ondisk.GroupDesc, prev *ondisk.GroupDesc, bit, n, minBits int) (claimed, error) {
	d := ai.d
	g, err := a.forChange(shared)
	if err != nil {
		return claimed{}, err
	}
	if !a.global && g.Discontig() {
		// A run may not cross from one extent of a discontiguous group
		// into the next: cut it at the extent's end.
		base := 0
		for _, r := range g.List.Recs {
			end := base + int(r.Clusters)*int(d.Chain.BPC)
			if bit < end {
				n = min(n, end-bit)
				break
			}
			base = end
		}
	}
	if !rangeClear(g.Bitmap, bit, n) {
		return claimed{}, fmt.Errorf("%s: group %d: bits %d..%d are not all free (o2go bug)", a.name, g.Blkno, bit, bit+n-1)
	}
	rec := &d.Chain.Recs[ci]
	bm := d.Bitmap()
	if int(rec.Free) < n || int(g.FreeBitsCount) < n || bm.Used+uint32(n) > bm.Total {
		return claimed{}, a.corrupt(a.blkno, structAllocator, fmt.Sprintf("cl_recs[%d].c_free", ci), "is %d (group %d has %d free), cannot take %d bits", rec.Free, g.Blkno, g.FreeBitsCount, n)
	}
	relink := prev != nil && int(g.FreeBitsCount) > n
	for i := bit; i < bit+n; i++ {
		setBit(g.Bitmap, i)
	}
	g.FreeBitsCount -= uint16(n)
	rec.Free -= uint32(n)
	bm.Used += uint32(n)
	d.SetBitmap(bm)

	var p *ondisk.GroupDesc
	if relink {
		p, err = a.forChange(prev)
		if err != nil {
			return claimed{}, err
		}
		p.NextGroup = g.NextGroup
		g.NextGroup = rec.Blkno
		rec.Blkno = g.Blkno
	}
	if p != nil {
		if err := a.writeGroup(tx, p); err != nil {
			return claimed{}, err
		}
	}
	if err := a.writeGroup(tx, g); err != nil {
		return claimed{}, err
	}
	if err := a.writeInode(tx, ai); err != nil {
		return claimed{}, err
	}
	left := int(g.FreeBitsCount)
	if left < minBits {
		a.hint = 0
	} else {
		a.hint = g.Blkno
	}
	return claimed{group: g, bit: bit, n: n, bitsLeft: left}, nil
}

// bitRun is a run of bits in one group to free.
type bitRun struct {
	group uint64
	bit   int
	n     int
}

// free clears runs of bits and every count that follows. Every run must
// be set; all runs are checked before anything is written, and each
// changed block is written once.
func (a *ChainAllocator) free(tx metacache.Tx, runs []bitRun) error {
	if len(runs) == 0 {
		return nil
	}
	ai, err := a.load()
	if err != nil {
		return err
	}
	d := ai.d
	changed := map[uint64]*ondisk.GroupDesc{}
	var order []uint64
	checkedChains := map[int]bool{}
	var total uint32
	for _, r := range runs {
		g, ok := changed[r.group]
		if !ok {
			if r.group >= a.c.Blocks() {
				return a.corrupt(r.group, structGroup, "bg_blkno", "freeing bits of block %d, beyond the device", r.group)
			}
			shared, err := a.c.GroupDesc(r.group)
			if err != nil {
				return fmt.Errorf("%s: %w", a.name, err)
			}
			if err := shared.CheckParent(a.blkno, d.Chain); err != nil {
				return a.c.Annotate(err, r.group)
			}
			ci := int(shared.Chain)
			if !checkedChains[ci] {
				groups, err := a.chainGroups(d, ci)
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(groups, func(x *ondisk.GroupDesc) bool { return x.Blkno == r.group }) {
					return a.corrupt(r.group, structGroup, "bg_chain", "says chain %d, but the group is not linked there", ci)
				}
				checkedChains[ci] = true
			}
			g, err = a.forChange(shared)
			if err != nil {
				return err
			}
			changed[r.group] = g
			order = append(order, r.group)
		}
		if r.n <= 0 || r.bit < 0 || r.bit+r.n > int(g.Bits) {
			return fmt.Errorf("%s: group %d: freeing bits %d..%d outside the group's %d bits", a.name, g.Blkno, r.bit, r.bit+r.n-1, g.Bits)
		}
		if r.bit == 0 {
			return fmt.Errorf("%s: group %d: bit 0 is the group descriptor itself and is never freed", a.name, g.Blkno)
		}
		if !rangeSet(g.Bitmap, r.bit, r.n) {
			z := nextZero(g.Bitmap, r.bit, r.bit+r.n)
			return a.corrupt(g.Blkno, structGroup, "bg_bitmap", "bit %d is already free (freeing bits %d..%d of %s)", z, r.bit, r.bit+r.n-1, a.name)
		}
		for i := r.bit; i < r.bit+r.n; i++ {
			clearBit(g.Bitmap, i)
		}
		g.FreeBitsCount += uint16(r.n)
		rec := &d.Chain.Recs[g.Chain]
		rec.Free += uint32(r.n)
		if rec.Free > rec.Total {
			return a.corrupt(a.blkno, structAllocator, fmt.Sprintf("cl_recs[%d].c_free", g.Chain), "would become %d, more than c_total %d", rec.Free, rec.Total)
		}
		total += uint32(r.n)
	}
	bm := d.Bitmap()
	if total > bm.Used {
		return a.corrupt(a.blkno, structAllocator, "bitmap1.i_used", "is %d, cannot free %d bits", bm.Used, total)
	}
	bm.Used -= total
	d.SetBitmap(bm)
	for _, blk := range order {
		if err := a.writeGroup(tx, changed[blk]); err != nil {
			return err
		}
	}
	return a.writeInode(tx, ai)
}

// errIsNoSpace reports whether err is ErrNoSpace.
func errIsNoSpace(err error) bool { return errors.Is(err, ErrNoSpace) }
