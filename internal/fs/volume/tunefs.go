package volume

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"o2go/internal/blockdev"
	"o2go/internal/fs/alloc"
	"o2go/internal/fs/dir"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// tunefs changes an existing volume the way tunefs.ocfs2 1.8.7 does: one
// file per operation (tunefs_label.go, tunefs_uuid.go, tunefs_slots.go,
// tunefs_journal.go, tunefs_resize.go, tunefs_stack.go, tunefs_query.go,
// tunefs_features.go and one tunefs_feature_*.go per feature that rewrites
// more than the superblock), this file for what they share: the options,
// the order operations run in, opening the volume for each of them, the
// checks before any write (in use, dirty journals, aborted operations, a
// damaged global bitmap), superblock writes (the primary and its backups,
// META_ECC sealed) and the in-progress marks.
//
// Like tunefs.ocfs2, o2go tunefs writes in place (metacache.DirectTx), and
// marks the operations a crash could leave half done: -S sets
// RESIZE_INPROG, slot changes and directory trailer installation set
// TUNEFS_INPROG. A volume carrying either mark is refused by the kernel, by
// o2go mount and by o2go tunefs until fsck.ocfs2 -f has checked it.

// TunefsOptions are tunefs.ocfs2(8)'s options, and o2cluster(8)'s.
type TunefsOptions struct {
	// Label is -L (when SetLabel): at most 63 bytes.
	Label    string
	SetLabel bool
	// ResetUUID is -U: UUID is the new one (32 hex digits or the dashed
	// form), or "" for a random one.
	ResetUUID bool
	UUID      string
	// ClonedVolume is --cloned-volume[=LABEL]: a random UUID and the label
	// ClonedLabel, or the old label with "-cloned" appended.
	ClonedVolume bool
	ClonedLabel  string
	// Slots is -N: the new number of node slots (0: unchanged).
	Slots int
	// JournalSize is -J size=: bytes per journal, rounded up to clusters
	// (0: unchanged).
	JournalSize uint64
	// JournalBlocks is -J block64 (+1) or block32 (-1): the JBD2 64-bit
	// feature of every journal (0: unchanged).
	JournalBlocks int
	// Resize is -S: grow the volume to ResizeTo ("[bytes:|blocks:|clusters:]N"
	// with an optional K/M/G/T/P suffix, blocks by default), or to the
	// device's size when ResizeTo is "".
	Resize   bool
	ResizeTo string
	// Features is --fs-features: "name,noname,..." (the command line folds
	// -M local|cluster and --backup-super into it).
	Features string
	// UpdateClusterStack is --update-cluster-stack: stamp the cluster this
	// node runs (RunningStack) on a clustered volume.
	UpdateClusterStack bool
	// SetClusterStack is --cluster-stack (with --cluster-name and
	// --global-heartbeat): stamp ClusterStack without a running cluster,
	// as o2cluster --update does.
	SetClusterStack bool
	ClusterStack    ClusterStack
	// RunningStack is the cluster this node belongs to (the command line
	// reads the O2CB configuration); nil when there is none. Needed by
	// --update-cluster-stack and by --fs-features=nolocal.
	RunningStack *ClusterStack
	// Query is -Q (when SetQuery): print the format with the volume's
	// attributes; it runs after every change.
	Query    string
	SetQuery bool
	// Force is -F: change the volume even when it looks in use (mounted,
	// a loop device over it, live heartbeats on a clustered volume).
	Force bool
	// Interactive is -i: ask before each change. Yes (-y) and No (-n)
	// answer every question, including the ones tunefs.ocfs2 asks even
	// without -i (a custom UUID, a cloned volume, a new cluster stack).
	Interactive bool
	Yes, No     bool
	// Verbose is -v: say what is done and what there was nothing to do
	// for. Quiet (-q) prints nothing but errors.
	Verbose bool
	Quiet   bool

	// Out receives the query output and what some operations report (the
	// cluster stack's); ErrOut -v's messages, warnings and questions, as
	// tunefs.ocfs2 splits them. Nil: none.
	Out, ErrOut io.Writer
	// Confirm asks the operator a question (the terminal); nil when there is
	// no one to ask.
	Confirm func(question string) bool
	// Progress, when set, is told how far a long step got (stage names the
	// step); the command line draws a bar with it.
	Progress func(stage string, done, total int64)
	// HeartbeatWait is how long the in-use check watches the heartbeat area
	// of a clustered volume (0: DefaultHeartbeatWait).
	HeartbeatWait time.Duration

	// interrupt, for crash tests, is called at named points of the long
	// operations; an error it returns stops the operation right there,
	// as a crash would.
	interrupt func(point string) error
}

