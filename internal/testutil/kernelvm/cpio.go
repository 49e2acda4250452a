package kernelvm

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// cpioArchive is an initramfs being assembled in memory: the "newc"
// (SVR4, magic 070701) format that the kernel unpacks into its rootfs.
// Entries are written in path order so that an archive's bytes depend only
// on its contents (the cache key of the base image relies on that).
type cpioArchive struct {
	entries map[string]cpioEntry
}

type cpioEntry struct {
	mode         uint32 // file type and permission bits, as in stat(2)
	data         []byte // file contents, or the target of a symlink
	major, minor uint32 // of a device node
}

const (
	cpioDir     = 0o040000
	cpioRegular = 0o100000
	cpioSymlink = 0o120000
	cpioCharDev = 0o020000
)

func newCPIO() *cpioArchive { return &cpioArchive{entries: map[string]cpioEntry{}} }

// cpioName turns a guest path into the archive's form: relative, no "./".
func cpioName(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// addParents adds p's parent directories (mode 0755) that are not in yet.
func (a *cpioArchive) addParents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := a.entries[d]; ok {
			continue
		}
		a.entries[d] = cpioEntry{mode: cpioDir | 0o755}
	}
}

// Dir adds a directory.
func (a *cpioArchive) Dir(p string, perm uint32) {
	p = cpioName(p)
	a.addParents(p)
	a.entries[p] = cpioEntry{mode: cpioDir | perm&0o7777}
}

// File adds (or replaces) a regular file.
func (a *cpioArchive) File(p string, perm uint32, data []byte) {
	p = cpioName(p)
	a.addParents(p)
	a.entries[p] = cpioEntry{mode: cpioRegular | perm&0o7777, data: data}
}

// Symlink adds a symbolic link p -> target unless p is already present.
func (a *cpioArchive) Symlink(p, target string) {
	p = cpioName(p)
	if _, ok := a.entries[p]; ok {
		return
	}
	a.addParents(p)
	a.entries[p] = cpioEntry{mode: cpioSymlink | 0o777, data: []byte(target)}
}

// CharDev adds a character device node (the kernel needs /dev/console
// before /init can mount devtmpfs).
func (a *cpioArchive) CharDev(p string, perm, major, minor uint32) {
	p = cpioName(p)
	a.addParents(p)
	a.entries[p] = cpioEntry{mode: cpioCharDev | perm&0o7777, major: major, minor: minor}
}

// WriteTo writes the archive, including the TRAILER!!! entry, padded to a
// multiple of 4 bytes so that another archive can be appended.
func (a *cpioArchive) WriteTo(w io.Writer) (int64, error) {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names) // parents sort before their children
	cw := &countingWriter{w: w}
	for i, n := range names {
		e := a.entries[n]
		if err := writeCPIOEntry(cw, uint32(i+1), n, e); err != nil {
			return cw.n, err
		}
	}
	err := writeCPIOEntry(cw, 0, "TRAILER!!!", cpioEntry{})
	return cw.n, err
}

func writeCPIOEntry(w *countingWriter, ino uint32, name string, e cpioEntry) error {
	nlink := uint32(1)
	if e.mode&0o170000 == cpioDir {
		nlink = 2
	}
	// 13 fields of 8 hex digits after the magic: ino, mode, uid, gid,
	// nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
	// namesize (with NUL), check. mtime 0 keeps the bytes reproducible.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, e.mode, 0, 0, nlink, 0, len(e.data), 0, 0, e.major, e.minor, len(name)+1, 0)
	if _, err := io.WriteString(w, hdr+name+"\x00"); err != nil {
		return err
	}
	if err := w.pad4(); err != nil {
		return err
	}
	if _, err := w.Write(e.data); err != nil {
		return err
	}
	return w.pad4()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) pad4() error {
	if r := c.n % 4; r != 0 {
		_, err := c.Write(make([]byte, 4-r))
		return err
	}
	return nil
}
