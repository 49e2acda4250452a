package inspect

import (
	"fmt"
	"math"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"o2go/internal/ondisk"
)

// featureName is one entry of the table ocfs2-tools prints feature flags
// from (libocfs2's feature name table): the tools print set flags in this
// order, category by category, and "unknown" for bits the table lacks.
type featureName struct {
	name string
	cat  ondisk.FeatureCategory
	bit  uint32
}

var printedFeatures = []featureName{
	{"heartbeat-device", ondisk.CategoryIncompat, ondisk.IncompatHeartbeatDev},
	{"aborted-resize", ondisk.CategoryIncompat, ondisk.IncompatResizeInProg},
	{"local", ondisk.CategoryIncompat, ondisk.IncompatLocalMount},
	{"sparse", ondisk.CategoryIncompat, ondisk.IncompatSparseAlloc},
	{"extended-slotmap", ondisk.CategoryIncompat, ondisk.IncompatExtendedSlotMap},
	{"aborted-tunefs", ondisk.CategoryIncompat, ondisk.IncompatTunefsInProg},
	{"userspace-stack", ondisk.CategoryIncompat, ondisk.IncompatUserspaceStack},
	{"backup-super", ondisk.CategoryCompat, ondisk.CompatBackupSB},
	{"unwritten", ondisk.CategoryRoCompat, ondisk.RoCompatUnwritten},
	{"inline-data", ondisk.CategoryIncompat, ondisk.IncompatInlineData},
	{"strict-journal-super", ondisk.CategoryCompat, ondisk.CompatJBD2SB},
	{"metaecc", ondisk.CategoryIncompat, ondisk.IncompatMetaECC},
	{"xattr", ondisk.CategoryIncompat, ondisk.IncompatXattr},
	{"indexed-dirs", ondisk.CategoryIncompat, ondisk.IncompatIndexedDirs},
	{"usrquota", ondisk.CategoryRoCompat, ondisk.RoCompatUsrQuota},
	{"grpquota", ondisk.CategoryRoCompat, ondisk.RoCompatGrpQuota},
	{"refcount", ondisk.CategoryIncompat, ondisk.IncompatRefcountTree},
	{"discontig-bg", ondisk.CategoryIncompat, ondisk.IncompatDiscontigBG},
	{"clusterinfo", ondisk.CategoryIncompat, ondisk.IncompatClusterInfo},
	{"append-dio", ondisk.CategoryIncompat, ondisk.IncompatAppendDIO},
}

// featureWords lists, space separated, the names of the bits set in one
// feature word of category cat, as debugfs's "Feature Incompat:" line and
// o2info print them ("unknown" once for bits no name covers).
func featureWords(cat ondisk.FeatureCategory, bits uint32) []string {
	var out []string
	found := uint32(0)
	for _, f := range printedFeatures {
		if f.cat == cat && bits&f.bit != 0 {
			out = append(out, f.name)
			found |= f.bit
		}
	}
	if found != bits {
		out = append(out, "unknown")
	}
	return out
}

// flagNames lists the names of set flags from a table, with "unknown" for
// the rest (libocfs2's flag printers: tunefs, extent, refcount, o2cb flags).
func flagNames(bits uint32, table []flagName) string {
	var out []string
	found := uint32(0)
	for _, f := range table {
		if bits&f.bit != 0 {
			out = append(out, f.name)
			found |= f.bit
		}
	}
	if found != bits {
		out = append(out, "unknown")
	}
	return strings.Join(out, " ")
}

type flagName struct {
	name string
	bit  uint32
}

var (
	tunefsFlagNames   = []flagName{{"remove-slot", uint32(ondisk.TunefsInProgRemoveSlot)}, {"dir-trailer", uint32(ondisk.TunefsInProgDirTrailer)}}
	extentFlagNames   = []flagName{{"Unwritten", uint32(ondisk.ExtentUnwritten)}, {"Refcounted", uint32(ondisk.ExtentRefcounted)}}
	refcountFlagNames = []flagName{{"Leaf", ondisk.RefcountLeafFlag}, {"Tree", ondisk.RefcountTreeFlag}}
	o2cbFlagNames     = []flagName{{"Globalheartbeat", uint32(ondisk.ClusterO2CBGlobalHeartbeat)}}
)

// ctime formats seconds since the epoch like ctime(3) in the local time
// zone (TZ), without the trailing newline: "Mon Nov 23 21:28:58 2026".
// ok is false where glibc's ctime returns NULL (a year that does not fit
// in an int); the tools then print "(null)".
func ctime(sec int64) (s string, ok bool) {
	t := time.Unix(sec, 0).In(time.Local)
	y := int64(t.Year())
	if y-1900 > math.MaxInt32 || y-1900 < math.MinInt32 {
		return "(null)", false
	}
	return fmt.Sprintf("%s %s%3d %02d:%02d:%02d %d", t.Format("Mon"), t.Format("Jan"),
		t.Day(), t.Hour(), t.Minute(), t.Second(), y), true
}