// ClusterStack is a cluster stack stamp (o2cluster(8)'s
// "stack,cluster,heartbeat-mode" triplet). The zero value is "default":
// the classic o2cb stack, no cluster information on disk.
type ClusterStack struct {
	Stack           string // "o2cb", "pcmk" or "cman"; "" for the classic default
	Name            string // cluster name, at most 16 bytes
	GlobalHeartbeat bool   // o2cb only
}

// String is o2cluster's form: "default" or "o2cb,mycluster,global".
func (s ClusterStack) String() string {
	if s.Stack == "" {
		return "default"
	}
	mode := "none"
	if s.Stack == "o2cb" {
		mode = "local"
		if s.GlobalHeartbeat {
			mode = "global"
		}
	}
	return s.Stack + "," + s.Name + "," + mode
}

// ParseClusterStack parses o2cluster's form: "default", or
// "stack,cluster,mode" with mode local or global for o2cb and none for
// pcmk and cman.
func ParseClusterStack(s string) (ClusterStack, error) {
	if s == "default" {
		return ClusterStack{}, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return ClusterStack{}, fmt.Errorf("cluster details %q should be in the format \"<stack>,<cluster>,<hbmode>\" (or \"default\")", s)
	}
	cs := ClusterStack{Stack: parts[0], Name: parts[1]}
	switch {
	case cs.Stack == "o2cb" && parts[2] == "global":
		cs.GlobalHeartbeat = true
	case cs.Stack == "o2cb" && parts[2] == "local":
	case cs.Stack == "o2cb":
		return ClusterStack{}, fmt.Errorf("unknown heartbeat mode %q: o2cb's modes are local and global", parts[2])
	case !strings.EqualFold(parts[2], "none"):
		return ClusterStack{}, fmt.Errorf("heartbeat mode must be \"none\" for the %s cluster stack, not %q", cs.Stack, parts[2])
	}
	return cs, cs.Validate()
}

// Validate applies o2cb's rules for stack and cluster names.
func (s ClusterStack) Validate() error {
	switch s.Stack {
	case "":
		if s.Name != "" || s.GlobalHeartbeat {
			return fmt.Errorf("the default (classic o2cb) stack has no cluster name or heartbeat mode: give --cluster-stack too")
		}
		return nil
	case "o2cb":
		if len(s.Name) > ondisk.ClusterNameLen || !isAlnum(s.Name) {
			return fmt.Errorf("invalid o2cb cluster name %q: 1 to %d letters and digits", s.Name, ondisk.ClusterNameLen)
		}
	case "pcmk", "cman":
		if s.Name == "" || len(s.Name) > ondisk.ClusterNameLen {
			return fmt.Errorf("invalid cluster name %q: 1 to %d characters", s.Name, ondisk.ClusterNameLen)
		}
		if s.GlobalHeartbeat {
			return fmt.Errorf("global heartbeat is only applicable to the o2cb cluster stack, not %s", s.Stack)
		}
	default:
		return fmt.Errorf("unknown cluster stack %q: want o2cb, pcmk or cman", s.Stack)
	}
	return nil
}

// TunefsError is tunefs refusing an operation (bad options, a volume in
// use, a change the volume cannot take), as opposed to an I/O error.
type TunefsError struct{ Msg string }

func (e *TunefsError) Error() string { return e.Msg }

func tunefsRefuse(format string, args ...any) error {
	return &TunefsError{Msg: fmt.Sprintf(format, args...)}
}

// IsTunefsRefusal reports whether err is tunefs refusing (not an I/O error).
func IsTunefsRefusal(err error) bool {
	var te *TunefsError
	return errors.As(err, &te)
}

// errTunefsStop is what an interrupt hook returns to simulate a crash.
var errTunefsStop = errors.New("tunefs stopped (simulated crash)")

// tunefsOp is one operation: tunefs.ocfs2's tunefs_operation.
type tunefsOp struct {
	name string
	// rw: the operation writes; alloc: it allocates, so the global bitmap
	// is checked first (TUNEFS_FLAG_ALLOCATION).
	rw, alloc bool
	run       func(t *tunefsVol) error
	// peek: the operation reads the superblock only (-Q), also on volumes
	// Open refuses (aborted operations).
	peek bool
}

// tunefsRun is one o2go tunefs invocation.
type tunefsRun struct {
	path string
	o    *TunefsOptions
	out  io.Writer
	eout io.Writer

	checked bool // in-use and journal checks done
	// journalClusters is the largest journal's size and journalIncompat
	// the union of every journal's JBD2 incompat features, both found by
	// the first read-write open (tunefs.ocfs2's ts_journal_clusters and
	// ts_journal_features).
	journalClusters uint32
	journalIncompat uint32
}

