package node

import (
	"errors"
	"path/filepath"
	"regexp"
	"testing"

	"o2go/internal/testutil/realtools"
)

var reUUID = regexp.MustCompile(`UUID: ([0-9A-F]{32})`)

func TestProbeFindAndSlotMap(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 32<<20, "-b", "4096", "-N", "4", "-L", "probe-test", "-J", "size=4M",
		"--cluster-stack=o2cb", "--cluster-name=webcluster")
	info, err := ProbeVolume(img)
	if err != nil {
		t.Fatal(err)
	}
	m := reUUID.FindStringSubmatch(realtools.Debugfs(t, img, "stats"))
	if m == nil || info.UUID != m[1] {
		t.Fatalf("UUID %s, debugfs says %v", info.UUID, m)
	}
	if info.Label != "probe-test" || info.Stack != "o2cb" || info.ClusterName != "webcluster" || info.GlobalHeartbeat ||
		info.HeartbeatDevice || !info.Geometry.HasKill || info.BlockSize != 4096 {
		t.Fatalf("info %+v", info)
	}
	f := Finder{Scan: []string{filepath.Dir(img)}}
	for _, spec := range []string{"UUID=" + info.UUID, "LABEL=probe-test", img} {
		got, err := f.Find(spec)
		if err != nil || got.UUID != info.UUID {
			t.Errorf("Find(%s): %+v %v", spec, got, err)
		}
	}
	if _, err := f.Find("LABEL=nothing"); !errors.Is(err, ErrNoDevice) {
		t.Errorf("unknown label: %v", err)
	}
	sm, err := ReadSlotMap(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(sm.Slots) != 4 {
		t.Fatalf("%d slots", len(sm.Slots))
	}
	for i, s := range sm.Slots {
		if s.Valid {
			t.Errorf("slot %d in use on a fresh volume", i)
		}
	}
	if _, err := ProbeVolume(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("probe of a missing file")
	}
}
