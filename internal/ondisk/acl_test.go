package ondisk

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
)

func TestACLFormats(t *testing.T) {
	entries := []ACLEntry{
		{ACLUserObj, 7, ACLUndefinedID}, {ACLUser, 5, 1000}, {ACLGroupObj, 5, ACLUndefinedID},
		{ACLGroup, 4, 50}, {ACLMask, 5, ACLUndefinedID}, {ACLOther, 0, ACLUndefinedID},
	}
	stored := EncodeOCFS2ACL(entries)
	// On disk: bare 8-byte little-endian entries.
	want, _ := hex.DecodeString("01000700ffffffff" + "02000500e8030000" + "04000500ffffffff" +
		"0800040032000000" + "10000500ffffffff" + "20000000ffffffff")
	if !bytes.Equal(stored, want) {
		t.Fatalf("stored acl %x\nwant       %x", stored, want)
	}
	vfs, err := OCFS2ACLToVFS(stored)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(vfs[:4], []byte{2, 0, 0, 0}) || !bytes.Equal(vfs[4:], stored) {
		t.Fatalf("vfs acl %x", vfs)
	}
	back, err := VFSACLToOCFS2(vfs)
	if err != nil || !bytes.Equal(back, stored) {
		t.Fatalf("round trip %x %v", back, err)
	}
	got, _ := DecodeVFSACL(vfs)
	if !reflect.DeepEqual(got, entries) {
		t.Fatalf("decoded %+v", got)
	}
	// Ids of entries that name nobody are written as undefined.
	if b := EncodeOCFS2ACL([]ACLEntry{{ACLUserObj, 6, 1234}}); !bytes.Equal(b[4:], []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("USER_OBJ id kept: %x", b)
	}
}

func TestACLRejectsBadValues(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 7), make([]byte, 12)} {
		if _, err := DecodeOCFS2ACL(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("stored %d bytes accepted", len(b))
		}
	}
	for _, b := range [][]byte{nil, {2, 0, 0}, {1, 0, 0, 0}, {2, 0, 0, 0, 1}} {
		if _, err := DecodeVFSACL(b); err == nil {
			t.Errorf("vfs value %x accepted", b)
		}
	}
	if _, err := VFSACLToOCFS2([]byte{2, 0, 0, 0}); err == nil {
		t.Error("empty acl stored")
	}
}

func FuzzACL(f *testing.F) {
	f.Add(EncodeVFSACL([]ACLEntry{{ACLUserObj, 6, 0}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if e, err := DecodeOCFS2ACL(data); err == nil {
			if len(EncodeOCFS2ACL(e)) != len(data) {
				t.Fatal("length changed")
			}
		}
		if s, err := VFSACLToOCFS2(data); err == nil {
			v, err := OCFS2ACLToVFS(s)
			if err != nil || len(v) != len(data) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}
