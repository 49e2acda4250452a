package inode

// SetAfterRemoveStep installs a hook run between the durable steps of a
// truncate or delete (see removeRange), so a test can stop one half-way.
func SetAfterRemoveStep(f *FS, hook func() error) { f.W.afterRemoveStep = hook }
