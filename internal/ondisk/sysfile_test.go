package ondisk

import "testing"

func TestSystemFileNames(t *testing.T) {
	for _, c := range []struct {
		kind SystemFileKind
		slot int
		name string
	}{
		{SysBadBlocks, 0, "bad_blocks"},
		{SysGlobalBitmap, 9, "global_bitmap"},
		{SysUserQuota, 0, "aquota.user"},
		{SysJournal, 3, "journal:0003"},
		{SysOrphanDir, 254, "orphan_dir:0254"},
		{SysLocalGroupQuota, 12, "aquota.group:0012"},
	} {
		got, err := SystemFileName(c.kind, c.slot)
		if err != nil || got != c.name {
			t.Errorf("%v slot %d: %q %v", c.kind, c.slot, got, err)
		}
		k, s, ok := ParseSystemFileName(c.name)
		wantSlot := c.slot
		if !SystemFiles[c.kind].PerSlot {
			wantSlot = -1
		}
		if !ok || k != c.kind || s != wantSlot {
			t.Errorf("parse %q: %v %d %v", c.name, k, s, ok)
		}
	}
	if _, err := SystemFileName(SysJournal, 255); err == nil {
		t.Error("slot 255 accepted")
	}
	if _, err := SystemFileName(NumSystemFiles, 0); err == nil {
		t.Error("unknown kind accepted")
	}
	for _, bad := range []string{"journal", "journal:255", "journal:12", "journal:00012", "journal:-001",
		"journal:abcd", "global_bitmap:0000", "bogus", "", ":0000", "aquota.user:"} {
		if k, s, ok := ParseSystemFileName(bad); ok {
			t.Errorf("%q parsed as %v %d", bad, k, s)
		}
	}
}

func TestSystemFileTable(t *testing.T) {
	for i, info := range SystemFiles {
		if int(info.Kind) != i {
			t.Fatalf("entry %d has kind %d", i, info.Kind)
		}
		if info.PerSlot != (info.Kind >= SysOrphanDir) {
			t.Errorf("%s: per-slot %v", info.Name, info.PerSlot)
		}
	}
	if SystemFileDirentType(SysOrphanDir) != FileTypeDir || SystemFileDirentType(SysJournal) != FileTypeReg {
		t.Error("dirent types")
	}
	if SysJournal.String() != "journal:NNNN" || SysSlotMap.String() != "slot_map" {
		t.Error("String")
	}
}

func FuzzParseSystemFileName(f *testing.F) {
	f.Add("journal:0003")
	f.Add("global_bitmap")
	f.Fuzz(func(t *testing.T, name string) {
		kind, slot, ok := ParseSystemFileName(name)
		if !ok {
			return
		}
		got, err := SystemFileName(kind, slot)
		if err != nil || got != name {
			t.Fatalf("%q -> %v %d -> %q %v", name, kind, slot, got, err)
		}
	})
}
