package volume

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"o2go/internal/ondisk"
)

// This file turns mkfs options and a device's size into a plan: the
// geometry, feature set, slot count, journal and allocator sizes that
// mkfs.ocfs2 1.8.7 would choose (mkfs.c get_state/fill_defaults and
// libocfs2's feature_string.c), checked against the format's limits. It
// does no I/O: Mkfs (mkfs.go) gives it the device's size and sector size.

// FSType is mkfs -T: the expected use, which picks cluster and journal
// sizes. Its values follow mkfs.ocfs2's enum order.
type FSType int

const (
	FSTypeDefault   FSType = iota
	FSTypeDatafiles        // "datafiles": few large files (databases)
	FSTypeMail             // "mail": many small files, much metadata
	FSTypeVMStore          // "vmstore": sparse VM images
)

var fsTypeNames = [...]string{"default", "datafiles", "mail", "vmstore"}

func (t FSType) String() string {
	if t >= 0 && int(t) < len(fsTypeNames) {
		return fsTypeNames[t]
	}
	return fmt.Sprintf("FSType(%d)", int(t))
}

// ParseFSType parses a -T value.
func ParseFSType(s string) (FSType, error) {
	for i, n := range fsTypeNames[1:] {
		if s == n {
			return FSType(i + 1), nil
		}
	}
	return 0, fmt.Errorf("bad file system type %q for -T: want mail, datafiles or vmstore", s)
}

// FeatureLevel is --fs-feature-level: the base feature set before
// --fs-features adds or removes single features.
type FeatureLevel int

const (
	LevelDefault     FeatureLevel = iota // "default": what mkfs.ocfs2 1.8.7 enables
	LevelMaxCompat                       // "max-compat": mountable by the oldest kernels
	LevelMaxFeatures                     // "max-features": everything, including metaecc and quotas
)

var levelNames = [...]string{"default", "max-compat", "max-features"}

func (l FeatureLevel) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("FeatureLevel(%d)", int(l))
}

// ParseFeatureLevel parses a --fs-feature-level value.
func ParseFeatureLevel(s string) (FeatureLevel, error) {
	for i, n := range levelNames {
		if s == n {
			return FeatureLevel(i), nil
		}
	}
	return 0, fmt.Errorf("unknown feature level %q for --fs-feature-level: want default, max-compat or max-features", s)
}

// MountType is mkfs -M.
type MountType int

const (
	MountFromFeatures MountType = iota // not given: cluster unless --fs-features=local
	MountLocal                         // "local": a single-node volume
	MountCluster                       // "cluster": a shared volume
)

// ParseMountType parses a -M value; like mkfs.ocfs2 it accepts any
// case and any word that starts with "local" or "cluster".
func ParseMountType(s string) (MountType, error) {
	l := strings.ToLower(s)
	switch {
	case strings.HasPrefix(l, "local"):
		return MountLocal, nil
	case strings.HasPrefix(l, "cluster"):
		return MountCluster, nil
	}
	return 0, fmt.Errorf("invalid mount type %q for -M: want local or cluster", s)
}

// MkfsOptions are mkfs.ocfs2(8)'s options. The zero value formats with
// mkfs.ocfs2 1.8.7's defaults.
type MkfsOptions struct {
	BlockSize   int    // -b: bytes, 512..4096 (0: chosen from the volume size)
	ClusterSize int    // -C: bytes, 4 KiB..1 MiB (0: chosen from the volume size and -T)
	Slots       int    // -N: node slots, 1..255 (0: chosen from the volume size; 1 for local volumes)
	Label       string // -L: at most 63 bytes
	// JournalSize is -J size=: bytes per slot, rounded up to clusters
	// (0: chosen from the volume size and -T).
	JournalSize uint64
	Journal64   bool // -J block64: JBD2 64-bit block numbers (needed past 2^32 blocks)
	Type        FSType
	Level       FeatureLevel
	Features    string // --fs-features: "name,noname,..."
	Mount       MountType
	// ClusterStack is --cluster-stack (o2cb, pcmk or cman) and
	// ClusterName --cluster-name; both or neither.
	ClusterStack    string
	ClusterName     string
	GlobalHeartbeat bool   // --global-heartbeat (o2cb only)
	UUID            string // -U: 32 hex digits or the 36-character form (random when empty)
	NoBackupSuper   bool   // --no-backup-super
	// Blocks is the BLOCKS argument: format only this many blocks of the
	// device (in blocks of -b, or of 4 KiB when -b is not given, as
	// mkfs.ocfs2 reads it).
	Blocks uint64
	// NoDiscard is --nodiscard: skip BLKDISCARD of a block device.
	NoDiscard bool
	// Force is -F: format even when the device looks in use (mounted,
	// a loop device over it, live heartbeats, an unreadable OCFS2 volume).
	Force bool
	// NoPrompt is -x: never ask before overwriting an OCFS2 volume.
	NoPrompt bool
	DryRun   bool // -n: print what would be done, write nothing
	Quiet    bool // -q
	Verbose  bool // -v: also report the free space and o2go's departures from mkfs.ocfs2

	// Out receives the progress lines mkfs.ocfs2 prints on stdout (nil:
	// none); ErrOut the warnings it prints on stderr (nil: none).
	Out, ErrOut io.Writer
	// Confirm asks the operator a yes/no question; nil means there is no
	// terminal to ask on.
	Confirm func(question string) bool
	// HeartbeatWait is how long the live-node check watches an existing
	// volume's heartbeat area (0: DefaultHeartbeatWait).
	HeartbeatWait time.Duration
	// Progress, when set, is told how many bytes of the slow part (zeroing
	// journals) are done; the command line draws a bar with it.
	Progress func(done, total int64)
}

