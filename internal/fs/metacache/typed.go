package metacache

import "o2go/internal/ondisk"

// decodedOf returns the structure decoded from b earlier, if any. Decoded
// structures are shared and read-only, like Data; whoever changes Data
// (the journal) drops them with b.Invalidate.
func (c *Cache) decodedOf(b *Buffer) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.decoded
}

func (c *Cache) setDecoded(b *Buffer, v any) {
	c.mu.Lock()
	b.decoded = v
	c.mu.Unlock()
}

// InvalidateDecoded drops the decoded form of b after its Data changed.
func (c *Cache) InvalidateDecoded(b *Buffer) { c.setDecoded(b, nil) }

// ExtentBlock returns the extent block at blkno, checked (META_ECC,
// signature, counts, own block number, volume generation).
func (c *Cache) ExtentBlock(blkno uint64) (*ondisk.ExtentBlock, error) {
	b, err := c.GetChecked(blkno, ondisk.ExtentBlockCheckOffset, "extent block")
	if err != nil {
		return nil, err
	}
	if eb, ok := c.decodedOf(b).(*ondisk.ExtentBlock); ok {
		return eb, nil
	}
	eb, err := ondisk.DecodeExtentBlock(b.Data)
	if err == nil {
		err = eb.SelfCheck(blkno, c.opts.FSGeneration)
	}
	if err == nil {
		err = eb.List.CheckOrder("extent block")
	}
	if err != nil {
		return nil, c.annotate(err, blkno)
	}
	c.setDecoded(b, eb)
	return eb, nil
}
