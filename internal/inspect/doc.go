// Package inspect owns o2go's read-only views of an OCFS2 volume for
// operators: the debugfs.ocfs2 work-alike behind `o2go debug` (a command
// shell over an open volume: stats, ls, stat, cat, dump, rdump, slotmap, hb,
// extent, group, dx_*, xattr, logdump, frag, findpath, encode/decode...),
// the o2info work-alike behind `o2go info` (features, volume info, the
// equivalent mkfs command line, free-space fragmentation, free inodes, file
// statistics), and the mounted.ocfs2 work-alike behind `o2go mounted`
// (finding OCFS2 volumes on block devices and image files, and which nodes
// heartbeat on them).
//
// The text these commands print follows ocfs2-tools 1.8.7 field for field,
// so that operators' habits and scripts keep working; the golden tests of
// this package compare it byte for byte with the real tools. Where the real
// tools print nonsense (reading past a buffer, an off-by-one month) o2go
// prints the right thing and the tests say so. Inspection commands also
// have a --json form with documented field names (see json.go).
//
// inspect never writes to a volume. It reads through fs/volume, fs/inode,
// fs/dir, fs/xattr, fs/extent and fs/metacache; display commands decode
// blocks without the identity checks the file system applies (a debugger
// must be able to show a freed inode or a damaged block), and report what
// those checks would have said on the error stream.
package inspect
