package xattr

import (
	"errors"
	"fmt"
	"syscall"

	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// Limits of a local file system, the Linux VFS's.
const (
	MaxNameLen  = 255      // XATTR_NAME_MAX: the full name, prefix included
	MaxValueLen = 64 << 10 // XATTR_SIZE_MAX
)

// SetFlags are setxattr(2)'s flags.
type SetFlags int

const (
	// Create fails with EEXIST when the name exists (XATTR_CREATE).
	Create SetFlags = 1
	// Replace fails with ENODATA when the name does not exist (XATTR_REPLACE).
	Replace SetFlags = 2
)

// ErrFreedFull is returned, before anything changed, by an operation that
// would free clusters while Env.Freed has no room for them: the caller
// flushes the truncate log (checkpoint first, as extent.TruncateLog says)
// and runs the operation again.
var ErrFreedFull = errors.New("xattr: the truncate log has no room for the clusters this change frees")

// ClusterSink takes the clusters an operation gives back: value clusters
// and bucket clusters. The kernel never frees them straight to the bitmap
// (ocfs2_cache_cluster_dealloc, ocfs2_rm_xattr_cluster): they go to the
// slot's truncate log, and are freed for real only after the journal
// checkpointed the transaction that released them, so that a replay can
// never make a reused cluster hold a stale value again. *extent.TruncateLog
// is the sink of a mounted volume; DirectFree suits an offline tool that
// writes in place through metacache.DirectTx.
type ClusterSink interface {
	Append(tx metacache.Tx, start, n uint32) error
	Room() (int, error)
}

// DirectFree is a ClusterSink that frees at once through a cluster
// allocator, for writers without a journal (DirectTx). Never use it under a
// journal: a replay could write freed value blocks over their new owner.
type DirectFree struct{ Data extent.ClusterAllocator }

// Append implements ClusterSink.
func (f DirectFree) Append(tx metacache.Tx, start, n uint32) error {
	return f.Data.FreeClusters(tx, start, n)
}

// Room implements ClusterSink: a direct free never runs out of room.
func (f DirectFree) Room() (int, error) { return 1 << 30, nil }

// Env is what a change to an inode's extended attributes needs: the
// volume's metadata cache and superblock, the transaction the change joins,
// the slot's allocators (Meta, its extent_alloc, for xattr blocks and the
// extent blocks of value and bucket trees; Data for value and bucket
// clusters) and where freed clusters go.
//
// Every operation takes the inode as a private, mutable dinode copy and the
// inode's buffer, already joined to the Tx (Access done). The in-inode
// xattr area is the tail of that buffer, which Dinode.Encode never touches:
// the operation writes it there directly. It may change the dinode's
// i_xattr_inline_size, i_dyn_features (INLINE_XATTR, HAS_XATTR),
// i_xattr_loc, the permission bits of i_mode (access ACLs), and, when it
// takes or gives back the in-inode area, the id2 capacity (l_count of the
// extent list, id_count of inline data). The caller then encodes the copy
// into the buffer, dirties it and sets i_ctime, as for any change. Every
// other block goes through Tx.
//
// An operation that fails may have changed blocks (an allocator running
// dry after a bucket split): run it in a metacache.UndoTx and roll back, as
// fs/inode does for every operation.
type Env struct {
	C     *metacache.Cache
	SB    *ondisk.SuperBlock
	Tx    metacache.Tx
	Meta  extent.MetaAllocator
	Data  extent.ClusterAllocator
	Freed ClusterSink
}

// attrName is a parsed full name.
type attrName struct {
	full   string
	index  uint8
	suffix []byte
}

func (a attrName) isACL() bool {
	return a.index == ondisk.XattrIndexPosixACLAccess || a.index == ondisk.XattrIndexPosixACLDefault
}

// parseName splits a full name as the VFS and OCFS2 see it: names longer
// than XATTR_NAME_MAX are ERANGE (setxattr(2)), a known prefix with nothing
// after it is EINVAL, an unknown namespace EOPNOTSUPP.
func parseName(name string) (attrName, error) {
	if len(name) > MaxNameLen {
		return attrName{}, fmt.Errorf("xattr name of %d bytes, more than %d: %w", len(name), MaxNameLen, syscall.ERANGE)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return attrName{}, fmt.Errorf("xattr name %q holds a NUL: %w", name, syscall.EINVAL)
		}
	}
	index, suffix, ok := ondisk.SplitXattrName(name)
	if ok {
		return attrName{full: name, index: index, suffix: []byte(suffix)}, nil
	}
	for _, i := range []uint8{ondisk.XattrIndexUser, ondisk.XattrIndexTrusted, ondisk.XattrIndexSecurity} {
		if name == ondisk.XattrPrefixes[i] {
			return attrName{}, fmt.Errorf("xattr name %q has nothing after its prefix: %w", name, syscall.EINVAL)
		}
	}
	return attrName{}, fmt.Errorf("xattr name %q is in no namespace OCFS2 stores: %w", name, syscall.EOPNOTSUPP)
}