// FeatureSet is a volume's three feature words.
type FeatureSet = ondisk.Features

// mkfsFeature is one --fs-features name: its own bit and the bits it needs
// (libocfs2's ocfs2_supported_features table: only "unwritten" needs
// another, "sparse").
type mkfsFeature struct {
	name  string
	own   FeatureSet
	needs FeatureSet // own plus what it depends on
}

var mkfsFeatures = []mkfsFeature{
	{"local", FeatureSet{Incompat: ondisk.IncompatLocalMount}, FeatureSet{Incompat: ondisk.IncompatLocalMount}},
	{"sparse", FeatureSet{Incompat: ondisk.IncompatSparseAlloc}, FeatureSet{Incompat: ondisk.IncompatSparseAlloc}},
	{"backup-super", FeatureSet{Compat: ondisk.CompatBackupSB}, FeatureSet{Compat: ondisk.CompatBackupSB}},
	{"unwritten", FeatureSet{RoCompat: ondisk.RoCompatUnwritten}, FeatureSet{Incompat: ondisk.IncompatSparseAlloc, RoCompat: ondisk.RoCompatUnwritten}},
	{"extended-slotmap", FeatureSet{Incompat: ondisk.IncompatExtendedSlotMap}, FeatureSet{Incompat: ondisk.IncompatExtendedSlotMap}},
	{"inline-data", FeatureSet{Incompat: ondisk.IncompatInlineData}, FeatureSet{Incompat: ondisk.IncompatInlineData}},
	{"metaecc", FeatureSet{Incompat: ondisk.IncompatMetaECC}, FeatureSet{Incompat: ondisk.IncompatMetaECC}},
	{"xattr", FeatureSet{Incompat: ondisk.IncompatXattr}, FeatureSet{Incompat: ondisk.IncompatXattr}},
	{"indexed-dirs", FeatureSet{Incompat: ondisk.IncompatIndexedDirs}, FeatureSet{Incompat: ondisk.IncompatIndexedDirs}},
	{"usrquota", FeatureSet{RoCompat: ondisk.RoCompatUsrQuota}, FeatureSet{RoCompat: ondisk.RoCompatUsrQuota}},
	{"grpquota", FeatureSet{RoCompat: ondisk.RoCompatGrpQuota}, FeatureSet{RoCompat: ondisk.RoCompatGrpQuota}},
	{"refcount", FeatureSet{Incompat: ondisk.IncompatRefcountTree}, FeatureSet{Incompat: ondisk.IncompatRefcountTree}},
	{"discontig-bg", FeatureSet{Incompat: ondisk.IncompatDiscontigBG}, FeatureSet{Incompat: ondisk.IncompatDiscontigBG}},
	{"clusterinfo", FeatureSet{Incompat: ondisk.IncompatClusterInfo}, FeatureSet{Incompat: ondisk.IncompatClusterInfo}},
	{"append-dio", FeatureSet{Incompat: ondisk.IncompatAppendDIO}, FeatureSet{Incompat: ondisk.IncompatAppendDIO}},
}

