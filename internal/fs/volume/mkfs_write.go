package volume

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
)

// Writing the image to the device. Order matters for what an interrupted
// mkfs leaves behind: the first megabyte goes first (which destroys the old
// superblock, so a half-made volume is not mistaken for a volume), then
// the zeroed areas and every metadata block, and the superblock and its
// backups last, after a sync.

const (
	discardStep  = 2 << 30 // bytes per BLKDISCARD, as mkfs.ocfs2 (DISCARD_STEP_MB)
	zeroBufBytes = 8 << 20 // largest zero write
	runMaxBytes  = 8 << 20 // largest coalesced metadata write
	blkDiscard   = 0x1277  // _IO(0x12, 119)
	blkZeroOut   = 0x127f  // _IO(0x12, 127)
)

// mkfsWriter writes an image.
type mkfsWriter struct {
	dev  blockdev.Device
	file *blockdev.File // nil for other devices (tests)
	bs   int
	zero []byte
	// fallocate / BLKZEROOUT stop being tried after they fail once.
	noFastZero bool
	progress   func(done, total int64)
	done       int64
	total      int64
	warn       io.Writer
}

func newMkfsWriter(dev blockdev.Device, bs int) *mkfsWriter {
	w := &mkfsWriter{dev: dev, bs: bs}
	if f, ok := dev.(*blockdev.File); ok {
		w.file = f
	}
	return w
}

func (w *mkfsWriter) alignment() int {
	if w.file != nil {
		return max(w.file.Alignment(), w.bs)
	}
	return w.bs
}

// discard issues BLKDISCARD over the volume of a block device, in steps;
// a device that cannot discard is left alone (as mkfs.ocfs2 does, it
// warns unless the device simply does not support it).
func (w *mkfsWriter) discard(bytes uint64) {
	if w.file == nil || !w.file.IsBlockDevice() {
		return
	}
	for off := uint64(0); off < bytes; off += discardStep {
		n := min(uint64(discardStep), bytes-off)
		r := [2]uint64{off, n}
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, w.file.Fd(), blkDiscard, uintptr(unsafe.Pointer(&r)))
		if errno != 0 {
			if errno != unix.EOPNOTSUPP && w.warn != nil {
				fmt.Fprintf(w.warn, "Discard device blocks: %v\n", errno)
			}
			return
		}
	}
}

// zeroRange makes bytes [off, off+n) read as zeros: FALLOC_FL_ZERO_RANGE
// on an image file (no data written, blocks stay allocated), BLKZEROOUT on
// a block device, else plain writes.
func (w *mkfsWriter) zeroRange(off, n int64) error {
	if n <= 0 {
		return nil
	}
	if w.file != nil && !w.noFastZero {
		var err error
		if w.file.IsBlockDevice() {
			r := [2]uint64{uint64(off), uint64(n)}
			_, _, errno := unix.Syscall(unix.SYS_IOCTL, w.file.Fd(), blkZeroOut, uintptr(unsafe.Pointer(&r)))
			if errno != 0 {
				err = errno
			}
		} else {
			err = unix.Fallocate(int(w.file.Fd()), unix.FALLOC_FL_ZERO_RANGE, off, n)
			if err != nil {
				err = unix.Fallocate(int(w.file.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
			}
		}
		if err == nil {
			w.advance(n)
			return nil
		}
		w.noFastZero = true
	}
	if w.zero == nil {
		w.zero = blockdev.AlignedBuffer(zeroBufBytes, w.alignment())
	}
	for n > 0 {
		c := min(n, int64(len(w.zero)))
		if _, err := w.dev.WriteAt(w.zero[:c], off); err != nil {
			return fmt.Errorf("%s: zeroing %d bytes at byte %d: %w", w.dev.Name(), c, off, err)
		}
		off += c
		n -= c
		w.advance(c)
	}
	return nil
}

func (w *mkfsWriter) advance(n int64) {
	w.done += n
	if w.progress != nil {
		w.progress(min(w.done, w.total), w.total)
	}
}

// zeroBlocks zeroes block ranges, merging neighbours.
func (w *mkfsWriter) zeroBlocks(rs []blockRange) error {
	for _, r := range mergeRanges(rs) {
		if err := w.zeroRange(int64(r.start)*int64(w.bs), int64(r.count)*int64(w.bs)); err != nil {
			return err
		}
	}
	return nil
}

// writeBlocks writes the metadata blocks, runs of consecutive blocks as
// one write each.
func (w *mkfsWriter) writeBlocks(im *mkfsImage) error {
	keys := im.sortedBlocks()
	buf := blockdev.AlignedBuffer(runMaxBytes, w.alignment())
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j] == keys[j-1]+1 && (j-i+1)*w.bs <= runMaxBytes {
			j++
		}
		n := 0
		for _, k := range keys[i:j] {
			n += copy(buf[n:], im.blocks[k].data)
		}
		if _, err := w.dev.WriteAt(buf[:n], int64(keys[i])*int64(w.bs)); err != nil {
			return fmt.Errorf("%s: writing %d blocks at block %d: %w", w.dev.Name(), j-i, keys[i], err)
		}
		i = j
	}
	return nil
}

// writePlainGroups writes the global bitmap groups that have only their
// descriptor's bit set, one block each. A large volume has many (one per
// 32256 clusters at 4 KiB blocks), far apart, so several writers issue
// them side by side.
func (w *mkfsWriter) writePlainGroups(im *mkfsImage) error {
	const writers = 8
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan *allocGroup)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := blockdev.AlignedBuffer(w.bs, w.alignment())
			for g := range next {
				err := g.encode(buf)
				if err == nil {
					if im.metaECC {
						ondisk.SetBlockCheck(buf, ondisk.GroupDescCheckOffset)
					}
					if _, werr := w.dev.WriteAt(buf, int64(g.gd.Blkno)*int64(w.bs)); werr != nil {
						err = fmt.Errorf("%s: writing group descriptor %d: %w", w.dev.Name(), g.gd.Blkno, werr)
					}
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, g := range im.plainGroups {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		next <- g
	}
	close(next)
	wg.Wait()
	return first
}

// writeAt writes whole blocks at a block number from an aligned copy.
func (w *mkfsWriter) writeAt(blkno uint64, data []byte) error {
	buf := blockdev.AlignedBuffer(len(data), w.alignment())
	copy(buf, data)
	if _, err := w.dev.WriteAt(buf, int64(blkno)*int64(w.bs)); err != nil {
		return fmt.Errorf("%s: writing block %d: %w", w.dev.Name(), blkno, err)
	}
	return nil
}

func (w *mkfsWriter) sync() error {
	if err := w.dev.Sync(); err != nil {
		return fmt.Errorf("%s: sync: %w", w.dev.Name(), err)
	}
	return nil
}

// errWrite marks an error that happened after the device was touched.
var errWrite = errors.New("the device may now hold a partly formatted volume")
