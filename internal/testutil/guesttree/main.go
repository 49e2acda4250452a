// Command guesttree runs inside the kernel VM of o2go's tests (a static
// binary copied in through the share): `guesttree build DIR` writes a tree
// that exercises every way OCFS2 stores data and names, through the real
// kernel driver; `guesttree manifest DIR` prints, as JSON, what the kernel
// says about every file (stat fields with nanoseconds, sha256 of contents,
// symlink targets, xattrs), which the host then compares with what o2go
// reads from the image. `guesttree fragment FILE N` writes a file of N
// separate extents, for extent trees deeper than one level.
//
// It is a test fixture: package main under internal/testutil, built by the
// tests with CGO_ENABLED=0.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: guesttree build|manifest DIR | fragment FILE EXTENTS")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = build(os.Args[2])
	case "manifest":
		err = manifest(os.Args[2], os.Stdout)
	case "fragment":
		n := 0
		if len(os.Args) == 4 {
			n, _ = strconv.Atoi(os.Args[3])
		}
		err = fragment(os.Args[2], n)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "guesttree:", err)
		os.Exit(1)
	}
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

// build writes the tree. Sizes are chosen to reach each on-disk form:
// a >100 MiB file whose extents interleave with two others (extent tree of
// depth >= 1, given resv_level=0), holes, unwritten extents, inline files,
// fast and slow symlinks, hard links, a 20,000-entry indexed directory,
// xattrs inline, in a block and in buckets with values in clusters, 255-byte
// UTF-8 names and a reflink.
func build(root string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	rng := rand.New(rand.NewPCG(7, 11))
	// Random bytes are expensive under emulation: draw a 1 MiB pool once
	// and make every 4 KiB chunk distinct with its sequence number.
	pool := make([]byte, 1<<20)
	for i := range pool {
		pool[i] = byte(rng.Uint32())
	}
	seq := uint64(0)
	chunk := make([]byte, 4096)
	fill := func() {
		seq++
		copy(chunk, pool[(seq*4099)%(1<<20-4096):])
		for k := 0; k < 8; k++ {
			chunk[k] = byte(seq >> (8 * k))
		}
	}

	// Interleaved writers: big (101 MiB), mid1, mid2 (4 MiB each).
	names := []string{"big", "mid1", "mid2"}
	sizes := []int{101 << 20, 4 << 20, 4 << 20}
	files := make([]*os.File, len(names))
	for i, n := range names {
		files[i], err = os.Create(filepath.Join(root, n))
		check(err)
	}
	for off := 0; off < sizes[0]; off += len(chunk) {
		for i, f := range files {
			if off >= sizes[i] {
				continue
			}
			fill()
			_, err := f.Write(chunk)
			check(err)
		}
	}
	for _, f := range files {
		check(f.Close())
	}

	// Sparse: data, a 100 MiB hole, data, and a hole at the end.
	f, err := os.Create(filepath.Join(root, "sparse"))
	check(err)
	_, err = f.WriteAt([]byte("head"), 0)
	check(err)
	_, err = f.WriteAt([]byte("middle after a big hole"), 100<<20)
	check(err)
	_, err = f.WriteAt(chunk, 150<<20+123)
	check(err)
	check(f.Truncate(200 << 20))
	check(f.Close())

	// Preallocated: unwritten extents, partly written. (Not past i_size
	// with KEEP_SIZE: fsck.ocfs2 1.8.7 reports that valid kernel state as
	// INODE_SPARSE_SIZE, and the tree must pass fsck.)
	f, err = os.Create(filepath.Join(root, "prealloc"))
	check(err)
	check(unix.Fallocate(int(f.Fd()), 0, 0, 4<<20))
	_, err = f.WriteAt([]byte("written into an unwritten extent"), 1<<20)
	check(err)
	check(f.Close())

	// Inline data: small files.
	check(os.WriteFile(filepath.Join(root, "small"), []byte("hello, ocfs2\n"), 0o640))
	check(os.WriteFile(filepath.Join(root, "empty"), nil, 0o600))
	mid := make([]byte, 3000)
	for i := range mid {
		mid[i] = byte('a' + i%26)
	}
	check(os.WriteFile(filepath.Join(root, "inline3000"), mid, 0o644))

	// Symlinks: fast (fits in the inode) and slow (needs a block).
	check(os.Symlink("small", filepath.Join(root, "link-short")))
	long := strings.Repeat("long-target-component/", 180) + "end" // ~4 KB
	check(os.Symlink(long, filepath.Join(root, "link-long")))

	// Hard links, across directories.
	check(os.Mkdir(filepath.Join(root, "d"), 0o755))
	check(os.Link(filepath.Join(root, "small"), filepath.Join(root, "d", "small-hardlink")))
	check(os.Link(filepath.Join(root, "small"), filepath.Join(root, "small-hardlink2")))

	// An indexed directory of 20,000 entries.
	many := filepath.Join(root, "many")
	check(os.Mkdir(many, 0o755))
	for i := 0; i < 20000; i++ {
		check(os.WriteFile(filepath.Join(many, fmt.Sprintf("entry-%05d-%x", i, rng.Uint32())), nil, 0o644))
	}

	// 255-byte UTF-8 names (é is two bytes).
	utf := strings.Repeat("é", 127) + "x"
	check(os.WriteFile(filepath.Join(root, utf), []byte("utf-8 name"), 0o644))
	check(os.Mkdir(filepath.Join(root, "dir-"+strings.Repeat("ü", 125)+"z"), 0o700))

	// Xattrs: a few small (inline), some large values (value trees), and a
	// file with many so they spill into buckets.
	x := filepath.Join(root, "xattrs")
	check(os.WriteFile(x, []byte("has xattrs"), 0o644))
	check(unix.Setxattr(x, "user.small", []byte("v"), 0))
	check(unix.Setxattr(x, "user.empty", nil, 0))
	big := make([]byte, 10000)
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	check(unix.Setxattr(x, "user.bigvalue", big, 0))
	check(unix.Setxattr(x, "trusted.t", []byte("trusted value"), 0))
	b := filepath.Join(root, "buckets")
	check(os.WriteFile(b, nil, 0o644))
	for i := 0; i < 300; i++ {
		v := make([]byte, 20+i%150)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		check(unix.Setxattr(b, fmt.Sprintf("user.attr-%03d-%s", i, strings.Repeat("n", i%40)), v, 0))
	}

	// Ownership and modes.
	check(os.Chown(filepath.Join(root, "small"), 1234, 5678))
	check(os.Chmod(filepath.Join(root, "inline3000"), 0o4755))
	check(unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	check(unix.Mknod(filepath.Join(root, "chardev"), unix.S_IFCHR|0o600, int(unix.Mkdev(4, 64))))

	// A reflinked copy of mid1, then a write to the copy (copy on write).
	src, err := os.Open(filepath.Join(root, "mid1"))
	check(err)
	dst, err := os.Create(filepath.Join(root, "mid1-reflink"))
	check(err)
	check(unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())))
	_, err = dst.WriteAt([]byte("changed after the reflink"), 3<<20)
	check(err)
	check(src.Close())
	check(dst.Close())
	unix.Sync()
	return nil
}

