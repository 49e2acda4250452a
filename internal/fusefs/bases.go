package fusefs

import (
	"sync"

	"o2go/internal/fs/inode"
)

// pageBases keeps, for each page the kernel reads into its page cache on a
// clustered mount (a shared mapping's page, read in by a fault or read
// ahead), the bytes it was given. When the page comes back written
// (FUSE_WRITE_CACHE), the bytes that differ from those are the mapping's
// stores; the others are what this node read, which another node may have
// written since: writing the whole page back would undo that node's write
// (FUSE tells the server nothing when a mapped page is first stored to,
// so the store cannot take the cluster lock as OCFS2's page_mkwrite does).
// So only the changed bytes are written (changes), and the page's base
// becomes what was written (settle).
//
// A base is replaced each time its page is read in again; this node's own
// changes to a cached page that reach o2go without its bytes (a hole
// punched, a truncate) are applied to it (zero, cut). The bases go when
// the page dropper has the kernel drop an inode's pages (dropBefore) or
// the kernel forgets the inode; a page the kernel drops on its own keeps
// its base until read in again. They are bounded (limit bytes per
// mount): past it the oldest go first, and a page without a base comes
// back whole, as it would without them.
type pageBases struct {
	page  int // the kernel's page size
	limit int // bytes of bases kept at most

	mu    sync.Mutex
	bytes int
	seq   uint64
	byIno map[uint64]map[int64]pageBase // inode -> page index -> base
	order []baseKey                     // recording order, oldest first (some gone since)
}

// baseKey names one recorded base, for eviction in recording order.
type baseKey struct {
	ino uint64
	idx int64
	seq uint64
}

type pageBase struct {
	data []byte // a whole page
	seq  uint64 // when recorded (mark)
}

// basesLimit bounds the bases of one mount: 64 MiB of mapped pages read in
// and not yet dropped.
const basesLimit = 64 << 20

func newPageBases(page, limit int) *pageBases {
	return &pageBases{page: page, limit: limit, byIno: map[uint64]map[int64]pageBase{}}
}

// record keeps data, read at byte offset off of inode ino into the page
// cache for a request of asked bytes, as the base of each page the
// request fills: the kernel zeroes what the data does not reach. off is
// page aligned for a page-cache read; anything else is not recorded.
func (b *pageBases) record(ino uint64, off int64, data []byte, asked int) {
	ps := int64(b.page)
	if off%ps != 0 {
		return
	}
	n := max(1, (max(len(data), asked)+b.page-1)/b.page)
	b.mu.Lock()
	defer b.mu.Unlock()
	pages := b.byIno[ino]
	if pages == nil {
		pages = map[int64]pageBase{}
		b.byIno[ino] = pages
	}
	for k := range n {
		idx := off/ps + int64(k)
		if _, had := pages[idx]; !had {
			b.bytes += b.page
		}
		page := make([]byte, b.page)
		if k*b.page < len(data) {
			copy(page, data[k*b.page:])
		}
		b.seq++
		pages[idx] = pageBase{data: page, seq: b.seq}
		b.order = append(b.order, baseKey{ino, idx, b.seq})
	}
	b.evict()
}

// evict drops the oldest bases until the rest fit the limit, and the
// order's entries of bases gone. Under mu.
func (b *pageBases) evict() {
	for len(b.order) > 0 {
		k := b.order[0]
		base, live := b.byIno[k.ino][k.idx]
		live = live && base.seq == k.seq
		if live && b.bytes <= b.limit {
			break
		}
		b.order = b.order[1:]
		if live {
			b.remove(k.ino, k.idx)
		}
	}
	if len(b.order) > 2*(b.bytes/b.page)+1024 {
		// Mostly entries of bases read in again or dropped since: keep
		// the live ones, still oldest first.
		live := b.order[:0:0]
		for _, k := range b.order {
			if base, ok := b.byIno[k.ino][k.idx]; ok && base.seq == k.seq {
				live = append(live, k)
			}
		}
		b.order = live
	}
}