// levelFeatures are the feature sets of the three levels (the same for
// every -T type at the default level).
var levelFeatures = [...]FeatureSet{
	LevelDefault: {
		Compat: ondisk.CompatBackupSB | ondisk.CompatJBD2SB,
		Incompat: ondisk.IncompatSparseAlloc | ondisk.IncompatExtendedSlotMap | ondisk.IncompatInlineData |
			ondisk.IncompatXattr | ondisk.IncompatRefcountTree | ondisk.IncompatIndexedDirs |
			ondisk.IncompatDiscontigBG | ondisk.IncompatAppendDIO,
		RoCompat: ondisk.RoCompatUnwritten,
	},
	LevelMaxCompat: {Compat: ondisk.CompatBackupSB | ondisk.CompatJBD2SB},
	LevelMaxFeatures: {
		Compat: ondisk.CompatBackupSB | ondisk.CompatJBD2SB,
		Incompat: ondisk.IncompatSparseAlloc | ondisk.IncompatExtendedSlotMap | ondisk.IncompatInlineData |
			ondisk.IncompatMetaECC | ondisk.IncompatXattr | ondisk.IncompatRefcountTree |
			ondisk.IncompatIndexedDirs | ondisk.IncompatDiscontigBG | ondisk.IncompatAppendDIO,
		RoCompat: ondisk.RoCompatUnwritten | ondisk.RoCompatUsrQuota | ondisk.RoCompatGrpQuota,
	},
}

func overlaps(a, b FeatureSet) bool {
	return a.Compat&b.Compat != 0 || a.Incompat&b.Incompat != 0 || a.RoCompat&b.RoCompat != 0
}

func union(a, b FeatureSet) FeatureSet {
	return FeatureSet{Compat: a.Compat | b.Compat, Incompat: a.Incompat | b.Incompat, RoCompat: a.RoCompat | b.RoCompat}
}

// ResolveFeatures computes the feature words mkfs starts from: the
// level's set plus what --fs-features turns on, minus what it turns off.
// Turning a feature on also turns on what it needs; turning one off also
// turns off what needs it. Naming a feature both ways is an error.
func ResolveFeatures(level FeatureLevel, list string) (FeatureSet, error) {
	if level < 0 || int(level) >= len(levelFeatures) {
		return FeatureSet{}, fmt.Errorf("unknown feature level %d", level)
	}
	var on, off FeatureSet
	for _, tok := range strings.Split(list, ",") {
		if tok == "" {
			continue
		}
		name, disable := tok, false
		if strings.HasPrefix(tok, "no") {
			name, disable = tok[2:], true
		}
		var f *mkfsFeature
		for i := range mkfsFeatures {
			if mkfsFeatures[i].name == name {
				f = &mkfsFeatures[i]
			}
		}
		if f == nil {
			var names []string
			for _, k := range mkfsFeatures {
				names = append(names, k.name)
			}
			return FeatureSet{}, fmt.Errorf("unknown feature %q in --fs-features; known: %s (prefix \"no\" to turn one off)", name, strings.Join(names, ", "))
		}
		if disable {
			off = union(off, f.own)
		} else {
			on = union(on, f.needs)
		}
	}
	// Clearing a feature clears those that depend on it.
	for _, f := range mkfsFeatures {
		if overlaps(off, f.needs) {
			off = union(off, f.own)
		}
	}
	if overlaps(on, off) {
		return FeatureSet{}, fmt.Errorf("--fs-features %q both sets and clears a feature (or one it depends on)", list)
	}
	d := union(levelFeatures[level], on)
	d.Compat &^= off.Compat
	d.Incompat &^= off.Incompat
	d.RoCompat &^= off.RoCompat
	return d, nil
}