// Tunefs changes the volume at path as tunefs.ocfs2 1.8.7 does with the
// same options. The operations run in a fixed order: the resize first (so
// that the others have its space, as tunefs.ocfs2 does), then label,
// cloned volume, UUID, slots, journal, cluster stack and features, and the
// query last, so that it shows the result.
// tunefs.ocfs2 runs the middle ones in command-line order instead.
//
// Before the first write it refuses a volume that is in use (mounted here,
// a loop device attached, live heartbeats on a clustered volume: -F
// overrides these), that has a dirty journal, an aborted resize or tunefs
// operation, or is a heartbeat device. Each operation reopens the volume,
// so that it sees what the previous one wrote.
func Tunefs(path string, o TunefsOptions) error {
	r := &tunefsRun{path: path, o: &o, out: o.Out, eout: o.ErrOut}
	if r.out == nil || o.Quiet {
		r.out = io.Discard
	}
	if r.eout == nil {
		r.eout = io.Discard
	}
	ops, err := r.plan()
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		return tunefsRefuse("no operation given: nothing to do")
	}
	for _, op := range ops {
		if err := r.runOp(op); err != nil {
			if errors.Is(err, errTunefsStop) {
				return err
			}
			return fmt.Errorf("%s: %s: %w", path, op.name, err)
		}
	}
	return nil
}

// plan checks the options and lists the operations in the order they run.
func (r *tunefsRun) plan() ([]tunefsOp, error) {
	o := r.o
	var ops []tunefsOp
	if o.Yes && o.No {
		return nil, tunefsRefuse("-y and -n contradict each other")
	}
	if o.Resize {
		spec, err := parseResizeSpec(o.ResizeTo)
		if err != nil {
			return nil, err
		}
		ops = append(ops, tunefsOp{name: "resize volume", rw: true, alloc: true, run: func(t *tunefsVol) error { return t.resize(spec) }})
	}
	if o.SetLabel {
		if len(o.Label) >= ondisk.VolumeLabelLen {
			return nil, tunefsRefuse("volume label %q is %d bytes: it must be shorter than %d", o.Label, len(o.Label), ondisk.VolumeLabelLen)
		}
		ops = append(ops, tunefsOp{name: "set label", rw: true, alloc: false, run: func(t *tunefsVol) error { return t.setLabel(o.Label) }})
	}
	if o.ClonedVolume {
		if len(o.ClonedLabel) >= ondisk.VolumeLabelLen {
			return nil, tunefsRefuse("volume label %q is %d bytes: it must be shorter than %d", o.ClonedLabel, len(o.ClonedLabel), ondisk.VolumeLabelLen)
		}
		ops = append(ops, tunefsOp{name: "cloned volume", rw: true, alloc: false, run: func(t *tunefsVol) error { return t.clonedVolume(o.ClonedLabel) }})
	}
	if o.ResetUUID {
		var uuid *[ondisk.UUIDLen]byte
		if o.UUID != "" {
			u, err := ParseUUID(o.UUID)
			if err != nil {
				return nil, tunefsRefuse("%v", err)
			}
			uuid = &u
		}
		ops = append(ops, tunefsOp{name: "reset uuid", rw: true, alloc: false, run: func(t *tunefsVol) error { return t.resetUUID(uuid) }})
	}
	if o.Slots != 0 {
		if o.Slots < 1 || o.Slots > ondisk.MaxSlots {
			return nil, tunefsRefuse("number of slots %d is out of range: a volume has 1 to %d node slots", o.Slots, ondisk.MaxSlots)
		}
		ops = append(ops, tunefsOp{name: "set slot count", rw: true, alloc: true, run: func(t *tunefsVol) error { return t.setSlotCount(o.Slots) }})
	}
	if o.JournalSize != 0 {
		if o.JournalSize < minJournalBytes {
			return nil, tunefsRefuse("journal size %d is too small: a journal needs at least %d bytes (4 MiB)", o.JournalSize, minJournalBytes)
		}
		ops = append(ops, tunefsOp{name: "set journal size", rw: true, alloc: true, run: func(t *tunefsVol) error { return t.setJournalSizeOp(o.JournalSize) }})
	}
	if o.JournalBlocks != 0 {
		ops = append(ops, tunefsOp{name: "set journal block size", rw: true, alloc: true, run: func(t *tunefsVol) error { return t.setJournalBlocks(o.JournalBlocks > 0) }})
	}
	if o.UpdateClusterStack && o.SetClusterStack {
		return nil, tunefsRefuse("--update-cluster-stack stamps the running cluster; --cluster-stack names one: give one of them")
	}
	if o.UpdateClusterStack {
		ops = append(ops, tunefsOp{name: "update cluster stack", rw: true, alloc: false, run: func(t *tunefsVol) error { return t.updateClusterStack() }})
	}
	if o.SetClusterStack {
		if err := o.ClusterStack.Validate(); err != nil {
			return nil, tunefsRefuse("%v", err)
		}
		cs := o.ClusterStack
		ops = append(ops, tunefsOp{name: "set cluster stack", rw: true, alloc: false, run: func(t *tunefsVol) error { return t.setClusterStackOp(cs) }})
	}
	if o.Features != "" {
		fops, err := r.planFeatures(o.Features)
		if err != nil {
			return nil, err
		}
		ops = append(ops, fops...)
	}
	if o.SetQuery {
		q, err := parseQuery(o.Query)
		if err != nil {
			return nil, err
		}
		ops = append(ops, tunefsOp{name: "query", run: func(t *tunefsVol) error { return t.query(q) }, peek: true})
	}
	return ops, nil
}

