package xattr

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

func mustSet(t *testing.T, v *memVolume, name string, val []byte) {
	t.Helper()
	if err := v.set(name, val, 0); err != nil {
		t.Fatalf("set %s: %v", name, err)
	}
}

func mustGet(t *testing.T, v *memVolume, name string, want []byte) {
	t.Helper()
	got, ok, err := v.reader().Get(name)
	if err != nil || !ok || !bytes.Equal(got, want) {
		t.Fatalf("get %s: %d bytes, found %v, %v; want %d bytes", name, len(got), ok, err, len(want))
	}
}

func TestPlacementWalk(t *testing.T) {
	v := newMemVolume(t, memConfig{bs: 4096, cs: 4096, metaECC: true}, 1)
	small := []byte("small value")
	mustSet(t, v, "user.a", small)
	l := layoutOf(t, v.reader())
	if !l.inline || l.block || l.where["user.a"] != InInode {
		t.Fatalf("first small attribute not in the inode: %+v", l)
	}
	d := v.reader().Inode
	if d.Extents.Count != uint16(ondisk.ExtentRecsPerInode(4096, 256)) || d.XattrInlineSize != 256 {
		t.Fatalf("l_count %d, inline size %d after taking the area", d.Extents.Count, d.XattrInlineSize)
	}
	// Long names fill the 256-byte area: the next goes to a block.
	long := strings.Repeat("n", 200)
	mustSet(t, v, "user."+long, small)
	l = layoutOf(t, v.reader())
	if !l.block || l.where["user."+long] != InBlock {
		t.Fatalf("second attribute not in the block: %+v", l)
	}
	// A value in clusters, then back to local.
	big := bytes.Repeat([]byte("0123456789"), 900)
	mustSet(t, v, "user.a", big)
	mustGet(t, v, "user.a", big)
	if l = layoutOf(t, v.reader()); l.local["user.a"] {
		t.Fatal("a 9000-byte value is local")
	}
	mustSet(t, v, "user.a", small)
	if l = layoutOf(t, v.reader()); !l.local["user.a"] {
		t.Fatal("an 11-byte value is not local")
	}
	v.checkAccounting(t)
	// Removing the block's only attribute frees the block; removing the
	// inode's gives the area back.
	if err := v.remove("user." + long); err != nil {
		t.Fatal(err)
	}
	if l = layoutOf(t, v.reader()); l.block {
		t.Fatal("empty xattr block kept")
	}
	if err := v.remove("user.a"); err != nil {
		t.Fatal(err)
	}
	d = v.reader().Inode
	if d.DynFeatures&(ondisk.DynInlineXattr|ondisk.DynHasXattr) != 0 || d.Extents.Count != uint16(ondisk.ExtentRecsPerInode(4096, 0)) {
		t.Fatalf("after removing everything: dyn 0x%x, l_count %d", d.DynFeatures, d.Extents.Count)
	}
	if err := v.remove("user.a"); !errors.Is(err, syscall.ENODATA) {
		t.Fatalf("remove of a missing name: %v", err)
	}
	v.checkAccounting(t)
}

func TestBucketsGrowAndShrink(t *testing.T) {
	for _, c := range []memConfig{
		{bs: 512, cs: 4096},
		{bs: 4096, cs: 4096, fragment: 1},
		{bs: 1024, cs: 16384, metaECC: true},
		{bs: 2048, cs: 8192, fragment: 1},
	} {
		t.Run(fmt.Sprintf("bs%d-cs%d-frag%v", c.bs, c.cs, c.fragment), func(t *testing.T) {
			v := newMemVolume(t, c, 3)
			want := map[string][]byte{}
			for i := 0; i < 600; i++ {
				name := fmt.Sprintf("user.attribute-number-%04d", i)
				val := []byte(strings.Repeat(fmt.Sprint(i), 1+i%20))
				if i%50 == 0 {
					val = bytes.Repeat([]byte{byte(i)}, 5000)
				}
				mustSet(t, v, name, val)
				want[name] = val
			}
			l := layoutOf(t, v.reader())
			if !l.indexed || l.buckets < 4 {
				t.Fatalf("600 attributes: indexed %v, %d buckets", l.indexed, l.buckets)
			}
			t.Logf("%d buckets in %d runs", l.buckets, len(l.runs))
			for name, val := range want {
				mustGet(t, v, name, val)
			}
			v.checkAccounting(t)
			for name := range want {
				if err := v.remove(name); err != nil {
					t.Fatal(err)
				}
			}
			u := v.checkAccounting(t)
			if u.Attrs != 0 {
				t.Fatalf("%d attributes left", u.Attrs)
			}
			// The emptied tree keeps its buckets, as the kernel's does, and
			// takes new names again.
			mustSet(t, v, "user.again", []byte("x"))
			mustGet(t, v, "user.again", []byte("x"))
		})
	}
}