// featureNames lists set features in libocfs2's print order (mkfs's
// "Features:" line and tunefs -Q %M/%H/%O).
func featureNames(f FeatureSet) string {
	order := []struct {
		name string
		f    FeatureSet
	}{
		{"heartbeat-device", FeatureSet{Incompat: ondisk.IncompatHeartbeatDev}},
		{"aborted-resize", FeatureSet{Incompat: ondisk.IncompatResizeInProg}},
		{"local", FeatureSet{Incompat: ondisk.IncompatLocalMount}},
		{"sparse", FeatureSet{Incompat: ondisk.IncompatSparseAlloc}},
		{"extended-slotmap", FeatureSet{Incompat: ondisk.IncompatExtendedSlotMap}},
		{"aborted-tunefs", FeatureSet{Incompat: ondisk.IncompatTunefsInProg}},
		{"userspace-stack", FeatureSet{Incompat: ondisk.IncompatUserspaceStack}},
		{"backup-super", FeatureSet{Compat: ondisk.CompatBackupSB}},
		{"unwritten", FeatureSet{RoCompat: ondisk.RoCompatUnwritten}},
		{"inline-data", FeatureSet{Incompat: ondisk.IncompatInlineData}},
		{"strict-journal-super", FeatureSet{Compat: ondisk.CompatJBD2SB}},
		{"metaecc", FeatureSet{Incompat: ondisk.IncompatMetaECC}},
		{"xattr", FeatureSet{Incompat: ondisk.IncompatXattr}},
		{"indexed-dirs", FeatureSet{Incompat: ondisk.IncompatIndexedDirs}},
		{"usrquota", FeatureSet{RoCompat: ondisk.RoCompatUsrQuota}},
		{"grpquota", FeatureSet{RoCompat: ondisk.RoCompatGrpQuota}},
		{"refcount", FeatureSet{Incompat: ondisk.IncompatRefcountTree}},
		{"discontig-bg", FeatureSet{Incompat: ondisk.IncompatDiscontigBG}},
		{"clusterinfo", FeatureSet{Incompat: ondisk.IncompatClusterInfo}},
		{"append-dio", FeatureSet{Incompat: ondisk.IncompatAppendDIO}},
	}
	var names []string
	var found FeatureSet
	for _, o := range order {
		if overlaps(f, o.f) {
			names = append(names, o.name)
			found = union(found, o.f)
		}
	}
	if found != f {
		names = append(names, "unknown")
	}
	return strings.Join(names, " ")
}

// ParseMkfsSize parses a size with mkfs.ocfs2's suffixes: none or b/B
// (bytes), k/K, m/M, g/G (binary multiples), in decimal, 0x hex or 0 octal.
func ParseMkfsSize(s string) (uint64, error) {
	num, suffix := s, ""
	if n := len(s); n > 0 && strings.ContainsRune("bBkKmMgG", rune(s[n-1])) {
		// A trailing b/B is a suffix unless the text is hex ("0x1b").
		if !(strings.HasPrefix(strings.ToLower(s), "0x") && (s[n-1] == 'b' || s[n-1] == 'B')) {
			num, suffix = s[:n-1], s[n-1:]
		}
	}
	v, err := strconv.ParseUint(num, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional K, M or G suffix", s)
	}
	mult := uint64(1)
	switch strings.ToLower(suffix) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	}
	if v != 0 && v*mult/mult != v {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return v * mult, nil
}

// RoundBlockSize checks a -b value and rounds it down to a power of two
// like mkfs.ocfs2 (3000 gives 2048).
func RoundBlockSize(n uint64) (int, error) {
	if n < ondisk.MinBlockSize || n > ondisk.MaxBlockSize {
		return 0, fmt.Errorf("block size %d out of range: specify a block size between %d and %d in powers of 2", n, ondisk.MinBlockSize, ondisk.MaxBlockSize)
	}
	return int(roundDownPow2(n, ondisk.MinBlockSize, ondisk.MaxBlockSize)), nil
}

// RoundClusterSize checks a -C value and rounds it down to a power of two.
func RoundClusterSize(n uint64) (int, error) {
	if n < ondisk.MinClusterSize || n > ondisk.MaxClusterSize {
		return 0, fmt.Errorf("cluster size %d out of range: specify a cluster size between %d and %d in powers of 2", n, ondisk.MinClusterSize, ondisk.MaxClusterSize)
	}
	return int(roundDownPow2(n, ondisk.MinClusterSize, ondisk.MaxClusterSize)), nil
}

func roundDownPow2(n, lo, hi uint64) uint64 {
	best := lo
	for v := lo; v <= hi && v <= n; v <<= 1 {
		best = v
	}
	return best
}

// ParseJournalOptions parses a -J value: "size=N[KMG]", "[no]block64",
// "[no]block32", comma separated.
func ParseJournalOptions(s string) (size uint64, block64 bool, err error) {
	for _, tok := range strings.Split(s, ",") {
		if tok == "" {
			continue
		}
		name, invert := tok, false
		if strings.HasPrefix(name, "no") {
			name, invert = name[2:], true
		}
		key, arg, hasArg := strings.Cut(name, "=")
		switch {
		case key == "size" && hasArg && !invert:
			v, err := ParseMkfsSize(arg)
			if err != nil {
				return 0, false, fmt.Errorf("invalid journal size %q: %v", arg, err)
			}
			if v < minJournalBytes {
				return 0, false, fmt.Errorf("invalid journal size %q: it must be at least %d bytes (4 MiB)", arg, minJournalBytes)
			}
			size = v
		case key == "block32" && !hasArg:
			block64 = invert
		case key == "block64" && !hasArg:
			block64 = !invert
		default:
			return 0, false, fmt.Errorf("bad journal option %q: valid options are size=<journal size>, [no]block32, [no]block64", tok)
		}
	}
	return size, block64, nil
}

