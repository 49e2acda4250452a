package inspect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// TestJSONAgreesWithText checks that every --json form carries the same
// facts as the text debugfs prints (which the golden tests check against
// the real tool).
func TestJSONAgreesWithText(t *testing.T) {
	realtools.Require(t)
	img := realtools.MkfsImage(t, 200<<20, "-b", "4096", "-C", "8192", "-N", "4", "-L", "jsonvol", "--cluster-stack=o2cb", "--cluster-name=jc", "--global-heartbeat")
	sm := ondisk.SlotMap{Extended: true, Slots: []ondisk.Slot{{}, {Valid: true, Node: 17}, {}, {Valid: true, Node: 2}}}
	data := make([]byte, 4*ondisk.ExtendedSlotSize)
	sm.Encode(data)
	writeSystemFileData(t, img, "slot_map", 0, data)
	sector := make([]byte, 512)
	(&ondisk.HeartbeatBlock{Seq: 0x1234, Node: 17, Generation: 0xabcdef, DeadMs: 62000}).Encode(sector)
	writeSystemFileData(t, img, "heartbeat", 17*512, sector)

	jsonOf := func(cmd string, v any) string {
		t.Helper()
		out, errOut, failed := o2goDebug(t, img, cmd, 0)
		if failed {
			t.Fatalf("%s: %s", cmd, errOut)
		}
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		return out
	}
	text := func(cmd string) string {
		out, _, _ := o2goDebug(t, img, cmd, 0)
		return out
	}

	var sb SuperBlockJSON
	jsonOf("stats --json", &sb)
	st := text("stats")
	field := func(s, name string) string {
		m := regexp.MustCompile(`(?:^|\s)` + name + `: (\S*)`).FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("no %q in %s", name, s)
		}
		return m[1]
	}
	if sb.UUID != field(st, "UUID") || sb.Label != "jsonvol" || sb.ClusterStack != "o2cb" || sb.ClusterName != "jc" ||
		!sb.GlobalHeartbeat || sb.ClusterSize != 8192 || sb.BlockSize != 4096 || sb.MaxSlots != 4 ||
		fmt.Sprint(sb.FeatureIncompat) != field(st, "Feature Incompat") || sb.Inode == nil || sb.Inode.Inode != 2 ||
		strings.Join(sb.Features, " ") != strings.Join(allFeatureWords(ondisk.Features{Compat: sb.FeatureCompat, Incompat: sb.FeatureIncompat, RoCompat: sb.FeatureRoCompat}), " ") {
		t.Errorf("stats --json disagrees with stats:\n%+v\n%s", sb, st)
	}
	var sbOnly SuperBlockJSON
	jsonOf("stats -h --json", &sbOnly)
	if sbOnly.Inode != nil {
		t.Errorf("stats -h --json carries the inode")
	}

	var j InodeJSON
	jsonOf("stat --json //journal:0000", &j)
	stj := text("stat //journal:0000")
	recs := regexp.MustCompile(`(?m)^\t\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+0x0 $`).FindAllStringSubmatch(stj, -1)
	if len(recs) == 0 || len(recs) != len(j.Extents) || j.Journal == nil || j.Journal.Dirty || j.Type != "regular" ||
		j.SuballocSlot != -1 || j.Mode != "0644" || fmt.Sprint(j.Size) != field(stj, "Size") {
		t.Errorf("stat --json //journal:0000 disagrees:\n%+v\n%s", j, stj)
	}
	for i, r := range recs {
		if i < len(j.Extents) && (fmt.Sprint(j.Extents[i].Cpos) != r[1] || fmt.Sprint(j.Extents[i].Clusters) != r[2] || fmt.Sprint(j.Extents[i].Blkno) != r[3]) {
			t.Errorf("extent %d: json %+v, text %v", i, j.Extents[i], r[1:])
		}
	}

	var gb InodeJSON
	jsonOf("stat --json //global_bitmap", &gb)
	stg := text("stat //global_bitmap")
	rows := regexp.MustCompile(`(?m)^\t0\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+$`).FindAllStringSubmatch(stg, -1)
	if gb.Bitmap == nil || len(gb.Chains) != len(rows) {
		t.Fatalf("stat --json //global_bitmap: %d chains, text has %d groups", len(gb.Chains), len(rows))
	}
	for i, r := range rows {
		g := gb.Chains[i].Groups[0]
		if fmt.Sprint(g.Blkno) != r[1] || fmt.Sprint(g.Total) != r[2] || fmt.Sprint(g.Free) != r[4] || fmt.Sprint(g.LongestFree) != r[5] || fmt.Sprint(g.BitmapBytes) != r[6] {
			t.Errorf("chain %d group: json %+v, text %v", i, g, r[1:])
		}
	}

	var entries []DirEntryJSON
	jsonOf("ls -l --json //", &entries)
	lines := strings.Split(strings.TrimRight(text("ls -l //"), "\n"), "\n")
	if len(entries) != len(lines) {
		t.Fatalf("ls -l --json: %d entries, text %d", len(entries), len(lines))
	}
	for i, l := range lines {
		m := lsLongLine.FindStringSubmatch(l)
		e := entries[i]
		if m == nil || fmt.Sprint(e.Inode) != m[1] || e.Perms != m[2] || fmt.Sprint(e.Size) != m[6] || e.Name != m[7] {
			t.Errorf("entry %d: json %+v, text %q", i, e, l)
		}
	}
	var short []DirEntryJSON
	jsonOf("ls --json /", &short)
	if len(short) != 3 || short[2].Name != "lost+found" || short[2].FileType != ondisk.FileTypeDir || short[2].Perms != "" {
		t.Errorf("ls --json /: %+v", short)
	}

	var slots SlotMapJSON
	jsonOf("slotmap --json", &slots)
	if !slots.Extended || slots.MaxSlots != 4 || len(slots.Slots) != 2 || slots.Slots[0] != (SlotJSON{1, 17}) || slots.Slots[1] != (SlotJSON{3, 2}) {
		t.Errorf("slotmap --json: %+v", slots)
	}
	var hb HeartbeatJSON
	jsonOf("hb --json", &hb)
	if len(hb.Sectors) != 1 || hb.Sectors[0] != (HeartbeatSectorJSON{Sector: 17, Node: 17, Seq: 0x1234, Generation: 0xabcdef,
		Checksum: ondisk.HeartbeatChecksum(sector), ChecksumOK: true, DeadMs: 62000}) {
		t.Errorf("hb --json: %+v", hb)
	}

	// The session-wide switch does the same as the per-command flag.
	var out, errOut bytes.Buffer
	d := NewDebugger(&out, &errOut)
	d.JSON = true
	if err := d.Open(img, 0); err != nil {
		t.Fatal(err)
	}
	d.Exec("slotmap")
	d.Close()
	var again SlotMapJSON
	if err := json.Unmarshal(out.Bytes(), &again); err != nil || len(again.Slots) != 2 {
		t.Errorf("Debugger.JSON: %v %q", err, out.String())
	}
}
