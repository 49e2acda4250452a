package fsck

import (
	"errors"
	"fmt"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

// Extended attributes (fsck.ocfs2's xattr.c). An inode with HAS_XATTR has
// its attributes in up to three kinds of storage, each headed by an
// ocfs2_xattr_header: the inline area at the end of the inode block, the
// body of a non-indexed XATTR01 block, and every 4 KiB bucket of an
// indexed block's runs. Each header is checked the same way, in this
// order, and a "no" stops the checks of that header:
//
//	count    xh_count against the entries found before the first one whose
//	         name hash is 0 (in buckets: before the hashes stop ascending),
//	         and the most the area can hold (XATTR_COUNT_INVALID);
//	entries  every entry must fit where nothing else is, point at a name
//	         inside the area, be local exactly when its value is at most 80
//	         bytes, have its name and value (or value root) where nothing
//	         else is, and carry its name's hash (XATTR_ENTRY_INVALID,
//	         XATTR_NAME_OFFSET_INVALID, XATTR_LOCATION_INVALID,
//	         XATTR_VALUE_INVALID, XATTR_HASH_INVALID); a bad entry is
//	         dropped from the table, its bytes stay;
//	values   each value root's extent list (one record) is checked like an
//	         inode's and its clusters are recorded in use;
//	bucket   xh_free_start is the lowest name offset and xh_name_value_len
//	         the sum of the stored sizes, in 16 bits, as fsck.ocfs2 sums
//	         them (XATTR_FREE_START_INVALID, XATTR_VALUE_LEN_INVALID).
//
// An indexed block's tree of bucket runs is checked as an extent list and
// its runs are recorded in use; each run then gives its bucket count in
// its first bucket (XATTR_BUCKET_COUNT_INVALID).

// Raw xattr layout, relative to a header or an entry (package ondisk
// documents the structures).
const (
	xhCount        = 0x00
	xhFreeStart    = 0x02
	xhNameValueLen = 0x04
	xhNumBuckets   = 0x06
	xeNameHash     = 0x00
	xeNameOffset   = 0x04
	xeNameLen      = 0x06
	xeType         = 0x07
	xeValueSize    = 0x08
	xbBlkno        = 0x10
	xbFlags        = 0x20
	xbAttrs        = 0x30 // header, or tree root when indexed
	xbTreeList     = xbAttrs + 0x10
	xvList         = 0x10 // extent list inside a value root
	xbIndexed      = 0x1
	xattrMinValue  = 4 // fsck.ocfs2's smallest stored value, for counting
)

// xattrWhere is the storage a header heads, named as fsck.ocfs2 names it.
type xattrWhere int

const (
	xattrInInode xattrWhere = iota
	xattrInBlock
	xattrInBucket
)

func (w xattrWhere) String() string { return [...]string{"inode", "block", "bucket"}[w] }

// xattrArea is one header and the storage it governs: area starts at the
// header and is max_offset bytes long; blkno is the block fsck.ocfs2
// names it by (the inode, the xattr block, the bucket's first block).
type xattrArea struct {
	where xattrWhere
	b     []byte
	blkno uint64
}

func (a xattrArea) count() int         { return int(get16(a.b, xhCount)) }
func (a xattrArea) setCount(n int)     { put16(a.b, xhCount, uint16(n)) }
func (a xattrArea) entryOff(i int) int { return ondisk.XattrHeaderSize + i*ondisk.XattrEntrySize }
func (a xattrArea) entry(i int) xattrEntry {
	o := a.entryOff(i)
	return xattrEntry(a.b[o : o+ondisk.XattrEntrySize])
}

// xattrEntry is one raw 16-byte entry.
type xattrEntry []byte

func (e xattrEntry) hash() uint32      { return get32(e, xeNameHash) }
func (e xattrEntry) nameOffset() int   { return int(get16(e, xeNameOffset)) }
func (e xattrEntry) nameLen() int      { return int(e[xeNameLen]) }
func (e xattrEntry) local() bool       { return e[xeType]&ondisk.XattrEntryLocal != 0 }
func (e xattrEntry) valueSize() uint64 { return get64(e, xeValueSize) }

func round4(n int) int { return (n + 3) &^ 3 }

// xattrStoredSize is ocfs2_xattr_value_real_size: the bytes a name and its
// value (or value root) take, computed in 16 bits from a value size cut to
// 16 bits, as libocfs2 computes it.
func xattrStoredSize(nameLen int, valueSize uint64) uint16 {
	v := int(uint16(valueSize))
	if v <= ondisk.XattrInlineValueMax {
		return uint16(round4(nameLen) + round4(v))
	}
	return uint16(round4(nameLen) + ondisk.XattrValueRootSize)
}

var (
	errBadXattrMagic = errors.New("bad xattr block signature")
	errXattrGetRec   = errors.New("no bucket run holds the name hash")
)

// checkXattrs checks an inode's extended attributes and records the
// clusters of their values and buckets (o2fsck_check_xattr). An error
// ends pass 1, as in fsck.ocfs2.
func (c *checker) checkXattrs(blk uint64, d dinode) error {
	if d.dyn()&ondisk.DynHasXattr == 0 {
		return nil
	}
	if d.dyn()&ondisk.DynInlineXattr != 0 {
		size := d.xattrInline()
		if size < ondisk.XattrHeaderSize || size > c.bs-diID2 {
			c.verbosef("inode %d: inline xattr area of %d bytes not checked\n", blk, size)
		} else {
			a := xattrArea{where: xattrInInode, b: d[c.bs-size:], blkno: d.blkno()}
			changed := false
			c.checkXattrHeader(d, a, &changed)
			if changed {
				c.writeInode(blk, d)
			}
		}
	}
	loc := get64(d, diXattrLoc)
	if loc == 0 {
		return nil
	}
	b, err := c.readXattrBlock(loc)
	switch {
	case err == nil && b[7] == 0:
	case err == nil || errors.Is(err, errBadXattrMagic) || errors.Is(err, errBadBlkno) || errors.Is(err, errBadCRC):
		// fsck.ocfs2 asks only about a signature whose eighth byte is
		// not NUL and stops pass 1 on the others; o2go asks about every
		// block that is not an xattr block (or fails its check) and
		// drops the reference.
		msg := fmt.Sprintf("Extended attribute block %d referenced by inode %d is invalid. Remove it?", loc, blk)
		if err == nil || errors.Is(err, errBadXattrMagic) {
			msg = fmt.Sprintf("Extended attributes block %d has bad signature %s, remove this block?", loc, printable(b[:7]))
		}
		if c.p.ask(XattrBlockInvalid, "%s", msg) {
			put64(d, diXattrLoc, 0)
			if d.dyn()&ondisk.DynInlineXattr == 0 {
				d.setDyn(d.dyn() &^ ondisk.DynHasXattr)
			}
			c.writeInode(blk, d)
		}
		return nil
	default:
		return c.fail("while reading externel block of extended attributes: block %d: %v", loc, err)
	}
	changed := false
	if get16(b, xbFlags)&xbIndexed == 0 {
		c.checkXattrHeader(d, xattrArea{where: xattrInBlock, b: b[xbAttrs:], blkno: loc}, &changed)
	} else if err := c.checkXattrIndex(d, loc, b, &changed); err != nil {
		return err
	}
	if changed {
		if err := c.writeBlock(loc, b, ondisk.XattrBlockCheckOffset); err != nil {
			c.fail("while writing externel block of extended attributes: %v", err)
		}
	}
	return nil
}

// printable shows signature bytes the way %.*s shows them, dots for what
// would not print.
func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, ch := range b {
		if ch == 0 {
			break
		}
		if ch < 0x20 || ch >= 0x7f {
			ch = '.'
		}
		out = append(out, ch)
	}
	return string(out)
}

