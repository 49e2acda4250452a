package inspect

import (
	"errors"
	"fmt"
	"io"
	"os"

	"o2go/internal/blockdev"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// Data copy for dump, rdump and cat. A file's extents are walked once;
// then a reader goroutine reads them with large aligned reads (O_DIRECT
// when the device is open so) into a few rotating buffers while the
// caller's goroutine writes the previous ones out, so that the disk and
// the output are busy at the same time. Holes and unwritten extents are
// not read: they become holes in a regular output file, zeros elsewhere.

const (
	copyChunk   = 4 << 20 // bytes per read
	copyBuffers = 4       // reads in flight or waiting to be written
)

// segment is a run of a file: data at a device byte offset, or zeros.
type segment struct {
	fileOff, length int64
	devOff          int64 // < 0: zeros (hole, unwritten extent, past the last extent)
}

// fileSegments lists the runs of a file up to its size, in file order.
func fileSegments(v *volume.Volume, ino *ondisk.Dinode) ([]segment, error) {
	size := int64(ino.Size)
	cs := int64(v.SB.ClusterSize())
	bs := int64(v.SB.BlockSize())
	devSize := v.Dev.Size()
	var segs []segment
	pos := int64(0)
	zeros := func(to int64) {
		if to > pos {
			segs = append(segs, segment{fileOff: pos, length: to - pos, devOff: -1})
			pos = to
		}
	}
	err := v.FS.Extents(ino, func(r ondisk.ExtentRec) error {
		start := int64(r.Cpos) * cs
		end := min(start+int64(r.Clusters)*cs, size)
		if start >= size {
			return nil
		}
		zeros(start)
		if r.Flags&ondisk.ExtentUnwritten != 0 {
			zeros(end)
			return nil
		}
		dev := int64(r.Blkno) * bs
		if dev < 0 || dev+int64(r.Clusters)*cs > devSize {
			return v.Cache.Annotate(&ondisk.CorruptError{Struct: "extent record", Field: "e_blkno",
				Msg: fmt.Sprintf("maps cluster %d of inode %d beyond the end of the device", r.Cpos, ino.Blkno)}, ino.Blkno)
		}
		segs = append(segs, segment{fileOff: start, length: end - start, devOff: dev})
		pos = end
		return nil
	})
	if err != nil {
		return nil, err
	}
	zeros(size)
	return segs, nil
}

// chunk is one piece handed from the reader to the writer.
type chunk struct {
	buf   []byte // nil: length zeros
	n     int64
	err   error
	owned []byte // the pool buffer to give back
}

// copyFileData writes the inode's bytes to w and returns how many it
// wrote. out, when non-nil, is w as an *os.File: a regular output file
// gets holes where the inode has them.
func copyFileData(v *volume.Volume, ino *ondisk.Dinode, w io.Writer, out *os.File) (int64, error) {
	if ino.Extents == nil {
		return copyViaReadAt(v, ino, w)
	}
	segs, err := fileSegments(v, ino)
	if err != nil {
		return 0, err
	}
	sparse := false
	if out != nil {
		if st, err := out.Stat(); err == nil && st.Mode().IsRegular() {
			sparse = true
		}
	}
	align := 512
	if f, ok := v.Dev.(*blockdev.File); ok {
		align = max(f.Alignment(), 512)
	}
	bs := int64(v.SB.BlockSize())

	pool := make(chan []byte, copyBuffers)
	for i := 0; i < copyBuffers; i++ {
		pool <- blockdev.AlignedBuffer(copyChunk, align)
	}
	chunks := make(chan chunk, copyBuffers)
	stop := make(chan struct{})
	go func() {
		defer close(chunks)
		for _, s := range segs {
			for done := int64(0); done < s.length; {
				n := min(s.length-done, copyChunk)
				if s.devOff < 0 {
					select {
					case chunks <- chunk{n: n}:
					case <-stop:
						return
					}
					done += n
					continue
				}
				var buf []byte
				select {
				case buf = <-pool:
				case <-stop:
					return
				}
				// Whole blocks: the extent runs to a cluster boundary, so
				// rounding the tail up stays inside it.
				rn := (n + bs - 1) / bs * bs
				_, err := v.Dev.ReadAt(buf[:rn], s.devOff+done)
				if err != nil {
					err = fmt.Errorf("%s: reading inode %d data at byte %d: %w", v.Dev.Name(), ino.Blkno, s.fileOff+done, err)
				}
				select {
				case chunks <- chunk{buf: buf[:n], n: n, err: err, owned: buf}:
				case <-stop:
					return
				}
				if err != nil {
					return
				}
				done += n
			}
		}
	}()
	defer func() {
		close(stop)
		for range chunks { // let the reader finish
		}
	}()

	var zero []byte
	written := int64(0)
	lastWasHole := false
	for c := range chunks {
		if c.err != nil {
			return written, c.err
		}
		switch {
		case c.buf != nil:
			if _, err := w.Write(c.buf); err != nil {
				return written, err
			}
			pool <- c.owned
			lastWasHole = false
		case sparse:
			if _, err := out.Seek(c.n, io.SeekCurrent); err != nil {
				return written, err
			}
			lastWasHole = true
		default:
			if zero == nil {
				zero = make([]byte, copyChunk)
			}
			if _, err := w.Write(zero[:c.n]); err != nil {
				return written, err
			}
		}
		written += c.n
	}
	if sparse && lastWasHole {
		if err := out.Truncate(written); err != nil {
			return written, err
		}
	}
	return written, nil
}

// copyViaReadAt copies inodes whose bytes are not extent-mapped (inline
// data) — or says why there are none (chain allocators and the like).
func copyViaReadAt(v *volume.Volume, ino *ondisk.Dinode, w io.Writer) (int64, error) {
	buf := make([]byte, 1<<20)
	written := int64(0)
	for written < int64(ino.Size) {
		n, err := v.FS.ReadAt(ino, buf, written)
		if err != nil {
			return written, err
		}
		if n == 0 {
			return written, errors.New("short read")
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return written, err
		}
		written += int64(n)
	}
	return written, nil
}
