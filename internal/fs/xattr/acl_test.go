package xattr

import (
	"bytes"
	"errors"
	"slices"
	"syscall"
	"testing"

	"o2go/internal/base"
	"o2go/internal/ondisk"
)

const (
	tUserObj  = ondisk.ACLUserObj
	tUser     = ondisk.ACLUser
	tGroupObj = ondisk.ACLGroupObj
	tGroup    = ondisk.ACLGroup
	tMask     = ondisk.ACLMask
	tOther    = ondisk.ACLOther
	undef     = ondisk.ACLUndefinedID
)

func ent(tag, perm uint16, id uint32) ondisk.ACLEntry {
	return ondisk.ACLEntry{Tag: tag, Perm: perm, ID: id}
}

// acl5 is the access check algorithm exactly as acl(5) words it, written
// apart from the code under test.
func acl5(acl ACL, fileUID, fileGID, uid uint32, gids []uint32, want uint16) bool {
	has := func(p uint16) bool { return p&want == want }
	var mask *ondisk.ACLEntry
	for i := range acl {
		if acl[i].Tag == tMask {
			mask = &acl[i]
		}
	}
	// 1. the owner
	if uid == fileUID {
		for _, e := range acl {
			if e.Tag == tUserObj {
				return has(e.Perm)
			}
		}
	}
	// 2. a named user
	for _, e := range acl {
		if e.Tag == tUser && e.ID == uid {
			return has(e.Perm) && (mask == nil || has(mask.Perm))
		}
	}
	// 3. the owning group or a named group
	member := func(g uint32) bool { return slices.Contains(gids, g) }
	matched, granted := false, false
	for _, e := range acl {
		if e.Tag == tGroupObj && member(fileGID) || e.Tag == tGroup && member(e.ID) {
			matched = true
			if has(e.Perm) {
				granted = true
			}
		}
	}
	if matched {
		if mask != nil {
			return granted && has(mask.Perm)
		}
		for _, e := range acl {
			if e.Tag == tGroupObj {
				return has(e.Perm)
			}
		}
	}
	// 4. others
	for _, e := range acl {
		if e.Tag == tOther {
			return has(e.Perm)
		}
	}
	return false
}

func TestCheckAccessTable(t *testing.T) {
	full := ACL{ent(tUserObj, 6, undef), ent(tUser, 7, 1001), ent(tUser, 4, 1002), ent(tGroupObj, 4, undef),
		ent(tGroup, 6, 2001), ent(tMask, 6, undef), ent(tOther, 0, undef)}
	mode := uint16(0o100660) // group bits = the mask
	cases := []struct {
		what string
		uid  uint32
		gids []uint32
		want uint16
		ok   bool
	}{
		{"owner reads", 1000, nil, PermRead, true},
		{"owner cannot execute", 1000, nil, PermExecute, false},
		{"named user rw under mask rw", 1001, nil, PermRead | PermWrite, true},
		{"named user rwx: mask takes x", 1001, nil, PermExecute, false},
		{"named user r only", 1002, nil, PermWrite, false},
		{"named user matched: others not consulted", 1002, []uint32{2001}, PermWrite, false},
		{"owning group reads", 3000, []uint32{100}, PermRead, true},
		{"owning group cannot write", 3000, []uint32{100}, PermWrite, false},
		{"named group writes", 3000, []uint32{2001}, PermWrite, true},
		{"any matching group grants", 3000, []uint32{100, 2001}, PermRead | PermWrite, true},
		{"matched group denies, no fallback to other", 3000, []uint32{100}, PermWrite, false},
		{"other gets nothing", 3000, []uint32{5}, PermRead, false},
	}
	for _, c := range cases {
		got := CheckAccess(full, mode, 1000, 100, c.uid, c.gids, c.want)
		if got != c.ok {
			t.Errorf("%s: got %v, want %v", c.what, got, c.ok)
		}
		if oracle := acl5(full, 1000, 100, c.uid, c.gids, c.want); oracle != c.ok {
			t.Errorf("%s: the acl(5) oracle says %v", c.what, oracle)
		}
	}
	// Without an ACL (or with group bits 0), the mode decides.
	if !CheckAccess(nil, 0o640, 1, 2, 3, []uint32{2}, PermRead) || CheckAccess(nil, 0o640, 1, 2, 3, nil, PermRead) {
		t.Error("mode bits: group member reads, stranger does not")
	}
	if CheckAccess(full, 0o604, 1000, 100, 1001, nil, PermRead) != true {
		t.Error("group bits 0: the ACL is not consulted, others' r applies")
	}
}

