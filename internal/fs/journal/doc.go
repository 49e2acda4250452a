// Package journal owns OCFS2's per-slot JBD2 journal: the transactions
// every metadata change of a mounted volume goes through, their commit to
// the log, the checkpoint that writes them home and frees the log, and the
// replay (recovery) of a log left by a crash — this node's at mount, or a
// dead node's slot. The on-disk format is exactly jbd2's as OCFS2 uses it,
// so fsck.ocfs2 and the kernel replay o2go's journals and o2go replays
// theirs. It follows the behaviour of the kernel's fs/jbd2/{commit,
// recovery,checkpoint,revoke}.c and fs/ocfs2/journal.c; the structures are
// in ondisk (jbd2.go), the format digest in ondisk-format.md §8.
//
// # The journal file and its log
//
// journal:NNNN is an extent-mapped system file (JOURNAL_FL); its block 0
// (blocks 0-1 with 512-byte blocks) holds the big-endian JBD2 superblock,
// and blocks s_first..s_maxlen-1 are a circular log. A transaction in the
// log is, in log order:
//
//	revoke blocks (type 5)       blocks freed by the transaction, if any
//	descriptor (type 1)          tags: fs block, flags (first tag + UUID,
//	  copy, copy, ...              then SAME_UUID, last LAST_TAG; ESCAPE when
//	descriptor, copies...          the copy began with the magic, zeroed)
//	commit block (type 2)        h_commit_sec/nsec; written after a sync
//
// Tags are 8 bytes, 12 with the 64BIT feature. s_start is the first block
// of the oldest transaction not yet checkpointed (0: nothing to replay),
// s_sequence its ID. One log block always stays unused.
//
// # Transactions and handles
//
// One running transaction collects the buffers of many handles:
//
//	h, err := j.Begin(credits)  // holding the metadata lock exclusively
//	h.Access(b) / h.New(blk)    // metacache.Tx: before changing a buffer
//	h.Dirty(b, checkOffset)     // after: seal META_ECC, log b with the transaction
//	h.Revoke(blk)               // a freed metadata block
//	h.Stop()                    // then release the metadata lock
//
// The running transaction is committed when it is CommitInterval old (a
// background goroutine, the commit= mount option), when asked (Commit,
// CommitAndWait for fsync), or when the next Begin would take it past
// MaxTransaction blocks (Begin then commits it synchronously). Committing
// first closes the transaction: under the shared metadata lock and with no
// handle open, every dirtied buffer is copied into the transaction's log
// image; the next transaction opens at once and the log I/O happens
// outside the lock. Writing it takes what any JBD2 commit must: one write
// per stretch of the log the wrap and the journal's extents leave
// contiguous (revoke blocks, descriptors and copies together), a sync,
// the commit block, a sync — OCFS2 never sets ASYNC_COMMIT, so both
// barriers stay. The image's copies are also what the checkpoint writes
// home; an image is reused as soon as newer commits supersede every copy
// in it, so a steady stream of commits copies into a few warm images
// instead of allocating (and page-faulting) one per transaction.
//
// Buffers stay pinned in the metadata cache from their first Access until
// their newest committed copy is home; to keep the cache working the
// journal checkpoints once it pins half the cache's limit, and caps a
// transaction at a quarter of it.
//
// Ordered data: file data must reach the disk before the metadata that
// points at it commits. The data path writes a file's data to the device
// itself before it stops the handle that links the data in; commit syncs
// the device after the log blocks and before the commit block, which makes
// that data durable first. There is no per-handle data list.
//
// Revoke: a freed metadata block may next hold file data, which neither a
// replay nor a checkpoint may then overwrite with an old logged copy. The
// transaction freeing it logs a revoke record (replay skips copies from
// transactions up to and including the revoking one), and Revoke writes a
// committed copy still waiting for its checkpoint home at once, so the
// checkpoint never has to touch the block again. Two fsck.ocfs2 1.8.7
// quirks shape the revoke blocks: it reads only the first half of a revoke
// block's records, so o2go writes each record twice (jbd2 reads them all;
// a duplicate changes nothing), and it wants every slot's journal to carry
// the same features, so o2go does not set the REVOKE feature (no replayer
// needs it). A third quirk: fsck.ocfs2 never finishes replaying a log in
// which a block is logged after a revoke record naming it, so a transaction
// that logs a block revoked by one still in the log checkpoints first
// (Stats.RevokeCheckpoints). The kernel's OCFS2 never revokes: before clusters go back to
// the global bitmap it flushes the whole journal (Checkpoint does that
// here), which callers may do instead.
//
// Allocators must not hand out a block freed by a transaction that has not
// committed yet (Handle.Sequence, Journal.Committed): until then the
// freeing may still be undone by a crash, and new data written there would
// overwrite live metadata — OCFS2 checks the last committed bitmap for
// this reason.
//
// # Checkpoint
//
// Checkpointing writes the newest committed copy of every block home,
// sorted and coalesced, syncs, then moves s_start/s_sequence past every
// transaction with nothing left to write, synced before the space is
// reused. It runs when a commit finds too little free log, on Checkpoint
// (the cluster lock layer's downconvert, so another node reads home
// locations), and at Shutdown, which then writes s_start 0.
//
// # Mount protocol and recovery (ondisk-format.md §8.4)
//
// Load (own slot): replay if s_start != 0, then set DIRTY in the journal
// dinode (bumping ij_recovery_generation if it was dirty) for the life of
// the mount; LoadReport.WasDirty tells the mount layer to recover local
// alloc, truncate log and orphans. Shutdown (clean unmount): checkpoint,
// s_start 0, clear DIRTY. Recover (a dead node's slot): only if DIRTY,
// replay, clear DIRTY, bump ij_recovery_generation. Replay alone is what
// fsck.ocfs2 does. Replay is jbd2's: scan from s_start expecting
// s_sequence, wrapping from s_maxlen to s_first, until a block lacks the
// magic or carries another ID; the transaction without a commit block is
// ignored, its revokes too; a copy is skipped when a committed transaction
// with an ID at least its own revoked the block; home blocks are written,
// synced, then s_start 0 and s_sequence = end+1, synced. Replaying again
// after a crash part way gives the same result. A damaged log block ends
// the log at the last good commit and is reported (ReplayReport.Damage),
// never a panic. Journals with checksum, async-commit or unknown features
// are refused with an error naming them.
//
// # Concurrency
//
// Lock order: the metadata lock (shared, for the copy), then the journal's
// state mutex; the journal's I/O mutex (commit, checkpoint, revoke
// write-back) before the state mutex; the I/O mutex never waits for the
// metadata lock, so Begin and Revoke may wait for log I/O while their
// caller holds the metadata lock. Commit, CommitAndWait, Checkpoint and
// Shutdown must be called without the metadata lock and without an open
// handle. Handles do not nest across goroutines; a nested handle in one
// goroutine joins the running transaction.
//
// Goroutines: one background committer per mounted journal (none when
// CommitInterval < 0), stopped by Shutdown, Abandon or Abort.
//
// # Errors
//
// An I/O error while writing the log, a checkpoint or the superblock
// aborts the journal: every later Begin, Stop and commit returns an
// *AbortError (errors.Is(err, ErrAborted)); the mount layer applies its
// errors= policy. What was committed stays in the log for the next replay.
package journal