func TestLimitsAndNamespaces(t *testing.T) {
	v := newMemVolume(t, memConfig{bs: 4096, cs: 4096}, 1)
	cases := []struct {
		name string
		val  []byte
		want error
	}{
		{"user.", nil, syscall.EINVAL},
		{"trusted.", nil, syscall.EINVAL},
		{"security.", nil, syscall.EINVAL},
		{"system.foo", nil, syscall.EOPNOTSUPP},
		{"os2.foo", nil, syscall.EOPNOTSUPP},
		{"foo", nil, syscall.EOPNOTSUPP},
		{"user." + strings.Repeat("x", 251), nil, syscall.ERANGE},
		{"user.big", make([]byte, MaxValueLen+1), syscall.E2BIG},
		{"user." + strings.Repeat("x", 250), make([]byte, MaxValueLen), nil},
		{"user.nul\x00x", nil, syscall.EINVAL},
		{"security.selinux", []byte("system_u:object_r:etc_t:s0\x00"), nil},
		{"trusted.overlay.opaque", []byte("y"), nil},
		{"user.empty", []byte{}, nil},
	}
	for _, c := range cases {
		err := v.set(c.name, c.val, 0)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("set %.40q (%d bytes): %v, want %v", c.name, len(c.val), err, c.want)
		}
		if c.want == nil {
			mustGet(t, v, c.name, c.val)
		}
	}
	if err := v.set("user.empty", []byte("z"), Create); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("create over an existing name: %v", err)
	}
	if err := v.set("user.nothere", []byte("z"), Replace); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("replace of a missing name: %v", err)
	}
	v.checkAccounting(t)

	sym := newMemVolume(t, memConfig{bs: 4096, cs: 4096, inodeKind: "symlink"}, 1)
	if err := sym.set("user.x", []byte("1"), 0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("user.* on a symlink: %v", err)
	}
	if err := sym.set(ondisk.XattrNamePosixACLAccess, ACLFromMode(0o644).VFS(), 0); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("ACL on a symlink: %v", err)
	}
	mustSet(t, sym, "trusted.x", []byte("on a symlink"))
	mustGet(t, sym, "trusted.x", []byte("on a symlink"))
	if d := sym.reader().Inode; d.DynFeatures&ondisk.DynInlineXattr == 0 || string(d.FastSymlink) != "a/target/of/some/length" {
		t.Fatalf("symlink: dyn 0x%x target %q", d.DynFeatures, d.FastSymlink)
	}
	if err := sym.remove("trusted.x"); err != nil {
		t.Fatal(err)
	}
	if d := sym.reader().Inode; d.DynFeatures != 0 || string(d.FastSymlink) != "a/target/of/some/length" {
		t.Fatalf("symlink after remove: dyn 0x%x target %q", d.DynFeatures, d.FastSymlink)
	}
}

func TestInlineDataGivesRoom(t *testing.T) {
	v := newMemVolume(t, memConfig{bs: 4096, cs: 4096, inodeKind: "inline"}, 1)
	full := ondisk.InlineDataBytes(4096, 0)
	mustSet(t, v, "user.x", []byte("1"))
	d := v.reader().Inode
	if len(d.Inline.Data) != full-256 || d.Size != 100 || !bytes.HasPrefix(d.Inline.Data, []byte("some inline file data")) {
		t.Fatalf("inline data: id_count %d (want %d), size %d", len(d.Inline.Data), full-256, d.Size)
	}
	if err := v.remove("user.x"); err != nil {
		t.Fatal(err)
	}
	d = v.reader().Inode
	if len(d.Inline.Data) != full || !bytes.HasPrefix(d.Inline.Data, []byte("some inline file data")) {
		t.Fatalf("inline data after giving back: id_count %d", len(d.Inline.Data))
	}
	// An inline directory has no room to give: its attributes go to a block.
	dir := newMemVolume(t, memConfig{bs: 4096, cs: 4096, inodeKind: "inlinedir"}, 1)
	mustSet(t, dir, "user.x", []byte("1"))
	if l := layoutOf(t, dir.reader()); l.inline || l.where["user.x"] != InBlock {
		t.Fatalf("inline directory: %+v", l)
	}
}

