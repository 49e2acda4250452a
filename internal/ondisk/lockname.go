package ondisk

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// LockType is the first character of an OCFS2 cluster lock name: which
// kind of resource the lock guards.
type LockType byte

const (
	LockMeta       LockType = 'M' // inode metadata (the "inode lock")
	LockData       LockType = 'D' // legacy data lock
	LockSuper      LockType = 'S' // the superblock: mount, slot map, recovery
	LockRename     LockType = 'R' // cross-directory rename
	LockRW         LockType = 'W' // file data read/write
	LockDentry     LockType = 'N' // a directory entry (binary name format)
	LockOpen       LockType = 'O' // inode open (delete vs. open race)
	LockFlock      LockType = 'F' // flock(2)
	LockQInfo      LockType = 'Q' // quota info; blkno = quota type
	LockNFSSync    LockType = 'Y' // NFS export sync
	LockOrphanScan LockType = 'P' // orphan scan
	LockRefcount   LockType = 'T' // refcount tree
	LockTrimFS     LockType = 'I' // FITRIM (kernel only)
)

// lockTypeNames are the names ocfs2_lock_type_string gives the types.
var lockTypeNames = map[LockType]string{
	LockMeta:       "Meta",
	LockData:       "Data",
	LockSuper:      "Super",
	LockRename:     "Rename",
	LockRW:         "Write/Read",
	LockDentry:     "Dentry",
	LockOpen:       "Open",
	LockFlock:      "Flock",
	LockQInfo:      "Quota",
	LockNFSSync:    "NFSSync",
	LockOrphanScan: "OrphanScan",
	LockRefcount:   "Refcount",
	LockTrimFS:     "TrimFs",
}

// Name is the type's name as debugfs.ocfs2 and the kernel print it.
func (t LockType) Name() string {
	if n, ok := lockTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("unknown(%q)", byte(t))
}

// Valid reports whether t is a known lock type.
func (t LockType) Valid() bool { _, ok := lockTypeNames[t]; return ok }

// Lock name geometry.
const (
	// LockNameLen is the length of every OCFS2 lock name handed to the DLM
	// (OCFS2_LOCK_ID_MAX_LEN - 1; the kernel's buffer adds a NUL).
	LockNameLen = 31
	// LockNamePad sits between the type and the block number.
	LockNamePad = "000000"
	// DentryLockInoStart is where a dentry lock name's binary inode number
	// starts (OCFS2_DENTRY_LOCK_INO_START).
	DentryLockInoStart = 18
)

const structLockName = "lock name"

// LockName is an OCFS2 cluster lock name. The standard format is 31
// printable characters:
//
//	[0]      type character (LockType)
//	[1:7]    "000000"
//	[7:23]   block number, %016x (lowercase)
//	[23:31]  generation, %08x
//
// Dentry locks (LockDentry) use a binary format instead, still 31 bytes:
//
//	[0]      'N'
//	[1:17]   parent directory block number, %016x
//	[17]     NUL
//	[18:26]  inode block number, big-endian u64
//	[26:31]  zero
//
// For a dentry lock Blkno is the inode and Parent the directory; for the
// others Parent is zero.
type LockName struct {
	Type       LockType
	Blkno      uint64
	Generation uint32 // zero for dentry locks
	Parent     uint64 // dentry locks only
}

// Encode returns the 31-byte name the DLM sees.
func (n LockName) Encode() (string, error) {
	if !n.Type.Valid() {
		return "", fmt.Errorf("lock name: unknown lock type %q", byte(n.Type))
	}
	if n.Type == LockDentry {
		if n.Generation != 0 {
			return "", fmt.Errorf("lock name: dentry locks carry no generation (have 0x%x)", n.Generation)
		}
		var b [LockNameLen]byte
		copy(b[:], fmt.Sprintf("%c%016x", byte(n.Type), n.Parent))
		binary.BigEndian.PutUint64(b[DentryLockInoStart:], n.Blkno)
		return string(b[:]), nil
	}
	if n.Parent != 0 {
		return "", fmt.Errorf("lock name: only dentry locks have a parent (have %d)", n.Parent)
	}
	return fmt.Sprintf("%c%s%016x%08x", byte(n.Type), LockNamePad, n.Blkno, n.Generation), nil
}

// String is the printable form: the name itself for standard locks, and
// for dentry locks 'N', the parent in hex and the low 32 bits of the inode
// in hex ("N%016x%08x"), as debugfs.ocfs2 and the kernel's lock listing
// print them.
func (n LockName) String() string {
	if n.Type == LockDentry && n.Generation == 0 {
		return fmt.Sprintf("%c%016x%08x", byte(n.Type), n.Parent, uint32(n.Blkno))
	}
	s, err := n.Encode()
	if err != nil {
		return fmt.Sprintf("invalid lock name {type %q blkno %d generation 0x%x parent %d}", byte(n.Type), n.Blkno, n.Generation, n.Parent)
	}
	return s
}

// ParseLockName parses the 31-byte name a DLM carries (a trailing NUL, as
// in the kernel's 32-byte buffer, is accepted). It accepts exactly the
// names Encode makes: known type, lowercase hex, zero padding; anything
// else is a CorruptError, since lock names arrive from other nodes.
func ParseLockName(s string) (LockName, error) {
	if len(s) == LockNameLen+1 && s[LockNameLen] == 0 {
		s = s[:LockNameLen]
	}
	if len(s) != LockNameLen {
		return LockName{}, corrupt(structLockName, "", "is %d bytes, want %d", len(s), LockNameLen)
	}
	t := LockType(s[0])
	if !t.Valid() {
		return LockName{}, corrupt(structLockName, "type", "%q is not a lock type", s[0])
	}
	if t == LockDentry {
		parent, err := parseLowerHex(s[1:17], "parent")
		if err != nil {
			return LockName{}, err
		}
		if s[17] != 0 {
			return LockName{}, corrupt(structLockName, "parent", "dentry lock name lacks the NUL at byte 17")
		}
		for i := DentryLockInoStart + 8; i < LockNameLen; i++ {
			if s[i] != 0 {
				return LockName{}, corrupt(structLockName, "", "dentry lock name has byte 0x%02x at %d, want 0", s[i], i)
			}
		}
		return LockName{Type: t, Parent: parent, Blkno: binary.BigEndian.Uint64([]byte(s[DentryLockInoStart : DentryLockInoStart+8]))}, nil
	}
	if s[1:7] != LockNamePad {
		return LockName{}, corrupt(structLockName, "pad", "is %q, want %q", s[1:7], LockNamePad)
	}
	blkno, err := parseLowerHex(s[7:23], "blkno")
	if err != nil {
		return LockName{}, err
	}
	gen, err := parseLowerHex(s[23:31], "generation")
	if err != nil {
		return LockName{}, err
	}
	return LockName{Type: t, Blkno: blkno, Generation: uint32(gen)}, nil
}

// parseLowerHex parses fixed-width lowercase hex, as %0Nx prints it.
func parseLowerHex(s, field string) (uint64, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return 0, corrupt(structLockName, field, "%q is not lowercase hex", s)
		}
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, corrupt(structLockName, field, "%q: %v", s, err)
	}
	return v, nil
}
