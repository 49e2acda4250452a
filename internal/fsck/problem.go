package fsck

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Code names one kind of problem, as fsck.ocfs2.checks(8) indexes them;
// each has one documented fix, and fsck.ocfs2 prints it in brackets before
// the question ("[GROUP_FREE_BITS] Group descriptor at block ...? n").
type Code string

// The problem codes o2go checks for, grouped by the pass that finds them.
// The names and the fixes are fsck.ocfs2.checks(8)'s.
const (
	// Superblock and cluster stack.
	RecoverBackupSuperblock Code = "RECOVER_BACKUP_SUPERBLOCK"
	RecoverClusterInfo      Code = "RECOVER_CLUSTER_INFO"

	// Journals (before pass 0).
	JournalFileInvalid    Code = "JOURNAL_FILE_INVALID"
	JournalUnknownFeature Code = "JOURNAL_UNKNOWN_FEATURE"
	JournalMissingFeature Code = "JOURNAL_MISSING_FEATURE"
	JournalTooSmall       Code = "JOURNAL_TOO_SMALL"

	// Pass 0: chain allocators.
	ChainCpg                 Code = "CHAIN_CPG"
	SuperblockClusters       Code = "SUPERBLOCK_CLUSTERS"
	FixedChainClusters       Code = "FIXED_CHAIN_CLUSTERS"
	GroupUnexpectedDesc      Code = "GROUP_UNEXPECTED_DESC"
	GroupExpectedDesc        Code = "GROUP_EXPECTED_DESC"
	GroupGen                 Code = "GROUP_GEN"
	GroupParent              Code = "GROUP_PARENT"
	GroupDuplicate           Code = "GROUP_DUPLICATE"
	GroupBlkno               Code = "GROUP_BLKNO"
	GroupChain               Code = "GROUP_CHAIN"
	GroupFreeBits            Code = "GROUP_FREE_BITS"
	GroupChainLoop           Code = "GROUP_CHAIN_LOOP"
	ChainCount               Code = "CHAIN_COUNT"
	ChainNextFree            Code = "CHAIN_NEXT_FREE"
	ChainEmpty               Code = "CHAIN_EMPTY"
	ChainIClusters           Code = "CHAIN_I_CLUSTERS"
	ChainISize               Code = "CHAIN_I_SIZE"
	ChainGroupBits           Code = "CHAIN_GROUP_BITS"
	ChainHeadLinkRange       Code = "CHAIN_HEAD_LINK_RANGE"
	ChainLinkGen             Code = "CHAIN_LINK_GEN"
	ChainLinkMagic           Code = "CHAIN_LINK_MAGIC"
	ChainLinkRange           Code = "CHAIN_LINK_RANGE"
	ChainBits                Code = "CHAIN_BITS"
	DiscontigBGDepth         Code = "DISCONTIG_BG_DEPTH"
	DiscontigBGCount         Code = "DISCONTIG_BG_COUNT"
	DiscontigBGRecRange      Code = "DISCONTIG_BG_REC_RANGE"
	DiscontigBGCorruptLeaves Code = "DISCONTIG_BG_CORRUPT_LEAVES"
	DiscontigBGClusters      Code = "DISCONTIG_BG_CLUSTERS"
	DiscontigBGLessClusters  Code = "DISCONTIG_BG_LESS_CLUSTERS"
	DiscontigBGNextFreeRec   Code = "DISCONTIG_BG_NEXT_FREE_REC"
	DiscontigBGListCorrupt   Code = "DISCONTIG_BG_LIST_CORRUPT"
	DiscontigBGRecCorrupt    Code = "DISCONTIG_BG_REC_CORRUPT"
	DiscontigBGLeafClusters  Code = "DISCONTIG_BG_LEAF_CLUSTERS"

	// Pass 1: inodes, extents, allocator bitmaps.
	InodeAllocRepair         Code = "INODE_ALLOC_REPAIR"
	InodeSuballoc            Code = "INODE_SUBALLOC"
	LallocSize               Code = "LALLOC_SIZE"
	LallocNZUsed             Code = "LALLOC_NZ_USED"
	LallocNZBm               Code = "LALLOC_NZ_BM"
	LallocBmOverrun          Code = "LALLOC_BM_OVERRUN"
	LallocBmSize             Code = "LALLOC_BM_SIZE"
	LallocBmStraddle         Code = "LALLOC_BM_STRADDLE"
	LallocUsedOverrun        Code = "LALLOC_USED_OVERRUN"
	LallocClear              Code = "LALLOC_CLEAR"
	DeallocCount             Code = "DEALLOC_COUNT"
	DeallocUsed              Code = "DEALLOC_USED"
	TruncateRecStartRange    Code = "TRUNCATE_REC_START_RANGE"
	TruncateRecWrap          Code = "TRUNCATE_REC_WRAP"
	TruncateRecRange         Code = "TRUNCATE_REC_RANGE"
	InodeGen                 Code = "INODE_GEN"
	InodeGenFix              Code = "INODE_GEN_FIX"
	InodeBlkno               Code = "INODE_BLKNO"
	RootNotDir               Code = "ROOT_NOTDIR"
	InodeNZDtime             Code = "INODE_NZ_DTIME"
	InlineDataFlagInvalid    Code = "INLINE_DATA_FLAG_INVALID"
	RefcountFlagInvalid      Code = "REFCOUNT_FLAG_INVALID"
	RefcountLocInvalid       Code = "REFCOUNT_LOC_INVALID"
	LinkFastData             Code = "LINK_FAST_DATA"
	LinkNullterm             Code = "LINK_NULLTERM"
	LinkSize                 Code = "LINK_SIZE"
	LinkBlocks               Code = "LINK_BLOCKS"
	DirZero                  Code = "DIR_ZERO"
	DxTreeCorrupt            Code = "DX_TREE_CORRUPT"
	InlineDataCountInvalid   Code = "INLINE_DATA_COUNT_INVALID"
	InodeInlineSize          Code = "INODE_INLINE_SIZE"
	InodeInlineClusters      Code = "INODE_INLINE_CLUSTERS"
	InodeSparseSize          Code = "INODE_SPARSE_SIZE"
	InodeSparseClusters      Code = "INODE_SPARSE_CLUSTERS"
	InodeSize                Code = "INODE_SIZE"
	InodeClusters            Code = "INODE_CLUSTERS"
	ClusterAllocBit          Code = "CLUSTER_ALLOC_BIT"
	EBBlkno                  Code = "EB_BLKNO"
	EBGen                    Code = "EB_GEN"
	EBGenFix                 Code = "EB_GEN_FIX"
	NoHoles                  Code = "NO_HOLES"
	ExtentOverlap            Code = "EXTENT_OVERLAP"
	ExtentEBInvalid          Code = "EXTENT_EB_INVALID"
	ExtentListDepth          Code = "EXTENT_LIST_DEPTH"
	ExtentListCount          Code = "EXTENT_LIST_COUNT"
	ExtentListFree           Code = "EXTENT_LIST_FREE"
	ExtentBlknoRange         Code = "EXTENT_BLKNO_RANGE"
	ExtentBlknoUnaligned     Code = "EXTENT_BLKNO_UNALIGNED"
	ExtentClustersOverrun    Code = "EXTENT_CLUSTERS_OVERRUN"
	ExtentMarkedUnwritten    Code = "EXTENT_MARKED_UNWRITTEN"
	ExtentMarkedRefcounted   Code = "EXTENT_MARKED_REFCOUNTED"
	RefcountRootBlockInvalid Code = "REFCOUNT_ROOT_BLOCK_INVALID"
	RefcountCount            Code = "REFCOUNT_COUNT"
	RefcountCountInvalid     Code = "REFCOUNT_COUNT_INVALID"
	RefcountRecRedundant     Code = "REFCOUNT_REC_REDUNDANT"
	RbBlkno                  Code = "RB_BLKNO"
	RbGen                    Code = "RB_GEN"
	RbGenFix                 Code = "RB_GEN_FIX"
	RbParent                 Code = "RB_PARENT"
	RefcountBlockInvalid     Code = "REFCOUNT_BLOCK_INVALID"
	RefcountClusters         Code = "REFCOUNT_CLUSTERS"
	RefcountListCount        Code = "REFCOUNT_LIST_COUNT"
	RefcountListUsed         Code = "REFCOUNT_LIST_USED"
	RefcountClusterRange     Code = "REFCOUNT_CLUSTER_RANGE"
	RefcountClusterCollision Code = "REFCOUNT_CLUSTER_COLLISION"
	RefcountListEmpty        Code = "REFCOUNT_LIST_EMPTY"
	XattrBlockInvalid        Code = "XATTR_BLOCK_INVALID"
	XattrCountInvalid        Code = "XATTR_COUNT_INVALID"
	XattrEntryInvalid        Code = "XATTR_ENTRY_INVALID"
	XattrNameOffsetInvalid   Code = "XATTR_NAME_OFFSET_INVALID"
	XattrLocationInvalid     Code = "XATTR_LOCATION_INVALID"
	XattrValueInvalid        Code = "XATTR_VALUE_INVALID"
	XattrHashInvalid         Code = "XATTR_HASH_INVALID"
	XattrFreeStartInvalid    Code = "XATTR_FREE_START_INVALID"
	XattrValueLenInvalid     Code = "XATTR_VALUE_LEN_INVALID"
	XattrBucketCountInvalid  Code = "XATTR_BUCKET_COUNT_INVALID"

	// Pass 1b-1d: clusters claimed twice.
	DupClustersSysfileClone Code = "DUP_CLUSTERS_SYSFILE_CLONE"
	DupClustersClone        Code = "DUP_CLUSTERS_CLONE"
	DupClustersDelete       Code = "DUP_CLUSTERS_DELETE"
	DupClustersAddRefcount  Code = "DUP_CLUSTERS_ADD_REFCOUNT"

	// Pass 2: directory entries.
	DirentDottyDup        Code = "DIRENT_DOTTY_DUP"
	DirentNotDotty        Code = "DIRENT_NOT_DOTTY"
	DirentDotInode        Code = "DIRENT_DOT_INODE"
	DirentDotExcess       Code = "DIRENT_DOT_EXCESS"
	DirentZero            Code = "DIRENT_ZERO"
	DirentNameChars       Code = "DIRENT_NAME_CHARS"
	DirentInodeRange      Code = "DIRENT_INODE_RANGE"
	DirentInodeFree       Code = "DIRENT_INODE_FREE"
	DirentType            Code = "DIRENT_TYPE"
	DirParentDup          Code = "DIR_PARENT_DUP"
	DirentDuplicate       Code = "DIRENT_DUPLICATE"
	DirentLength          Code = "DIRENT_LENGTH"
	DirTrailerInode       Code = "DIR_TRAILER_INODE"
	DirTrailerNameLen     Code = "DIR_TRAILER_NAME_LEN"
	DirTrailerRecLen      Code = "DIR_TRAILER_REC_LEN"
	DirTrailerBlkno       Code = "DIR_TRAILER_BLKNO"
	DirTrailerParentInode Code = "DIR_TRAILER_PARENT_INODE"
	DxLookupFailed        Code = "DX_LOOKUP_FAILED"
	DxTreeMissing         Code = "DX_TREE_MISSING"
	IVDxTree              Code = "IV_DX_TREE"
	BadCRC32              Code = "BAD_CRC32"

	// Pass 3: connectivity.
	RootDirMissing   Code = "ROOT_DIR_MISSING"
	LostFoundMissing Code = "LOSTFOUND_MISSING"
	DirNotConnected  Code = "DIR_NOT_CONNECTED"
	DirDotDot        Code = "DIR_DOTDOT"

	// Pass 4: orphans and link counts.
	InodeOrphaned     Code = "INODE_ORPHANED"
	OrphanDirMissing  Code = "ORPHAN_DIR_MISSING"
	InodeNotConnected Code = "INODE_NOT_CONNECTED"
	InodeCount        Code = "INODE_COUNT"

	// Pass 5: quota files.
	QMagicInvalid   Code = "QMAGIC_INVALID"
	QTreeBlkInvalid Code = "QTREE_BLK_INVALID"
	DqblkInvalid    Code = "DQBLK_INVALID"
	DupDqblkValid   Code = "DUP_DQBLK_VALID"
	DupDqblkInvalid Code = "DUP_DQBLK_INVALID"
)