// permitWrite applies the kernel's xattr_permission for a change: user.*
// attributes exist only on regular files and directories, and POSIX ACLs
// never on symlinks.
func permitWrite(d *ondisk.Dinode, a attrName) error {
	if a.index == ondisk.XattrIndexUser && !d.IsReg() && !d.IsDir() {
		return fmt.Errorf("inode %d: %s: user.* attributes only go on regular files and directories: %w", d.Blkno, a.full, syscall.EPERM)
	}
	if a.isACL() && d.IsLnk() {
		return fmt.Errorf("inode %d: %s: symlinks have no ACLs: %w", d.Blkno, a.full, syscall.EOPNOTSUPP)
	}
	return nil
}

// Set sets the extended attribute name (a full name, "user.foo") of the
// inode to value, as setxattr(2) on OCFS2: in the inode while it fits, then
// in the XATTR01 block, which turns into 4 KiB hash buckets when it fills;
// values longer than 80 bytes live in clusters. flags are Create/Replace.
//
// The POSIX ACL names take the VFS format (what setfacl passes) and store
// OCFS2's; an ACL with no entries removes it. They follow the kernel's ACL
// handler rather than the flags: the value is validated (EINVAL), a default
// ACL needs a directory (EACCES), and an access ACL also sets the
// permission bits of d.Mode, storing nothing when those bits say it all
// (posix_acl_update_mode; clearing S_ISGID for a caller outside the file's
// group without CAP_FSETID is the caller's, as the mode change is).
func Set(env Env, d *ondisk.Dinode, buf *metacache.Buffer, name string, value []byte, flags SetFlags) error {
	a, err := parseName(name)
	if err != nil {
		return err
	}
	if err := permitWrite(d, a); err != nil {
		return err
	}
	e, err := newEditor(env, d, buf)
	if err != nil {
		return err
	}
	if a.isACL() {
		acl, err := ParseVFSACL(value)
		if err != nil {
			return fmt.Errorf("inode %d: %s: %w", d.Blkno, name, err)
		}
		return e.setACL(a, acl)
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("inode %d: %s: value of %d bytes, more than %d: %w", d.Blkno, name, len(value), MaxValueLen, syscall.E2BIG)
	}
	if value == nil {
		value = []byte{}
	}
	return e.set(a, value, flags)
}

// Remove removes the extended attribute name, as removexattr(2): ENODATA
// when there is none. Removing a POSIX ACL the inode does not have is not
// an error (the kernel sets a NULL ACL), nor is removing a default ACL
// from a non-directory.
func Remove(env Env, d *ondisk.Dinode, buf *metacache.Buffer, name string) error {
	a, err := parseName(name)
	if err != nil {
		return err
	}
	if err := permitWrite(d, a); err != nil {
		return err
	}
	e, err := newEditor(env, d, buf)
	if err != nil {
		return err
	}
	if a.isACL() {
		return e.setACL(a, nil)
	}
	return e.remove(a, true)
}

