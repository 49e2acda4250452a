package xattr

import (
	"encoding/binary"
	"fmt"
	"slices"
	"syscall"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// ACL is a POSIX access control list (acl(5)), its entries in the order
// the kernel requires: the owner (ACLUserObj), named users, the owning
// group (ACLGroupObj), named groups, the mask, others. OCFS2 stores it in
// system.posix_acl_access / system.posix_acl_default as bare 8-byte
// entries (ondisk.EncodeOCFS2ACL); the VFS passes it with a version header
// (ondisk.EncodeVFSACL).
//
// The functions below are the kernel's fs/posix_acl.c, pure: permission
// evaluation, the mode an ACL implies, chmod, and inheritance on create.
type ACL []ondisk.ACLEntry

// ACLKind says which of an inode's two ACLs.
type ACLKind int

const (
	AccessACL  ACLKind = iota // system.posix_acl_access: checked on access
	DefaultACL                // system.posix_acl_default: a directory's, inherited on create
)

// Name is the xattr name the ACL is kept under.
func (k ACLKind) Name() string {
	if k == DefaultACL {
		return ondisk.XattrNamePosixACLDefault
	}
	return ondisk.XattrNamePosixACLAccess
}

// Permission bits of an ACL entry, the kernel's MAY_READ/WRITE/EXEC.
const (
	PermRead    uint16 = 4
	PermWrite   uint16 = 2
	PermExecute uint16 = 1
	permAll            = PermRead | PermWrite | PermExecute
)

// Mode bits the ACL code reads and writes.
const (
	modeTypeMask = 0o170000
	modeDir      = 0o040000
	modeLink     = 0o120000
	modePerm     = 0o777
)

// ParseVFSACL decodes a system.posix_acl_* value as setxattr(2) passes it
// (posix_acl_from_xattr): an empty value or a bare header is no ACL (nil),
// a version other than 2 is EOPNOTSUPP, a ragged size, an unknown tag or an
// id of -1 EINVAL. It does not check the entries' order: ValidateACL does.
func ParseVFSACL(b []byte) (ACL, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("posix acl value of %d bytes: %w", len(b), syscall.EINVAL)
	}
	if v := binary.LittleEndian.Uint32(b); v != ondisk.PosixACLXattrVersion {
		return nil, fmt.Errorf("posix acl version %d, want %d: %w", v, ondisk.PosixACLXattrVersion, syscall.EOPNOTSUPP)
	}
	entries, err := ondisk.DecodeVFSACL(b)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, syscall.EINVAL)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	for i, e := range entries {
		switch e.Tag {
		case ondisk.ACLUserObj, ondisk.ACLGroupObj, ondisk.ACLMask, ondisk.ACLOther:
		case ondisk.ACLUser, ondisk.ACLGroup:
			if e.ID == ondisk.ACLUndefinedID {
				return nil, fmt.Errorf("posix acl entry %d names id -1: %w", i, syscall.EINVAL)
			}
		default:
			return nil, fmt.Errorf("posix acl entry %d has tag 0x%x: %w", i, e.Tag, syscall.EINVAL)
		}
	}
	return ACL(entries), nil
}

// VFS is the ACL as getxattr(2) returns it.
func (a ACL) VFS() []byte { return ondisk.EncodeVFSACL(a) }

// ValidateACL is posix_acl_valid: only rwx bits, the entries in order, one
// owner, one owning group, one other, and a mask when there are named
// users or groups. EINVAL otherwise.
func ValidateACL(a ACL) error {
	const (
		stUserObj = iota
		stUser
		stGroup
		stOther
		stDone
	)
	state, needsMask := stUserObj, false
	bad := func(i int, why string) error {
		return fmt.Errorf("posix acl entry %d: %s: %w", i, why, syscall.EINVAL)
	}
	for i, e := range a {
		if e.Perm&^permAll != 0 {
			return bad(i, fmt.Sprintf("permission bits 0x%x", e.Perm))
		}
		switch e.Tag {
		case ondisk.ACLUserObj:
			if state != stUserObj {
				return bad(i, "owner entry out of place")
			}
			state = stUser
		case ondisk.ACLUser:
			if state != stUser {
				return bad(i, "named user out of place")
			}
			if e.ID == ondisk.ACLUndefinedID {
				return bad(i, "named user -1")
			}
			needsMask = true
		case ondisk.ACLGroupObj:
			if state != stUser {
				return bad(i, "owning group entry out of place")
			}
			state = stGroup
		case ondisk.ACLGroup:
			if state != stGroup {
				return bad(i, "named group out of place")
			}
			if e.ID == ondisk.ACLUndefinedID {
				return bad(i, "named group -1")
			}
			needsMask = true
		case ondisk.ACLMask:
			if state != stGroup {
				return bad(i, "mask out of place")
			}
			state = stOther
		case ondisk.ACLOther:
			if state != stOther && (state != stGroup || needsMask) {
				return bad(i, "other entry out of place, or a mask is missing")
			}
			state = stDone
		default:
			return bad(i, fmt.Sprintf("tag 0x%x", e.Tag))
		}
	}
	if state != stDone {
		return fmt.Errorf("posix acl of %d entries is incomplete: %w", len(a), syscall.EINVAL)
	}
	return nil
}