// ParseUUID parses -U: 32 hex digits, or the 36-character form with dashes.
func ParseUUID(s string) ([ondisk.UUIDLen]byte, error) {
	var u [ondisk.UUIDLen]byte
	t := s
	if len(s) == 36 {
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return u, fmt.Errorf("invalid UUID %q: want 32 hex digits or xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
		}
		t = s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	}
	if len(t) != 32 {
		return u, fmt.Errorf("invalid UUID %q: want 32 hex digits or xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	if _, err := hex.Decode(u[:], []byte(t)); err != nil {
		return u, fmt.Errorf("invalid UUID %q: %v", s, err)
	}
	return u, nil
}

// Constants of mkfs.ocfs2 1.8.7 (mkfs.h, ocfs2_fs.h).
const (
	minJournalBytes         = 4 << 20 // OCFS2_MIN_JOURNAL_SIZE
	minClusterToJournal     = 3       // journal >= 8 clusters + 1 (OCFS2_MIN_CLUSTER_TO_JOURNAL_SIZE_SHIFT)
	maxClusters             = 1<<32 - 2
	maxExtallocReservePct   = 5
	clearChunk              = 1 << 20 // bytes zeroed at each end of the device
	superblockBlocks        = 3       // blocks 0..2: OCFS1 headers and the superblock
	heartbeatBlocks         = ondisk.HeartbeatMaxNodes + 1
	sysFileNameMax          = 40 // SYSTEM_FILE_NAME_MAX: a system dir entry is sized as REC_LEN(40)
	defaultMaxMountCount    = 20
	journalMinBlocksLibocfs = 1024 // ocfs2_init_journal_superblock refuses fewer blocks
)

// mkfsPlan is everything decided before formatting.
type mkfsPlan struct {
	opts *MkfsOptions

	blockSize, clusterSize int
	blockBits, clusterBits uint
	bytes                  uint64 // volume size, whole clusters
	blocks                 uint64
	clusters               uint32
	globalCPG              int // clusters per global bitmap group (the last may be shorter)
	groups                 int
	tailBits               int

	slots               int
	journalBytes        uint64 // per slot, whole clusters
	extentAllocClusters uint32 // per slot

	features     FeatureSet // as printed on the "Features:" line
	local        bool
	inlineData   bool
	dxDirs       bool
	backupSuper  bool
	stack        string // cluster stack label, "" for classic o2cb
	clusterName  string
	stackFlags   uint8
	label        string
	sectorSize   int
	deviceBlocks uint64 // the device's size in blocks of blockSize
}

func (p *mkfsPlan) bpc() int { return p.clusterSize / p.blockSize }

// clustersPerSubGroup is libocfs2's ocfs2_clusters_per_group: the clusters
// of one inode/extent allocator group (4 MiB, 2 MiB or 1 MiB of blocks).
func clustersPerSubGroup(blockSize int, clusterBits uint) int {
	mb := 1
	switch blockSize {
	case 4096, 2048:
		mb = 4
	case 1024:
		mb = 2
	}
	return (mb << 20) >> clusterBits
}

func bitsOf(n int) uint {
	var b uint
	for 1<<b < n {
		b++
	}
	return b
}

// MkfsError is a refusal to format with the given options or device: the
// message names the limit or rule.
type MkfsError struct{ Msg string }

func (e *MkfsError) Error() string { return e.Msg }

func refuse(format string, args ...any) error { return &MkfsError{Msg: fmt.Sprintf(format, args...)} }

// planMkfs decides the geometry for a device of devSize bytes with the
// given logical sector size.
func planMkfs(o *MkfsOptions, devSize int64, sectorSize int) (*mkfsPlan, error) {
	p := &mkfsPlan{opts: o, sectorSize: sectorSize}
	if sectorSize <= 0 {
		sectorSize = ondisk.MinBlockSize
		p.sectorSize = sectorSize
	}
	if o.BlockSize != 0 {
		if _, err := RoundBlockSize(uint64(o.BlockSize)); err != nil || o.BlockSize&(o.BlockSize-1) != 0 {
			return nil, refuse("block size %d: specify a block size between 512 and 4096 in powers of 2", o.BlockSize)
		}
	}
	if o.ClusterSize != 0 {
		if _, err := RoundClusterSize(uint64(o.ClusterSize)); err != nil || o.ClusterSize&(o.ClusterSize-1) != 0 {
			return nil, refuse("cluster size %d: specify a cluster size between 4096 and 1048576 in powers of 2", o.ClusterSize)
		}
	}
	if len(o.Label) >= ondisk.VolumeLabelLen {
		return nil, refuse("volume label too long: %d bytes, must be less than %d", len(o.Label), ondisk.VolumeLabelLen)
	}
	if o.Slots < 0 || o.Slots > ondisk.MaxSlots {
		return nil, refuse("node slots %d out of range: a volume has 1 to %d slots", o.Slots, ondisk.MaxSlots)
	}
	if o.JournalSize != 0 && o.JournalSize < minJournalBytes {
		return nil, refuse("journal size %d is too small: it must be at least %d bytes (4 MiB)", o.JournalSize, minJournalBytes)
	}

	feat, err := ResolveFeatures(o.Level, o.Features)
	if err != nil {
		return nil, refuse("%v", err)
	}
	p.features = feat
	p.local = feat.Incompat&ondisk.IncompatLocalMount != 0
	switch o.Mount {
	case MountLocal:
		p.local = true
	case MountCluster:
		p.local = false
	}
	p.inlineData = feat.Incompat&ondisk.IncompatInlineData != 0
	p.backupSuper = feat.Compat&ondisk.CompatBackupSB != 0 && !o.NoBackupSuper
	p.dxDirs = feat.Incompat&ondisk.IncompatIndexedDirs != 0
	if err := p.checkClusterInfo(); err != nil {
		return nil, err
	}

	// Block size and volume size (fill_defaults).
	if o.BlockSize != 0 && o.BlockSize < sectorSize {
		return nil, refuse("the device has a hardware sector size (%d) larger than the selected block size (%d)", sectorSize, o.BlockSize)
	}
	probe := o.BlockSize
	if probe == 0 {
		probe = ondisk.MaxBlockSize
	}
	devBlocks := uint64(devSize) / uint64(probe)
	blocks := devBlocks
	if o.Blocks != 0 {
		if o.Blocks > devBlocks {
			return nil, refuse("%d blocks were specified and this is greater than the %d blocks (of %d bytes) that make up the device", o.Blocks, devBlocks, probe)
		}
		blocks = o.Blocks
	}
	bytes := blocks * uint64(probe)
	bs := o.BlockSize
	if bs == 0 {
		if bytes <= 3<<20 {
			bs = ondisk.MinBlockSize
		} else {
			bs = ondisk.MaxBlockSize
			for shift := 30; bs > 1024; shift-- {
				if bytes >= 1<<uint(shift) {
					break
				}
				bs >>= 1
			}
		}
		if bs < sectorSize {
			bs = sectorSize
		}
		// mkfs.ocfs2 reads a BLOCKS argument given without -b as a count
		// of blocks of the size it settles on.
		if o.Blocks != 0 {
			blocks = o.Blocks
			if max := uint64(devSize) / uint64(bs); blocks > max {
				return nil, refuse("%d blocks were specified and this is greater than the %d blocks (of %d bytes) that make up the device", o.Blocks, max, bs)
			}
		} else {
			blocks = uint64(devSize) / uint64(bs)
		}
		bytes = blocks * uint64(bs)
	}
	p.blockSize, p.blockBits = bs, bitsOf(bs)
	p.deviceBlocks = uint64(devSize) / uint64(bs)

	cs := o.ClusterSize
	if cs == 0 {
		switch o.Type {
		case FSTypeDatafiles, FSTypeVMStore:
			gigs := bytes >> 30
			switch {
			case gigs < 2:
				return nil, refuse("file system type %s requires a device of at least 2 GiB; this one has %d bytes", o.Type, bytes)
			case gigs < 64:
				cs = 128 << 10
			case gigs < 96:
				cs = 256 << 10
			case gigs < 128:
				cs = 512 << 10
			default:
				cs = 1 << 20
			}
		default:
			for cs = ondisk.MinClusterSize; cs < ondisk.MaxClusterSize; cs <<= 1 {
				if bytes>>bitsOf(cs) <= maxClusters {
					break
				}
			}
		}
	}
	p.clusterSize, p.clusterBits = cs, bitsOf(cs)
	if p.blockSize > p.clusterSize {
		return nil, refuse("block size %d is larger than cluster size %d: a block must fit in a cluster", p.blockSize, p.clusterSize)
	}
	nclusters := bytes >> p.clusterBits
	if nclusters > maxClusters {
		return nil, refuse("the volume would have %d clusters of %d bytes, more than the format's limit of %d: use larger clusters (-C)", nclusters, cs, uint64(maxClusters))
	}
	if nclusters == 0 {
		return nil, refuse("the device (%d bytes) is smaller than one cluster of %d bytes", bytes, cs)
	}
	p.clusters = uint32(nclusters)
	p.bytes = nclusters << p.clusterBits
	p.blocks = p.bytes >> p.blockBits

	maxBits := 8 * ondisk.GroupBitmapBytes(p.blockSize, false, 0)
	p.globalCPG = maxBits
	if uint64(maxBits) > nclusters {
		p.globalCPG = int(nclusters)
	}
	p.groups = int((nclusters + uint64(p.globalCPG) - 1) / uint64(p.globalCPG))
	p.tailBits = int(nclusters % uint64(p.globalCPG))
	if p.tailBits == 0 {
		p.tailBits = p.globalCPG
	}

	p.slots = o.Slots
	if p.slots == 0 {
		switch gb := p.bytes >> 30; {
		case p.local:
			p.slots = 1
		case gb < 2:
			p.slots = 2
		case gb < 10:
			p.slots = 4
		case gb < 1024:
			p.slots = 8
		default:
			p.slots = 16
		}
	}
	p.label = o.Label

	if err := p.figureJournal(); err != nil {
		return nil, err
	}
	p.extentAllocClusters = p.figureExtentAlloc()

	return p, nil
}

// check32 refuses a volume whose block numbers do not fit a journal
// without 64-bit support (mkfs.c check_32bit_blocks, after the summary).
func (p *mkfsPlan) check32() error {
	if !p.opts.Journal64 && p.blocks > 1<<32-1 {
		return refuse("the journal (jbd2) can only store 32-bit block numbers and the volume has %d blocks: format with -J block64, or use larger blocks or a smaller device", p.blocks)
	}
	return nil
}

// checkClusterInfo applies mkfs.ocfs2's rules for --cluster-stack,
// --cluster-name and --global-heartbeat.
func (p *mkfsPlan) checkClusterInfo() error {
	o := p.opts
	if o.ClusterStack == "" && o.ClusterName == "" && !o.GlobalHeartbeat {
		return nil
	}
	if p.local {
		return refuse("a local volume cannot have --cluster-stack, --cluster-name or --global-heartbeat")
	}
	switch o.ClusterStack {
	case "":
		return refuse("missing --cluster-stack (o2cb, pcmk or cman)")
	case "o2cb", "pcmk", "cman":
	default:
		return refuse("unknown cluster stack %q: want o2cb, pcmk or cman", o.ClusterStack)
	}
	if o.ClusterName == "" {
		return refuse("missing --cluster-name")
	}
	if o.ClusterStack == "o2cb" {
		if len(o.ClusterName) > ondisk.ClusterNameLen || !isAlnum(o.ClusterName) {
			return refuse("invalid o2cb cluster name %q: at most %d letters and digits", o.ClusterName, ondisk.ClusterNameLen)
		}
	} else if len(o.ClusterName) > ondisk.ClusterNameLen {
		return refuse("invalid cluster name %q: at most %d characters", o.ClusterName, ondisk.ClusterNameLen)
	}
	if o.GlobalHeartbeat && o.ClusterStack != "o2cb" {
		return refuse("global heartbeat is only applicable to the o2cb cluster stack, not %s", o.ClusterStack)
	}
	p.stack, p.clusterName = o.ClusterStack, o.ClusterName
	if o.GlobalHeartbeat {
		p.stackFlags = ondisk.ClusterO2CBGlobalHeartbeat
	}
	return nil
}

func isAlnum(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return false
		}
	}
	return s != ""
}

