package alloc

import (
	"fmt"
	"slices"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

const structLocalAlloc = "local alloc"

// DefaultLocalAllocMB is the local alloc window OCFS2 uses when the mount
// gives no localalloc= option (OCFS2_DEFAULT_LOCAL_ALLOC_SIZE, 8 MiB).
const DefaultLocalAllocMB = 8

// LocalAllocOptions are the mount options that shape a local alloc.
type LocalAllocOptions struct {
	// WindowMB is localalloc=MB: the window size in MiB; 0 means
	// DefaultLocalAllocMB, a negative value turns the local alloc off.
	// The window is also capped by the bits la_bitmap holds, by a group's
	// cpg-1 clusters and by one slot's share of the volume.
	WindowMB int
	// ResvLevel is resv_level (0..8): data windows of 4<<level clusters;
	// 0 turns reservations off. Zero is a real setting, so start from
	// DefaultLocalAllocOptions.
	ResvLevel int
	// DirResvLevel is dir_resv_level (0..8), the same for directories.
	DirResvLevel int
}

// DefaultLocalAllocOptions are the kernel's defaults: an 8 MiB window,
// resv_level=2 and dir_resv_level=2.
func DefaultLocalAllocOptions() LocalAllocOptions {
	return LocalAllocOptions{WindowMB: DefaultLocalAllocMB, ResvLevel: DefaultResvLevel, DirResvLevel: DefaultResvLevel}
}

type laState int

const (
	laEnabled   laState = iota
	laThrottled         // the global bitmap is fragmented: smaller windows
	laDisabled          // no window can be had; claims go to the global bitmap
)

// LocalAlloc is a slot's local_alloc:N: a window of the global bitmap the
// slot allocates data clusters from without touching the global bitmap.
// On disk, la_bm_off is the window's first cluster, bitmap1.i_total its
// size in bits (0: no window), la_bitmap has a bit set for every window
// cluster a file took and bitmap1.i_used counts them. Every cluster of the
// window is set in the global bitmap from the moment the window is taken;
// the ones still clear in la_bitmap go back to the global bitmap when the
// window moves, at shutdown (umount) and when another node recovers the
// slot.
//
// When a claim wants more than the window has free the window moves
// (localalloc.c's slide): the old one is returned, then a new run of the
// window size is taken from the global bitmap, near the last one. If the
// global bitmap has no such run the target size halves (throttled) until
// it would be 1 MiB or less, where the local alloc turns itself off; it
// turns on again once the global bitmap has seen a window's worth of
// clusters freed.
type LocalAlloc struct {
	c           *metacache.Cache
	geo         Geometry
	blkno       uint64
	global      *GlobalBitmap
	defaultBits int
	bits        int
	state       laState
	resv        reservationMap
	lastGroup   uint64
	freedMark   uint64
}

// OpenLocalAlloc returns the local alloc at inode blkno. A window already on
// disk (a volume not cleanly unmounted, whose slot was not recovered) is
// checked and kept.
func OpenLocalAlloc(c *metacache.Cache, geo Geometry, blkno uint64, global *GlobalBitmap, opts LocalAllocOptions) (*LocalAlloc, error) {
	if opts.ResvLevel < 0 || opts.ResvLevel > MaxResvLevel || opts.DirResvLevel < 0 || opts.DirResvLevel > MaxResvLevel {
		return nil, fmt.Errorf("local alloc: resv_level %d / dir_resv_level %d outside 0..%d", opts.ResvLevel, opts.DirResvLevel, MaxResvLevel)
	}
	la := &LocalAlloc{c: c, geo: geo, blkno: blkno, global: global, resv: newReservationMap(opts.ResvLevel, opts.DirResvLevel)}
	w, err := la.read()
	if err != nil {
		return nil, err
	}
	if opts.WindowMB >= 0 {
		mb := opts.WindowMB
		if mb == 0 {
			mb = DefaultLocalAllocMB
		}
		bits := geo.MegabytesToClusters(mb)
		bits = min(bits, 8*len(w.la.Bitmap), geo.GlobalCPG-1)
		if geo.Slots > 0 {
			bits = min(bits, int(geo.Clusters)/geo.Slots)
		}
		la.defaultBits = bits
	}
	la.bits = la.defaultBits
	if la.bits <= 0 {
		la.state = laDisabled
	}
	la.resv.restart(w.d.Bitmap().Total)
	return la, nil
}

// Blkno is the local alloc inode's block.
func (la *LocalAlloc) Blkno() uint64 { return la.blkno }

// WindowBits is the size the next window will have.
func (la *LocalAlloc) WindowBits() int { return la.bits }

// Enabled reports whether claims may use the local alloc now.
func (la *LocalAlloc) Enabled() bool {
	la.maybeReenable()
	return la.state != laDisabled
}

// Window describes a local alloc window: Total clusters from cluster Off,
// with Bitmap (a copy of la_bitmap) marking the ones files took.
type Window struct {
	Off    uint32
	Total  int
	Used   int
	Bitmap []byte
}

// UnusedRuns are the window's clusters no file took: what goes back to the
// global bitmap.
func (w Window) UnusedRuns() []ClusterRun {
	var runs []ClusterRun
	for i := 0; i < w.Total; {
		z := nextZero(w.Bitmap, i, w.Total)
		if z >= w.Total {
			break
		}
		e := nextSet(w.Bitmap, z, w.Total)
		runs = append(runs, ClusterRun{Start: w.Off + uint32(z), Count: e - z})
		i = e
	}
	return runs
}

// Window returns the current on-disk window.
func (la *LocalAlloc) Window() (Window, error) {
	w, err := la.read()
	if err != nil {
		return Window{}, err
	}
	return w.window(), nil
}

// laInode is a local alloc dinode read for change.
type laInode struct {
	buf *metacache.Buffer
	d   *ondisk.Dinode
	la  *ondisk.LocalAlloc
}

func (w *laInode) window() Window {
	bm := w.d.Bitmap()
	return Window{Off: w.la.BmOff, Total: int(bm.Total), Used: int(bm.Used), Bitmap: slices.Clone(w.la.Bitmap)}
}

func (la *LocalAlloc) read() (*laInode, error) { return readLocalAlloc(la.c, la.geo, la.blkno) }

// readLocalAlloc reads and checks a local alloc inode, returning a private
// copy.
func readLocalAlloc(c *metacache.Cache, geo Geometry, blkno uint64) (*laInode, error) {
	shared, err := c.Dinode(blkno)
	if err != nil {
		return nil, fmt.Errorf("local alloc: %w", err)
	}
	bad := func(field, format string, args ...any) error {
		return c.Annotate(&ondisk.CorruptError{Struct: structLocalAlloc, Field: field, Msg: fmt.Sprintf(format, args...)}, blkno)
	}
	if shared.Flags&ondisk.InodeLocalAlloc == 0 || shared.Flags&ondisk.InodeBitmap == 0 || shared.LocalAlloc == nil {
		return nil, bad("i_flags", "is 0x%x, a local alloc needs LOCAL_ALLOC_FL|BITMAP_FL", shared.Flags)
	}
	l := shared.LocalAlloc
	if len(l.Bitmap) == 0 || len(l.Bitmap) > ondisk.LocalAllocBitmapBytes(geo.BlockSize) {
		return nil, bad("la_size", "is %d, want 1..%d", len(l.Bitmap), ondisk.LocalAllocBitmapBytes(geo.BlockSize))
	}
	bm := shared.Bitmap()
	if int(bm.Total) > 8*len(l.Bitmap) {
		return nil, bad("bitmap1.i_total", "is %d, more than the %d bits of la_bitmap", bm.Total, 8*len(l.Bitmap))
	}
	if uint64(l.BmOff)+uint64(bm.Total) > uint64(geo.Clusters) {
		return nil, bad("la_bm_off", "window of %d clusters from %d runs past the volume's %d", bm.Total, l.BmOff, geo.Clusters)
	}
	if n := countSet(l.Bitmap, 8*len(l.Bitmap)); n != int(bm.Used) || countSet(l.Bitmap, int(bm.Total)) != n {
		return nil, bad("bitmap1.i_used", "is %d, but la_bitmap has %d bits set (%d inside the %d-bit window)", bm.Used, n, countSet(l.Bitmap, int(bm.Total)), bm.Total)
	}
	buf, err := c.Get(blkno)
	if err != nil {
		return nil, err
	}
	d := *shared
	lc := *l
	lc.Bitmap = slices.Clone(l.Bitmap)
	d.LocalAlloc = &lc
	return &laInode{buf: buf, d: &d, la: &lc}, nil
}

func (w *laInode) write(c *metacache.Cache, tx metacache.Tx) error {
	if err := tx.Access(w.buf); err != nil {
		return err
	}
	if err := w.d.Encode(w.buf.Data); err != nil {
		return fmt.Errorf("local alloc %d: %w", w.d.Blkno, err)
	}
	tx.Dirty(w.buf, ondisk.DinodeCheckOffset)
	return nil
}

// clear empties the window (ocfs2_clear_local_alloc).
func (w *laInode) clear() {
	w.d.SetBitmap(ondisk.Bitmap{})
	w.la.BmOff = 0
	clear(w.la.Bitmap)
}

func (la *LocalAlloc) maybeReenable() {
	if la.state == laEnabled || la.defaultBits <= 0 {
		return
	}
	if la.global.freed-la.freedMark >= uint64(la.defaultBits) {
		la.state, la.bits = laEnabled, la.defaultBits
	}
}

func (la *LocalAlloc) noSpace(format string, args ...any) error {
	return fmt.Errorf("%s: local alloc %d: %s: %w", la.c.Device().Name(), la.blkno, fmt.Sprintf(format, args...), ErrNoSpace)
}

// Claim takes min..max clusters from the window through reservation r (nil:
// a temporary one, as the kernel uses for allocations without an inode
// window), moving the window first when it has fewer than max free bits.
// A claim gets at most what r's window holds. ErrNoSpace means the caller
// should go to the global bitmap.
func (la *LocalAlloc) Claim(tx metacache.Tx, r *Reservation, minN, maxN int) (ClusterRun, error) {
	if minN <= 0 || maxN < minN {
		return ClusterRun{}, fmt.Errorf("local alloc: claim of %d..%d clusters", minN, maxN)
	}
	la.maybeReenable()
	if la.state == laDisabled {
		return ClusterRun{}, la.noSpace("turned off")
	}
	if maxN > la.bits {
		return ClusterRun{}, la.noSpace("%d clusters wanted, the window holds %d", maxN, la.bits)
	}
	w, err := la.read()
	if err != nil {
		return ClusterRun{}, err
	}
	if bm := w.d.Bitmap(); int(bm.Total-bm.Used) < maxN {
		if err := la.slide(tx, w); err != nil {
			return ClusterRun{}, err
		}
		if w, err = la.read(); err != nil {
			return ClusterRun{}, err
		}
		if bm := w.d.Bitmap(); int(bm.Total-bm.Used) < maxN {
			return ClusterRun{}, la.noSpace("the new window has %d free clusters, %d wanted", bm.Total-bm.Used, maxN)
		}
	}
	total := int(w.d.Bitmap().Total)
	var start, n int
	tr := r
	if !la.resv.disabled() {
		if tr == nil {
			tr = &Reservation{tmp: true}
			defer la.resv.discard(tr)
		}
		s, l, ok := la.resv.resvBits(w.la.Bitmap, tr, uint32(maxN))
		if !ok {
			return ClusterRun{}, la.noSpace("no free window for the reservation")
		}
		start, n = int(s), min(int(l), maxN)
	} else {
		// Reservations off: the first run of max bits, else the longest
		// (the kernel insists on max; any run of at least min serves).
		start, n = findRun(w.la.Bitmap, 0, total, maxN)
	}
	if n < minN {
		return ClusterRun{}, la.noSpace("%d contiguous clusters wanted, the window gives %d", minN, n)
	}
	if start+n > total || !rangeClear(w.la.Bitmap, start, n) {
		return ClusterRun{}, fmt.Errorf("local alloc %d: window bits %d..%d are not free (o2go bug)", la.blkno, start, start+n-1)
	}
	for i := start; i < start+n; i++ {
		setBit(w.la.Bitmap, i)
	}
	bm := w.d.Bitmap()
	bm.Used += uint32(n)
	w.d.SetBitmap(bm)
	if err := w.write(la.c, tx); err != nil {
		return ClusterRun{}, err
	}
	if !la.resv.disabled() {
		la.resv.claimed(tr, uint32(start), uint32(n))
	}
	return ClusterRun{Start: w.la.BmOff + uint32(start), Count: n}, nil
}

// Discard gives back r's window (the inode is going away or shrinking).
func (la *LocalAlloc) Discard(r *Reservation) {
	if r != nil && r.owner == &la.resv {
		la.resv.discard(r)
	}
}

// slide returns the current window and takes a new one.
func (la *LocalAlloc) slide(tx metacache.Tx, w *laInode) error {
	if la.state != laThrottled {
		la.bits = la.defaultBits
	}
	old := w.window()
	la.resv.restart(0)
	if old.Total != 0 || old.Used != 0 || old.Off != 0 {
		w.clear()
		if err := w.write(la.c, tx); err != nil {
			return err
		}
		if err := la.global.ReturnWindow(tx, old); err != nil {
			return err
		}
	}
	for {
		start, n, err := la.global.claimRun(tx, la.bits, la.bits, la.lastGroup, -1, false)
		if err == nil {
			la.lastGroup = la.global.hint
			w.la.BmOff = start
			w.d.SetBitmap(ondisk.Bitmap{Total: uint32(n)})
			clear(w.la.Bitmap)
			if err := w.write(la.c, tx); err != nil {
				return err
			}
			la.resv.restart(uint32(n))
			return nil
		}
		if !errIsNoSpace(err) {
			return err
		}
		// The kernel's OCFS2_LA_EVENT_FRAGMENTED / _ENOSPC: halve the
		// window until it would not exceed 1 MiB, then turn off.
		half := la.bits >> 1
		la.freedMark = la.global.freed
		if half > la.geo.MegabytesToClusters(1) {
			la.state, la.bits = laThrottled, half
			continue
		}
		la.state = laDisabled
		return la.noSpace("no run of %d clusters left for a window", la.bits)
	}
}

// Shutdown returns the window's unused clusters to the global bitmap and
// leaves an empty local alloc on disk, as the kernel does at umount. A
// later claim takes a new window.
func (la *LocalAlloc) Shutdown(tx metacache.Tx) error {
	la.resv.restart(0)
	return RecoverLocalAlloc(tx, la.c, la.geo, la.blkno, la.global)
}

// EmptyLocalAlloc empties the local alloc at blkno on disk and returns the
// window it held (the kernel's ocfs2_begin_local_alloc_recovery: done while
// the dead slot's journal is recovered; the clusters go back later with
// ReturnWindow).
func EmptyLocalAlloc(tx metacache.Tx, c *metacache.Cache, geo Geometry, blkno uint64) (Window, error) {
	w, err := readLocalAlloc(c, geo, blkno)
	if err != nil {
		return Window{}, err
	}
	old := w.window()
	if old.Total == 0 && old.Used == 0 && w.la.BmOff == 0 {
		return old, nil
	}
	w.clear()
	return old, w.write(c, tx)
}

// ReturnWindow frees the clusters of w no file took (the kernel's
// ocfs2_sync_local_to_main). Each must still be set in the global bitmap.
func (gb *GlobalBitmap) ReturnWindow(tx metacache.Tx, w Window) error {
	if w.Total == 0 || w.Used == w.Total {
		return nil
	}
	if err := gb.FreeClusterRuns(tx, w.UnusedRuns()); err != nil {
		return fmt.Errorf("returning local alloc window of %d clusters from %d: %w", w.Total, w.Off, err)
	}
	return nil
}

// RecoverLocalAlloc empties the local alloc at blkno and returns its unused
// clusters to the global bitmap: recovery of a dead slot's local alloc, and
// the last step of a clean shutdown.
func RecoverLocalAlloc(tx metacache.Tx, c *metacache.Cache, geo Geometry, blkno uint64, global *GlobalBitmap) error {
	w, err := EmptyLocalAlloc(tx, c, geo, blkno)
	if err != nil {
		return err
	}
	return global.ReturnWindow(tx, w)
}