// verbosef prints what tunefs.ocfs2 prints at -v, where it prints it: on
// stderr, so that stdout carries only the -Q output. -q cancels -v.
func (r *tunefsRun) verbosef(format string, args ...any) {
	if r.o.Verbose && !r.o.Quiet {
		fmt.Fprintf(r.eout, format, args...)
	}
}

// interact is tools_interact: with -i, ask (-y/-n answer); otherwise yes.
func (r *tunefsRun) interact(format string, args ...any) (bool, error) {
	if !r.o.Interactive {
		return true, nil
	}
	return r.ask(fmt.Sprintf(format, args...))
}

// interactCritical is tools_interact_critical: always asked; -y or -n
// answer it, else the terminal; with neither it is refused.
func (r *tunefsRun) interactCritical(format string, args ...any) (bool, error) {
	return r.ask(fmt.Sprintf(format, args...))
}

func (r *tunefsRun) ask(q string) (bool, error) {
	switch {
	case r.o.Yes:
		fmt.Fprintf(r.eout, "%sy\n", q)
		return true, nil
	case r.o.No:
		fmt.Fprintf(r.eout, "%sn\n", q)
		return false, nil
	case r.o.Confirm != nil:
		return r.o.Confirm(q), nil
	}
	q = strings.TrimSpace(q)
	if i := strings.LastIndex(q, "\n"); i >= 0 {
		q = q[i+1:]
	}
	return false, tunefsRefuse("%q needs an answer and there is no terminal to ask on: pass -y (or -n)", q)
}

func (r *tunefsRun) progress(stage string, done, total int64) {
	if r.o.Progress != nil && !r.o.Quiet {
		r.o.Progress(stage, done, total)
	}
}

func (r *tunefsRun) interrupt(point string) error {
	if r.o.interrupt != nil {
		return r.o.interrupt(point)
	}
	return nil
}

// tunefsVol is the volume opened for one operation.
type tunefsVol struct {
	*Volume
	r   *tunefsRun
	tx  *metacache.DirectTx
	geo alloc.Geometry

	gb           *alloc.GlobalBitmap
	meta         *alloc.ChainAllocator // extent_alloc:0000, as libocfs2 uses slot 0
	extentAllocs map[uint16]*alloc.ChainAllocator
}

// runOp opens the volume for op, runs it and closes the volume.
func (r *tunefsRun) runOp(op tunefsOp) error {
	super, err := r.peekSuper()
	if err != nil {
		return err
	}
	if op.peek {
		return op.run(&tunefsVol{Volume: &Volume{Path: r.path, Super: super, SB: super.Super}, r: r})
	}
	if op.rw {
		if err := r.checkFlags(super.Super); err != nil {
			return err
		}
	}
	v, err := Open(r.path, OpenOptions{ReadOnly: !op.rw})
	if err != nil {
		var ue *UnsupportedFeaturesError
		if errors.As(err, &ue) {
			return tunefsRefuse("%v: o2go tunefs does not change volumes with features it does not know", err)
		}
		return err
	}
	t := &tunefsVol{Volume: v, r: r, tx: &metacache.DirectTx{C: v.Cache}}
	defer v.Close()
	if t.geo, err = alloc.NewGeometry(v.Super); err != nil {
		return err
	}
	if op.rw {
		if !r.checked {
			if err := r.checkInUse(t); err != nil {
				return err
			}
			if err := r.checkJournals(t); err != nil {
				return err
			}
			r.checked = true
		}
		if op.alloc {
			if err := t.checkGlobalBitmap(); err != nil {
				return err
			}
		}
	}
	if err := op.run(t); err != nil {
		t.tx.Close()
		return err
	}
	return t.tx.Close()
}