// codeInfo says how a code is answered without a terminal: the default
// answer fsck.ocfs2 offers (PY/PN), and whether -p (preen) may fix it on
// its own. Preen fixes only what restores a count or a pointer from
// authoritative data already on disk and loses nothing: recorded totals
// and free counts, self block numbers, generations of structures found in
// their chains, dtimes, dirent types, link counts.
type codeInfo struct {
	defaultNo bool
	safe      bool
}

var codes = map[Code]codeInfo{
	GroupFreeBits: {safe: true}, ChainBits: {safe: true}, ChainGroupBits: {safe: true},
	ChainIClusters: {safe: true}, ChainISize: {safe: true}, GroupChain: {safe: true},
	GroupBlkno: {safe: true}, GroupParent: {safe: true}, GroupGen: {safe: true},
	InodeBlkno: {safe: true}, InodeNZDtime: {safe: true}, EBBlkno: {safe: true},
	DirTrailerInode: {safe: true}, DirTrailerNameLen: {safe: true}, DirTrailerRecLen: {safe: true},
	DirTrailerBlkno: {safe: true}, DirTrailerParentInode: {safe: true}, DirentType: {safe: true},
	InodeCount: {safe: true}, LallocNZUsed: {safe: true}, LallocNZBm: {safe: true},
	InodeClusters: {safe: true}, InodeSparseClusters: {safe: true}, RefcountCount: {safe: true},
	XattrHashInvalid: {safe: true}, XattrFreeStartInvalid: {safe: true}, XattrValueLenInvalid: {safe: true},
	RbBlkno: {safe: true}, RbParent: {safe: true}, RefcountClusters: {safe: true},
	LinkBlocks: {defaultNo: true}, DupClustersDelete: {defaultNo: true}, JournalUnknownFeature: {defaultNo: true},
	RecoverBackupSuperblock: {defaultNo: true}, RecoverClusterInfo: {defaultNo: true}, DirParentDup: {},
	QMagicInvalid: {defaultNo: true}, QTreeBlkInvalid: {defaultNo: true}, DqblkInvalid: {defaultNo: true}, DupDqblkInvalid: {defaultNo: true},
}

