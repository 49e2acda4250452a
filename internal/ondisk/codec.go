package ondisk

import "fmt"

// Small encoding helpers shared by the structures of this package. The
// structures themselves use encoding/binary directly, as extent.go does.

// isBlockSize reports whether n is an OCFS2 block size: a power of two from
// MinBlockSize (512) to MaxBlockSize (4096).
func isBlockSize(n int) bool {
	return n >= MinBlockSize && n <= MaxBlockSize && n&(n-1) == 0
}

// checkBlockSize returns a CorruptError for structName when a buffer that
// should be one fs block has another length.
func checkBlockSize(b []byte, structName string) error {
	if !isBlockSize(len(b)) {
		return corrupt(structName, "", "block is %d bytes, want a power of two from %d to %d", len(b), MinBlockSize, MaxBlockSize)
	}
	return nil
}

// putPaddedString writes s into dst and zeroes the rest of dst. It fails,
// writing nothing, when s is longer than dst; field names the on-disk field
// in the message.
func putPaddedString(dst []byte, s, field string) error {
	if len(s) > len(dst) {
		return fmt.Errorf("%s: %q is %d bytes, the field holds %d", field, s, len(s), len(dst))
	}
	n := copy(dst, s)
	clear(dst[n:])
	return nil
}

// cloneBytes returns a copy of b that does not alias the block buffer
// (never nil, so decoded values compare equal however they were made).
func cloneBytes(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// allZero reports whether every byte of b is zero.
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