// readXattrBlock is ocfs2_read_xattr_block: range, META_ECC, signature.
// A block with a bad signature is returned with errBadXattrMagic.
func (c *checker) readXattrBlock(blk uint64) ([]byte, error) {
	return c.readSignedBlock(blk, ondisk.XattrBlockCheckOffset, "xattr block", ondisk.XattrBlockSignature, errBadXattrMagic)
}

// xattrMark records a value's or a run's clusters as the inode's data
// extents are recorded (o2fsck_mark_tree_clusters_allocated).
func (c *checker) xattrMark(d dinode) func(r extRec, clusters uint32) {
	return func(r extRec, clusters uint32) {
		pc := uint32(r.blkno() >> (c.csBits - c.bsBits))
		if r.flags()&ondisk.ExtentRefcounted != 0 {
			c.markRefcounted(d, pc, clusters, r.cpos())
			return
		}
		c.markClusters(pc, clusters)
	}
}

// checkXattrHeader checks one header and what it governs (check_xattr).
func (c *checker) checkXattrHeader(d dinode, a xattrArea, changed *bool) {
	if !c.checkXattrCount(a, changed) || !c.checkXattrEntries(a, changed) {
		return
	}
	c.checkXattrValues(d, a, changed)
	if a.where != xattrInBucket {
		return
	}
	minOff := uint16(len(a.b))
	var total uint16
	for i := 0; i < a.count(); i++ {
		e := a.entry(i)
		minOff = min(minOff, uint16(e.nameOffset()))
		total += xattrStoredSize(e.nameLen(), e.valueSize())
	}
	if fs := get16(a.b, xhFreeStart); fs != minOff &&
		c.p.ask(XattrFreeStartInvalid, "Extended attribute in %s #%d claims to have free space start at %d , but fsck believes it is %d, Fix the value of free start?", a.where, a.blkno, fs, minOff) {
		put16(a.b, xhFreeStart, minOff)
		*changed = true
	}
	if nvl := get16(a.b, xhNameValueLen); nvl != total &&
		c.p.ask(XattrValueLenInvalid, "Extended attribute in %s #%d claims to have the total length %d of all EAs name and value in this object, but fsck believes it is %d, Fix the value of the total length?", a.where, a.blkno, nvl, total) {
		put16(a.b, xhNameValueLen, total)
		*changed = true
	}
}

