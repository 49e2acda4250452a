package fsck

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"o2go/internal/blockdev"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// Exit codes, fsck(8)'s (and fsck.ocfs2(8)'s page), summed.
const (
	ExitOK          = 0  // no errors
	ExitCorrected   = 1  // errors corrected
	ExitUncorrected = 4  // errors left uncorrected
	ExitError       = 8  // operational error
	ExitUsage       = 16 // usage or syntax error
	ExitCancelled   = 32 // cancelled by the operator
)

// Options configure one run of the checker (the flags of o2go fsck).
type Options struct {
	// Device is the block device or image file.
	Device string
	// Answer is how questions are answered (-n, -y, -p, or ask).
	Answer Answer
	// Force checks a volume that looks clean (-f).
	Force bool
	// Backup recovers the superblock from backup N, 1..6 (-r N).
	Backup int
	// SkipClusterCheck skips the live-node check of clustered volumes (-F).
	SkipClusterCheck bool
	// FixGeneration asks about inodes whose generation is not the
	// volume's instead of taking them as unused (-G).
	FixGeneration bool
	// Verbose prints per-pass timings and what fsck does besides the
	// problems (-v).
	Verbose bool
	// HeartbeatWait is how long to watch a clustered volume's heartbeat
	// area for live nodes before changing it (0: volume.DefaultHeartbeatWait).
	HeartbeatWait time.Duration
	// RunningStack is the cluster this node belongs to (its O2CB
	// configuration), nil when it has none: a clustered volume stamped
	// for another cluster is changed only after RECOVER_CLUSTER_INFO
	// stamps this one.
	RunningStack *volume.ClusterStack
	// Out receives the report (stdout); Err the version banner and
	// operational errors (stderr); In the answers when Answer is AnswerAsk.
	Out, Err io.Writer
	In       io.Reader
	// Progress, when not nil, receives progress bars for the long passes.
	Progress io.Writer
	// Now is the clock for s_lastcheck and dtimes (nil: time.Now).
	Now func() time.Time
}

// Result is what a run found and did.
type Result struct {
	// ExitCode is fsck(8)'s: ExitOK, ExitCorrected, ExitUncorrected,
	// ExitError... summed.
	ExitCode int
	// Problems lists every problem reported, in order.
	Problems []Problem
	// Replayed is true when dirty journals were replayed.
	Replayed bool
	// Err is the operational error that stopped the run, if any.
	Err error
}

// Run checks (and, as answered, repairs) the volume. It never panics on
// damage: what it cannot handle becomes an operational error (exit 8).
func Run(o Options) (res Result) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Err == nil {
		o.Err = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HeartbeatWait == 0 {
		o.HeartbeatWait = volume.DefaultHeartbeatWait
	}
	out := bufio.NewWriter(o.Out)
	c := &checker{o: o, out: out}
	in := o.In
	if in == nil {
		in = strings.NewReader("")
	}
	c.p = &prompter{out: out, answer: o.Answer, in: bufio.NewReader(in)}
	defer func() {
		if r := recover(); r != nil {
			switch e := r.(type) {
			case errCancelled:
				res.Err = e
				res.ExitCode = ExitError
				if e.cancelled {
					res.ExitCode |= ExitCancelled
				}
			case errAborted:
				res.Err = e
				res.ExitCode = ExitError | ExitUncorrected
			default:
				panic(r)
			}
		}
		if c.v != nil {
			c.v.Close()
		}
		res.Problems = c.p.found
		res.Replayed = c.replayed
		out.Flush()
		if res.Err != nil && !c.errPrinted {
			fmt.Fprintf(o.Err, "o2go fsck: %v\n", res.Err)
		}
	}()
	code, err := c.run()
	res.ExitCode, res.Err = code, err
	return res
}