// editor is one change to one inode's attributes.
type editor struct {
	Env
	d   *ondisk.Dinode
	buf *metacache.Buffer
	bs  int
	bpc int // blocks per cluster
	cs  int

	inline *store // the in-inode area, once loaded
	xb     *xblock
	// buckets holds every bucket this change read or made, so that two
	// steps touching one bucket share one copy.
	buckets map[uint64]*bucket
	// fresh marks the blocks of clusters claimed by this change: they are
	// written whole without being read.
	fresh map[uint64]bool
}

func newEditor(env Env, d *ondisk.Dinode, buf *metacache.Buffer) (*editor, error) {
	if env.C == nil || env.SB == nil || env.Tx == nil {
		return nil, errors.New("xattr: Env needs a cache, a superblock and a transaction")
	}
	if d == nil || buf == nil || buf.Blkno != d.Blkno || len(buf.Data) != env.SB.BlockSize() {
		return nil, errors.New("xattr: the inode and its buffer do not match")
	}
	if env.SB.Features.Incompat&ondisk.IncompatXattr == 0 {
		return nil, fmt.Errorf("inode %d: the volume has no xattr feature: %w", d.Blkno, syscall.EOPNOTSUPP)
	}
	return &editor{Env: env, d: d, buf: buf, bs: env.SB.BlockSize(), bpc: env.SB.BlocksPerCluster(),
		cs: env.SB.ClusterSize(), buckets: map[uint64]*bucket{}, fresh: map[uint64]bool{}}, nil
}

func (e *editor) owner() string { return fmt.Sprintf("inode %d xattrs", e.d.Blkno) }

// corrupt is a corruption error at blkno, prefixed with the owner.
func (e *editor) corrupt(blkno uint64, structName, field, format string, args ...any) error {
	return fmt.Errorf("%s: %w", e.owner(), e.C.Annotate(&ondisk.CorruptError{Struct: structName, Field: field, Msg: fmt.Sprintf(format, args...)}, blkno))
}

func (e *editor) metaECC() bool { return e.SB.Features.Incompat&ondisk.IncompatMetaECC != 0 }

func (e *editor) hash(name []byte) uint32 {
	return ondisk.XattrNameHash(e.SB.UUIDHash, name, ondisk.SignedChar)
}

// location is where an attribute was found.
type location struct {
	s *store
	i int
	b *bucket // the bucket holding s, for InBucket
}

func (l location) found() bool { return l.s != nil && l.i >= 0 }

// findInline looks the name up in the in-inode area.
func (e *editor) findInline(a attrName) (location, error) {
	s, err := e.loadInline()
	if err != nil || s == nil {
		return location{i: -1}, err
	}
	return location{s: s, i: s.find(a.index, a.suffix, e.hash(a.suffix))}, nil
}

// findOutside looks the name up in the xattr block or its buckets.
func (e *editor) findOutside(a attrName) (location, error) {
	xb, err := e.loadBlock()
	if err != nil || xb == nil {
		return location{i: -1}, err
	}
	h := e.hash(a.suffix)
	if !xb.indexed() {
		return location{s: xb.s, i: xb.s.find(a.index, a.suffix, h)}, nil
	}
	if len(xb.xb.Tree.List.Recs) == 0 {
		return location{i: -1}, nil
	}
	b, err := e.bucketFor(h)
	if err != nil {
		return location{}, err
	}
	return location{s: b.s, i: b.s.find(a.index, a.suffix, h), b: b}, nil
}