// ACLFromMode is the three-entry ACL the permission bits of mode stand for
// (posix_acl_from_mode).
func ACLFromMode(mode uint16) ACL {
	return ACL{
		{Tag: ondisk.ACLUserObj, Perm: mode >> 6 & 7, ID: ondisk.ACLUndefinedID},
		{Tag: ondisk.ACLGroupObj, Perm: mode >> 3 & 7, ID: ondisk.ACLUndefinedID},
		{Tag: ondisk.ACLOther, Perm: mode & 7, ID: ondisk.ACLUndefinedID},
	}
}

// ModeFromACL is posix_acl_equiv_mode: mode with its permission bits set
// from the ACL (owner, then the mask if any, else the owning group, then
// others), and whether the bits say all the ACL says — when they do,
// setfacl's ACL need not be stored.
func ModeFromACL(a ACL, mode uint16) (newMode uint16, equivalent bool, err error) {
	var m uint16
	equivalent = true
	for _, e := range a {
		switch e.Tag {
		case ondisk.ACLUserObj:
			m |= (e.Perm & 7) << 6
		case ondisk.ACLGroupObj:
			m |= (e.Perm & 7) << 3
		case ondisk.ACLOther:
			m |= e.Perm & 7
		case ondisk.ACLMask:
			m = m&^0o070 | (e.Perm&7)<<3
			equivalent = false
		case ondisk.ACLUser, ondisk.ACLGroup:
			equivalent = false
		default:
			return mode, false, fmt.Errorf("posix acl tag 0x%x: %w", e.Tag, syscall.EINVAL)
		}
	}
	return mode&^modePerm | m, equivalent, nil
}

// ChmodACL is __posix_acl_chmod: the ACL after chmod(mode) — owner and
// others take the new bits, and the mask (or, without one, the owning
// group) takes the group bits; named entries keep theirs.
func ChmodACL(a ACL, mode uint16) (ACL, error) {
	out := slices.Clone(a)
	group, mask := -1, -1
	for i := range out {
		switch out[i].Tag {
		case ondisk.ACLUserObj:
			out[i].Perm = mode >> 6 & 7
		case ondisk.ACLUser, ondisk.ACLGroup:
		case ondisk.ACLGroupObj:
			group = i
		case ondisk.ACLMask:
			mask = i
		case ondisk.ACLOther:
			out[i].Perm = mode & 7
		default:
			return nil, fmt.Errorf("posix acl tag 0x%x: %w", out[i].Tag, syscall.EIO)
		}
	}
	switch {
	case mask >= 0:
		out[mask].Perm = mode >> 3 & 7
	case group >= 0:
		out[group].Perm = mode >> 3 & 7
	default:
		return nil, fmt.Errorf("posix acl has neither a mask nor an owning group: %w", syscall.EIO)
	}
	return out, nil
}

// InheritACL is posix_acl_create for a new inode of mode (type and
// permission bits, as creat/mkdir ask) in a directory whose default ACL is
// parentDefault. The new inode's permission bits are masked by the
// default ACL and its access ACL is the default ACL masked by mode —
// nil when the bits say it all; a new directory also inherits the default
// ACL itself. Without a parent default ACL nothing changes (the caller
// applies its umask then), and symlinks never get ACLs.
func InheritACL(parentDefault ACL, mode uint16) (access, def ACL, newMode uint16, err error) {
	if parentDefault == nil || mode&modeTypeMask == modeLink {
		return nil, nil, mode, nil
	}
	acl := slices.Clone(parentDefault)
	m := mode
	var group, mask *ondisk.ACLEntry
	equivalent := true
	for i := range acl {
		e := &acl[i]
		switch e.Tag {
		case ondisk.ACLUserObj:
			e.Perm &= m>>6 | ^uint16(7)
			m &= e.Perm<<6 | ^uint16(0o700)
		case ondisk.ACLUser, ondisk.ACLGroup:
			equivalent = false
		case ondisk.ACLGroupObj:
			group = e
		case ondisk.ACLOther:
			e.Perm &= m | ^uint16(7)
			m &= e.Perm | ^uint16(7)
		case ondisk.ACLMask:
			mask = e
			equivalent = false
		default:
			return nil, nil, mode, fmt.Errorf("default acl tag 0x%x: %w", e.Tag, syscall.EIO)
		}
	}
	switch {
	case mask != nil:
		mask.Perm &= m>>3 | ^uint16(7)
		m &= mask.Perm<<3 | ^uint16(0o070)
	case group != nil:
		group.Perm &= m>>3 | ^uint16(7)
		m &= group.Perm<<3 | ^uint16(0o070)
	default:
		return nil, nil, mode, fmt.Errorf("default acl has neither a mask nor an owning group: %w", syscall.EIO)
	}
	newMode = mode&^modePerm | m&modePerm
	if !equivalent {
		access = acl
	}
	if mode&modeTypeMask == modeDir {
		def = slices.Clone(parentDefault)
	}
	return access, def, newMode, nil
}

