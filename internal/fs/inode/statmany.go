package inode

import "o2go/internal/ondisk"

// StatMany returns what Stat returns for each inode of inos, under one
// metadata lock, reading the inode blocks the cache lacks in runs rather
// than one device read each (metacache's Prefetch): the attributes of a
// directory listing (READDIRPLUS, ls -l) of cold inodes.
func (f *FS) StatMany(inos []uint64) ([]*ondisk.Dinode, []error) {
	ds, errs := make([]*ondisk.Dinode, len(inos)), make([]error, len(inos))
	unlock, err := f.rlock()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return ds, errs
	}
	defer unlock()
	f.C.Prefetch(inos)
	for i, ino := range inos {
		ds[i], errs[i] = f.Inode(ino)
	}
	return ds, errs
}
