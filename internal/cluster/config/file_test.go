package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func webConf(t *testing.T) *ClusterConf {
	t.Helper()
	data, err := os.ReadFile("testdata/o2cb-webcluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("testdata", data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dirNames lists a directory, to catch temporary files left behind.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ocfs2", "cluster.conf") // directory made as o2cb makes /etc/ocfs2
	c := webConf(t)
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("new file mode %v, want 0644 like o2cb", st.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Format()) != string(c.Format()) {
		t.Fatal("Load(Save(c)) differs")
	}

	// An existing file keeps its mode.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	got.Clusters[0].Nodes = got.Clusters[0].Nodes[:1]
	if err := got.Save(path); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after replace %v, want 0600 kept", st.Mode().Perm())
	}
	if names := dirNames(t, filepath.Dir(path)); len(names) != 1 {
		t.Errorf("directory holds %v, want only cluster.conf", names)
	}
}

func TestLoadMissingAndMalformed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.conf")
	if _, err := Load(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if c, err := LoadOrEmpty(path); err != nil || len(c.Clusters) != 0 {
		t.Fatalf("LoadOrEmpty(missing) = %v, %v", c, err)
	}
	malformed := []byte("cluster:\n\tname = c\n\tnode_count = 0\n\theartbeat_mod = global\n")
	os.WriteFile(path, malformed, 0o644)
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":4: unknown attribute 'heartbeat_mod'") {
		t.Fatalf("Load(malformed) = %v; want it located at %s:4", err, path)
	}
	if _, err := Edit(path, func(c *ClusterConf) error { return nil }); err == nil {
		t.Fatal("Edit rewrote a malformed file")
	}
	if after, _ := os.ReadFile(path); string(after) != string(malformed) {
		t.Fatalf("a refused Edit changed the file: %q", after)
	}

	// An odd file o2cb accepts: Edit hands back its warnings and rewrites
	// it as o2cb would, but with the true node_count.
	os.WriteFile(path, []byte("cluster:\n\tname = c\n\tnode_count = 3\n\tbogus = 1\n"), 0o644)
	warns, err := Edit(path, func(c *ClusterConf) error { return nil })
	if err != nil || len(warns) != 2 || !strings.Contains(warns[0].String(), path+":3: cluster 'c' has node_count = 3 but 0 node stanzas") ||
		!strings.Contains(warns[1].String(), path+":4: unknown attribute 'bogus'") {
		t.Fatalf("Edit(odd file) = %v, %v", warns, err)
	}
	if after, _ := os.ReadFile(path); string(after) != "cluster:\n\tname = c\n\theartbeat_mode = local\n\tnode_count = 0\n\n" {
		t.Fatalf("rewrite of the odd file: %q", after)
	}
	if c, err := Load(path); err != nil || len(c.Warnings) != 0 {
		t.Fatalf("o2go's rewrite is odd itself: %v %v", c.Warnings, err)
	}
}

func TestSaveFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.conf")
	link := filepath.Join(dir, "cluster.conf")
	os.WriteFile(real, nil, 0o640)
	if err := os.Symlink("real.conf", link); err != nil {
		t.Fatal(err)
	}
	if err := webConf(t).Save(link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the link was replaced by a file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(real)
	if !strings.Contains(string(data), "webcluster") {
		t.Fatal("the link's target was not written")
	}
	if st, _ := os.Stat(real); st.Mode().Perm() != 0o640 {
		t.Errorf("target mode %v, want 0640 kept", st.Mode().Perm())
	}
}

func TestSaveNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	if err := webConf(t).Save(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Save(dir) = %v", err)
	}
}

// TestSaveFailureLeavesOldFile fails the save at each step and checks that
// the old content stays whole and no temporary file is left.
func TestSaveFailureLeavesOldFile(t *testing.T) {
	for _, step := range []string{"write", "sync", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "cluster.conf")
			old := []byte("cluster:\n\tname = old\n\theartbeat_mode = local\n\tnode_count = 0\n\n")
			os.WriteFile(path, old, 0o644)
			injected := errors.New("injected failure")
			saveFault = func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}
			defer func() { saveFault = nil }()
			err := webConf(t).Save(path)
			if !errors.Is(err, injected) || !strings.Contains(err.Error(), "left unchanged") {
				t.Fatalf("Save = %v, want the injected failure reported", err)
			}
			if got, _ := os.ReadFile(path); string(got) != string(old) {
				t.Fatalf("old file changed:\n%s", got)
			}
			if names := dirNames(t, dir); len(names) != 1 {
				t.Fatalf("directory holds %v after a failed save", names)
			}
		})
	}
	t.Run("syncdir", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "cluster.conf")
		saveFault = func(s string) error {
			if s == "syncdir" {
				return errors.New("injected")
			}
			return nil
		}
		defer func() { saveFault = nil }()
		err := webConf(t).Save(path)
		if err == nil || !strings.Contains(err.Error(), "is replaced, but syncing its directory failed") {
			t.Fatalf("Save = %v", err)
		}
	})
}
