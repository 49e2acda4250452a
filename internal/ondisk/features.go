package ondisk

import (
	"fmt"
	"sort"
	"strings"
)

// Features is the superblock's three feature words. Their meaning follows
// the ocfs2(7) manual's FEATURE FLAGS section: an unknown Incompat bit means
// the volume cannot be used at all, an unknown RoCompat bit means read-only,
// an unknown Compat bit is ignored.
type Features struct {
	Compat   uint32 // s_feature_compat
	Incompat uint32 // s_feature_incompat
	RoCompat uint32 // s_feature_ro_compat
}

// Feature categories.
type FeatureCategory int

const (
	CategoryCompat FeatureCategory = iota
	CategoryIncompat
	CategoryRoCompat
)

func (c FeatureCategory) String() string {
	return [...]string{"Compat", "Incompat", "RO Compat"}[c]
}

// Compat feature bits.
const (
	CompatBackupSB uint32 = 0x0001 // backup-super
	CompatJBD2SB   uint32 = 0x0002 // strict-journal-super
)

// Incompat feature bits.
const (
	IncompatHeartbeatDev    uint32 = 0x0002 // heartbeat-only device (mkfs -H): never mountable
	IncompatResizeInProg    uint32 = 0x0004 // aborted online resize
	IncompatLocalMount      uint32 = 0x0008 // local
	IncompatSparseAlloc     uint32 = 0x0010 // sparse
	IncompatTunefsInProg    uint32 = 0x0020 // aborted tunefs (s_tunefs_flag says which)
	IncompatInlineData      uint32 = 0x0040 // inline-data
	IncompatUserspaceStack  uint32 = 0x0080 // usrstack: ci_stack/ci_cluster valid, non-o2cb stack
	IncompatExtendedSlotMap uint32 = 0x0100 // extended-slotmap
	IncompatXattr           uint32 = 0x0200 // xattr
	IncompatIndexedDirs     uint32 = 0x0400 // indexed-dirs
	IncompatMetaECC         uint32 = 0x0800 // metaecc
	IncompatRefcountTree    uint32 = 0x1000 // refcount
	IncompatDiscontigBG     uint32 = 0x2000 // discontig-bg
	IncompatClusterInfo     uint32 = 0x4000 // clusterinfo
	IncompatAppendDIO       uint32 = 0x8000 // append-dio
)

// RO-compat feature bits. The manual's table swaps the values of usrquota and
// grpquota; these are the kernel's (ocfs2_fs.h) and ocfs2-tools' values, which
// is what volumes carry.
const (
	RoCompatUnwritten uint32 = 0x0001 // unwritten
	RoCompatUsrQuota  uint32 = 0x0002 // usrquota
	RoCompatGrpQuota  uint32 = 0x0004 // grpquota
)

// FeatureInfo describes one named feature flag.
type FeatureInfo struct {
	Name     string // as mkfs/tunefs --fs-features and o2info --fs-features spell it
	Category FeatureCategory
	Bit      uint32
	// Settable is true for features an operator can name in --fs-features.
	Settable bool
}

// KnownFeatures lists every feature o2go understands, by category and
// ascending bit. (The real tools print features in libocfs2's name-table
// order and spell usrstack "userspace-stack": internal/inspect keeps that
// table for output that must match them.)
var KnownFeatures = []FeatureInfo{
	{"backup-super", CategoryCompat, CompatBackupSB, true},
	{"strict-journal-super", CategoryCompat, CompatJBD2SB, false},
	{"heartbeat-device", CategoryIncompat, IncompatHeartbeatDev, false},
	{"aborted-resize", CategoryIncompat, IncompatResizeInProg, false},
	{"local", CategoryIncompat, IncompatLocalMount, true},
	{"sparse", CategoryIncompat, IncompatSparseAlloc, true},
	{"aborted-tunefs", CategoryIncompat, IncompatTunefsInProg, false},
	{"inline-data", CategoryIncompat, IncompatInlineData, true},
	{"usrstack", CategoryIncompat, IncompatUserspaceStack, false},
	{"extended-slotmap", CategoryIncompat, IncompatExtendedSlotMap, true},
	{"xattr", CategoryIncompat, IncompatXattr, true},
	{"indexed-dirs", CategoryIncompat, IncompatIndexedDirs, true},
	{"metaecc", CategoryIncompat, IncompatMetaECC, true},
	{"refcount", CategoryIncompat, IncompatRefcountTree, true},
	{"discontig-bg", CategoryIncompat, IncompatDiscontigBG, true},
	{"clusterinfo", CategoryIncompat, IncompatClusterInfo, false},
	{"append-dio", CategoryIncompat, IncompatAppendDIO, true},
	{"unwritten", CategoryRoCompat, RoCompatUnwritten, true},
	{"usrquota", CategoryRoCompat, RoCompatUsrQuota, true},
	{"grpquota", CategoryRoCompat, RoCompatGrpQuota, true},
}