// fragment writes file as n separate extents: 4 KiB of random bytes every
// 8 KiB, each write its own cluster with a hole after it (4 KiB clusters),
// so that the file needs n extent records. One process does what a shell
// loop of dd would take minutes for under emulation.
func fragment(file string, n int) error {
	if n <= 0 {
		return fmt.Errorf("fragment: the number of extents must be positive")
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(3, uint64(n)))
	chunk := make([]byte, 4096)
	for i := 0; i < n; i++ {
		for j := range chunk {
			chunk[j] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(chunk, int64(i)*8192); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Entry is what the kernel reports about one file; the host test decodes
// the same JSON.
type Entry struct {
	Path       string            `json:"path"` // relative to DIR, "/"-separated
	Mode       uint32            `json:"mode"` // st_mode, type bits included
	UID        uint32            `json:"uid"`
	GID        uint32            `json:"gid"`
	Size       int64             `json:"size"`
	Nlink      uint64            `json:"nlink"`
	Rdev       uint64            `json:"rdev"`
	Atime      [2]int64          `json:"atime"` // sec, nsec
	Mtime      [2]int64          `json:"mtime"`
	Ctime      [2]int64          `json:"ctime"`
	Ino        uint64            `json:"ino"`
	SHA256     string            `json:"sha256,omitempty"`
	Target     string            `json:"target,omitempty"`
	Xattrs     map[string]string `json:"xattrs,omitempty"` // name -> hex value
	DirEntries int               `json:"dir_entries,omitempty"`
}

func manifest(root string, w io.Writer) error {
	var out []Entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "lost+found" && d.IsDir() {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := Entry{Path: filepath.ToSlash(rel), Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: st.Size,
			Nlink: st.Nlink, Rdev: st.Rdev, Ino: st.Ino,
			Atime: [2]int64{st.Atim.Sec, st.Atim.Nsec}, Mtime: [2]int64{st.Mtim.Sec, st.Mtim.Nsec}, Ctime: [2]int64{st.Ctim.Sec, st.Ctim.Nsec}}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			e.SHA256 = hex.EncodeToString(h.Sum(nil))
		case unix.S_IFLNK:
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFDIR:
			ents, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			e.DirEntries = len(ents)
		}
		if e.Xattrs, err = xattrs(p); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

func xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return nil, err
	}
	m := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		val := make([]byte, 1<<16)
		k, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", p, name, err)
		}
		m[name] = hex.EncodeToString(val[:k])
	}
	return m, nil
}