// randomACL makes a valid ACL with a few named users and groups.
func randomACL(r *base.Rand) ACL {
	a := ACL{ent(tUserObj, uint16(r.Intn(8)), undef)}
	users := r.Intn(3)
	for i := 0; i < users; i++ {
		a = append(a, ent(tUser, uint16(r.Intn(8)), uint32(1001+i)))
	}
	a = append(a, ent(tGroupObj, uint16(r.Intn(8)), undef))
	groups := r.Intn(3)
	for i := 0; i < groups; i++ {
		a = append(a, ent(tGroup, uint16(r.Intn(8)), uint32(2001+i)))
	}
	if users+groups > 0 || r.Chance(0.3) {
		a = append(a, ent(tMask, uint16(r.Intn(8)), undef))
	}
	return append(a, ent(tOther, uint16(r.Intn(8)), undef))
}

func TestCheckAccessAgainstACL5(t *testing.T) {
	r := base.NewRand(42)
	for i := 0; i < 20000; i++ {
		acl := randomACL(r)
		if err := ValidateACL(acl); err != nil {
			t.Fatalf("random ACL %v: %v", acl, err)
		}
		mode, _, err := ModeFromACL(acl, 0o100000)
		if err != nil {
			t.Fatal(err)
		}
		uid := uint32(1000 + r.Intn(4)) // the owner is 1000
		var gids []uint32
		for g := uint32(100); g < 103; g++ {
			if r.Chance(0.3) {
				gids = append(gids, g)
			}
		}
		if r.Chance(0.5) {
			gids = append(gids, uint32(2001+r.Intn(3)))
		}
		want := uint16(1 + r.Intn(7))
		if mode&0o070 == 0 {
			continue // the kernel skips the ACL then; acl(5) does not say
		}
		got := CheckAccess(acl, mode, 1000, 100, uid, gids, want)
		if exp := acl5(acl, 1000, 100, uid, gids, want); got != exp {
			t.Fatalf("acl %v uid %d gids %v want %o: got %v, acl(5) says %v", acl, uid, gids, want, got, exp)
		}
	}
}

