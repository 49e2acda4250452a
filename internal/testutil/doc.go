// Package testutil owns what o2go's tests share about their environment:
// whether the run is CI (where nothing may be skipped), and the Require*
// guards that skip a test on a developer's laptop but fail it under CI when
// root, a tool, FUSE or a device is missing. Sub-packages drive the oracles:
// realtools (ocfs2-tools) and kernelvm (the Linux OCFS2 driver in qemu).
//
// testutil is imported by _test.go files only (internal/lint enforces it).
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under CI (CI=true), where a missing
// oracle is a failure, never a skip.
func CI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips t on a developer machine and fails it under CI, with
// the reason and what would make it run.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("required by CI but unavailable: "+format, args...)
	}
	t.Skipf("skipped (not CI): "+format, args...)
}

// RequireRoot needs uid 0 (FUSE mounts, loop devices, namespaces).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root")
	}
}

// RequireTools needs every named program on PATH (install: make deps).
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Unavailable(t, "%s not installed (run scripts/deps.sh)", n)
		}
	}
}

// RequireFUSE needs /dev/fuse and root.
func RequireFUSE(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		Unavailable(t, "no /dev/fuse")
	}
}

// Long skips t under `go test -short`. Long tests still run under CI,
// because `make test` does not pass -short.
func Long(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("long test: skipped with -short")
	}
}