// checkXattrCount compares xh_count with the entries present
// (check_xattr_count); false means the header is left alone.
func (c *checker) checkXattrCount(a xattrArea, changed *bool) bool {
	maxCount := (len(a.b) - ondisk.XattrHeaderSize) / (ondisk.XattrEntrySize + xattrMinValue)
	found := 0
	var prev uint32
	for found < maxCount {
		e := a.entry(found)
		if e.hash() == 0 || (a.where == xattrInBucket && found > 0 && e.hash() < prev) {
			break
		}
		prev = e.hash()
		found++
	}
	if a.count() <= found {
		return true
	}
	if !c.p.ask(XattrCountInvalid, "Extended attributes in %s #%d claims to have %d entries, but fsck believes it is %d, Fix the entries count?", a.where, a.blkno, a.count(), found) {
		return false
	}
	a.setCount(found)
	if found == 0 && a.where == xattrInBucket {
		put16(a.b, xhFreeStart, ondisk.XattrBucketSize)
		put16(a.b, xhNameValueLen, 0)
	}
	*changed = true
	return true
}

// checkXattrEntries checks every entry against the space the header, the
// entries before it and their names and values already use
// (check_xattr_entry); false means the header is left alone.
func (c *checker) checkXattrEntries(a xattrArea, changed *bool) bool {
	type span struct{ off, n int }
	used := []span{{0, ondisk.XattrHeaderSize}}
	fits := func(off, n int) bool {
		if off+n > len(a.b) {
			return false
		}
		for _, u := range used {
			if off+n > u.off && u.off+u.n > off {
				return false
			}
		}
		return true
	}
	drop := func(s span) {
		for i, u := range used {
			if u == s {
				used = append(used[:i], used[i+1:]...)
				return
			}
		}
	}
	n := a.count()
	var keep [][]byte // the entries that stay, in order
	dropped := 0
	ok := true
	// An entry answered "no" stays, with the ones after it, unchecked
	// (fsck.ocfs2 would cut the table there once an earlier entry went).
	keepRest := func(from int) {
		for j := from; j < n && a.entryOff(j)+ondisk.XattrEntrySize <= len(a.b); j++ {
			keep = append(keep, append([]byte(nil), a.entry(j)...))
		}
	}
	for i := 0; i < n; i++ {
		eoff := a.entryOff(i)
		if !fits(eoff, ondisk.XattrEntrySize) {
			if !c.p.ask(XattrEntryInvalid, "Extended attribute entry in %s #%d refers to a used area at %d, clear this entry?", a.where, a.blkno, eoff) {
				ok = false
				keepRest(i)
				break
			}
			dropped++
			continue
		}
		e := a.entry(i)
		if e.nameOffset() >= len(a.b) {
			if !c.p.ask(XattrNameOffsetInvalid, "Extended attribute entry in %s #%d refers to an invalid name offset %d, clear this entry?", a.where, a.blkno, e.nameOffset()) {
				ok = false
				keepRest(i)
				break
			}
			dropped++
			continue
		}
		if e.local() != (e.valueSize() <= ondisk.XattrInlineValueMax) {
			not := "not "
			if e.local() {
				not = ""
			}
			if !c.p.ask(XattrLocationInvalid, "Extended attribute entry in %s #%d claims to have value %sin local, but the value size is %d, clear this entry?", a.where, a.blkno, not, e.valueSize()) {
				ok = false
				keepRest(i)
				break
			}
			dropped++
			continue
		}
		entrySpan := span{eoff, ondisk.XattrEntrySize}
		used = append(used, entrySpan)
		stored := int(xattrStoredSize(e.nameLen(), e.valueSize()))
		if !fits(e.nameOffset(), stored) {
			if !c.p.ask(XattrValueInvalid, "Extended attribute entry in %s #%d refers to a used area at %d, clear this entry?", a.where, a.blkno, e.nameOffset()) {
				ok = false
				keepRest(i)
				break
			}
			drop(entrySpan)
			dropped++
			continue
		}
		used = append(used, span{e.nameOffset(), stored})
		name := a.b[e.nameOffset() : e.nameOffset()+e.nameLen()]
		if h := ondisk.XattrNameHash(c.sb.UUIDHash, name, ondisk.SignedChar); h != e.hash() &&
			c.p.ask(XattrHashInvalid, "Extended attribute entry in %s #%d refers to an invalid name hash %d, Fix the name hash?", a.where, a.blkno, e.hash()) {
			put32(e, xeNameHash, h)
			*changed = true
		}
		keep = append(keep, append([]byte(nil), e...))
	}
	if dropped > 0 {
		// The entries that stay move down over the dropped ones; the
		// names and values stay where they are.
		*changed = true
		// The slots past the new count keep their bytes, as in
		// fsck.ocfs2: a dropped entry's slot may hold another's name.
		for i, e := range keep {
			copy(a.entry(i), e)
		}
		a.setCount(len(keep))
	}
	return ok
}

