// Package ondisk owns the OCFS2 and JBD2 on-disk formats: one Go type per
// structure, its constants, its decoder, its encoder, its self-checks, the
// feature flags, the metadata checksum (META_ECC) and the name hashes. It is
// pure (rank R1): no I/O, no clock, no goroutines. Everything o2go reads from
// or writes to a volume passes through these types.
//
// The reference is the kernel's fs/ocfs2/ocfs2_fs.h and ocfs2-tools 1.8.7
// (include/ocfs2-kernel/ocfs2_fs.h, include/ocfs2/jbd2.h,
// include/o2cb/ocfs2_heartbeat.h); ../shared/design/ondisk-format.md is the
// project's digest of them, checked against real images. Byte layouts are in
// each type's doc comment, offsets in hex from the start of the structure.
//
// Conventions, the same for every structure:
//
//   - OCFS2 metadata is little-endian; only the JBD2 journal is big-endian.
//   - DecodeX(b) parses b and checks what the bytes alone can prove
//     (signature, counts within capacity, lengths within the buffer). It never
//     panics, whatever b holds, and every failure is a *CorruptError
//     (errors.Is(err, ErrCorrupt)) naming the structure and field.
//   - (*X).Encode(b) writes every field into b and zeroes the structure's
//     reserved bytes and unused record slots, so Decode then Encode of a
//     well-formed block gives back the same bytes. Encode never computes the
//     metadata checksum: with META_ECC the caller finishes a block with
//     SetBlockCheck(b, XCheckOffset), once every byte is final.
//   - (*X).SelfCheck(blkno, fsGeneration) checks the identity fields (own
//     block number, volume generation) against where the block was read.
//   - Variable-length arrays are Go slices whose length is the "in use"
//     count on disk (l_next_free_rec, cl_next_free_rec, xh_count...); the
//     capacity field (l_count...) is kept as read, never recomputed.
//   - Block numbers are fs blocks counted from the start of the device;
//     cpos values are logical clusters inside a file (or hash values, in dx
//     and xattr trees).
package ondisk