// figureJournal sizes each slot's journal (mkfs.c figure_journal_size).
func (p *mkfsPlan) figureJournal() error {
	if p.blocks < 2048 {
		return refuse("the volume (%d blocks of %d bytes) is too small for a journal: at least 2048 blocks are needed", p.blocks, p.blockSize)
	}
	minBytes := uint64(p.clusterSize)<<minClusterToJournal + uint64(p.clusterSize)
	valid := func(jblocks uint64) bool { return jblocks*uint64(p.slots)+1024 <= p.blocks }
	alignUp := func(b uint64) uint64 { return (b + uint64(p.clusterSize) - 1) &^ (uint64(p.clusterSize) - 1) }
	if p.opts.JournalSize > 0 {
		jb := p.opts.JournalSize >> p.blockBits
		if !valid(jb) {
			return refuse("journal size %d is too big for the volume: %d slots x %d blocks + 1024 exceeds its %d blocks", p.opts.JournalSize, p.slots, jb, p.blocks)
		}
		r := alignUp(p.opts.JournalSize)
		if r < minBytes {
			return refuse("journal size %d is too small for %d-byte clusters: at least %d bytes (9 clusters) are needed", p.opts.JournalSize, p.clusterSize, minBytes)
		}
		p.journalBytes = r
	} else {
		var jb uint64
		switch p.opts.Type {
		case FSTypeDatafiles:
			jb = 8192
		case FSTypeMail:
			switch {
			case p.blocks < 262144:
				jb = 16384
			case p.blocks < 524288:
				jb = 32768
			default:
				jb = 65536
			}
		case FSTypeVMStore:
			switch {
			case p.blocks < 262144:
				jb = 8192
			case p.blocks < 524288:
				jb = 16384
			default:
				jb = 32768
			}
		default:
			switch {
			case p.blocks < 32768:
				jb = minJournalBytes / uint64(p.blockSize)
			case p.blocks < 262144:
				jb = 4096
			default:
				jb = min(max(p.blocks/160, 16384), 65536)
			}
		}
		r := alignUp(jb << p.blockBits)
		if r < minBytes {
			r = minBytes
			if !valid(r >> p.blockBits) {
				return refuse("the volume is too small for the required configuration (%d slots with journals of %d bytes): increase the volume size or reduce the cluster size", p.slots, r)
			}
		}
		p.journalBytes = r
	}
	if p.journalBytes < minJournalBytes {
		return refuse("journals of %d bytes are below the 4 MiB minimum (%d blocks of %d bytes): give -J size=4M or more, or use larger blocks", p.journalBytes, p.journalBytes>>p.blockBits, p.blockSize)
	}
	if p.journalBytes>>p.blockBits < journalMinBlocksLibocfs {
		return refuse("journals of %d blocks are below the minimum of %d blocks", p.journalBytes>>p.blockBits, journalMinBlocksLibocfs)
	}
	if c := p.journalBytes >> p.clusterBits; c > 1<<32-1 {
		return refuse("journal size %d is too large", p.journalBytes)
	}
	return nil
}