// checkXattrValues checks the extent list of every value stored outside
// the area and records its clusters (check_xattr_value). One walk state
// serves all the values of a header, as in fsck.ocfs2: a tree of depth 1
// makes it expect depth 0 of the next value's root.
func (c *checker) checkXattrValues(d dinode, a xattrArea, changed *bool) {
	ei := &extentInfo{di: d, mark: c.xattrMark(d)}
	for i := 0; i < a.count(); i++ {
		e := a.entry(i)
		if e.local() {
			continue
		}
		off := e.nameOffset() + round4(e.nameLen())
		if off+ondisk.XattrValueRootSize > len(a.b) {
			continue
		}
		ei.owner = a.blkno + uint64(off/c.bs)
		c.checkEL(ei, extList(a.b[off+xvList:off+ondisk.XattrValueRootSize]), 1, 0, false, changed)
	}
}

// checkXattrIndex checks an indexed block's tree of bucket runs and then
// every run, from the highest hash down (o2fsck_check_xattr_index_block).
func (c *checker) checkXattrIndex(d dinode, loc uint64, b []byte, changed *bool) error {
	el := extList(b[xbTreeList:])
	if el.nextFree() == 0 {
		return nil
	}
	ei := &extentInfo{owner: get64(b, xbBlkno), di: d, mark: c.xattrMark(d)}
	c.checkEL(ei, el, (c.bs-xbTreeList-ondisk.ExtentListHeaderSize)/extRecSize, 0, false, changed)
	if *changed {
		// What follows reads the tree as it now stands.
		if err := c.writeBlock(loc, b, ondisk.XattrBlockCheckOffset); err != nil {
			return c.fail("while writing root block of extended attributes: %v", err)
		}
		*changed = false
	}
	hash := uint32(0xFFFFFFFF)
	for {
		r, err := c.xattrBucketRun(el, hash)
		if err != nil {
			return c.fail("while getting bucket record of extended attributes: xattr block %d, hash %#x: %v", loc, hash, err)
		}
		if err := c.checkXattrBuckets(d, r.blkno, r.clusters); err != nil {
			return c.fail("while iterating bucket of extended attributes: %v", err)
		}
		if r.cpos == 0 {
			return nil
		}
		hash = r.cpos - 1
	}
}