// Supported feature masks: what o2go reads and writes in full.
const (
	SupportedCompat   = CompatBackupSB | CompatJBD2SB
	SupportedIncompat = IncompatLocalMount | IncompatSparseAlloc | IncompatInlineData |
		IncompatUserspaceStack | IncompatExtendedSlotMap | IncompatXattr | IncompatIndexedDirs |
		IncompatMetaECC | IncompatRefcountTree | IncompatDiscontigBG | IncompatClusterInfo |
		IncompatAppendDIO
	SupportedRoCompat = RoCompatUnwritten | RoCompatUsrQuota | RoCompatGrpQuota
)

// FeatureByName finds a feature by its --fs-features name.
func FeatureByName(name string) (FeatureInfo, bool) {
	for _, f := range KnownFeatures {
		if f.Name == name {
			return f, true
		}
	}
	return FeatureInfo{}, false
}

// Has reports whether the named bit of the given category is set.
func (f Features) Has(c FeatureCategory, bit uint32) bool {
	switch c {
	case CategoryCompat:
		return f.Compat&bit != 0
	case CategoryIncompat:
		return f.Incompat&bit != 0
	default:
		return f.RoCompat&bit != 0
	}
}

// Set turns the bit of category c on or off.
func (f *Features) Set(c FeatureCategory, bit uint32, on bool) {
	p := &f.RoCompat
	switch c {
	case CategoryCompat:
		p = &f.Compat
	case CategoryIncompat:
		p = &f.Incompat
	}
	if on {
		*p |= bit
	} else {
		*p &^= bit
	}
}

// Names lists the names of the set features in o2info's order; unknown bits
// are shown as "unknown-<category>-0x<hex>".
func (f Features) Names() []string {
	var out []string
	known := Features{}
	for _, fi := range KnownFeatures {
		if f.Has(fi.Category, fi.Bit) {
			out = append(out, fi.Name)
			known.Set(fi.Category, fi.Bit, true)
		}
	}
	if x := f.Compat &^ known.Compat; x != 0 {
		out = append(out, fmt.Sprintf("unknown-compat-0x%x", x))
	}
	if x := f.Incompat &^ known.Incompat; x != 0 {
		out = append(out, fmt.Sprintf("unknown-incompat-0x%x", x))
	}
	if x := f.RoCompat &^ known.RoCompat; x != 0 {
		out = append(out, fmt.Sprintf("unknown-rocompat-0x%x", x))
	}
	return out
}

func (f Features) String() string { return strings.Join(f.Names(), " ") }

// UnsupportedIncompat returns the incompat bits o2go cannot handle at all.
// HEARTBEAT_DEV, RESIZE_INPROG and TUNEFS_INPROG are known but make a volume
// unusable until tunefs finishes or undoes its work, so they count too.
func (f Features) UnsupportedIncompat() uint32 { return f.Incompat &^ SupportedIncompat }

// UnsupportedRoCompat returns the ro-compat bits that forbid writing.
func (f Features) UnsupportedRoCompat() uint32 { return f.RoCompat &^ SupportedRoCompat }

// ParseFeatureList parses an --fs-features value ("sparse,noinline-data")
// into the features to turn on and off. Unknown or non-settable names are an
// error that lists the valid ones.
func ParseFeatureList(s string) (on, off Features, err error) {
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		name, enable := tok, true
		if strings.HasPrefix(tok, "no") {
			if _, ok := FeatureByName(tok); !ok {
				name, enable = tok[2:], false
			}
		}
		fi, ok := FeatureByName(name)
		if !ok || !fi.Settable {
			var valid []string
			for _, k := range KnownFeatures {
				if k.Settable {
					valid = append(valid, k.Name)
				}
			}
			sort.Strings(valid)
			return on, off, fmt.Errorf("unknown feature %q; valid features: %s (prefix with \"no\" to disable)", name, strings.Join(valid, ", "))
		}
		if enable {
			on.Set(fi.Category, fi.Bit, true)
			off.Set(fi.Category, fi.Bit, false)
		} else {
			off.Set(fi.Category, fi.Bit, true)
			on.Set(fi.Category, fi.Bit, false)
		}
	}
	return on, off, nil
}