// peekSuper reads the superblock without Open's checks (which refuse the
// aborted operations tunefs must name itself, and which -Q still reads).
func (r *tunefsRun) peekSuper() (*ondisk.Dinode, error) {
	dev, err := blockdev.Open(r.path, blockdev.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("could not open device %s: %w", r.path, err)
	}
	defer dev.Close()
	d, _, _, err := probeSuperBlock(dev, 0)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// checkFlags refuses what tunefs.ocfs2 refuses to open read-write.
func (r *tunefsRun) checkFlags(sb *ondisk.SuperBlock) error {
	f := sb.Features.Incompat
	switch {
	case f&ondisk.IncompatHeartbeatDev != 0:
		return tunefsRefuse("%s is a heartbeat device: heartbeat devices cannot be tuned, they can only be re-formatted with mkfs", r.path)
	case f&ondisk.IncompatResizeInProg != 0:
		return tunefsRefuse("%s was in the process of resizing (aborted-resize): run \"fsck.ocfs2 -f %s\" to clean up the aborted operation, then try again", r.path, r.path)
	case f&ondisk.IncompatTunefsInProg != 0:
		return tunefsRefuse("%s was in the process of another tunefs operation (aborted-tunefs, flag 0x%x): run \"fsck.ocfs2 -f %s\" to clean up the aborted operation, then try again", r.path, sb.TunefsFlag, r.path)
	}
	return nil
}

// checkInUse refuses a volume that is in use, unless -F.
func (r *tunefsRun) checkInUse(t *tunefsVol) error {
	reason, err := DeviceInUse(r.path, "/proc/mounts", "/sys/block")
	if err != nil {
		return err
	}
	if reason != "" {
		if !r.o.Force {
			return tunefsRefuse("%s is in use: %s; will not change it (use -F to override)", r.path, reason)
		}
		fmt.Fprintf(r.eout, "%s is in use: %s; changing it anyway (-F)\n", r.path, reason)
	}
	if t.local() {
		return nil
	}
	if r.o.Force {
		fmt.Fprintln(r.eout, "WARNING: Cluster check disabled.")
		return nil
	}
	wait := r.o.HeartbeatWait
	if wait <= 0 {
		wait = DefaultHeartbeatWait
	}
	live, err := LiveHeartbeatNodes(t.Volume, wait)
	if err != nil {
		return tunefsRefuse("%s: cannot read the heartbeat area (%v), so it cannot tell whether the volume is in use; to skip this check, use -F", r.path, err)
	}
	if len(live) > 0 {
		var ns []string
		for _, n := range live {
			ns = append(ns, fmt.Sprint(n))
		}
		return tunefsRefuse("%s is in use in the cluster: node(s) %s heartbeat on it; unmount it everywhere first (or use -F if those nodes are known to be gone)", r.path, strings.Join(ns, ", "))
	}
	return nil
}

// checkJournals refuses dirty journals (fsck.ocfs2 must replay them) and
// records the journals' size and features (tunefs_journal_check).
func (r *tunefsRun) checkJournals(t *tunefsVol) error {
	var dirty []string
	for slot := 0; slot < int(t.SB.MaxSlots); slot++ {
		d, err := t.systemInode(ondisk.SysJournal, slot)
		if err != nil {
			return err
		}
		r.journalClusters = max(r.journalClusters, d.Clusters)
		if d.Journal().Flags&ondisk.JournalDirty != 0 {
			dirty = append(dirty, fmt.Sprint(slot))
			continue
		}
		jsb, err := t.readJournalSuper(d)
		if err != nil {
			return err
		}
		r.journalIncompat |= jsb.FeatureIncompat
	}
	if len(dirty) > 0 {
		return tunefsRefuse("the journal of slot(s) %s is dirty: the volume is mounted somewhere or a node crashed; run fsck.ocfs2 to replay all dirty journals, then try again", strings.Join(dirty, ", "))
	}
	return nil
}

// local reports whether the volume is a single-node (local) one.
func (t *tunefsVol) local() bool { return t.SB.Features.Incompat&ondisk.IncompatLocalMount != 0 }

func (t *tunefsVol) bs() int             { return t.SB.BlockSize() }
func (t *tunefsVol) cs() int             { return t.SB.ClusterSize() }
func (t *tunefsVol) bpc() uint64         { return uint64(t.SB.BlocksPerCluster()) }
func (t *tunefsVol) totalBlocks() uint64 { return uint64(t.Super.Clusters) * t.bpc() }
func (t *tunefsVol) verbosef(format string, args ...any) {
	t.r.verbosef(format, args...)
}

// systemInode reads a system file's inode.
func (t *tunefsVol) systemInode(kind ondisk.SystemFileKind, slot int) (*ondisk.Dinode, error) {
	blk, err := t.SystemFile(kind, slot)
	if err != nil {
		return nil, err
	}
	return t.Cache.Dinode(blk)
}

// readJournalSuper reads the JBD2 superblock of a journal inode.
func (t *tunefsVol) readJournalSuper(d *ondisk.Dinode) (*ondisk.JournalSuperBlock, error) {
	m, err := extent.Lookup(t.Cache, d.Extents, 0, fmt.Sprintf("journal inode %d", d.Blkno))
	if err != nil {
		return nil, err
	}
	if !m.Found || d.Extents == nil {
		return nil, t.Cache.Annotate(&ondisk.CorruptError{Struct: "journal dinode", Field: "id2", Msg: "the journal has no block 0"}, d.Blkno)
	}
	buf := make([]byte, max(t.bs(), ondisk.JournalSuperBlockSize))
	if err := t.Cache.ReadBlocks(m.Rec.Blkno, buf); err != nil {
		return nil, err
	}
	jsb, err := ondisk.DecodeJournalSuperBlock(buf)
	if err != nil {
		return nil, t.Cache.Annotate(err, m.Rec.Blkno)
	}
	return jsb, nil
}

// checkGlobalBitmap refuses to allocate from a damaged global bitmap
// (tunefs_global_bitmap_check): every chain's groups must name the bitmap
// as parent and their chain, hold the free count their bitmap shows, and
// add up to the chain record's counts.
func (t *tunefsVol) checkGlobalBitmap() error {
	gb, err := t.globalBitmap()
	if err != nil {
		return err
	}
	d, err := t.Cache.Dinode(gb.Blkno())
	if err != nil {
		return err
	}
	bad := func(blk uint64, format string, args ...any) error {
		return tunefsRefuse("the global bitmap is damaged, so tunefs will not allocate from it; run fsck.ocfs2 first: block %d: %s", blk, fmt.Sprintf(format, args...))
	}
	if d.Chain == nil {
		return bad(d.Blkno, "the global bitmap inode has no chain list")
	}
	for ci, rec := range d.Chain.Recs {
		var free, total uint32
		seen := map[uint64]bool{}
		for blk := rec.Blkno; blk != 0; {
			if seen[blk] || blk >= t.Cache.Blocks() {
				return bad(d.Blkno, "chain %d reaches block %d twice or beyond the device", ci, blk)
			}
			seen[blk] = true
			g, err := t.Cache.GroupDesc(blk)
			if err != nil {
				return err
			}
			switch {
			case g.ParentDinode != d.Blkno:
				return bad(blk, "the group belongs to allocator %d, not the global bitmap %d", g.ParentDinode, d.Blkno)
			case int(g.Chain) != ci:
				return bad(blk, "the group is on chain %d but says chain %d", ci, g.Chain)
			case int(g.Bits) > 8*len(g.Bitmap):
				return bad(blk, "bg_bits %d exceeds its %d-byte bitmap", g.Bits, len(g.Bitmap))
			case int(g.Bits)-g.CountSet() != int(g.FreeBitsCount):
				return bad(blk, "bg_free_bits_count is %d but the bitmap has %d free", g.FreeBitsCount, int(g.Bits)-g.CountSet())
			}
			free += uint32(g.FreeBitsCount)
			total += uint32(g.Bits)
			blk = g.NextGroup
		}
		if free != rec.Free || total != rec.Total {
			return bad(d.Blkno, "chain %d says %d free of %d, its groups hold %d free of %d", ci, rec.Free, rec.Total, free, total)
		}
	}
	return nil
}

// globalBitmap opens the global bitmap once per operation.
func (t *tunefsVol) globalBitmap() (*alloc.GlobalBitmap, error) {
	if t.gb != nil {
		return t.gb, nil
	}
	blk, err := t.SystemFile(ondisk.SysGlobalBitmap, -1)
	if err != nil {
		return nil, err
	}
	gb, err := alloc.OpenGlobalBitmap(t.Cache, t.geo, blk)
	if err != nil {
		return nil, err
	}
	t.gb = gb
	return gb, nil
}

// metaAllocator is extent_alloc:0000, where libocfs2 takes extent blocks,
// dx roots and the like.
func (t *tunefsVol) metaAllocator() (*alloc.ChainAllocator, error) {
	if t.meta != nil {
		return t.meta, nil
	}
	gb, err := t.globalBitmap()
	if err != nil {
		return nil, err
	}
	blk, err := t.SystemFile(ondisk.SysExtentAlloc, 0)
	if err != nil {
		return nil, err
	}
	a, err := alloc.OpenSuballocator(t.Cache, t.geo, blk, 0, gb, "extent_alloc:0000")
	if err != nil {
		return nil, err
	}
	t.meta = a
	return a, nil
}

// claimClusters takes want clusters (at least min) from the global bitmap
// where libocfs2's ocfs2_new_clusters takes them, so that tunefs lays
// files out where tunefs.ocfs2 does: the first group, in address order,
// with min free bits, its first free run of want bits, else its longest
// run (bitmap.c alloc_range_func). The run is then claimed through
// fs/alloc, which keeps every count right.
func (t *tunefsVol) claimClusters(least, want int) (alloc.ClusterRun, error) {
	gb, err := t.globalBitmap()
	if err != nil {
		return alloc.ClusterRun{}, err
	}
	want = max(min(want, gb.MaxRun()), least)
	cpg := t.geo.GlobalCPG
	groups := ondisk.GlobalBitmapGroups(t.Super.Clusters, cpg)
	for i := 0; i < groups; i++ {
		g, err := t.Cache.GroupDesc(ondisk.GlobalBitmapGroupBlkno(i, cpg, int(t.bpc()), t.SB.FirstClusterGroup))
		if err != nil {
			return alloc.ClusterRun{}, err
		}
		if int(g.FreeBitsCount) < least {
			continue
		}
		bestStart, bestLen := -1, 0
		for s := 0; s+least <= int(g.Bits); {
			for s < int(g.Bits) && g.Test(s) {
				s++
			}
			if s >= int(g.Bits) {
				break
			}
			e := s
			for e < int(g.Bits) && !g.Test(e) && e-s < want {
				e++
			}
			if e-s >= want {
				bestStart, bestLen = s, want
				break
			}
			if e-s > bestLen {
				bestStart, bestLen = s, e-s
			}
			s = e + 1
		}
		if bestStart < 0 || bestLen < least {
			continue
		}
		run, err := gb.ClaimClusters(t.tx, uint32(i*cpg+bestStart), bestLen, bestLen)
		if err != nil {
			return alloc.ClusterRun{}, noSpace(err)
		}
		return run, nil
	}
	run, err := gb.ClaimClusters(t.tx, 0, least, want)
	return run, noSpace(err)
}

// offlineClusters hands out clusters where libocfs2 would (claimClusters)
// and frees them straight back to the global bitmap: without a journal
// there is nothing to wait for (extent.ClusterAllocator).
type offlineClusters struct{ t *tunefsVol }

func (c offlineClusters) ClaimClusters(tx metacache.Tx, owner uint64, goal, min, max uint32) (uint32, uint32, error) {
	run, err := c.t.claimClusters(int(min), int(max))
	if err != nil {
		return 0, 0, err
	}
	return run.Start, uint32(run.Count), nil
}

func (c offlineClusters) FreeClusters(tx metacache.Tx, start, n uint32) error {
	return c.t.gb.FreeClusters(tx, start, int(n))
}

// allocators returns the extent-block and cluster allocators edits use.
func (t *tunefsVol) allocators() (extent.MetaAllocator, offlineClusters, error) {
	meta, err := t.metaAllocator()
	if err != nil {
		return nil, offlineClusters{}, err
	}
	_ = meta
	return slotMeta{t}, offlineClusters{t}, nil
}

// dirEnv is what fs/dir needs to change a directory.
func (t *tunefsVol) dirEnv() (dir.Env, error) {
	meta, data, err := t.allocators()
	if err != nil {
		return dir.Env{}, err
	}
	return dir.Env{C: t.Cache, SB: t.SB, Tx: t.tx, Meta: meta, Data: data}, nil
}

// tree returns an editor of d's extent tree.
func (t *tunefsVol) tree(d *ondisk.Dinode) (*extent.Tree, error) {
	meta, _, err := t.allocators()
	if err != nil {
		return nil, err
	}
	return &extent.Tree{C: t.Cache, Tx: t.tx, Alloc: meta, Root: d.Extents, BlocksPerCluster: t.bpc(),
		Owner: fmt.Sprintf("inode %d", d.Blkno), LastEB: d.LastEBBlk}, nil
}

// inodeForWrite returns a private copy of inode blkno to change.
func (t *tunefsVol) inodeForWrite(blkno uint64) (*ondisk.Dinode, error) {
	d, err := t.Cache.Dinode(blkno)
	if err != nil {
		return nil, err
	}
	return d.Clone(), nil
}

// writeInode encodes d into its block and writes it.
func (t *tunefsVol) writeInode(d *ondisk.Dinode) error {
	b, err := t.Cache.Get(d.Blkno)
	if err != nil {
		return err
	}
	if err := t.tx.Access(b); err != nil {
		return err
	}
	if err := d.Encode(b.Data); err != nil {
		return t.Cache.Annotate(fmt.Errorf("encoding: %w", err), d.Blkno)
	}
	t.tx.Dirty(b, ondisk.DinodeCheckOffset)
	return t.tx.Err
}

// writeNewInode writes a freshly allocated inode (its block's old bytes
// are garbage).
func (t *tunefsVol) writeNewInode(d *ondisk.Dinode) error {
	b, err := t.tx.New(d.Blkno)
	if err != nil {
		return err
	}
	if err := d.Encode(b.Data); err != nil {
		return t.Cache.Annotate(fmt.Errorf("encoding: %w", err), d.Blkno)
	}
	t.tx.Dirty(b, ondisk.DinodeCheckOffset)
	return t.tx.Err
}

// writeRaw writes whole blocks in place, bypassing the cache's sealing
// (for blocks whose checks the caller computed), and drops any cached
// copy.
func (t *tunefsVol) writeRaw(blkno uint64, data []byte) error {
	n := uint64(len(data) / t.bs())
	for i := uint64(0); i < n; i++ {
		t.Cache.Forget(blkno + i)
	}
	return t.Cache.WriteBlock(blkno, data)
}

// superBlock encodes the superblock dinode for block blkno (2, or a
// backup's), its META_ECC check set when the volume has (or is getting)
// META_ECC.
func (t *tunefsVol) superBlock(blkno uint64) ([]byte, error) {
	d := *t.Super
	s := *t.SB
	d.Super = &s
	d.Blkno = blkno
	if blkno != ondisk.SuperBlockBlkno {
		s.Features.Compat |= ondisk.CompatBackupSB
	}
	buf := make([]byte, t.bs())
	if err := d.Encode(buf); err != nil {
		return nil, fmt.Errorf("%s: encoding the superblock: %w", t.Path, err)
	}
	if s.Features.Incompat&ondisk.IncompatMetaECC != 0 {
		ondisk.SetBlockCheck(buf, ondisk.DinodeCheckOffset)
	}
	return buf, nil
}

// writePrimarySuper writes block 2 only (ocfs2_write_primary_super): the
// in-progress marks, which the backups never carry.
func (t *tunefsVol) writePrimarySuper() error {
	buf, err := t.superBlock(ondisk.SuperBlockBlkno)
	if err != nil {
		return err
	}
	if err := t.writeRaw(ondisk.SuperBlockBlkno, buf); err != nil {
		return err
	}
	return t.Dev.Sync()
}

// writeSuper writes the superblock and, with the backup-super feature,
// every backup inside the volume (ocfs2_write_super).
func (t *tunefsVol) writeSuper() error {
	if err := t.writePrimarySuper(); err != nil {
		return err
	}
	if t.SB.Features.Compat&ondisk.CompatBackupSB == 0 {
		return nil
	}
	for _, blk := range ondisk.BackupSuperBlockBlknos(t.bs(), t.totalBlocks()) {
		buf, err := t.superBlock(blk)
		if err != nil {
			return err
		}
		if err := t.writeRaw(blk, buf); err != nil {
			return err
		}
	}
	return t.Dev.Sync()
}

// setInProgress marks an operation in progress in the primary superblock
// (RESIZE_INPROG for a resize, TUNEFS_INPROG with flag otherwise) and
// makes the mark durable before the operation writes anything else.
func (t *tunefsVol) setInProgress(resize bool, flag uint16) error {
	if resize {
		t.SB.Features.Incompat |= ondisk.IncompatResizeInProg
	} else {
		t.SB.Features.Incompat |= ondisk.IncompatTunefsInProg
		t.SB.TunefsFlag |= flag
	}
	return t.writePrimarySuper()
}

// clearInProgress takes the mark away again (in memory: the caller's
// final writeSuper writes it).
func (t *tunefsVol) clearInProgress(resize bool, flag uint16) {
	if resize {
		t.SB.Features.Incompat &^= ondisk.IncompatResizeInProg
		return
	}
	t.SB.TunefsFlag &^= flag
	if t.SB.TunefsFlag == 0 {
		t.SB.Features.Incompat &^= ondisk.IncompatTunefsInProg
	}
}

// zeroClusters makes n clusters from cluster c read as zeros on the device
// (fallocate ZERO_RANGE on image files, BLKZEROOUT on block devices).
func (t *tunefsVol) zeroClusters(c uint64, n uint64, stage string) error {
	for b := c * t.bpc(); b < (c+n)*t.bpc(); b++ {
		t.Cache.Forget(b)
	}
	w := newMkfsWriter(t.Dev, t.bs())
	if stage != "" {
		w.total = int64(n) * int64(t.cs())
		w.progress = func(done, total int64) { t.r.progress(stage, done, total) }
	}
	return w.zeroBlocks([]blockRange{{c * t.bpc(), n * t.bpc()}})
}

// now is the time stamped on what tunefs creates.
func (t *tunefsVol) now() ondisk.DiskTime {
	return ondisk.DiskTime{Sec: uint64(time.Now().Unix())}
}