// Answer is how prompts are answered.
type Answer int

const (
	// AnswerAsk asks on the terminal (fsck.ocfs2 without -n/-y/-p).
	AnswerAsk Answer = iota
	// AnswerNo answers no to everything and opens the device read-only (-n).
	AnswerNo
	// AnswerYes answers yes to everything (-y).
	AnswerYes
	// AnswerPreen fixes the safe problems and answers no to the rest (-p).
	AnswerPreen
)

// Problem is one problem fsck reported, as printed.
type Problem struct {
	Code    Code
	Message string
	Fixed   bool
}

// prompter prints problems the way fsck.ocfs2's prompt() does and
// decides their answers.
type prompter struct {
	out     io.Writer
	answer  Answer
	in      *bufio.Reader
	found   []Problem
	aborted bool // interactive input ended or was cancelled
}

// errCancelled ends a run whose operator pressed ESC or ^C at a prompt
// (cancelled), or whose answers ran out.
type errCancelled struct {
	reason    string
	cancelled bool
}

func (e errCancelled) Error() string { return e.reason }

// ask reports code with its question and returns whether to fix it.
func (p *prompter) ask(code Code, format string, args ...any) bool {
	msg := fmt.Sprintf(format, args...)
	info := codes[code]
	fmt.Fprintf(p.out, "[%s] %s", code, msg)
	var yes bool
	switch p.answer {
	case AnswerNo:
		fmt.Fprintln(p.out, " n")
	case AnswerYes:
		yes = true
		fmt.Fprintln(p.out, " y")
	case AnswerPreen:
		yes = info.safe
		fmt.Fprintf(p.out, " %c\n", "ny"[b2u8(yes)])
	default:
		yes = p.interactive(info)
	}
	p.found = append(p.found, Problem{Code: code, Message: msg, Fixed: yes})
	return yes
}

func (p *prompter) interactive(info codeInfo) bool {
	if info.defaultNo {
		fmt.Fprint(p.out, " <n> ")
	} else {
		fmt.Fprint(p.out, " <y> ")
	}
	for {
		c, err := p.in.ReadByte()
		if err != nil {
			fmt.Fprintln(p.out, "\ninput failed, aborting.")
			panic(errCancelled{reason: "input ended at a question"})
		}
		switch c {
		case 3:
			fmt.Fprintln(p.out, "ctl-c pressed, aborting.")
			panic(errCancelled{reason: "cancelled at a question (^C)", cancelled: true})
		case 27:
			fmt.Fprintln(p.out, "ESC pressed, aborting.")
			panic(errCancelled{reason: "cancelled at a question (ESC)", cancelled: true})
		}
		s := strings.ToLower(string(c))
		if s == " " || s == "\n" || s == "\r" {
			s = "y"
			if info.defaultNo {
				s = "n"
			}
		}
		if s == "y" || s == "n" {
			fmt.Fprintln(p.out, s)
			return s == "y"
		}
	}
}
