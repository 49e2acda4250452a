package testutil

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// AlignedBuffer returns n bytes aligned for O_DIRECT.
func AlignedBuffer(n int) []byte {
	const align = 4096
	b := make([]byte, n+align)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (align - 1))
	if off != 0 {
		off = align - off
	}
	return b[off : off+n : off+n]
}

// SeqWriteDirect writes size bytes to a new file at p with O_DIRECT, in
// requests of len(buf) (an AlignedBuffer), then fsyncs; it returns the
// time taken.
func SeqWriteDirect(p string, buf []byte, size int64) (time.Duration, error) {
	start := time.Now()
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_DIRECT, 0o644)
	if err != nil {
		return 0, err
	}
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// SeqReadDirect reads the file at p to its end with O_DIRECT, in requests
// of len(buf); it returns the time taken and the bytes read.
func SeqReadDirect(p string, buf []byte) (time.Duration, int64, error) {
	start := time.Now()
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var total int64
	for {
		n, err := f.Read(buf)
		total += int64(n)
		if errors.Is(err, io.EOF) || n == 0 && err == nil {
			break
		}
		if err != nil {
			return 0, total, err
		}
	}
	return time.Since(start), total, nil
}