// checker is one run's state: fsck.ocfs2's o2fsck_state.
type checker struct {
	o          Options
	out        *bufio.Writer
	p          *prompter
	rw         bool
	errPrinted bool
	replayed   bool
	changed    bool // the volume was modified beyond fixing a problem (replay, recovery)
	now        time.Time

	v        *volume.Volume
	dev      blockdev.Device
	super    dinode // raw superblock block
	sb       *ondisk.SuperBlock
	bs       int
	bsBits   uint
	csBits   uint
	bpc      uint64 // blocks per cluster
	clusters uint32 // fs_clusters (may follow the global bitmap after pass 0)
	blocks   uint64 // fs_blocks
	gen      uint32
	metaECC  bool
	maxSlots int

	// What the passes learn.
	allocated    *denseBits // clusters in use, as found
	dups         *denseBits // clusters claimed twice (nil: none)
	dirInodes    *sparseBits
	regInodes    *sparseBits
	inLinks      *icount // i_links_count of valid inodes
	refs         *icount // directory entries naming each inode
	dirParents   map[uint64]*dirParent
	dirBlocks    []dirBlock
	lostFound    uint64
	numClusters  uint32 // set when the global bitmap's size is trusted over the superblock's
	sawError     bool
	hasDirtyJrnl bool

	sys         sysFiles
	inodeAllocs []*chainAlloc // global_inode_alloc, then inode_alloc:0..N-1 (pass 0b)
	global      *chainAlloc   // the global bitmap (pass 0a, reloaded in pass 1)
	refTrees    map[uint64]*refTree

	repair     *repairEnv       // allocators for repairs that allocate (lazy)
	inodeIndex []inodeRange     // inode allocator groups by block (pass 2 on)
	useBackup  int              // -r N answered no under -n: check through backup N
	reindex    map[uint64][]int // directories whose index pass 2 rebuilds -> problems asking

	stats  stats
	loopNo uint64
}

// stats are fsck.ocfs2's counters, printed with -v.
type stats struct {
	files, inlineFiles, dirs, inlineDirs, reflinks, links       uint32
	chardevs, blockdevs, fifos, sockets, symlinks, fastSymlinks uint32
	orphans, orphansDeleted                                     uint32
	depth                                                       [6]uint32
}

// opError is an operational error already reported to the operator.
type opError struct{ err error }

func (e opError) Error() string { return e.err.Error() }
func (e opError) Unwrap() error { return e.err }

func (c *checker) printf(format string, args ...any) { fmt.Fprintf(c.out, format, args...) }

// confirm asks fsck.ocfs2's question after a warning (a device in use
// checked read-only, the cluster check disabled): an answer starting
// with y goes on; anything else, or none, aborts.
func (c *checker) confirm() bool {
	c.printf("Do you really want to continue (y/N): ")
	var line string
	if c.o.In != nil {
		line, _ = bufio.NewReader(c.o.In).ReadString('\n')
	}
	if strings.HasPrefix(line, "y") || strings.HasPrefix(line, "Y") {
		return true
	}
	c.printf("Aborting operation.\n")
	return false
}

func (c *checker) verbosef(format string, args ...any) {
	if c.o.Verbose {
		fmt.Fprintf(c.out, format, args...)
	}
}

// fail prints an operational error where fsck.ocfs2 prints one (com_err
// to stderr) and returns it.
func (c *checker) fail(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	c.out.Flush()
	fmt.Fprintf(c.o.Err, "o2go fsck: %v\n", err)
	c.errPrinted = true
	return err
}