// CheckAccess says whether a caller gets want (PermRead|PermWrite|
// PermExecute bits) on a file of this mode, owner and group, with access
// ACL acl (nil: none), as the kernel's acl_permission_check and
// posix_acl_permission decide: the owner by the owner bits; with an ACL
// and group bits, by the first matching named user, else every matching
// group entry (any granting all of want wins), each capped by the mask,
// else others; without one, by the group bits when the caller is in the
// file's group, else the other bits. Superuser overrides (CAP_DAC_*) are
// the caller's.
func CheckAccess(acl ACL, mode uint16, fileUID, fileGID, callerUID uint32, callerGIDs []uint32, want uint16) bool {
	want &= permAll
	inGroup := func(gid uint32) bool { return slices.Contains(callerGIDs, gid) }
	if callerUID == fileUID {
		return want&^(mode>>6&7) == 0
	}
	if acl != nil && mode&0o070 != 0 {
		return aclPermits(acl, fileUID, fileGID, callerUID, inGroup, want)
	}
	bits := mode & 7
	if inGroup(fileGID) {
		bits = mode >> 3 & 7
	}
	return want&^bits == 0
}

// aclPermits is posix_acl_permission.
func aclPermits(acl ACL, fileUID, fileGID, callerUID uint32, inGroup func(uint32) bool, want uint16) bool {
	masked := func(i int) bool {
		for _, m := range acl[i+1:] {
			if m.Tag == ondisk.ACLMask {
				return acl[i].Perm&m.Perm&want == want
			}
		}
		return acl[i].Perm&want == want
	}
	found := false
	for i, e := range acl {
		switch e.Tag {
		case ondisk.ACLUserObj:
			if fileUID == callerUID {
				return e.Perm&want == want
			}
		case ondisk.ACLUser:
			if e.ID == callerUID {
				return masked(i)
			}
		case ondisk.ACLGroupObj:
			if inGroup(fileGID) {
				found = true
				if e.Perm&want == want {
					return masked(i)
				}
			}
		case ondisk.ACLGroup:
			if inGroup(e.ID) {
				found = true
				if e.Perm&want == want {
					return masked(i)
				}
			}
		case ondisk.ACLMask:
		case ondisk.ACLOther:
			if found {
				return false
			}
			return e.Perm&want == want
		default:
			return false
		}
	}
	return false
}

// ACL returns the inode's ACL of that kind, nil when it has none.
func (x Inode) ACL(kind ACLKind) (ACL, error) {
	attrs, err := x.List()
	if err != nil {
		return nil, err
	}
	for _, a := range attrs {
		if a.Name != kind.Name() {
			continue
		}
		v, err := x.Value(a)
		if err != nil {
			return nil, err
		}
		entries, err := ondisk.DecodeOCFS2ACL(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", x.owner(), a.Name, x.C.Annotate(err, a.Blkno))
		}
		return ACL(entries), nil
	}
	return nil, nil
}

// SetACL sets (non-nil) or removes (nil) the inode's ACL of that kind,
// as the kernel's ocfs2_iop_set_acl: see Set for what an access ACL does
// to d.Mode.
func SetACL(env Env, d *ondisk.Dinode, buf *metacache.Buffer, kind ACLKind, acl ACL) error {
	a, err := parseName(kind.Name())
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
	return e.setACL(a, acl)
}

// setACL stores or removes an ACL in OCFS2's format.
func (e *editor) setACL(a attrName, acl ACL) error {
	d := e.d
	if a.index == ondisk.XattrIndexPosixACLDefault && !d.IsDir() {
		if acl != nil {
			return fmt.Errorf("inode %d: only directories have a default ACL: %w", d.Blkno, syscall.EACCES)
		}
		return nil
	}
	if acl != nil {
		if err := ValidateACL(acl); err != nil {
			return fmt.Errorf("inode %d: %s: %w", d.Blkno, a.full, err)
		}
	}
	if a.index == ondisk.XattrIndexPosixACLAccess && acl != nil {
		mode, equivalent, err := ModeFromACL(acl, d.Mode)
		if err != nil {
			return err
		}
		d.Mode = mode
		if equivalent {
			acl = nil
		}
	}
	if acl == nil {
		return e.remove(a, false)
	}
	return e.set(a, ondisk.EncodeOCFS2ACL(acl), 0)
}