func TestModeChmodInherit(t *testing.T) {
	minimal := ACL{ent(tUserObj, 6, undef), ent(tGroupObj, 4, undef), ent(tOther, 4, undef)}
	if m, eq, err := ModeFromACL(minimal, 0o104777); err != nil || !eq || m != 0o104644 {
		t.Errorf("minimal ACL: mode %o equivalent %v %v", m, eq, err)
	}
	if !slices.Equal(ACLFromMode(0o644), minimal) {
		t.Errorf("ACLFromMode(0644) = %v", ACLFromMode(0o644))
	}
	masked := ACL{ent(tUserObj, 6, undef), ent(tGroupObj, 4, undef), ent(tMask, 6, undef), ent(tOther, 4, undef)}
	if m, eq, _ := ModeFromACL(masked, 0o100000); eq || m != 0o100664 {
		t.Errorf("masked ACL: mode %o equivalent %v", m, eq)
	}
	named := ACL{ent(tUserObj, 6, undef), ent(tUser, 7, 1002), ent(tGroupObj, 4, undef), ent(tMask, 7, undef), ent(tOther, 4, undef)}
	got, err := ChmodACL(named, 0o640)
	want := ACL{ent(tUserObj, 6, undef), ent(tUser, 7, 1002), ent(tGroupObj, 4, undef), ent(tMask, 4, undef), ent(tOther, 0, undef)}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("chmod 0640: %v %v", got, err)
	}
	if got, _ := ChmodACL(minimal, 0o751); !slices.Equal(got, ACLFromMode(0o751)) {
		t.Errorf("chmod of a minimal ACL: %v", got)
	}

	def := ACL{ent(tUserObj, 7, undef), ent(tUser, 7, 1001), ent(tGroupObj, 5, undef), ent(tMask, 7, undef), ent(tOther, 0, undef)}
	access, d, mode, err := InheritACL(def, 0o100666)
	wantAccess := ACL{ent(tUserObj, 6, undef), ent(tUser, 7, 1001), ent(tGroupObj, 5, undef), ent(tMask, 6, undef), ent(tOther, 0, undef)}
	if err != nil || mode != 0o100660 || d != nil || !slices.Equal(access, wantAccess) {
		t.Errorf("file under a default ACL: access %v default %v mode %o %v", access, d, mode, err)
	}
	access, d, mode, _ = InheritACL(def, 0o040777)
	if mode != 0o040770 || !slices.Equal(d, def) || access[3].Perm != 7 {
		t.Errorf("directory under a default ACL: access %v default %v mode %o", access, d, mode)
	}
	plain := ACL{ent(tUserObj, 7, undef), ent(tGroupObj, 5, undef), ent(tOther, 5, undef)}
	access, _, mode, _ = InheritACL(plain, 0o100666)
	if access != nil || mode != 0o100644 {
		t.Errorf("minimal default ACL: access %v mode %o (want none, 0644)", access, mode)
	}
	if a, d, m, _ := InheritACL(def, 0o120777); a != nil || d != nil || m != 0o120777 {
		t.Error("a symlink inherits an ACL")
	}
	if a, d, m, _ := InheritACL(nil, 0o100666); a != nil || d != nil || m != 0o100666 {
		t.Error("no default ACL changed something")
	}
}

func TestValidateAndParse(t *testing.T) {
	bad := []ACL{
		{},
		{ent(tUserObj, 7, undef), ent(tGroupObj, 7, undef)},
		{ent(tUserObj, 7, undef), ent(tUser, 7, 5), ent(tGroupObj, 7, undef), ent(tOther, 0, undef)},
		{ent(tGroupObj, 7, undef), ent(tUserObj, 7, undef), ent(tOther, 0, undef)},
		{ent(tUserObj, 7, undef), ent(tUserObj, 7, undef), ent(tGroupObj, 7, undef), ent(tOther, 0, undef)},
		{ent(tUserObj, 8, undef), ent(tGroupObj, 7, undef), ent(tOther, 0, undef)},
		{ent(tUserObj, 7, undef), ent(tGroupObj, 7, undef), ent(tOther, 0, undef), ent(tMask, 7, undef)},
		{ent(tUserObj, 7, undef), ent(tGroupObj, 7, undef), ent(0x40, 7, undef), ent(tOther, 0, undef)},
	}
	for _, a := range bad {
		if err := ValidateACL(a); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ValidateACL(%v) = %v, want EINVAL", a, err)
		}
	}
	good := ACL{ent(tUserObj, 7, undef), ent(tUser, 5, 7), ent(tUser, 5, 3), ent(tGroupObj, 5, undef), ent(tMask, 7, undef), ent(tOther, 0, undef)}
	if err := ValidateACL(good); err != nil {
		t.Errorf("unsorted named users are accepted by the kernel: %v", err)
	}
	if a, err := ParseVFSACL(good.VFS()); err != nil || !slices.Equal(a, good) {
		t.Errorf("round trip: %v %v", a, err)
	}
	v1 := good.VFS()
	v1[0] = 1
	for _, c := range []struct {
		b    []byte
		want error
	}{
		{v1, syscall.EOPNOTSUPP},
		{good.VFS()[:10], syscall.EINVAL},
		{[]byte{2, 0}, syscall.EINVAL},
		{ACL{ent(tUser, 7, undef)}.VFS(), syscall.EINVAL},
		{ACL{ent(0x80, 7, undef)}.VFS(), syscall.EINVAL},
	} {
		if _, err := ParseVFSACL(c.b); !errors.Is(err, c.want) {
			t.Errorf("ParseVFSACL(% x) = %v, want %v", c.b, err, c.want)
		}
	}
	if a, err := ParseVFSACL(ACL{}.VFS()); a != nil || err != nil {
		t.Errorf("header only: %v %v", a, err)
	}
}