func TestTruncateLogFull(t *testing.T) {
	v := newMemVolume(t, memConfig{bs: 4096, cs: 4096, fragment: 1, logCap: 3}, 9)
	v.data.maxRun = 1
	big := bytes.Repeat([]byte("v"), 40000) // ten clusters, scattered
	mustSet(t, v, "user.big", big)
	err := v.remove("user.big")
	if !errors.Is(err, ErrFreedFull) {
		t.Fatalf("freeing ten scattered clusters into a 3-record log: %v", err)
	}
	mustGet(t, v, "user.big", big)
	v.log.capacity = 64
	if err := v.remove("user.big"); err != nil {
		t.Fatal(err)
	}
	v.checkAccounting(t)
}

func TestDestroyInSteps(t *testing.T) {
	for _, c := range []memConfig{
		{bs: 4096, cs: 4096, fragment: 0.5, logCap: 6},
		{bs: 512, cs: 8192, fragment: 0.5, logCap: 4, metaECC: true},
		{bs: 2048, cs: 4096, fragment: 1, logCap: 5, inodeKind: "inline"},
	} {
		t.Run(fmt.Sprintf("bs%d-cs%d-%s", c.bs, c.cs, c.inodeKind), func(t *testing.T) {
			v := newMemVolume(t, c, 5)
			v.data.maxRun = 2
			for i := 0; i < 300; i++ {
				val := bytes.Repeat([]byte{byte(i)}, []int{3, 90, 9000, 20000}[i%4])
				for {
					err := v.set(fmt.Sprintf("user.destroy-%03d", i), val, 0)
					if errors.Is(err, ErrFreedFull) {
						v.flushLog()
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			if l := layoutOf(t, v.reader()); !l.indexed || !l.deepValue || l.inline != (c.bs > 512) {
				t.Fatalf("setup: indexed %v, deep values %v, in-inode area %v", l.indexed, l.deepValue, l.inline)
			}
			v.checkAccounting(t)
			steps := 0
			for {
				var done bool
				if err := v.op(func(env Env, d *ondisk.Dinode, buf *metacache.Buffer) error {
					var err error
					done, err = Destroy(env, d, buf)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				steps++
				v.checkAccounting(t)
				if done {
					break
				}
				v.flushLog()
				if steps > 1000 {
					t.Fatal("Destroy makes no progress")
				}
			}
			v.flushLog()
			d := v.reader().Inode
			if d.DynFeatures&(ondisk.DynHasXattr|ondisk.DynInlineXattr) != 0 || d.XattrLoc != 0 || d.XattrInlineSize != 0 {
				t.Fatalf("after Destroy: dyn 0x%x loc %d inline %d", d.DynFeatures, d.XattrLoc, d.XattrInlineSize)
			}
			if len(v.data.used) != 0 || len(v.meta.used) != 0 {
				t.Fatalf("after Destroy: %d clusters and %d metadata blocks still in use", len(v.data.used), len(v.meta.used))
			}
			t.Logf("destroyed in %d steps", steps)
		})
	}
}

// TestDeepBucketTree grows a bucket tree past what the xattr block's root
// list holds (27 runs on 512-byte blocks), so the tree takes an extent
// block, then empties it again.
func TestDeepBucketTree(t *testing.T) {
	v := newMemVolume(t, memConfig{bs: 512, cs: 4096, fragment: 1, clusters: 4096}, 8)
	v.data.maxRun = 1
	want := map[string][]byte{}
	for i := 0; i < 1500; i++ {
		name := fmt.Sprintf("user.deep-tree-%05d", i)
		val := bytes.Repeat([]byte{byte(i)}, 1+i%70)
		mustSet(t, v, name, val)
		want[name] = val
	}
	xb, err := v.c.XattrBlock(v.reader().Inode.XattrLoc)
	if err != nil {
		t.Fatal(err)
	}
	if !xb.Indexed() || xb.Tree.List.TreeDepth == 0 {
		t.Fatalf("1500 attributes in scattered clusters: indexed %v, tree depth %d", xb.Indexed(), xb.Tree.List.TreeDepth)
	}
	l := layoutOf(t, v.reader())
	t.Logf("%d buckets in %d runs, tree depth %d", l.buckets, len(l.runs), xb.Tree.List.TreeDepth)
	for name, val := range want {
		mustGet(t, v, name, val)
	}
	v.checkAccounting(t)
	for {
		var done bool
		if err := v.op(func(env Env, d *ondisk.Dinode, buf *metacache.Buffer) error {
			var err error
			done, err = Destroy(env, d, buf)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		v.checkAccounting(t)
		if done {
			break
		}
	}
	if len(v.data.used) != 0 || len(v.meta.used) != 0 {
		t.Fatalf("after Destroy: %d clusters and %d metadata blocks in use", len(v.data.used), len(v.meta.used))
	}
}
