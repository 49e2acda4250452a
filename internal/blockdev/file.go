package blockdev

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DirectMode says whether File uses O_DIRECT.
type DirectMode int

const (
	// DirectAuto uses O_DIRECT when the file system under the path supports
	// it (block devices, ext4, xfs...) and buffered I/O otherwise (tmpfs).
	DirectAuto DirectMode = iota
	// DirectOn requires O_DIRECT and fails Open when it is not supported.
	DirectOn
	// DirectOff uses the page cache (tools on unshared images, tests).
	DirectOff
)

// OpenOptions configure Open.
type OpenOptions struct {
	ReadOnly bool
	Direct   DirectMode
}

// File is a Device over a block device or an image file.
type File struct {
	f          *os.File
	name       string
	size       int64
	sectorSize int
	align      int // alignment O_DIRECT needs for offsets, lengths and memory
	direct     bool
	readOnly   bool
	isBlock    bool
	rmw        sync.Mutex // serializes read-modify-write of partial alignment units
}

// Open opens path (a block device or a regular file) as a Device.
func Open(path string, opts OpenOptions) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	isBlock := st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
	if !isBlock && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a block device or regular file", path)
	}
	flags := unix.O_CLOEXEC
	if opts.ReadOnly {
		flags |= unix.O_RDONLY
	} else {
		flags |= unix.O_RDWR
	}
	d := &File{name: path, readOnly: opts.ReadOnly, isBlock: isBlock}
	fd := -1
	if opts.Direct != DirectOff {
		fd, err = unix.Open(path, flags|unix.O_DIRECT, 0)
		if err == nil {
			d.direct = true
		} else if opts.Direct == DirectOn || !errors.Is(err, unix.EINVAL) {
			return nil, &os.PathError{Op: "open (O_DIRECT)", Path: path, Err: err}
		}
	}
	if fd < 0 {
		if fd, err = unix.Open(path, flags, 0); err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
	}
	d.f = os.NewFile(uintptr(fd), path)
	if err := d.probeGeometry(); err != nil {
		d.f.Close()
		return nil, err
	}
	return d, nil
}

func (d *File) probeGeometry() error {
	fd := int(d.f.Fd())
	d.sectorSize = 512
	if d.isBlock {
		sz, err := unix.IoctlGetInt(fd, unix.BLKSSZGET)
		if err != nil {
			return fmt.Errorf("%s: BLKSSZGET: %w", d.name, err)
		}
		d.sectorSize = sz
		var size uint64
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); e != 0 {
			return fmt.Errorf("%s: BLKGETSIZE64: %w", d.name, e)
		}
		d.size = int64(size)
	} else {
		st, err := d.f.Stat()
		if err != nil {
			return err
		}
		d.size = st.Size()
	}
	d.align = d.sectorSize
	if d.direct {
		var sx unix.Statx_t
		if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &sx); err == nil && sx.Mask&unix.STATX_DIOALIGN != 0 && sx.Dio_offset_align != 0 {
			d.align = max(int(sx.Dio_offset_align), int(sx.Dio_mem_align))
		}
		if d.align < 512 {
			d.align = 512
		}
	}
	return nil
}

// Name implements Device.
func (d *File) Name() string { return d.name }

// Size implements Device.
func (d *File) Size() int64 { return d.size }

// SectorSize implements Device.
func (d *File) SectorSize() int { return d.sectorSize }

// Direct reports whether the device bypasses the page cache.
func (d *File) Direct() bool { return d.direct }

// Alignment is the unit direct I/O needs for offsets, lengths and buffers.
// Callers that allocate with AlignedBuffer(n, d.Alignment()) and read whole
// units avoid a bounce copy.
func (d *File) Alignment() int { return d.align }

// IsBlockDevice reports whether the device is a block device (not a file).
func (d *File) IsBlockDevice() bool { return d.isBlock }

// Fd returns the file descriptor (for ioctls such as BLKDISCARD).
func (d *File) Fd() uintptr { return d.f.Fd() }

func (d *File) aligned(p []byte, off int64) bool {
	a := int64(d.align)
	return !d.direct || (off%a == 0 && int64(len(p))%a == 0 && (len(p) == 0 || uintptr(unsafe.Pointer(&p[0]))%uintptr(a) == 0))
}

// ReadAt implements Device. Unaligned requests under O_DIRECT go through a
// bounce buffer. Reading past the end returns io.EOF after the bytes read.
func (d *File) ReadAt(p []byte, off int64) (int, error) {
	if d.aligned(p, off) {
		return d.f.ReadAt(p, off)
	}
	a := int64(d.align)
	start := off / a * a
	end := (off + int64(len(p)) + a - 1) / a * a
	if end > d.size {
		end = (d.size + a - 1) / a * a
	}
	if end <= start {
		return 0, ioEOF(off, d.size)
	}
	buf := AlignedBuffer(int(end-start), d.align)
	n, err := d.f.ReadAt(buf, start)
	got := copy(p, buf[min(int(off-start), n):n])
	if got < len(p) && err == nil {
		err = ioEOF(off+int64(got), d.size)
	}
	return got, err
}

// WriteAt implements Device. Aligned writes go straight to the device; a
// write smaller than the alignment unit is done read-modify-write under a
// lock (only possible when the file system under an image needs more than
// sector alignment; never on block devices).
func (d *File) WriteAt(p []byte, off int64) (int, error) {
	if d.readOnly {
		return 0, ErrReadOnly
	}
	if d.aligned(p, off) {
		return d.f.WriteAt(p, off)
	}
	a := int64(d.align)
	start := off / a * a
	end := (off + int64(len(p)) + a - 1) / a * a
	buf := AlignedBuffer(int(end-start), d.align)
	d.rmw.Lock()
	defer d.rmw.Unlock()
	if n, err := d.f.ReadAt(buf, start); err != nil && n < len(buf) {
		// Past the end of an image file: the tail reads as zeros.
		clear(buf[n:])
	}
	copy(buf[off-start:], p)
	if _, err := d.f.WriteAt(buf, start); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Sync implements Device (fdatasync: data and the metadata needed to read it).
func (d *File) Sync() error {
	if d.readOnly {
		return nil
	}
	return unix.Fdatasync(int(d.f.Fd()))
}

// Close implements Device.
func (d *File) Close() error { return d.f.Close() }

// AlignedBuffer returns a zeroed slice of n bytes whose address is a
// multiple of align (a power of two), as O_DIRECT requires.
func AlignedBuffer(n, align int) []byte {
	if align <= 1 {
		return make([]byte, n)
	}
	raw := make([]byte, n+align)
	off := int(uintptr(unsafe.Pointer(&raw[0])) & uintptr(align-1))
	if off != 0 {
		off = align - off
	}
	return raw[off : off+n : off+n]
}

func ioEOF(off, size int64) error {
	if off >= size {
		return io.EOF
	}
	return io.ErrUnexpectedEOF
}
