package ondisk

import (
	"encoding/binary"
	"fmt"
)

// POSIX ACL entry tags (e_tag), the same numbers on disk and in the VFS.
const (
	ACLUserObj  uint16 = 0x01
	ACLUser     uint16 = 0x02
	ACLGroupObj uint16 = 0x04
	ACLGroup    uint16 = 0x08
	ACLMask     uint16 = 0x10
	ACLOther    uint16 = 0x20
)

// ACLUndefinedID is the e_id of entries that name no user or group.
const ACLUndefinedID uint32 = 0xFFFFFFFF

// ACL wire sizes.
const (
	ACLEntrySize           = 8
	PosixACLXattrVersion   = 2 // a_version of the VFS xattr format
	posixACLXattrHeaderLen = 4
	structACL              = "posix acl"
)

// ACLEntry is one POSIX ACL entry. OCFS2 stores an ACL as the value of the
// xattr with prefix index 2 (access) or 3 (default) and an empty name, as a
// bare array of struct ocfs2_acl_entry (8 bytes each, little-endian, no
// header):
//
//	0x00 le16 e_tag   ACLUserObj, ACLUser, ACLGroupObj, ACLGroup, ACLMask, ACLOther
//	0x02 le16 e_perm  rwx bits (4, 2, 1)
//	0x04 le32 e_id    uid for ACLUser, gid for ACLGroup, ACLUndefinedID otherwise
//
// The Linux VFS "system.posix_acl_access"/"system.posix_acl_default" value
// (what getxattr(2) returns and setxattr(2) takes) is the same entries after
// a 4-byte header: le32 a_version = 2.
type ACLEntry struct {
	Tag  uint16
	Perm uint16
	ID   uint32
}

// normalised returns e as the kernel writes it: e_id is ACLUndefinedID for
// tags that carry no id.
func (e ACLEntry) normalised() ACLEntry {
	if e.Tag != ACLUser && e.Tag != ACLGroup {
		e.ID = ACLUndefinedID
	}
	return e
}

func decodeACLEntries(b []byte) []ACLEntry {
	out := make([]ACLEntry, len(b)/ACLEntrySize)
	for i := range out {
		p := b[i*ACLEntrySize:]
		out[i] = ACLEntry{Tag: binary.LittleEndian.Uint16(p), Perm: binary.LittleEndian.Uint16(p[2:]), ID: binary.LittleEndian.Uint32(p[4:])}
	}
	return out
}

func encodeACLEntries(b []byte, entries []ACLEntry) {
	for i, e := range entries {
		e = e.normalised()
		p := b[i*ACLEntrySize:]
		binary.LittleEndian.PutUint16(p, e.Tag)
		binary.LittleEndian.PutUint16(p[2:], e.Perm)
		binary.LittleEndian.PutUint32(p[4:], e.ID)
	}
}

// DecodeOCFS2ACL decodes an ACL xattr value as OCFS2 stores it. An empty
// value or one that is not a whole number of entries is corrupt (the
// kernel refuses values shorter than one entry and ignores a partial tail;
// o2go reports the tail).
func DecodeOCFS2ACL(b []byte) ([]ACLEntry, error) {
	if len(b) < ACLEntrySize {
		return nil, corrupt(structACL, "e_tag", "value is %d bytes, shorter than one %d-byte entry", len(b), ACLEntrySize)
	}
	if len(b)%ACLEntrySize != 0 {
		return nil, corrupt(structACL, "", "value is %d bytes, not a multiple of %d", len(b), ACLEntrySize)
	}
	return decodeACLEntries(b), nil
}

// EncodeOCFS2ACL is the on-disk xattr value for entries. Entries without a
// user or group get e_id ACLUndefinedID, as the kernel writes them.
func EncodeOCFS2ACL(entries []ACLEntry) []byte {
	b := make([]byte, len(entries)*ACLEntrySize)
	encodeACLEntries(b, entries)
	return b
}

// DecodeVFSACL decodes a VFS posix_acl xattr value (version header plus
// entries). A value of just the header is an empty ACL.
func DecodeVFSACL(b []byte) ([]ACLEntry, error) {
	if len(b) < posixACLXattrHeaderLen {
		return nil, fmt.Errorf("posix acl xattr value is %d bytes, shorter than its %d-byte header", len(b), posixACLXattrHeaderLen)
	}
	if v := binary.LittleEndian.Uint32(b); v != PosixACLXattrVersion {
		return nil, fmt.Errorf("posix acl xattr version is %d, want %d", v, PosixACLXattrVersion)
	}
	if (len(b)-posixACLXattrHeaderLen)%ACLEntrySize != 0 {
		return nil, fmt.Errorf("posix acl xattr value is %d bytes: not a header plus whole %d-byte entries", len(b), ACLEntrySize)
	}
	return decodeACLEntries(b[posixACLXattrHeaderLen:]), nil
}

// EncodeVFSACL is the VFS posix_acl xattr value for entries.
func EncodeVFSACL(entries []ACLEntry) []byte {
	b := make([]byte, posixACLXattrHeaderLen+len(entries)*ACLEntrySize)
	binary.LittleEndian.PutUint32(b, PosixACLXattrVersion)
	encodeACLEntries(b[posixACLXattrHeaderLen:], entries)
	return b
}

// OCFS2ACLToVFS converts a stored ACL value to the VFS xattr format.
func OCFS2ACLToVFS(stored []byte) ([]byte, error) {
	e, err := DecodeOCFS2ACL(stored)
	if err != nil {
		return nil, err
	}
	return EncodeVFSACL(e), nil
}

// VFSACLToOCFS2 converts a VFS xattr value to the stored format. An empty
// ACL has no stored form (the caller removes the xattr instead): it is an
// error here.
func VFSACLToOCFS2(vfs []byte) ([]byte, error) {
	e, err := DecodeVFSACL(vfs)
	if err != nil {
		return nil, err
	}
	if len(e) == 0 {
		return nil, fmt.Errorf("empty posix acl: remove the xattr instead of storing it")
	}
	return EncodeOCFS2ACL(e), nil
}
