package kernelvm

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// extractVmlinux returns the uncompressed ELF kernel inside a bzImage, for
// qemu's PVH direct boot (it skips the real-mode setup and the in-guest
// decompression: 2x faster under TCG). It reads the boot protocol header
// (Documentation/arch/x86/boot.rst) for where the compressed payload is, and
// checks that the result is an x86-64 ELF with a PVH entry point note.
func extractVmlinux(bz []byte, busybox string) ([]byte, error) {
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage (no HdrS boot header)")
	}
	if v := binary.LittleEndian.Uint16(bz[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("boot protocol %#x has no payload fields (need 2.08)", v)
	}
	setupSects := int(bz[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	off := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(bz[0x248:]))
	n := int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if off < 0 || n < 8 || off+n > len(bz) {
		return nil, fmt.Errorf("payload [%d,+%d) lies outside the %d-byte bzImage", off, n, len(bz))
	}
	payload := bz[off : off+n]
	// The kernel build appends the uncompressed size (4 bytes) to every
	// format but gzip, whose trailer carries it already.
	var out []byte
	var err error
	switch {
	case bytes.HasPrefix(payload, []byte{0x1f, 0x8b}):
		var r *gzip.Reader
		if r, err = gzip.NewReader(bytes.NewReader(payload)); err == nil {
			r.Multistream(false)
			out, err = io.ReadAll(r)
		}
	case bytes.HasPrefix(payload, []byte("BZh")):
		out, err = io.ReadAll(bzip2.NewReader(bytes.NewReader(payload[:n-4])))
	case bytes.HasPrefix(payload, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		out, err = decompressWith(payload[:n-4], [][]string{{"xz", "-dc"}, {busybox, "unxz", "-c"}})
	case bytes.HasPrefix(payload, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		out, err = decompressWith(payload[:n-4], [][]string{{"zstd", "-dcq"}})
	case bytes.HasPrefix(payload, []byte{0x02, 0x21, 0x4c, 0x18}):
		out, err = decompressWith(payload[:n-4], [][]string{{"lz4", "-dcq"}})
	case bytes.HasPrefix(payload, []byte{0x5d, 0x00}):
		out, err = decompressWith(payload[:n-4], [][]string{{"xz", "-dc", "--format=lzma"}, {busybox, "unlzma", "-c"}})
	default:
		return nil, fmt.Errorf("unknown compression of the kernel payload (starts % x)", payload[:4])
	}
	if err != nil {
		return nil, fmt.Errorf("decompressing the kernel payload: %w", err)
	}
	if err := checkPVH(out); err != nil {
		return nil, err
	}
	return out, nil
}

// xenElfnotePhys32Entry is the ELF note (owner "Xen") that holds the
// 32-bit PVH entry point; qemu boots an ELF kernel through it.
const xenElfnotePhys32Entry = 18

// checkPVH verifies that img is an x86-64 ELF executable with a PVH entry.
func checkPVH(img []byte) error {
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return fmt.Errorf("decompressed kernel is not ELF: %w", err)
	}
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("decompressed kernel is %v, want x86-64", f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("reading kernel ELF notes: %w", err)
		}
		for len(notes) >= 12 {
			namesz := int(binary.LittleEndian.Uint32(notes[0:]))
			descsz := int(binary.LittleEndian.Uint32(notes[4:]))
			typ := binary.LittleEndian.Uint32(notes[8:])
			nameEnd := 12 + (namesz+3)&^3
			end := nameEnd + (descsz+3)&^3
			if namesz < 0 || descsz < 0 || end > len(notes) || end < 12 {
				break
			}
			if typ == xenElfnotePhys32Entry && string(bytes.TrimRight(notes[12:12+namesz], "\x00")) == "Xen" {
				return nil
			}
			notes = notes[end:]
		}
	}
	return errors.New("kernel ELF has no PVH entry note (CONFIG_PVH off?)")
}