// set is setxattr for a value in the stored format.
func (e *editor) set(a attrName, value []byte, flags SetFlags) error {
	in, err := e.findInline(a)
	if err != nil {
		return err
	}
	out := location{i: -1}
	if !in.found() {
		if out, err = e.findOutside(a); err != nil {
			return err
		}
	}
	exists := in.found() || out.found()
	switch {
	case exists && flags&Create != 0:
		return fmt.Errorf("inode %d: %s: %w", e.d.Blkno, a.full, syscall.EEXIST)
	case !exists && flags&Replace != 0:
		return fmt.Errorf("inode %d: %s: %w", e.d.Blkno, a.full, syscall.ENODATA)
	}
	if err := e.roomToFree(in, out); err != nil {
		return err
	}
	nv := &newValue{index: a.index, name: a.suffix, hash: e.hash(a.suffix), value: value}

	// The kernel tries the inode first, always.
	if e.inlineAllowed() {
		s, i := in.s, in.i
		if s == nil && e.canTakeInline(nv) {
			i = -1
			if s, err = e.takeInline(); err != nil {
				return err
			}
		}
		if s != nil {
			err := e.put(s, i, nv)
			if err == nil {
				if out.found() {
					if err := e.removeAt(out); err != nil {
						return err
					}
				}
				return e.finish()
			}
			if !errors.Is(err, errNoRoom) {
				return err
			}
		}
	}
	if in.found() {
		// The value leaves the inode: look for a stale copy outside as the
		// kernel would not, but as a damaged volume may need.
		if out, err = e.findOutside(a); err != nil {
			return err
		}
	}
	if err := e.setOutside(nv, out); err != nil {
		return err
	}
	if in.found() {
		if err := e.removeAt(in); err != nil {
			return err
		}
	}
	return e.finish()
}

// remove is removexattr; missing says whether an absent name is ENODATA.
func (e *editor) remove(a attrName, missing bool) error {
	loc, err := e.findInline(a)
	if err != nil {
		return err
	}
	if !loc.found() {
		if loc, err = e.findOutside(a); err != nil {
			return err
		}
	}
	if !loc.found() {
		if missing {
			return fmt.Errorf("inode %d: %s: %w", e.d.Blkno, a.full, syscall.ENODATA)
		}
		return nil
	}
	if err := e.roomToFree(loc); err != nil {
		return err
	}
	if err := e.removeAt(loc); err != nil {
		return err
	}
	return e.finish()
}

// roomToFree checks that the truncate log can take the clusters of the
// values these locations hold, before anything changes.
func (e *editor) roomToFree(locs ...location) error {
	need := 0
	for _, l := range locs {
		if !l.found() {
			continue
		}
		ent := &l.s.h.Entries[l.i]
		if ent.Local() {
			continue
		}
		n, err := e.valueRuns(ent.Root, l.s.blkno)
		if err != nil {
			return err
		}
		need += n
	}
	if need == 0 {
		return nil
	}
	if e.Freed == nil {
		return fmt.Errorf("%s: no place to free value clusters (Env.Freed is nil)", e.owner())
	}
	room, err := e.Freed.Room()
	if err != nil {
		return err
	}
	if room < need {
		return fmt.Errorf("%s: %d runs to free, room for %d: %w", e.owner(), need, room, ErrFreedFull)
	}
	return nil
}

// removeAt removes the attribute at l, freeing its value clusters.
func (e *editor) removeAt(l location) error {
	ent := &l.s.h.Entries[l.i]
	if !ent.Local() {
		if err := e.resizeValue(ent.Root, l.s.blkno, 0); err != nil {
			return err
		}
	}
	l.s.removeEntry(l.i)
	return nil
}

// setOutside stores nv in the xattr block, creating it, and turning it into
// buckets when it is full.
func (e *editor) setOutside(nv *newValue, at location) error {
	xb, err := e.loadBlock()
	if err != nil {
		return err
	}
	if xb == nil {
		if xb, err = e.createBlock(); err != nil {
			return err
		}
		at = location{s: xb.s, i: -1}
	}
	if !xb.indexed() {
		i := -1
		if at.s == xb.s {
			i = at.i
		}
		err := e.put(xb.s, i, nv)
		if !errors.Is(err, errNoRoom) {
			return err
		}
		if err := e.makeIndexed(); err != nil {
			return err
		}
	}
	return e.bucketSet(nv)
}