// xattrBucketRun finds the run of buckets holding hash: the last record
// of its leaf whose hash is not above it (ocfs2_xattr_get_rec).
func (c *checker) xattrBucketRun(el extList, hash uint32) (leafRec, error) {
	for depth := 0; el.depth() > 0; depth++ {
		if depth > 8 {
			return leafRec{}, errCorruptEB
		}
		next := uint64(0)
		for i := min(int(el.nextFree()), el.room()) - 1; i >= 0; i-- {
			if r := el.rec(i); r.cpos() <= hash {
				next = r.blkno()
				break
			}
		}
		if next == 0 {
			return leafRec{}, errXattrGetRec
		}
		b, err := c.readExtentBlock(next)
		if err != nil {
			return leafRec{}, fmt.Errorf("extent block %d: %w", next, err)
		}
		el = extentBlock(b).list()
	}
	for i := min(int(el.nextFree()), el.room()) - 1; i >= 0; i-- {
		r := el.rec(i)
		if r.cpos() <= hash {
			if r.blkno() == 0 {
				break
			}
			return leafRec{cpos: r.cpos(), clusters: r.leafClusters(), blkno: r.blkno()}, nil
		}
	}
	return leafRec{}, errXattrGetRec
}

// readXattrBucket reads the bucket at blk (ocfs2_read_xattr_bucket).
func (c *checker) readXattrBucket(blk uint64) ([]byte, error) {
	buf := blockdev.AlignedBuffer(ondisk.XattrBucketSize, 4096)
	if err := c.readBlocks(blk, buf); err != nil {
		return nil, err
	}
	if c.metaECC {
		if _, err := ondisk.VerifyBlockCheck(buf, ondisk.XattrBucketCheckOff, "xattr bucket"); err != nil {
			return nil, errBadCRC
		}
	}
	return buf, nil
}

func (c *checker) writeXattrBucket(blk uint64, b []byte) error {
	if c.metaECC {
		ondisk.SetBlockCheck(b, ondisk.XattrBucketCheckOff)
	}
	if err := c.writeBlocks(blk, b); err != nil {
		return fmt.Errorf("while writing bucket of extended attributes at %d: %w", blk, err)
	}
	return nil
}