func (c *checker) run() (int, error) {
	o := c.o
	c.now = o.Now()
	fmt.Fprintln(o.Err, "o2go fsck", versionString)
	c.rw = o.Answer != AnswerNo

	proceed := true
	if reason, err := volume.DeviceInUse(o.Device, "/proc/mounts", "/sys/block"); err != nil {
		return ExitError, c.fail("%s: %v", o.Device, err)
	} else if reason != "" {
		if !c.rw {
			c.printf("\nWARNING!!! Running o2go fsck (read-only) on a device in use (%s) may detect invalid errors.\n\n", reason)
		} else {
			c.printf("\nRunning o2go fsck on a device in use may cause SEVERE filesystem damage (%s), abort.\n\n", reason)
			return ExitCancelled, c.fail("%s is in use: %s", o.Device, reason)
		}
		proceed = false
	}
	if proceed && o.SkipClusterCheck {
		c.printf("\nWARNING!!! You have disabled the cluster check. Continue only if you\nare absolutely sure that NO node has this filesystem mounted or is\notherwise accessing it. If unsure, do NOT continue.\n\n")
		proceed = false
	}
	if !proceed && !c.confirm() {
		return ExitCancelled, c.fail("%s: not confirmed: nothing checked", o.Device)
	}

	if o.Backup != 0 {
		if err := c.recoverBackupSuper(); err != nil {
			return ExitError, c.fail("%s: recover superblock failed: %v", o.Device, err)
		}
	}
	if err := c.open(); err != nil {
		return ExitError, err
	}
	if c.rw && !o.SkipClusterCheck && c.sb.Features.Incompat&ondisk.IncompatLocalMount == 0 {
		if err := c.recoverClusterInfo(); err != nil {
			return ExitError, err
		}
		if err := c.clusterCheck(); err != nil {
			return ExitError, err
		}
	}
	c.printHeader()

	if c.rw {
		if err := c.checkJournals(); err != nil {
			c.printf("fsck saw unrecoverable errors in the journal files and will not continue.\n")
			return ExitError, err
		}
	}
	if err := c.maybeReplayJournals(); err != nil {
		c.printf("fsck encountered unrecoverable errors while replaying the journals and will not continue\n")
		return ExitError, err
	}
	c.initState()

	slotRecoverErr := false
	if err := c.slotRecovery(); err != nil {
		c.printf("fsck encountered errors while recovering slot information, check forced.\n")
		slotRecoverErr = true
		c.o.Force = true
	}

	passesOK := true
	if c.isClean() {
		passesOK = true
	} else {
		c.markMagicalClusters()
		if err := c.passes(); err != nil {
			if _, ok := err.(opError); !ok {
				c.fail("%v", err)
			}
			passesOK = false
			c.sawError = true
		} else {
			c.sawError = false
			c.printf("All passes succeeded.\n\n")
			c.showStats()
		}
	}

	code := ExitOK
	if c.rw {
		if err := c.writeSuperblock(); err != nil {
			c.fail("while writing back the superblock(s): %v", err)
			code |= ExitError
		}
		if passesOK {
			if slotRecoverErr {
				if err := c.slotRecovery(); err != nil {
					c.fail("while doing slot recovery: %v", err)
					code |= ExitError
				}
			}
			if err := c.clearJournalFlags(); err != nil {
				c.fail("while clear dirty journal flag: %v", err)
				code |= ExitError
			} else if err := c.formatSlotMap(); err != nil {
				c.fail("while format slot map: %v", err)
				code |= ExitError
			}
		}
		if err := c.dev.Sync(); err != nil {
			c.fail("while syncing %s: %v", o.Device, err)
			code |= ExitError
		}
	}
	if !passesOK {
		code |= ExitError
	}
	fixed, left := 0, 0
	for _, p := range c.p.found {
		if p.Fixed {
			fixed++
		} else {
			left++
		}
	}
	if left > 0 {
		code |= ExitUncorrected
	}
	if fixed > 0 || c.replayed || c.changed {
		code |= ExitCorrected
	}
	if code&ExitError != 0 {
		return code, errors.New("the check did not complete")
	}
	return code, nil
}

// versionString is o2go's fsck version line (fsck.ocfs2 prints its own).
var versionString = "(fsck.ocfs2 1.8.7 compatible)"