// figureExtentAlloc sizes each slot's extent allocator: enough groups to
// reach 0.1% of the volume over all slots (0.3% for datafiles and
// vmstore), one fewer when that passes 5% (mkfs.c figure_extent_alloc_size;
// floating point on purpose, to round the same way).
func (p *mkfsPlan) figureExtentAlloc() uint32 {
	target := 0.1
	if p.opts.Type == FSTypeDatafiles || p.opts.Type == FSTypeVMStore {
		target = 0.3
	}
	cpg := clustersPerSubGroup(p.blockSize, p.clusterBits)
	unit := uint64(cpg) * uint64(p.clusterSize) * uint64(p.slots)
	total := unit
	n := 1
	var pct float64
	for ; ; n++ {
		pct = float64(total) * 100 / float64(p.bytes)
		if pct >= target {
			break
		}
		total += unit
	}
	if pct > maxExtallocReservePct {
		n--
	}
	return uint32(cpg * n)
}

// summary prints the plan the way mkfs.ocfs2 does before formatting.
func (p *mkfsPlan) summary(w io.Writer) {
	var extSize uint64
	groups := 0
	if p.extentAllocClusters != 0 {
		groups = int(p.extentAllocClusters) / clustersPerSubGroup(p.blockSize, p.clusterBits)
		extSize = uint64(p.extentAllocClusters) * uint64(p.clusterSize)
	}
	if p.opts.Type != FSTypeDefault {
		fmt.Fprintf(w, "Filesystem Type of %s\n", p.opts.Type)
	}
	fmt.Fprintf(w, "Label: %s\n", p.label)
	fmt.Fprintf(w, "Features: %s\n", featureNames(p.features))
	fmt.Fprintf(w, "Block size: %d (%d bits)\n", p.blockSize, p.blockBits)
	fmt.Fprintf(w, "Cluster size: %d (%d bits)\n", p.clusterSize, p.clusterBits)
	fmt.Fprintf(w, "Volume size: %d (%d clusters) (%d blocks)\n", p.bytes, p.clusters, p.blocks)
	fmt.Fprintf(w, "Cluster groups: %d (tail covers %d clusters, rest cover %d clusters)\n", p.groups, p.tailBits, p.globalCPG)
	fmt.Fprintf(w, "Extent allocator size: %d (%d groups)\n", extSize, groups)
	fmt.Fprintf(w, "Journal size: %d\n", p.journalBytes)
	fmt.Fprintf(w, "Node slots: %d\n", p.slots)
}
