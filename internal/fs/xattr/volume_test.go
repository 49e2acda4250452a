package xattr_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"o2go/internal/base"
	"o2go/internal/fs/metacache"
	"o2go/internal/fs/volume"
	"o2go/internal/fs/xattr"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// mounted is a volume made by mkfs.ocfs2 and mounted read-write by o2go,
// with the inodes the tests put attributes on.
type mounted struct {
	t     testing.TB
	img   string
	m     *volume.Mounted
	paths map[uint64]string
}

func mountImage(t testing.TB, img string) *mounted {
	return mountImageWith(t, img, volume.DefaultMountOptions())
}

func mountImageWith(t testing.TB, img string, opts volume.MountOptions) *mounted {
	t.Helper()
	m, err := volume.Mount(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &mounted{t: t, img: img, m: m, paths: map[uint64]string{}}
}

func (v *mounted) unmount() {
	v.t.Helper()
	if err := v.m.Unmount(); err != nil {
		v.t.Fatal(err)
	}
}

// newFile makes a regular file in the root directory by hand (fs/inode
// is not this package's): with an empty extent list, or with inline data
// of size bytes.
func (v *mounted) newFile(name string, inline bool, size int) uint64 {
	t := v.t
	t.Helper()
	w := v.m.FS.W
	w.Meta.Lock()
	defer w.Meta.Unlock()
	h, err := w.Journal.Begin(8)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	obj, err := w.Alloc.Inodes.NewMetaBlock(h)
	if err != nil {
		t.Fatal(err)
	}
	bs := v.m.SB.BlockSize()
	d := &ondisk.Dinode{Generation: 7, SuballocSlot: obj.Slot, SuballocBit: obj.Bit, SuballocLoc: obj.GroupBlkno,
		Links: 1, Mode: 0o100644, Flags: ondisk.InodeValid, Blkno: obj.Blkno, FSGeneration: v.m.Super.FSGeneration}
	if inline {
		d.DynFeatures = ondisk.DynInlineData
		d.Inline = &ondisk.InlineData{Data: make([]byte, ondisk.InlineDataBytes(bs, 0))}
		for i := 0; i < size; i++ {
			d.Inline.Data[i] = byte('a' + i%26)
		}
		d.Size = uint64(size)
	} else {
		d.Extents = &ondisk.ExtentList{Count: uint16(ondisk.ExtentRecsPerInode(bs, 0))}
	}
	b, err := h.New(obj.Blkno)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Encode(b.Data); err != nil {
		t.Fatal(err)
	}
	h.Dirty(b, ondisk.DinodeCheckOffset)
	root, err := v.m.Cache.Dinode(v.m.SB.RootBlkno)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := v.m.Cache.Get(v.m.SB.RootBlkno)
	if err := h.Access(rb); err != nil {
		t.Fatal(err)
	}
	rd := *root
	if root.Inline == nil {
		t.Fatal("the root directory is not inline: these tests need inline-data")
	}
	rd.Inline = &ondisk.InlineData{Data: slices.Clone(root.Inline.Data)}
	if _, err := ondisk.InsertDirEntry(rd.Inline.Data, obj.Blkno, ondisk.FileTypeReg, name); err != nil {
		t.Fatal(err)
	}
	if err := rd.Encode(rb.Data); err != nil {
		t.Fatal(err)
	}
	h.Dirty(rb, ondisk.DinodeCheckOffset)
	v.paths[obj.Blkno] = "/" + name
	return obj.Blkno
}

// lookup resolves a path of the volume.
func (v *mounted) lookup(path string) uint64 {
	v.t.Helper()
	ino, err := v.m.FS.Resolve(path, false)
	if err != nil {
		v.t.Fatalf("%s: %v", path, err)
	}
	v.paths[ino] = path
	return ino
}

// op runs fn as one journaled, undoable operation on inode ino, the way
// fs/inode runs its operations; a full truncate log is flushed and the
// operation run again.
func (v *mounted) op(ino uint64, fn func(env xattr.Env, d *ondisk.Dinode, buf *metacache.Buffer) error) error {
	for {
		err := v.opOnce(ino, fn)
		if !errors.Is(err, xattr.ErrFreedFull) {
			return err
		}
		if err := v.m.FS.FlushTruncateLog(); err != nil {
			return err
		}
	}
}

func (v *mounted) opOnce(ino uint64, fn func(env xattr.Env, d *ondisk.Dinode, buf *metacache.Buffer) error) error {
	w := v.m.FS.W
	w.Meta.Lock()
	defer w.Meta.Unlock()
	h, err := w.Journal.Begin(64)
	if err != nil {
		return err
	}
	u := metacache.NewUndoTx(v.m.Cache, h)
	d0, err := v.m.Cache.Dinode(ino)
	if err == nil {
		var buf *metacache.Buffer
		buf, err = v.m.Cache.Get(ino)
		if err == nil {
			err = u.Access(buf)
		}
		if err == nil {
			d := d0.Clone()
			env := xattr.Env{C: v.m.Cache, SB: v.m.SB, Tx: u, Meta: w.Alloc.Blocks, Data: w.Alloc.Clusters, Freed: w.Alloc.Truncate}
			if err = fn(env, d, buf); err == nil {
				if err = d.Encode(buf.Data); err == nil {
					u.Dirty(buf, ondisk.DinodeCheckOffset)
				}
			}
		}
	}
	if err != nil {
		u.Rollback()
	} else {
		u.Finish()
	}
	if serr := h.Stop(); serr != nil && err == nil {
		err = serr
	}
	return err
}

func (v *mounted) set(ino uint64, name string, val []byte, flags xattr.SetFlags) error {
	return v.op(ino, func(env xattr.Env, d *ondisk.Dinode, buf *metacache.Buffer) error {
		return xattr.Set(env, d, buf, name, val, flags)
	})
}

func (v *mounted) remove(ino uint64, name string) error {
	return v.op(ino, func(env xattr.Env, d *ondisk.Dinode, buf *metacache.Buffer) error {
		return xattr.Remove(env, d, buf, name)
	})
}

func (v *mounted) destroy(ino uint64) {
	v.t.Helper()
	for {
		var done bool
		if err := v.op(ino, func(env xattr.Env, d *ondisk.Dinode, buf *metacache.Buffer) error {
			var err error
			done, err = xattr.Destroy(env, d, buf)
			return err
		}); err != nil {
			v.t.Fatal(err)
		}
		if done {
			return
		}
		if err := v.m.FS.FlushTruncateLog(); err != nil {
			v.t.Fatal(err)
		}
	}
}

func (v *mounted) reader(ino uint64) xattr.Inode {
	v.t.Helper()
	x, err := v.m.FS.Xattrs(ino)
	if err != nil {
		v.t.Fatal(err)
	}
	return x
}

// compare checks inode ino's attributes against want, names and values,
// and the invariants Check verifies.
func compare(t testing.TB, x xattr.Inode, want map[string][]byte, what string) {
	t.Helper()
	compareValues(t, x, want, what)
	if _, err := x.Check(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// compareValues checks names and values only: the kernel's buckets need
// not keep the bookkeeping o2go's do (Check).
func compareValues(t testing.TB, x xattr.Inode, want map[string][]byte, what string) {
	t.Helper()
	attrs, err := x.List()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(attrs) != len(want) {
		t.Fatalf("%s: %d attributes, want %d", what, len(attrs), len(want))
	}
	for _, a := range attrs {
		w, ok := want[a.Name]
		if !ok {
			t.Fatalf("%s: unexpected attribute %q", what, a.Name)
		}
		v, _, err := x.Get(a.Name)
		if err != nil {
			t.Fatalf("%s: %s: %v", what, a.Name, err)
		}
		if !bytes.Equal(v, w) {
			t.Fatalf("%s: %s: %d bytes differ from the %d expected", what, a.Name, len(v), len(w))
		}
	}
}

var debugfsEntry = regexp.MustCompile(`^\s*#(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$`)
var debugfsTotal = regexp.MustCompile(`Extended attributes in total: (\d+)`)

// debugfsAgrees checks `debugfs.ocfs2 -R "xattr -v PATH"`: the same number
// of attributes, and the same (type, local, name length, value length)
// for each, which is all debugfs prints of them.
func debugfsAgrees(t testing.TB, img, path string, want map[string][]byte) {
	t.Helper()
	out := realtools.Debugfs(t, img, "xattr -v "+path)
	var got []string
	for _, line := range strings.Split(out, "\n") {
		if m := debugfsEntry.FindStringSubmatch(line); m != nil {
			got = append(got, strings.Join(m[2:], " "))
		}
	}
	var exp []string
	for name, v := range want {
		idx, suffix, _ := ondisk.SplitXattrName(name)
		stored := len(v)
		if idx == ondisk.XattrIndexPosixACLAccess || idx == ondisk.XattrIndexPosixACLDefault {
			stored -= 4 // the VFS header is not stored
		}
		local := 0
		if stored <= ondisk.XattrInlineValueMax {
			local = 1
		}
		exp = append(exp, fmt.Sprintf("%d %d %d %d", idx, local, len(suffix), stored))
	}
	sort.Strings(got)
	sort.Strings(exp)
	if len(want) == 0 && strings.TrimSpace(out) == "" {
		return
	}
	m := debugfsTotal.FindStringSubmatch(out)
	if m == nil || m[1] != strconv.Itoa(len(want)) {
		t.Fatalf("debugfs xattr %s: total %v, want %d\n%s", path, m, len(want), out)
	}
	if !slices.Equal(got, exp) {
		t.Fatalf("debugfs xattr %s lists other entries than o2go wrote:\n got %v\nwant %v", path, got, exp)
	}
}

// TestModelOnRealVolumes sets, replaces and removes thousands of
// attributes at random on inodes of volumes made by mkfs.ocfs2, through
// the journal, checking every step against a model; then fsck.ocfs2 must
// find the volume clean, debugfs.ocfs2 must list what o2go wrote, and a
// fresh open must read it all back.
func TestModelOnRealVolumes(t *testing.T) {
	realtools.Require(t)
	geos := [][]string{
		{"-b", "4096", "-C", "4096", "--fs-features=local"},
		{"-b", "512", "-C", "4096", "--fs-features=local,noindexed-dirs"},
		{"-b", "1024", "-C", "8192", "--fs-features=local,metaecc,noindexed-dirs"},
		{"-b", "2048", "-C", "65536", "--fs-features=local"},
		{"-b", "4096", "-C", "16384", "--fs-features=local,metaecc"},
	}
	total := map[string]int{}
	for gi, geo := range geos {
		t.Run(strings.Join(geo[:4], ""), func(t *testing.T) {
			img := realtools.MkfsImage(t, 400<<20, append(geo, "-N", "2")...)
			v := mountImage(t, img)
			inodes := []uint64{
				v.newFile("plain", false, 0),
				v.newFile("small", true, 40),
				v.lookup("/"),
				v.lookup("/lost+found"),
			}
			r := base.NewRand(uint64(gi) + 100)
			models := map[uint64]map[string][]byte{}
			names := map[uint64][]string{}
			for i, ino := range inodes {
				models[ino] = map[string][]byte{}
				names[ino] = xattr.NameGen(r, []int{150, 12, 60, 250}[i])
			}
			seen := map[string]int{}
			const ops = 2500
			for op := 1; op <= ops; op++ {
				ino := inodes[r.Intn(len(inodes))]
				model := models[ino]
				name := names[ino][r.Intn(len(names[ino]))]
				before := xattr.LayoutOf(t, v.reader(ino))
				_, exists := model[name]
				var err error
				if r.Chance(0.62) {
					val := xattr.ValueGen(r, true)
					flags := xattr.SetFlags(0)
					if r.Chance(0.1) {
						flags = xattr.Replace
					}
					err = v.set(ino, name, val, flags)
					if flags == xattr.Replace && !exists {
						if !errors.Is(err, syscall.ENODATA) {
							t.Fatalf("op %d: replace of missing %s: %v", op, name, err)
						}
						continue
					}
					if err == nil {
						model[name] = val
					}
				} else {
					err = v.remove(ino, name)
					if !exists {
						if !errors.Is(err, syscall.ENODATA) {
							t.Fatalf("op %d: remove of missing %s: %v", op, name, err)
						}
						continue
					}
					if err == nil {
						delete(model, name)
					}
				}
				if err != nil {
					t.Fatalf("op %d on %s %s: %v", op, v.paths[ino], name, err)
				}
				after := v.reader(ino)
				xattr.CountTransitions(seen, before, xattr.LayoutOf(t, after))
				if op%250 == 0 {
					for _, ino := range inodes {
						compare(t, v.reader(ino), models[ino], fmt.Sprintf("op %d %s", op, v.paths[ino]))
					}
				} else {
					list, err := after.List()
					if err != nil || len(list) != len(model) {
						t.Fatalf("op %d: %s lists %d names (%v), model %d", op, v.paths[ino], len(list), err, len(model))
					}
					for _, a := range list {
						if _, ok := model[a.Name]; !ok {
							t.Fatalf("op %d: %s lists %s, not in the model", op, v.paths[ino], a.Name)
						}
					}
					got, found, err := after.Get(name)
					if err != nil || found != (model[name] != nil) || !bytes.Equal(got, model[name]) {
						t.Fatalf("op %d: %s %s reads %d bytes (found %v, %v), model %d", op, v.paths[ino], name, len(got), found, err, len(model[name]))
					}
				}
			}
			t.Logf("transitions: %v", seen)
			for k, n := range seen {
				total[k] += n
			}
			v.unmount()
			realtools.RequireFsckClean(t, img)
			for _, ino := range inodes {
				debugfsAgrees(t, img, v.paths[ino], models[ino])
			}
			// A fresh mount reads everything back from the disk; then the
			// attributes of one file are destroyed, as a delete does.
			v = mountImage(t, img)
			for _, ino := range inodes {
				compare(t, v.reader(ino), models[ino], "after remount "+v.paths[ino])
			}
			v.destroy(inodes[0])
			compare(t, v.reader(inodes[0]), nil, "after destroy")
			v.unmount()
			realtools.RequireFsckClean(t, img)
		})
	}
	for _, want := range []string{"inode area taken", "inode area given back", "xattr block created", "xattr block freed",
		"block indexed", "bucket added", "bucket run added",
		"attr inode -> outside", "attr outside -> inode", "value local -> clusters", "value clusters -> local"} {
		if total[want] == 0 {
			t.Errorf("no volume saw %q", want)
		}
	}
}

// TestRealVolumeScenarios drives the transitions a random run rarely
// makes on a real allocator: a bucket run that grows by the next cluster
// (many small attributes on a fresh file), and a value tree that needs an
// extent block (a 64 KiB value on a volume whose free space is chopped
// into single clusters).
func TestRealVolumeScenarios(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 96<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local")
	opts := volume.DefaultMountOptions()
	opts.LocalAllocMB = -1 // claims go to the global bitmap, where the holes are
	v := mountImageWith(t, img, opts)

	dense := v.newFile("dense", false, 0)
	want := map[string][]byte{}
	seen := map[string]int{}
	for i := 0; i < 700; i++ {
		name := fmt.Sprintf("user.dense.%04d", i)
		val := []byte(strings.Repeat("d", i%60))
		before := xattr.LayoutOf(t, v.reader(dense))
		if err := v.set(dense, name, val, 0); err != nil {
			t.Fatal(err)
		}
		xattr.CountTransitions(seen, before, xattr.LayoutOf(t, v.reader(dense)))
		want[name] = val
	}
	compare(t, v.reader(dense), want, "/dense")
	if seen["bucket run grown"] == 0 {
		t.Errorf("700 small attributes never grew a bucket run by a contiguous cluster: %v", seen)
	}

	// Fill the volume with a file, then punch every other cluster.
	filler := v.newFile("filler", false, 0)
	var size int64
	for _, n := range []int{1 << 20, 64 << 10, 4 << 10} {
		chunk := bytes.Repeat([]byte("f"), n)
		for {
			if _, err := v.m.FS.Write(filler, chunk, size); err != nil {
				if errors.Is(err, syscall.ENOSPC) {
					break
				}
				t.Fatal(err)
			}
			size += int64(n)
		}
	}
	for off := int64(0); off < size; off += 8192 {
		if err := v.m.FS.Fallocate(filler, 0x01|0x02, off, 4096); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.m.FS.FlushTruncateLog(); err != nil {
		t.Fatal(err)
	}
	frag := v.newFile("fragmented", false, 0)
	big := bytes.Repeat([]byte("0123456789abcdef"), xattr.MaxValueLen/16)
	if err := v.set(frag, "user.big", big, 0); err != nil {
		t.Fatal(err)
	}
	if !xattr.HasDeepValue(xattr.LayoutOf(t, v.reader(frag))) {
		t.Error("a 64 KiB value on single free clusters kept its tree in the root")
	}
	compare(t, v.reader(frag), map[string][]byte{"user.big": big}, "/fragmented")
	if err := v.set(frag, "user.big", big[:5000], 0); err != nil {
		t.Fatal(err)
	}
	compare(t, v.reader(frag), map[string][]byte{"user.big": big[:5000]}, "/fragmented shrunk")
	if err := v.set(frag, "user.big", big, 0); err != nil {
		t.Fatal(err)
	}
	v.unmount()
	realtools.RequireFsckClean(t, img)
	debugfsAgrees(t, img, "/dense", want)
	debugfsAgrees(t, img, "/fragmented", map[string][]byte{"user.big": big})
}

// TestDeepBucketTreeOnRealVolume grows a bucket tree past the 27 runs a
// 512-byte xattr block holds, values in clusters keeping bucket clusters
// apart, and hands the result to fsck.ocfs2 and debugfs.ocfs2.
func TestDeepBucketTreeOnRealVolume(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 128<<20, "-b", "512", "-C", "4096", "-N", "2", "--fs-features=local,noindexed-dirs")
	v := mountImage(t, img)
	ino := v.newFile("deep", false, 0)
	r := base.NewRand(5)
	want := map[string][]byte{}
	for i := 0; i < 2500; i++ {
		name := fmt.Sprintf("user.deep.%05d", i)
		n := 1 + r.Intn(40)
		if i%4 == 0 {
			n = 100 + r.Intn(300)
		}
		val := xattr.ValueGen(r, false)[:0]
		val = append(val, bytes.Repeat([]byte{byte(i)}, n)...)
		if err := v.set(ino, name, val, 0); err != nil {
			t.Fatal(err)
		}
		want[name] = val
	}
	compare(t, v.reader(ino), want, "/deep")
	xb, err := v.m.Cache.XattrBlock(v.reader(ino).Inode.XattrLoc)
	if err != nil {
		t.Fatal(err)
	}
	if xb.Tree == nil || xb.Tree.List.TreeDepth == 0 {
		t.Errorf("2500 attributes on 512-byte blocks left the bucket tree in the xattr block")
	}
	v.unmount()
	realtools.RequireFsckClean(t, img)
	debugfsAgrees(t, img, "/deep", want)
}
