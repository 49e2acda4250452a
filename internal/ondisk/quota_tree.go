package ondisk

import (
	"encoding/binary"
	"fmt"
)

// GlobalQuotaFile is the content of a global quota file built in memory,
// logical block by logical block, the way libocfs2 writes one
// (ocfs2_init_global_quota_file, then ocfs2_write_dquot over
// ocfs2_insert_qtree for each id): mkfs, tunefs and fsck all write the
// files they make this way, so that the bytes match what mkfs.ocfs2,
// tunefs.ocfs2 and fsck.ocfs2 write.
//
// It starts as the info block and an empty root. Each Insert walks the
// id's path from the root, taking the next block of the file for every
// missing tree block, top down, then puts the record in the data block at
// the head of the free entry list, or in a new data block when the list is
// empty; a data block leaves the list when its last record is taken. No
// block is ever freed, so dqi_free_blk stays 0 and the free entry list
// holds one block at most (its links stay 0). Trailers are left zero for
// the writer to seal (SetBlockCheck at QuotaCheckOffset) once it has the
// final bytes.
type GlobalQuotaFile struct {
	bs     int
	depth  int
	info   GlobalQuotaInfo
	choice QuotaRecordChoice
	blocks [][]byte
}

// QuotaRecordChoice says which record of a data block a new id takes.
type QuotaRecordChoice uint8

const (
	// QuotaRecordAfterEntries takes the record after the dqdh_entries
	// records in use (o2go's mkfs and tunefs): the record
	// QuotaRecordFirstUnused takes, as long as no record written is all
	// zero, which a record of an id owning an inode never is.
	QuotaRecordAfterEntries QuotaRecordChoice = iota
	// QuotaRecordFirstUnused takes the first all-zero record, as
	// libocfs2's ocfs2_find_free_dqentry does (o2go's fsck): a record
	// written all zero (id 0 with no limits, usage or grace time) counts
	// in dqdh_entries but is taken again by the next id.
	QuotaRecordFirstUnused
)

// NewGlobalQuotaFile starts a global file of type t for blocks of bs bytes,
// with the grace times and sync interval of info (the rest of info is the
// builder's), choosing records in data blocks by choice.
func NewGlobalQuotaFile(t QuotaType, bs int, info GlobalQuotaInfo, choice QuotaRecordChoice) (*GlobalQuotaFile, error) {
	if !isBlockSize(bs) {
		return nil, fmt.Errorf("global quota file: block size %d is not a power of two from %d to %d", bs, MinBlockSize, MaxBlockSize)
	}
	if t.GlobalMagic() == 0 {
		return nil, fmt.Errorf("global quota file: quota type %d is neither user nor group", t)
	}
	g := &GlobalQuotaFile{
		bs:     bs,
		depth:  QuotaTreeDepth(bs),
		info:   GlobalQuotaInfo{Magic: t.GlobalMagic(), BlockGrace: info.BlockGrace, InodeGrace: info.InodeGrace, SyncMS: info.SyncMS},
		choice: choice,
		blocks: [][]byte{make([]byte, bs), make([]byte, bs)},
	}
	return g, nil
}

// newBlock appends a zeroed block to the file and returns its number.
func (g *GlobalQuotaFile) newBlock() uint32 {
	g.blocks = append(g.blocks, make([]byte, g.bs))
	return uint32(len(g.blocks) - 1)
}

// Insert adds d's id to the tree and writes d (pads zeroed) as its record.
// An id already in the file is an error, and leaves the file unchanged.
func (g *GlobalQuotaFile) Insert(d GlobalDquot) error {
	le := binary.LittleEndian
	// Find where the leaf reference goes before taking any block, so that
	// a duplicate changes nothing.
	tree := uint32(QuotaTreeRootBlock)
	level := 0
	for ; level < g.depth-1; level++ {
		next := le.Uint32(g.blocks[tree][4*QuotaTreeIndex(g.bs, d.ID, level):])
		if next == 0 {
			break
		}
		tree = next
	}
	if level == g.depth-1 && le.Uint32(g.blocks[tree][4*QuotaTreeIndex(g.bs, d.ID, level):]) != 0 {
		return fmt.Errorf("global quota file: id %d is already in the tree", d.ID)
	}
	for ; level < g.depth-1; level++ {
		next := g.newBlock()
		le.PutUint32(g.blocks[tree][4*QuotaTreeIndex(g.bs, d.ID, level):], next)
		tree = next
	}
	data, rec, err := g.freeRecord()
	if err != nil {
		return err
	}
	le.PutUint32(g.blocks[tree][4*QuotaTreeIndex(g.bs, d.ID, level):], data)
	d.Encode(rec)
	return nil
}

// freeRecord takes a record in the data block at the head of the free
// entry list, or in a new one, and counts it in the block's header.
func (g *GlobalQuotaFile) freeRecord() (uint32, []byte, error) {
	data := g.info.FreeEntry
	if data == 0 {
		data = g.newBlock()
		g.info.FreeEntry = data
	}
	b := g.blocks[data]
	h, _ := DecodeQuotaDataHeader(b)
	per := GlobalDquotsPerBlock(g.bs)
	var rec []byte
	switch g.choice {
	case QuotaRecordAfterEntries:
		rec = GlobalDquotRecord(b, int(h.Entries))
	default:
		for i := 0; i < per && rec == nil; i++ {
			if r := GlobalDquotRecord(b, i); GlobalDquotUnused(r) {
				rec = r
			}
		}
	}
	if rec == nil {
		return 0, nil, fmt.Errorf("global quota file: data block %d has no free record for its %d entries", data, h.Entries)
	}
	if int(h.Entries)+1 >= per {
		// Full after this one: off the list, whose only block it is.
		g.info.FreeEntry = 0
	}
	h.Entries++
	h.Encode(b)
	return data, rec, nil
}

// Blocks is the file as built so far, the info block up to date; the
// slices are the builder's own (seal them, do not keep them past the
// next Insert).
func (g *GlobalQuotaFile) Blocks() [][]byte {
	g.info.Blocks = uint32(len(g.blocks))
	g.info.Encode(g.blocks[0])
	return g.blocks
}

// QuotaHashOrder is the order in which libocfs2 writes the records of a
// quota type, which decides where each one lands: ids are given in the
// order they were first added to its hash of dquots (ocfs2_find_create_dquot
// by every caller), and come out in the order ocfs2_write_release_dquots
// walks that hash. The hash starts with 8192 chains, doubles (up to 2^21)
// whenever an id is added while it holds more ids than chains, puts id in
// chain (id*5) mod chains at the chain's head, and is walked chain by
// chain from each head.
func QuotaHashOrder(ids []uint32) []uint32 {
	const maxChains = 1 << 21
	chains := make([][]uint32, 8192) // each chain oldest first
	hash := func(id uint32, n int) int { return int((uint64(id) * 5) & uint64(n-1)) }
	for used, id := range ids {
		if used > len(chains) && 2*len(chains) < maxChains {
			// Rehashing moves a chain's ids head first, each to the head
			// of its new chain: their order there is reversed.
			grown := make([][]uint32, 2*len(chains))
			for _, c := range chains {
				for i := len(c) - 1; i >= 0; i-- {
					h := hash(c[i], len(grown))
					grown[h] = append(grown[h], c[i])
				}
			}
			chains = grown
		}
		h := hash(id, len(chains))
		chains[h] = append(chains[h], id)
	}
	out := make([]uint32, 0, len(ids))
	for _, c := range chains {
		for i := len(c) - 1; i >= 0; i-- {
			out = append(out, c[i])
		}
	}
	return out
}