// open opens the volume (read-only under -n) and sets the geometry.
func (c *checker) open() error {
	v, err := volume.Open(c.o.Device, volume.OpenOptions{ReadOnly: !c.rw, Lenient: true, Backup: c.useBackup, Direct: blockdev.DirectAuto})
	if err != nil {
		return c.fail("while opening %q: %v%s", c.o.Device, err, c.backupHint())
	}
	if c.v != nil {
		c.v.Close()
	}
	c.v, c.dev, c.sb = v, v.Dev, v.SB
	c.repair, c.inodeIndex = nil, nil
	if c.sb.MaxSlots == 0 {
		c.printf("The superblock max_slots field is set to 0.\n")
		c.printf("fsck saw unrecoverable errors in the super block and will not continue.\n")
		return c.fail("%s: corrupt superblock", c.o.Device)
	}
	c.bs = int(v.Cache.BlockSize())
	c.bsBits = uint(c.sb.BlockSizeBits)
	c.csBits = uint(c.sb.ClusterSizeBits)
	c.bpc = uint64(1) << (c.csBits - c.bsBits)
	c.clusters = v.Super.Clusters
	c.blocks = uint64(c.clusters) * c.bpc
	c.gen = v.Super.FSGeneration
	c.metaECC = c.sb.Features.Incompat&ondisk.IncompatMetaECC != 0
	c.maxSlots = int(c.sb.MaxSlots)
	raw, err := c.readBlock(v.SuperBlkno)
	if err != nil {
		return c.fail("while reading the superblock: %v", err)
	}
	c.super = dinode(raw)
	if err := c.lookupSystemFiles(); err != nil {
		return c.fail("%v", err)
	}
	return nil
}

// backupHint names the first backup superblock that opens, for an
// operator whose primary superblock is gone.
func (c *checker) backupHint() string {
	if c.useBackup != 0 || c.o.Backup != 0 {
		return ""
	}
	for n := 1; n <= 6; n++ {
		v, err := volume.Open(c.o.Device, volume.OpenOptions{ReadOnly: true, Lenient: true, Backup: n})
		if err == nil {
			v.Close()
			return fmt.Sprintf("\n(backup superblock %d at block %d is intact: run o2go fsck -r %d to recover from it)", n, v.SuperBlkno, n)
		}
	}
	return ""
}

// clusterCheck refuses to change a clustered volume that other nodes may
// have mounted: fsck.ocfs2 takes the cluster lock, which needs a running
// O2CB stack; o2go watches the heartbeat area instead, as mkfs does, and
// proceeds when no node there is alive.
func (c *checker) clusterCheck() error {
	live, err := volume.LiveHeartbeatNodes(c.v, c.o.HeartbeatWait)
	if err != nil {
		return c.fail("while checking the heartbeat area of %s for live nodes: %v", c.o.Device, err)
	}
	if len(live) > 0 {
		return c.fail("%s is a clustered volume and nodes %v are heartbeating on it: it may be mounted; unmount it everywhere (or run with -n to check it read-only)", c.o.Device, live)
	}
	return nil
}

func (c *checker) printHeader() {
	c.printf("Checking OCFS2 filesystem in %s:\n", c.o.Device)
	label := c.sb.VolumeLabel[:]
	var lb strings.Builder
	for _, ch := range label {
		if ch == 0 {
			break
		}
		if ch >= 0x20 && ch < 0x7f {
			lb.WriteByte(ch)
		} else {
			lb.WriteByte('.')
		}
	}
	if lb.Len() == 0 {
		lb.WriteString("<NONE>")
	}
	c.printf("  Label:              %s\n", lb.String())
	c.printf("  UUID:               %X\n", c.sb.UUID[:])
	c.printf("  Number of blocks:   %d\n", c.blocks)
	c.printf("  Block size:         %d\n", c.bs)
	c.printf("  Number of clusters: %d\n", c.clusters)
	c.printf("  Cluster size:       %d\n", 1<<c.csBits)
	c.printf("  Number of slots:    %d\n\n", c.maxSlots)
}