// checkXattrBuckets checks one run of buckets (ocfs2_check_xattr_buckets):
// its first bucket's count of buckets, then each bucket's header.
func (c *checker) checkXattrBuckets(d dinode, blkno uint64, clusters uint32) error {
	perBucket := uint64(ondisk.XattrBucketBlocks(c.bs))
	maxBuckets := int(clusters) * ((1 << c.csBits) / ondisk.XattrBucketSize)
	// Buckets are read as they are needed (fsck.ocfs2 reads the whole
	// run first, and the run stops at the first that cannot be read);
	// only the first, which carries the count, is kept.
	var first []byte
	bucket := func(i int) []byte {
		if i >= maxBuckets {
			return nil
		}
		if i == 0 && first != nil {
			return first
		}
		b, err := c.readXattrBucket(blkno + uint64(i)*perBucket)
		if err != nil {
			maxBuckets = i
			return nil
		}
		return b
	}
	// As in fsck.ocfs2, the run is as long as its buckets read well.
	for i := 0; i < maxBuckets; i++ {
		b := bucket(i)
		if b == nil {
			break
		}
		if i == 0 {
			first = b
		}
	}
	first = bucket(0)
	if first == nil {
		return fmt.Errorf("the first bucket of the run at block %d cannot be read", blkno)
	}
	n := int(get16(first, xhNumBuckets))
	if n == 0 || n > maxBuckets {
		found := c.countXattrBuckets(bucket)
		if !c.p.ask(XattrBucketCountInvalid, "Extended attribute buckets start at %d claims to have %d buckets, but fsck believes it is %d, Fix the bucket count?", blkno, n, max(found, 1)) {
			return nil
		}
		if found == 0 {
			put16(first, xhCount, 0)
			put16(first, xhFreeStart, ondisk.XattrBucketSize)
			put16(first, xhNumBuckets, 1)
		} else {
			put16(first, xhNumBuckets, uint16(found))
		}
		if err := c.writeXattrBucket(blkno, first); err != nil {
			return err
		}
		if found == 0 {
			return nil
		}
		n = found
	}
	for i := 0; i < n; i++ {
		b := bucket(i)
		if b == nil {
			break
		}
		blk := blkno + uint64(i)*perBucket
		changed := false
		c.checkXattrHeader(d, xattrArea{where: xattrInBucket, b: b, blkno: blk}, &changed)
		if changed {
			if err := c.writeXattrBucket(blk, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// countXattrBuckets counts the buckets from the start of a run whose
// headers look sane (detect_xattr_bucket_count).
func (c *checker) countXattrBuckets(bucket func(int) []byte) int {
	maxCount := (ondisk.XattrBucketSize - ondisk.XattrHeaderSize) / (ondisk.XattrEntrySize + xattrMinValue)
	for i := 0; ; i++ {
		b := bucket(i)
		if b == nil {
			return i
		}
		count := int(get16(b, xhCount))
		free := int(get16(b, xhFreeStart))
		nvl := int(get16(b, xhNameValueLen))
		if !(count < maxCount && free > count*ondisk.XattrEntrySize && free <= ondisk.XattrBucketSize && nvl <= ondisk.XattrBucketSize-free) {
			return i
		}
	}
}

// xattrExtents lists the clusters an inode's attributes hold (values and
// bucket runs) as they stand, for pass 1b; damage it cannot read past
// ends the list there.
func (c *checker) xattrExtents(d dinode) []leafRec {
	if d.dyn()&ondisk.DynHasXattr == 0 {
		return nil
	}
	var out []leafRec
	values := func(a xattrArea) {
		for i := 0; i < min(a.count(), (len(a.b)-ondisk.XattrHeaderSize)/ondisk.XattrEntrySize); i++ {
			e := a.entry(i)
			off := e.nameOffset() + round4(e.nameLen())
			if e.local() || off+ondisk.XattrValueRootSize > len(a.b) {
				continue
			}
			ei := &extentInfo{owner: a.blkno}
			c.iterateTree(ei, extList(a.b[off+xvList:off+ondisk.XattrValueRootSize]))
			out = append(out, ei.leaves...)
		}
	}
	if size := d.xattrInline(); d.dyn()&ondisk.DynInlineXattr != 0 && size >= ondisk.XattrHeaderSize && size <= c.bs-diID2 {
		values(xattrArea{where: xattrInInode, b: d[c.bs-size:], blkno: d.blkno()})
	}
	loc := get64(d, diXattrLoc)
	if loc == 0 {
		return out
	}
	b, err := c.readXattrBlock(loc)
	if err != nil {
		return out
	}
	if get16(b, xbFlags)&xbIndexed == 0 {
		values(xattrArea{where: xattrInBlock, b: b[xbAttrs:], blkno: loc})
		return out
	}
	ei := &extentInfo{owner: loc}
	c.iterateTree(ei, extList(b[xbTreeList:]))
	perBucket := uint64(ondisk.XattrBucketBlocks(c.bs))
	for _, r := range ei.leaves {
		out = append(out, r)
		first, err := c.readXattrBucket(r.blkno)
		if err != nil {
			continue
		}
		n := min(int(get16(first, xhNumBuckets)), int(r.clusters)*((1<<c.csBits)/ondisk.XattrBucketSize))
		for i := 0; i < n; i++ {
			bk := first
			if i > 0 {
				if bk, err = c.readXattrBucket(r.blkno + uint64(i)*perBucket); err != nil {
					break
				}
			}
			values(xattrArea{where: xattrInBucket, b: bk, blkno: r.blkno + uint64(i)*perBucket})
		}
	}
	return out
}