// finish gives back what the change emptied — the in-inode area, a
// non-indexed xattr block — keeps HAS_XATTR true to what is left, and
// writes every changed block.
func (e *editor) finish() error {
	d := e.d
	if e.inline != nil && len(e.inline.h.Entries) == 0 && e.canGiveBackInline() {
		e.giveBackInline()
	}
	if e.xb != nil && !e.xb.indexed() && len(e.xb.s.h.Entries) == 0 {
		if err := e.freeBlock(); err != nil {
			return err
		}
	}
	if d.DynFeatures&ondisk.DynInlineXattr != 0 || d.XattrLoc != 0 {
		d.DynFeatures |= ondisk.DynHasXattr
	} else {
		d.DynFeatures &^= ondisk.DynHasXattr
	}
	return e.flush()
}

// flush writes the in-inode area, the xattr block and the buckets this
// change touched.
func (e *editor) flush() error {
	if e.inline != nil && e.inline.dirty && e.d.DynFeatures&ondisk.DynInlineXattr != 0 {
		if err := e.writeInline(); err != nil {
			return err
		}
	}
	if x := e.xb; x != nil && !x.freed && (x.dirty || x.s != nil && x.s.dirty) {
		if err := e.writeBlock(); err != nil {
			return err
		}
	}
	for _, b := range e.sortedBuckets() {
		if b.dirty || b.s.dirty {
			if err := e.writeBucket(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// blockFor returns block blkno ready to be changed in this transaction:
// new (not read) when it belongs to a cluster claimed by this change,
// otherwise read and joined.
func (e *editor) blockFor(blkno uint64) (*metacache.Buffer, error) {
	if e.fresh[blkno] {
		return e.Tx.New(blkno)
	}
	b, err := e.C.GetUnowned(blkno)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.owner(), err)
	}
	if err := e.Tx.Access(b); err != nil {
		return nil, err
	}
	return b, nil
}

// claim takes lo..hi contiguous clusters for the inode and marks their
// blocks fresh.
func (e *editor) claim(goal, lo, hi uint32) (start, n uint32, err error) {
	if e.Data == nil {
		return 0, 0, fmt.Errorf("%s: no cluster allocator in the environment", e.owner())
	}
	start, n, err = e.Data.ClaimClusters(e.Tx, e.d.Blkno, goal, lo, hi)
	if err != nil {
		return 0, 0, err
	}
	if n < lo || n > hi {
		return 0, 0, fmt.Errorf("%s: the cluster allocator gave %d clusters for a claim of %d..%d", e.owner(), n, lo, hi)
	}
	first := uint64(start) * uint64(e.bpc)
	for i := uint64(0); i < uint64(n)*uint64(e.bpc); i++ {
		e.fresh[first+i] = true
	}
	return start, n, nil
}

// free gives a run of clusters to the sink.
func (e *editor) free(start, n uint32) error {
	if e.Freed == nil {
		return fmt.Errorf("%s: no place to free clusters (Env.Freed is nil)", e.owner())
	}
	if err := e.Freed.Append(e.Tx, start, n); err != nil {
		return fmt.Errorf("%s: freeing clusters [%d,+%d): %w", e.owner(), start, n, err)
	}
	return nil
}

// Credits is how many blocks one Set or Remove may dirty at most, for the
// journal handle it runs in: the inode, the xattr block, a 64 KiB value's
// blocks, a few extent blocks and allocator blocks, and a bucket split
// shifting a whole run of buckets (more when one set needs several splits;
// the journal takes handles that exceed their credits).
func Credits(sb *ondisk.SuperBlock) int {
	bs := sb.BlockSize()
	perBucket := ondisk.XattrBucketBlocks(bs)
	run := max(maxLeafBytes, sb.ClusterSize()) / ondisk.XattrBucketSize
	return 2 + MaxValueLen/bs + 8 + 16 + 2*(run+2)*perBucket
}