// initState allocates the run's bookkeeping, sized to the volume.
func (c *checker) initState() {
	c.allocated = newDenseBits(uint64(c.clusters))
	c.dups = nil
	c.dirInodes = newSparseBits()
	c.regInodes = newSparseBits()
	c.inLinks = newICount()
	c.refs = newICount()
	c.dirParents = map[uint64]*dirParent{}
	c.dirBlocks = nil
	c.refTrees = map[uint64]*refTree{}
}

// markMagicalClusters marks the clusters before global bitmap group 0's
// descriptor (the superblock's) as in use.
func (c *checker) markMagicalClusters() {
	first := c.sb.FirstClusterGroup >> (c.csBits - c.bsBits)
	for i := uint64(0); i < first; i++ {
		c.markCluster(uint32(i))
	}
}

// errAborted stops a run that met damage it cannot account for, the way
// fsck.ocfs2's o2fsck_abort does.
type errAborted struct{ reason string }

func (e errAborted) Error() string { return e.reason }

// markCluster records a cluster as used, noting a second claim. A cluster
// past the end of the volume (an extent fsck was told not to truncate)
// aborts the run, as in fsck.ocfs2.
func (c *checker) markCluster(cl uint32) {
	if uint64(cl) >= c.allocated.n {
		c.out.Flush()
		fmt.Fprintf(c.o.Err, "o2go fsck: cluster %d is beyond the volume's %d clusters: it cannot be accounted for\nAborting\n", cl, c.allocated.n)
		c.errPrinted = true
		panic(errAborted{fmt.Sprintf("cluster %d is beyond the end of the volume", cl)})
	}
	if c.allocated.set(uint64(cl)) {
		if c.dups == nil {
			c.out.Flush()
			fmt.Fprintln(c.o.Err, "Duplicate clusters detected.  Pass 1b will be run")
			c.dups = newDenseBits(uint64(c.clusters))
		}
		c.verbosef("Cluster %d is allocated to more than one object\n", cl)
		c.dups.set(uint64(cl))
	}
}

func (c *checker) markClusters(start, n uint32) {
	for i := uint32(0); i < n; i++ {
		c.markCluster(start + i)
	}
}

// isClean is fsck.ocfs2's fs_is_clean: without -f, a volume that is not
// marked with errors, was not mounted too often and is not overdue is
// left alone.
func (c *checker) isClean() bool {
	sb := c.sb
	var reason string
	switch {
	case c.o.Force:
		reason = "was run with -f"
	case sb.Features.Incompat&ondisk.IncompatResizeInProg != 0:
		reason = "incomplete volume resize detected"
	case sb.Features.Incompat&ondisk.IncompatTunefsInProg != 0:
		reason = "incomplete tunefs operation detected"
	case sb.State&ondisk.StateErrorFS != 0:
		reason = "contains a file system with errors"
	case sb.MaxMntCount > 0 && sb.MntCount > sb.MaxMntCount:
		reason = fmt.Sprintf("has been mounted %d times without being checked", sb.MntCount)
	case sb.CheckInterval > 0 && uint64(c.now.Unix()) >= sb.LastCheck+uint64(sb.CheckInterval):
		n, unit := scaleTime(uint64(c.now.Unix()) - sb.LastCheck)
		reason = fmt.Sprintf("has gone %d %s without being checked", n, unit)
	}
	if reason != "" {
		c.printf("%s %s, check forced.\n", c.o.Device, reason)
		return false
	}
	c.printf("%s is clean.", c.o.Device)
	var when string
	if sb.MaxMntCount > 0 {
		when = fmt.Sprintf("after %d additional mounts", int(sb.MaxMntCount)-int(sb.MntCount))
	}
	if sb.CheckInterval > 0 {
		next := time.Unix(int64(sb.LastCheck+uint64(sb.CheckInterval)), 0).Format("Mon Jan _2 15:04:05 2006")
		if when != "" {
			when += " or by " + next + ", whichever comes first"
		} else {
			when = "by " + next
		}
	}
	if when != "" {
		c.printf("  It will be checked %s.\n", when)
	} else {
		c.printf("\n")
	}
	return true
}

