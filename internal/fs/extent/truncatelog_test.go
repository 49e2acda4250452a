package extent_test

import (
	"regexp"
	"strconv"
	"testing"

	"o2go/internal/fs/alloc"
	"o2go/internal/fs/extent"
	"o2go/internal/fs/metacache"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

func freeClusters(t *testing.T, img string) int {
	t.Helper()
	m := regexp.MustCompile(`Bitmap Total: \d+\s+Used: \d+\s+Free: (\d+)`).FindStringSubmatch(realtools.Debugfs(t, img, "stat //global_bitmap"))
	if m == nil {
		t.Fatal("no bitmap counts in debugfs output")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestTruncateLogAppendMergeFlush(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 256<<20, "-b", "4096", "-C", "4096", "-N", "2", "--fs-features=local")
	before := freeClusters(t, img)
	v, err := volume.Open(img, volume.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	geo, err := alloc.NewGeometry(v.Super)
	if err != nil {
		t.Fatal(err)
	}
	gbBlk, _ := v.SystemFile(ondisk.SysGlobalBitmap, -1)
	gb, err := alloc.OpenGlobalBitmap(v.Cache, geo, gbBlk)
	if err != nil {
		t.Fatal(err)
	}
	tlBlk, _ := v.SystemFile(ondisk.SysTruncateLog, 0)
	tl := &extent.TruncateLog{C: v.Cache, Blkno: tlBlk, FreeClusters: gb.FreeClusters}
	tx := &metacache.DirectTx{C: v.Cache}

	// Claim a run, then "free" it into the log in three adjacent pieces
	// and one separate run: the pieces merge into one record.
	run, err := gb.ClaimClusters(tx, 0, 30, 30)
	if err != nil {
		t.Fatal(err)
	}
	other, err := gb.ClaimClusters(tx, 0, 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]uint32{{0, 10}, {10, 10}, {20, 10}} {
		if err := tl.Append(tx, run.Start+p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tl.Append(tx, other.Start, uint32(other.Count)); err != nil {
		t.Fatal(err)
	}
	if used, _, _ := tl.Used(); used != 2 && !(other.Start == run.Start+30 && used == 1) {
		t.Fatalf("%d records after merging appends", used)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	v.Close()
	out := realtools.Debugfs(t, img, "stat //truncate_log:0000")
	if !regexp.MustCompile(`Total Records: \d+\s+Used: [12]`).MatchString(out) {
		t.Fatalf("debugfs does not see the records:\n%s", out)
	}
	if got := freeClusters(t, img); got != before-35 {
		t.Fatalf("free clusters %d with runs parked in the log, want %d", got, before-35)
	}

	v, err = volume.Open(img, volume.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gb, _ = alloc.OpenGlobalBitmap(v.Cache, geo, gbBlk)
	tl = &extent.TruncateLog{C: v.Cache, Blkno: tlBlk, FreeClusters: gb.FreeClusters}
	tx = &metacache.DirectTx{C: v.Cache}
	n, err := tl.Flush(tx)
	if err != nil || n != 35 {
		t.Fatalf("flushed %d clusters: %v", n, err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if got := freeClusters(t, img); got != before {
		t.Fatalf("free clusters %d after the flush, want %d", got, before)
	}
	realtools.RequireFsckClean(t, img)
}