// ctimeLine is ctime with the newline ctime(3) ends in, or "(null)" with
// none, exactly what printf("%s", ctime(&t)) gives.
func ctimeLine(sec int64) string {
	s, ok := ctime(sec)
	if !ok {
		return s
	}
	return s + "\n"
}

// ctimeNano is debugfs's ctime_nano: the nanoseconds inserted before the
// year ("Mon Nov 23 21:28:58.0 2026"), with the newline.
func ctimeNano(sec int64, nsec uint32) string {
	s, ok := ctime(sec)
	if !ok {
		return "\n"
	}
	i := strings.LastIndexByte(s, ' ')
	return s[:i] + "." + strconv.FormatUint(uint64(nsec), 10) + s[i:] + "\n"
}

// lsTime is the date debugfs's ls -l shows: "23-Nov-2026 21:28".
func lsTime(sec int64) string {
	t := time.Unix(sec, 0).In(time.Local)
	return fmt.Sprintf("%2d-%s-%4d %02d:%02d", t.Day(), t.Format("Jan"), t.Year(), t.Hour(), t.Minute())
}

// permString is debugfs's ls -l mode column ("drwxr-xr-x"). debugfs marks
// FIFOs 'f', not ls(1)'s 'p'; so does this.
func permString(mode uint16) string {
	b := []byte("----------")
	switch mode & ondisk.ModeTypeMask {
	case ondisk.ModeDir:
		b[0] = 'd'
	case ondisk.ModeLnk:
		b[0] = 'l'
	case ondisk.ModeChr:
		b[0] = 'c'
	case ondisk.ModeBlk:
		b[0] = 'b'
	case ondisk.ModeFifo:
		b[0] = 'f'
	case ondisk.ModeSock:
		b[0] = 's'
	}
	rwx := func(i int, r, w, x, special uint16, set, unset byte) {
		if mode&r != 0 {
			b[i] = 'r'
		}
		if mode&w != 0 {
			b[i+1] = 'w'
		}
		switch {
		case mode&special != 0 && mode&x != 0:
			b[i+2] = set
		case mode&special != 0:
			b[i+2] = unset
		case mode&x != 0:
			b[i+2] = 'x'
		}
	}
	rwx(1, 0o400, 0o200, 0o100, 0o4000, 's', 'S')
	rwx(4, 0o040, 0o020, 0o010, 0o2000, 's', 'S')
	rwx(7, 0o004, 0o002, 0o001, 0o1000, 't', 'T')
	return string(b)
}

// typeName is the "Type:" of debugfs's stat.
func typeName(mode uint16) string {
	switch mode & ondisk.ModeTypeMask {
	case ondisk.ModeReg:
		return "Regular"
	case ondisk.ModeDir:
		return "Directory"
	case ondisk.ModeChr:
		return "Char Device"
	case ondisk.ModeBlk:
		return "Block Device"
	case ondisk.ModeFifo:
		return "FIFO"
	case ondisk.ModeLnk:
		return "Symbolic Link"
	case ondisk.ModeSock:
		return "Socket"
	}
	return "Unknown"
}

// owners resolves uids and gids to names from the host's passwd and group
// databases, as debugfs does with getpwuid/getgrgid, remembering answers.
type owners struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

func (o *owners) user(uid uint32) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.users == nil {
		o.users = map[uint32]string{}
	}
	if n, ok := o.users[uid]; ok {
		return n, n != ""
	}
	n := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		n = u.Username
	}
	o.users[uid] = n
	return n, n != ""
}

func (o *owners) group(gid uint32) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.groups == nil {
		o.groups = map[uint32]string{}
	}
	if n, ok := o.groups[gid]; ok {
		return n, n != ""
	}
	n := ""
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		n = g.Name
	}
	o.groups[gid] = n
	return n, n != ""
}

var hostOwners owners

func userName(uid uint32) string {
	if n, ok := hostOwners.user(uid); ok {
		return n
	}
	return "unknown"
}

func groupName(gid uint32) string {
	if n, ok := hostOwners.group(gid); ok {
		return n
	}
	return "unknown"
}

// cstr is a fixed-size C string field as text, up to its first NUL.
func cstr(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

// hexUpper prints bytes as uppercase hex pairs (UUIDs).
func hexUpper(b []byte) string { return strings.ToUpper(fmt.Sprintf("%x", b)) }

// signedCharHex prints bytes the way printf("%02X", (char)b) does on x86,
// where char is signed: bytes >= 0x80 sign-extend to "FFFFFF80". debugfs's
// logdump prints descriptor tag UUIDs so.
func signedCharHex(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%02X", uint32(int32(int8(c))))
	}
	return sb.String()
}