func scaleTime(secs uint64) (uint64, string) {
	if secs < 60 {
		return secs, "seconds"
	}
	secs /= 60
	if secs < 60 {
		return secs, "minutes"
	}
	secs /= 60
	if secs < 24 {
		return secs, "hours"
	}
	return secs / 24, "days"
}

// passes runs passes 0 to 5 (fsck.ocfs2's order).
func (c *checker) passes() error {
	steps := []struct {
		name string
		fn   func() error
	}{
		{"pass 0", c.pass0},
		{"pass 1", c.pass1},
		{"pass 2", c.pass2},
		{"pass 3", c.pass3},
		{"pass 4", c.pass4},
	}
	if c.sb.Features.RoCompat&(ondisk.RoCompatUsrQuota|ondisk.RoCompatGrpQuota) != 0 {
		// Pass 5 exists only with quotas, as in fsck.ocfs2.
		steps = append(steps, struct {
			name string
			fn   func() error
		}{"pass 5", c.pass5})
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.fn(); err != nil {
			if _, ok := err.(opError); ok {
				c.fail("while performing %s", s.name)
				return err
			}
			return opError{c.fail("while performing %s: %v", s.name, err)}
		}
		c.verbosef("  %s took %v\n", s.name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (c *checker) showStats() {
	if !c.o.Verbose {
		return
	}
	s := &c.stats
	pl := func(n uint32, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	}
	c.printf("  # of inodes with depth 0/1/2/3/4/5: %d/%d/%d/%d/%d/%d\n", s.depth[0], s.depth[1], s.depth[2], s.depth[3], s.depth[4], s.depth[5])
	c.printf("  # of orphaned inodes found/deleted: %d/%d\n\n", s.orphans, s.orphansDeleted)
	c.printf("%12d %s (%d %s, %d %s)\n", s.files, pl(s.files, "regular file", "regular files"), s.inlineFiles, pl(s.inlineFiles, "inline", "inlines"), s.reflinks, pl(s.reflinks, "reflink", "reflinks"))
	c.printf("%12d %s (%d %s)\n", s.dirs, pl(s.dirs, "directory", "directories"), s.inlineDirs, pl(s.inlineDirs, "inline", "inlines"))
	c.printf("%12d %s\n", s.chardevs, pl(s.chardevs, "character device file", "character device files"))
	c.printf("%12d %s\n", s.blockdevs, pl(s.blockdevs, "block device file", "block device files"))
	c.printf("%12d %s\n", s.fifos, pl(s.fifos, "fifo", "fifos"))
	nl := s.links - s.dirs
	if s.links < s.dirs {
		nl = 0
	}
	c.printf("%12d %s\n", nl, pl(nl, "link", "links"))
	c.printf("%12d %s (%d %s)\n", s.symlinks, pl(s.symlinks, "symbolic link", "symbolic links"), s.fastSymlinks, pl(s.fastSymlinks, "fast symbolic link", "fast symbolic links"))
	c.printf("%12d %s\n\n", s.sockets, pl(s.sockets, "socket", "sockets"))
}

// writeSuperblock is fsck.ocfs2's write_out_superblock: clear the
// interrupted-operation flags, record the check, and keep the backups in
// step.
func (c *checker) writeSuperblock() error {
	b, err := c.readBlock(ondisk.SuperBlockBlkno)
	if err != nil {
		return err
	}
	d := dinode(b)
	sbo := diID2
	incompat := get32(d, sbo+0x20)
	incompat &^= ondisk.IncompatResizeInProg
	if incompat&ondisk.IncompatTunefsInProg != 0 {
		incompat &^= ondisk.IncompatTunefsInProg
		put16(d, sbo+0x42, 0)
	}
	put32(d, sbo+0x20, incompat)
	if c.numClusters != 0 {
		d.setClusters(c.numClusters)
		// What follows (slot recovery, journals) works on the new size.
		c.v.Super.Clusters = c.numClusters
		c.repair = nil
	}
	put16(d, sbo+0x0A, uint16(b2u8(c.sawError))) // s_errors
	put64(d, sbo+0x10, uint64(c.now.Unix()))     // s_lastcheck
	put16(d, sbo+0x04, 0)                        // s_mnt_count
	if err := c.writeBlock(ondisk.SuperBlockBlkno, d, ondisk.DinodeCheckOffset); err != nil {
		return err
	}
	if get32(d, sbo+0x1C)&ondisk.CompatBackupSB == 0 {
		return nil
	}
	for _, blk := range ondisk.BackupSuperBlockBlknos(c.bs, c.blocks) {
		cp := append([]byte(nil), d...)
		put64(cp, diBlkno, blk)
		if err := c.writeBlock(blk, cp, ondisk.DinodeCheckOffset); err != nil {
			return err
		}
	}
	return nil
}

// readBlock reads one block.
func (c *checker) readBlock(blkno uint64) ([]byte, error) {
	b := blockdev.AlignedBuffer(c.blockSize(), 4096)
	if err := c.readBlocks(blkno, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (c *checker) blockSize() int {
	if c.bs != 0 {
		return c.bs
	}
	return c.v.Cache.BlockSize()
}

// readBlocks reads len(p)/bs consecutive blocks.
func (c *checker) readBlocks(blkno uint64, p []byte) error {
	bs := c.blockSize()
	if blkno*uint64(bs)+uint64(len(p)) > uint64(c.dev.Size()) {
		return fmt.Errorf("%s: block %d is beyond the device's end", c.o.Device, blkno+uint64(len(p)/bs)-1)
	}
	if _, err := c.dev.ReadAt(p, int64(blkno)*int64(bs)); err != nil {
		return fmt.Errorf("%s: reading block %d: %w", c.o.Device, blkno, err)
	}
	return nil
}

// writeBlock writes one block in place (fsck.ocfs2 writes without a
// journal), sealing its META_ECC check at checkOff (negative: none), and
// drops the cache's copy.
func (c *checker) writeBlock(blkno uint64, b []byte, checkOff int) error {
	if !c.rw {
		return fmt.Errorf("internal error: write of block %d in a read-only check", blkno)
	}
	if c.metaECC && checkOff >= 0 {
		ondisk.SetBlockCheck(b, checkOff)
	}
	if _, err := c.dev.WriteAt(b, int64(blkno)*int64(c.bs)); err != nil {
		c.sawError = true
		return fmt.Errorf("%s: writing block %d: %w", c.o.Device, blkno, err)
	}
	c.v.Cache.Forget(blkno)
	return nil
}

// writeInode writes a raw inode back (o2fsck_write_inode), reporting and
// remembering a failure rather than stopping.
func (c *checker) writeInode(blkno uint64, d dinode) {
	if err := c.writeBlock(blkno, d, ondisk.DinodeCheckOffset); err != nil {
		c.fail("while writing inode %d: %v", blkno, err)
		c.sawError = true
	}
}

// now returns the time for dtimes.
func (c *checker) unixNow() uint64 { return uint64(c.now.Unix()) }

// writeBlocks writes len(b)/bs consecutive blocks in place (an xattr
// bucket) and drops the cache's copies; b carries its own checks.
func (c *checker) writeBlocks(blkno uint64, b []byte) error {
	if !c.rw {
		return fmt.Errorf("internal error: write of block %d in a read-only check", blkno)
	}
	if _, err := c.dev.WriteAt(b, int64(blkno)*int64(c.bs)); err != nil {
		c.sawError = true
		return fmt.Errorf("%s: writing blocks %d..%d: %w", c.o.Device, blkno, blkno+uint64(len(b)/c.bs)-1, err)
	}
	for i := 0; i < len(b)/c.bs; i++ {
		c.v.Cache.Forget(blkno + uint64(i))
	}
	return nil
}
