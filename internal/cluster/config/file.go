package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Load reads and parses the cluster.conf at path; what is odd but accepted
// is in the result's Warnings, for the caller to show. A missing file is an
// error that matches fs.ErrNotExist; o2cb's commands treat it as an empty
// configuration, and callers that want that do the same.
func Load(path string) (*ClusterConf, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// LoadOrEmpty is Load that returns an empty configuration for a missing
// file, as o2cb's editing commands do.
func LoadOrEmpty(path string) (*ClusterConf, error) {
	c, err := Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &ClusterConf{}, nil
	}
	return c, err
}

// Edit loads the cluster.conf at path (empty if missing), applies change,
// and saves the result if change succeeds: one o2cb editing command. It
// returns the loaded file's warnings (also when change fails), for the
// caller to show: the rewrite is what they announce, as it drops what
// o2go ignores and writes the true node_count.
func Edit(path string, change func(*ClusterConf) error) ([]Warning, error) {
	c, err := LoadOrEmpty(path)
	if err != nil {
		return nil, err
	}
	if err := change(c); err != nil {
		return c.Warnings, err
	}
	return c.Warnings, c.Save(path)
}

// Save validates c and atomically replaces path with it (see the package
// doc). A new file gets mode 0644, as o2cb gives it; an existing one keeps
// its mode and owner. The directory is created if missing, as o2cb creates
// /etc/ocfs2.
func (c *ClusterConf) Save(path string) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("not saving %s: %w", path, err)
	}
	return writeFileAtomic(path, c.Format(), 0o644)
}

// saveFault, when set by a test, is called at each step of writeFileAtomic
// and fails the save at the step where it returns an error.
var saveFault func(step string) error

func fault(step string) error {
	if saveFault != nil {
		return saveFault(step)
	}
	return nil
}

// writeFileAtomic replaces path with data so that a reader or a crash sees
// either the old or the new content, never a mix: temp file in the same
// directory, write, fsync, rename, fsync the directory.
func writeFileAtomic(path string, data []byte, newMode fs.FileMode) (err error) {
	target := path
	if t, lerr := filepath.EvalSymlinks(path); lerr == nil {
		target = t
	}
	dir := filepath.Dir(target)
	mode := newMode
	uid, gid := -1, -1
	if st, serr := os.Stat(target); serr == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", target)
		}
		mode = st.Mode().Perm()
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(sys.Uid), int(sys.Gid)
		}
	} else if errors.Is(serr, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	} else {
		return serr
	}

	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", target, err)
	}
	tmpName := tmp.Name()
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(tmpName)
		}
		switch {
		case err != nil && !renamed:
			err = fmt.Errorf("writing %s (left unchanged): %w", target, err)
		case err != nil:
			err = fmt.Errorf("%s is replaced, but syncing its directory failed: %w", target, err)
		}
	}()
	if err = fault("write"); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if uid >= 0 {
		if st, serr := tmp.Stat(); serr == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && (int(sys.Uid) != uid || int(sys.Gid) != gid) {
				if err = tmp.Chown(uid, gid); err != nil {
					return fmt.Errorf("keeping the file's owner %d:%d: %w", uid, gid, err)
				}
			}
		}
	}
	if err = fault("sync"); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = fault("rename"); err != nil {
		return err
	}
	if err = os.Rename(tmpName, target); err != nil {
		return err
	}
	renamed = true
	// The new content is in place; a failed directory sync only weakens
	// durability across a crash, but report it: the caller asked for both.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err = fault("syncdir"); err != nil {
		return err
	}
	return d.Sync()
}