// remove drops one base. Under mu.
func (b *pageBases) remove(ino uint64, idx int64) {
	pages := b.byIno[ino]
	if _, ok := pages[idx]; !ok {
		return
	}
	delete(pages, idx)
	b.bytes -= b.page
	if len(pages) == 0 {
		delete(b.byIno, ino)
	}
}

// zero applies to inode ino's bases what this node's kernel did to its
// cached pages when a range of the file was punched or zeroed here: bytes
// [off, off+n) read zero.
func (b *pageBases) zero(ino uint64, off, n int64) {
	ps := int64(b.page)
	b.mu.Lock()
	defer b.mu.Unlock()
	for idx, base := range b.byIno[ino] {
		lo, hi := max(off, idx*ps), min(off+n, (idx+1)*ps)
		if lo < hi {
			clear(base.data[lo-idx*ps : hi-idx*ps])
		}
	}
}

// cut applies a truncate to size here: the kernel zeroes its page past
// the end and drops the pages beyond.
func (b *pageBases) cut(ino uint64, size int64) {
	ps := int64(b.page)
	b.mu.Lock()
	defer b.mu.Unlock()
	for idx, base := range b.byIno[ino] {
		switch {
		case idx*ps >= size:
			b.remove(ino, idx)
		case (idx+1)*ps > size:
			clear(base.data[size-idx*ps:])
		}
	}
}

// changes returns the runs of bytes of data, a write-back at byte offset
// off of inode ino, that differ from the bases of their pages; a page
// without a base is one run, whole.
func (b *pageBases) changes(ino uint64, off int64, data []byte) []inode.Part {
	ps := int64(b.page)
	b.mu.Lock()
	defer b.mu.Unlock()
	pages := b.byIno[ino]
	var parts []inode.Part
	add := func(at int64, run []byte) {
		if n := len(parts); n > 0 && parts[n-1].Off+int64(len(parts[n-1].Data)) == at {
			parts[n-1].Data = data[parts[n-1].Off-off : at-off+int64(len(run))]
			return
		}
		parts = append(parts, inode.Part{Off: at, Data: run})
	}
	for pos := off; pos < off+int64(len(data)); {
		end := min((pos/ps+1)*ps, off+int64(len(data)))
		chunk := data[pos-off : end-off]
		base, ok := pages[pos/ps]
		if !ok {
			add(pos, chunk)
			pos = end
			continue
		}
		in := base.data[pos%ps:]
		for i := 0; i < len(chunk); {
			if chunk[i] == in[i] {
				i++
				continue
			}
			j := i
			for j < len(chunk) && chunk[j] != in[j] {
				j++
			}
			add(pos+int64(i), chunk[i:j])
			i = j
		}
		pos = end
	}
	return parts
}

// settle makes data, written back at byte offset off of inode ino, the
// base of the pages it covers that have one: the kernel's page now holds
// it, clean.
func (b *pageBases) settle(ino uint64, off int64, data []byte) {
	ps := int64(b.page)
	b.mu.Lock()
	defer b.mu.Unlock()
	pages := b.byIno[ino]
	for pos := off; pos < off+int64(len(data)); {
		end := min((pos/ps+1)*ps, off+int64(len(data)))
		if base, ok := pages[pos/ps]; ok {
			copy(base.data[pos%ps:], data[pos-off:end-off])
		}
		pos = end
	}
}

// mark is the point after which a base is recorded: the bases of a
// drop that starts now are those recorded before (dropBefore).
func (b *pageBases) mark() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// dropBefore forgets inode ino's bases recorded up to seq: the kernel has
// dropped those pages (a page read in since keeps its base).
func (b *pageBases) dropBefore(ino uint64, seq uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for idx, base := range b.byIno[ino] {
		if base.seq <= seq {
			b.remove(ino, idx)
		}
	}
	b.evict() // and the order's entries of the bases gone
}

// forget drops every base of inode ino (the kernel forgot the inode).
func (b *pageBases) forget(ino uint64) { b.dropBefore(ino, ^uint64(0)) }
