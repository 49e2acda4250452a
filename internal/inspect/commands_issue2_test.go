package inspect

import (
	"strings"
	"testing"

	"o2go/internal/testutil/realtools"
)

// TestGroupOfBlockZeroFails: block 0 ends a chain, so walking from it
// shows nothing; asked for by an operator it must fail and say why, as
// debugfs.ocfs2 does for "group 0" (it prints its usage), not succeed
// silently as debugfs does for "group <0>".
func TestGroupOfBlockZeroFails(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 120<<20, "-b", "4096", "-N", "2", "--fs-features=local")
	for _, cmd := range []string{"group 0", "group <0>", "grpextents 0", "grpextents <0>"} {
		out, errOut, failed := o2goDebug(t, img, cmd, 0)
		if !failed || out != "" || !strings.Contains(errOut, "block 0") || !strings.Contains(errOut, "group descriptor") {
			t.Errorf("%q: failed=%v stdout %q stderr %q; want an error naming block 0 and the group descriptor", cmd, failed, out, errOut)
		}
	}
	if _, werr := realDebugfs(t, img, "group 0"); strings.TrimSpace(werr) == "" {
		t.Errorf("debugfs.ocfs2 accepted group 0: the comparison above is wrong")
	}
}