func TestACLStorage(t *testing.T) {
	v := newMemVolume(t, memConfig{bs: 2048, cs: 4096, inodeKind: "dir"}, 1)
	mode := func() uint16 { return v.reader().Inode.Mode }
	// An access ACL the mode says in full sets the mode and stores nothing.
	if err := v.set(ondisk.XattrNamePosixACLAccess, ACLFromMode(0o750).VFS(), 0); err != nil {
		t.Fatal(err)
	}
	if mode() != 0o040750 {
		t.Errorf("mode %o after a minimal access ACL", mode())
	}
	if _, ok, _ := v.reader().Get(ondisk.XattrNamePosixACLAccess); ok {
		t.Error("a minimal access ACL was stored")
	}
	full := ACL{ent(tUserObj, 7, undef), ent(tUser, 6, 1001), ent(tGroupObj, 5, undef), ent(tGroup, 7, 2001),
		ent(tMask, 5, undef), ent(tOther, 1, undef)}
	if err := v.set(ondisk.XattrNamePosixACLAccess, full.VFS(), 0); err != nil {
		t.Fatal(err)
	}
	if mode() != 0o040751 {
		t.Errorf("mode %o after a full access ACL, want 0751", mode())
	}
	mustGet(t, v, ondisk.XattrNamePosixACLAccess, full.VFS())
	attrs, _ := v.reader().List()
	raw, _ := v.reader().Value(attrs[0])
	if !bytes.Equal(raw, ondisk.EncodeOCFS2ACL(full)) || attrs[0].Entry.Index() != ondisk.XattrIndexPosixACLAccess || len(attrs[0].Entry.Name) != 0 {
		t.Errorf("stored form: % x", raw)
	}
	if got, err := v.reader().ACL(AccessACL); err != nil || !slices.Equal(got, full) {
		t.Errorf("ACL(AccessACL) = %v %v", got, err)
	}
	// A default ACL on a directory; removing absent ACLs is no error.
	if err := v.set(ondisk.XattrNamePosixACLDefault, full.VFS(), 0); err != nil {
		t.Fatal(err)
	}
	mustGet(t, v, ondisk.XattrNamePosixACLDefault, full.VFS())
	for _, kind := range []ACLKind{AccessACL, DefaultACL, DefaultACL} {
		if err := v.remove(kind.Name()); err != nil {
			t.Fatalf("remove %s: %v", kind.Name(), err)
		}
	}
	if err := v.set(ondisk.XattrNamePosixACLAccess, []byte{1, 0, 0, 0}, 0); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("version 1: %v", err)
	}
	unordered := ACL{ent(tGroupObj, 5, undef), ent(tUserObj, 7, undef), ent(tOther, 1, undef)}
	if err := v.set(ondisk.XattrNamePosixACLAccess, unordered.VFS(), 0); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("unordered ACL: %v", err)
	}
	file := newMemVolume(t, memConfig{bs: 2048, cs: 4096}, 1)
	if err := file.set(ondisk.XattrNamePosixACLDefault, full.VFS(), 0); !errors.Is(err, syscall.EACCES) {
		t.Errorf("default ACL on a file: %v", err)
	}
	if err := file.remove(ondisk.XattrNamePosixACLDefault); err != nil {
		t.Errorf("removing a file's (absent) default ACL: %v", err)
	}
	if err := file.set(ondisk.XattrNamePosixACLAccess, nil, 0); err != nil {
		t.Errorf("an empty access ACL value: %v", err)
	}
	v.checkAccounting(t)
}
