package volume

import (
	"slices"
	"strings"

	"o2go/internal/ondisk"
)

// tunefs --fs-features (tunefs.ocfs2's op_features.c and feature_*.c):
// each named feature is turned on or off by its own operation, which
// reopens the volume; disabling runs before enabling, and a feature turned
// on after the ones it needs (sparse before unwritten) and off before them.
// Naming a feature turns on what it needs ("unwritten" turns on "sparse");
// turning one off turns off what needs it ("nosparse" turns off
// "unwritten"), as libocfs2 parses the list.
//
// What each change does, and where o2go stands (the file holding the
// larger ones in parentheses):
//
//	local            on: the LOCAL flag (userspace-stack cleared); off: a cluster
//	                 volume stamped for this node's cluster (classic o2cb when
//	                 none is configured)
//	sparse           on: files' clusters past i_size freed, then the flag; off:
//	                 every hole of every file filled with zeroed clusters
//	                 (needs unwritten off) (tunefs_feature_sparse.go)
//	unwritten        on: the flag (needs sparse); off: unwritten extents
//	                 zeroed and marked written (tunefs_feature_sparse.go)
//	backup-super     on: the backup locations (must be free) reserved and
//	                 written; off: their clusters freed (tunefs_feature_backup.go)
//	extended-slotmap the slot map reformatted; off refused with a cluster stack
//	                 stamped (the stamp needs the extended map)
//	inline-data      on: the flag; off: every inline file and directory moved
//	                 into a cluster (tunefs_feature_inline.go)
//	metaecc          every metadata block's check computed (on) or zeroed (off);
//	                 on installs directory trailers first (tunefs_feature_metaecc.go)
//	xattr            on: the flag, s_xattr_inline_size, s_uuid_hash; off: every
//	                 extended attribute removed (tunefs_feature_xattr.go)
//	indexed-dirs     on: trailers and an index for every block directory; off:
//	                 every index freed (tunefs_feature_dx.go)
//	usrquota         on: the quota files made, every id's usage counted into
//	grpquota         them, then the flag; off: the quota files freed and
//	                 unlinked; the changes above that grow or shrink files
//	                 end with the usage counted anew (tunefs_feature_quota.go)
//	refcount         on: the flag; off: every shared run copied for each file
//	                 that shares it, the refcount trees freed, then the flag
//	                 (tunefs_feature_refcount.go)
//	discontig-bg     on: every suballocator group's bg_size set to 256 bytes,
//	                 then the flag; off: refused while a discontiguous group
//	                 exists, else the flag, then every suballocator group's
//	                 bg_size set to a whole block's bitmap
//	clusterinfo      on: this node's cluster stamped with CLUSTERINFO; off: the
//	                 flag (userspace-stack set for a non-o2cb stack)
//	append-dio       the flag

// tunefsFeature is one --fs-features name and what turning it on and off
// does.
type tunefsFeature struct {
	name            string
	own             FeatureSet
	alloc           bool // the change allocates (the global bitmap is checked first)
	enable, disable func(t *tunefsVol) error
}

func (f *tunefsFeature) set(fs FeatureSet) bool { return overlaps(fs, f.own) }

// tunefsFeatures in libocfs2's table order.
var tunefsFeatures = []*tunefsFeature{
	{name: "local", enable: (*tunefsVol).enableLocal, disable: (*tunefsVol).disableLocal},
	{name: "sparse", alloc: true, enable: (*tunefsVol).enableSparse, disable: (*tunefsVol).disableSparse},
	{name: "backup-super", alloc: true, enable: (*tunefsVol).enableBackupSuper, disable: (*tunefsVol).disableBackupSuper},
	{name: "unwritten", alloc: true, enable: (*tunefsVol).enableUnwritten, disable: (*tunefsVol).disableUnwritten},
	{name: "extended-slotmap", alloc: true, enable: (*tunefsVol).enableExtendedSlotMap, disable: (*tunefsVol).disableExtendedSlotMap},
	{name: "inline-data", alloc: true, enable: (*tunefsVol).enableInlineData, disable: (*tunefsVol).disableInlineData},
	{name: "metaecc", alloc: true, enable: (*tunefsVol).enableMetaECC, disable: (*tunefsVol).disableMetaECC},
	{name: "xattr", alloc: true, enable: (*tunefsVol).enableXattr, disable: (*tunefsVol).disableXattr},
	{name: "indexed-dirs", alloc: true, enable: (*tunefsVol).enableIndexedDirs, disable: (*tunefsVol).disableIndexedDirs},
	{name: "usrquota", alloc: true, enable: (*tunefsVol).enableUsrQuota, disable: (*tunefsVol).disableUsrQuota},
	{name: "grpquota", alloc: true, enable: (*tunefsVol).enableGrpQuota, disable: (*tunefsVol).disableGrpQuota},
	{name: "refcount", alloc: true, enable: (*tunefsVol).enableRefcount, disable: (*tunefsVol).disableRefcount},
	{name: "discontig-bg", alloc: true, enable: (*tunefsVol).enableDiscontigBG, disable: (*tunefsVol).disableDiscontigBG},
	{name: "clusterinfo", enable: (*tunefsVol).enableClusterInfo, disable: (*tunefsVol).disableClusterInfo},
	{name: "append-dio", enable: (*tunefsVol).enableAppendDIO, disable: (*tunefsVol).disableAppendDIO},
}

func init() {
	for _, f := range tunefsFeatures {
		for _, m := range mkfsFeatures {
			if m.name == f.name {
				f.own = m.own
			}
		}
	}
}

// planFeatures turns an --fs-features list into operations.
func (r *tunefsRun) planFeatures(list string) ([]tunefsOp, error) {
	on, off, err := parseFeatureChanges(list)
	if err != nil {
		return nil, err
	}
	var ops []tunefsOp
	var offs []*tunefsFeature
	for _, f := range tunefsFeatures {
		if f.set(off) {
			offs = append(offs, f)
		}
	}
	// What depends on a feature goes off before it (unwritten before sparse).
	for i, f := range offs {
		if f.name == "sparse" {
			for j := i + 1; j < len(offs); j++ {
				if offs[j].name == "unwritten" {
					offs[i], offs[j] = offs[j], offs[i]
				}
			}
		}
	}
	// Quota usage follows the files the changes grow or shrink: once one
	// of those changes happened, the usage is counted anew at the end.
	stale, recount := false, false
	counted := func(f *tunefsFeature, on bool, run func(*tunefsVol) error) func(*tunefsVol) error {
		if !slices.Contains(quotaChanges[on], f.name) {
			return run
		}
		recount = true
		return func(t *tunefsVol) error {
			before, _ := t.feature(f.name)
			err := run(t)
			if now, _ := t.feature(f.name); err == nil && now != before {
				stale = true
			}
			return err
		}
	}
	for _, f := range offs {
		r.verbosef("Disabling feature %q\n", f.name)
		ops = append(ops, tunefsOp{name: "disable feature " + f.name, rw: true, alloc: f.alloc, run: counted(f, false, f.disable)})
	}
	for _, f := range tunefsFeatures {
		if f.set(on) {
			r.verbosef("Enabling feature %q\n", f.name)
			ops = append(ops, tunefsOp{name: "enable feature " + f.name, rw: true, alloc: f.alloc, run: counted(f, true, f.enable)})
		}
	}
	if recount {
		ops = append(ops, tunefsOp{name: "update quota usage", rw: true, alloc: true, run: func(t *tunefsVol) error {
			if !stale {
				return nil
			}
			return t.refreshQuotaUsage()
		}})
	}
	return ops, nil
}

// quotaChanges are the feature changes that grow or shrink files (their
// i_clusters), by direction (true: turning on): sparse on frees clusters
// past the files' sizes, off fills holes; noinline-data moves data into
// clusters; metaecc and indexed-dirs may move directory entries into new
// blocks to make room for trailers.
var quotaChanges = map[bool][]string{
	true:  {"sparse", "metaecc", "indexed-dirs"},
	false: {"sparse", "inline-data"},
}

// parseFeatureChanges parses "name,noname,...": the features to turn on
// (with what they need) and off (with what needs them).
func parseFeatureChanges(list string) (on, off FeatureSet, err error) {
	for _, tok := range strings.Split(list, ",") {
		if tok == "" {
			continue
		}
		name, disable := tok, false
		if strings.HasPrefix(tok, "no") {
			name, disable = tok[2:], true
		}
		var f *mkfsFeature
		for i := range mkfsFeatures {
			if mkfsFeatures[i].name == name {
				f = &mkfsFeatures[i]
			}
		}
		if f == nil {
			var names []string
			for _, k := range mkfsFeatures {
				names = append(names, k.name)
			}
			return on, off, tunefsRefuse("unknown feature %q in --fs-features; known: %s (prefix \"no\" to turn one off)", name, strings.Join(names, ", "))
		}
		if disable {
			off = union(off, f.own)
		} else {
			on = union(on, f.needs)
		}
	}
	for _, f := range mkfsFeatures {
		if overlaps(off, f.needs) {
			off = union(off, f.own)
		}
	}
	if overlaps(on, off) {
		return on, off, tunefsRefuse("--fs-features %q both sets and clears a feature (or one it depends on)", list)
	}
	return on, off, nil
}

// flagFeature turns a feature whose change is its superblock bit alone on
// or off (enable_append_dio and the like).
func (t *tunefsVol) flagFeature(name string, f *FeatureSet, on bool, apply func()) error {
	has := f.Compat&t.SB.Features.Compat != 0 || f.Incompat&t.SB.Features.Incompat != 0 || f.RoCompat&t.SB.Features.RoCompat != 0
	if has == on {
		t.verbosef("The %s feature is already %s; nothing to do\n", name, map[bool]string{true: "enabled", false: "disabled"}[on])
		return nil
	}
	verb := map[bool]string{true: "Enable", false: "Disable"}[on]
	ok, err := t.r.interact("%s the %s feature on device %q? ", verb, name, t.Path)
	if err != nil || !ok {
		return err
	}
	if on {
		t.SB.Features = union(t.SB.Features, *f)
	} else {
		t.SB.Features.Compat &^= f.Compat
		t.SB.Features.Incompat &^= f.Incompat
		t.SB.Features.RoCompat &^= f.RoCompat
	}
	if apply != nil {
		apply()
	}
	return t.writeSuper()
}

// feature reports whether the superblock has feature name on, and the
// feature's bits.
func (t *tunefsVol) feature(name string) (bool, *FeatureSet) {
	for i := range mkfsFeatures {
		if f := &mkfsFeatures[i]; f.name == name {
			return overlaps(t.SB.Features, f.own), &f.own
		}
	}
	panic("unknown feature " + name)
}

// already reports (and says at -v) that the feature is already as wanted.
func (t *tunefsVol) already(name string, on bool) bool {
	has, _ := t.feature(name)
	if has == on {
		t.verbosef("The %s feature is already %s; nothing to do\n", name, map[bool]string{true: "enabled", false: "disabled"}[on])
		return true
	}
	return false
}

// ask asks -i's question for turning feature name on or off.
func (t *tunefsVol) askFeature(name string, on bool) (bool, error) {
	verb := map[bool]string{true: "Enable", false: "Disable"}[on]
	return t.r.interact("%s the %s feature on device %q? ", verb, name, t.Path)
}

// setFeature changes the feature's bits in memory.
func (t *tunefsVol) setFeature(name string, on bool) {
	_, f := t.feature(name)
	if on {
		t.SB.Features = union(t.SB.Features, *f)
		return
	}
	t.SB.Features.Compat &^= f.Compat
	t.SB.Features.Incompat &^= f.Incompat
	t.SB.Features.RoCompat &^= f.RoCompat
}

func (t *tunefsVol) enableAppendDIO() error  { return t.toggleFlag("append-dio", true, nil) }
func (t *tunefsVol) disableAppendDIO() error { return t.toggleFlag("append-dio", false, nil) }
func (t *tunefsVol) enableDiscontigBG() error {
	if t.already("discontig-bg", true) {
		return nil
	}
	ok, err := t.askFeature("discontig-bg", true)
	if err != nil || !ok {
		return err
	}
	if err := t.shrinkSuballocBitmaps(); err != nil {
		return err
	}
	t.setFeature("discontig-bg", true)
	return t.writeSuper()
}

// shrinkSuballocBitmaps gives every suballocator group the bg_size of a
// discontig-bg volume (MaxSuballocBitmapBytes): kernels with "ocfs2:
// reject oversized group bitmap descriptors" (Debian's 6.1 among them)
// turn a discontig-bg volume read-only on the first larger one they read.
// tunefs.ocfs2 1.8.7 sets the flag alone and leaves such volumes. The
// groups go first, so that a crash before the flag leaves a volume every
// kernel reads (bg_size may be smaller than a whole block's bitmap).
// global_inode_alloc keeps its whole-block bitmap, as mkfs.ocfs2 makes it
// on discontig-bg volumes (the kernel never allocates from it).
func (t *tunefsVol) shrinkSuballocBitmaps() error {
	small := ondisk.GroupBitmapBytes(t.bs(), true, ondisk.IncompatDiscontigBG)
	var change []*ondisk.GroupDesc
	scan := func(name string, blk uint64) error {
		_, groups, err := t.allocatorGroups(blk)
		if err != nil {
			return err
		}
		for _, g := range groups {
			if len(g.Bitmap) <= small {
				continue
			}
			if int(g.Bits) > 8*small || slices.ContainsFunc(g.Bitmap[small:], func(b byte) bool { return b != 0 }) {
				return tunefsRefuse("group %d of %s has %d bits, more than a discontig-bg volume's %d-byte suballocator bitmap holds", g.Blkno, name, g.Bits, small)
			}
			change = append(change, g)
		}
		return nil
	}
	for _, k := range []ondisk.SystemFileKind{ondisk.SysInodeAlloc, ondisk.SysExtentAlloc} {
		for slot := 0; slot < int(t.SB.MaxSlots); slot++ {
			blk, err := t.SystemFile(k, slot)
			if err != nil {
				return err
			}
			if err := scan(mustName(k, slot), blk); err != nil {
				return err
			}
		}
	}
	for _, g0 := range change {
		g := cloneGroup(g0)
		g.Bitmap = g.Bitmap[:small]
		if err := t.writeGroup(g); err != nil {
			return err
		}
	}
	return nil
}
func (t *tunefsVol) enableInlineData() error { return t.toggleFlag("inline-data", true, nil) }

// toggleFlag is flagFeature by name.
func (t *tunefsVol) toggleFlag(name string, on bool, apply func()) error {
	_, f := t.feature(name)
	return t.flagFeature(name, f, on, apply)
}

// enableLocal makes the volume single-node (enable_local).
func (t *tunefsVol) enableLocal() error {
	return t.toggleFlag("local", true, func() {
		t.SB.Features.Incompat &^= ondisk.IncompatUserspaceStack
	})
}

// disableLocal makes the volume clustered, stamped for this node's
// cluster (disable_local).
func (t *tunefsVol) disableLocal() error {
	if t.already("local", false) {
		return nil
	}
	ok, err := t.r.interact("Make device %q a cluster-aware filesystem? ", t.Path)
	if err != nil || !ok {
		return err
	}
	cs := ClusterStack{}
	if run := t.r.o.RunningStack; run != nil {
		cs = *run
		t.verbosef("Cluster stack: %s\nCluster name: %s\n", cs.Stack, cs.Name)
	} else {
		t.verbosef("Cluster stack: classic o2cb\n")
	}
	if err := cs.Validate(); err != nil {
		return tunefsRefuse("the running cluster's description is not valid: %v", err)
	}
	t.setFeature("local", false)
	return t.setClusterDesc(cs)
}

// enableUnwritten needs sparse (enable_unwritten_extents).
func (t *tunefsVol) enableUnwritten() error {
	if t.already("unwritten", true) {
		return nil
	}
	if on, _ := t.feature("sparse"); !on {
		return tunefsRefuse("sparse files are not enabled on %s; unwritten extents cannot be enabled", t.Path)
	}
	return t.toggleFlag("unwritten", true, nil)
}

// enableExtendedSlotMap and disableExtendedSlotMap reformat the slot map.
func (t *tunefsVol) enableExtendedSlotMap() error  { return t.extendedSlotMap(true) }
func (t *tunefsVol) disableExtendedSlotMap() error { return t.extendedSlotMap(false) }

func (t *tunefsVol) extendedSlotMap(on bool) error {
	if t.already("extended-slotmap", on) {
		return nil
	}
	if !on && t.SB.Features.Incompat&(ondisk.IncompatUserspaceStack|ondisk.IncompatClusterInfo) != 0 {
		return tunefsRefuse("%s is stamped for the %s cluster stack, which needs the extended slot map; stamp the default stack first (--cluster-stack=default)", t.Path, t.diskClusterStack())
	}
	ok, err := t.askFeature("extended-slotmap", on)
	if err != nil || !ok {
		return err
	}
	t.setFeature("extended-slotmap", on)
	if err := t.formatSlotMap(); err != nil {
		return err
	}
	return t.writeSuper()
}

// enableClusterInfo stamps this node's cluster with CLUSTERINFO
// (enable_clusterinfo).
func (t *tunefsVol) enableClusterInfo() error {
	if t.already("clusterinfo", true) {
		return nil
	}
	if t.local() {
		return tunefsRefuse("%s is a local volume: cluster information belongs to clustered volumes (--fs-features=nolocal)", t.Path)
	}
	run := t.r.o.RunningStack
	if run == nil || run.Stack == "" {
		return tunefsRefuse("no running cluster to stamp: this node has no O2CB cluster configured; use --cluster-stack and --cluster-name")
	}
	ok, err := t.askFeature("clusterinfo", true)
	if err != nil || !ok {
		return err
	}
	t.SB.Features.Incompat |= ondisk.IncompatClusterInfo
	t.SB.Features.Incompat &^= ondisk.IncompatUserspaceStack
	return t.setClusterDesc(*run)
}

// disableClusterInfo keeps a userspace stack's stamp valid through the
// USERSPACE_STACK flag (disable_clusterinfo).
func (t *tunefsVol) disableClusterInfo() error {
	return t.toggleFlag("clusterinfo", false, func() {
		if st := t.SB.ClusterInfo.StackName(); st != "" && st != "o2cb" {
			t.SB.Features.Incompat |= ondisk.IncompatUserspaceStack
		}
	})
}

// disableDiscontigBG refuses while a discontiguous group exists; else the
// flag goes, then every suballocator group's bg_size becomes a whole
// block's bitmap, as volumes without the feature have it
// (disable_discontig_bg). tunefs.ocfs2 widens the groups first: a crash
// before its flag write leaves a discontig-bg volume with groups larger
// than its 256-byte maximum, which kernels with "ocfs2: reject oversized
// group bitmap descriptors" refuse. Here a crash in between leaves a
// volume without the feature whose groups are smaller than they could be,
// which every reader takes; run again, the operation widens them.
func (t *tunefsVol) disableDiscontigBG() error {
	on, _ := t.feature("discontig-bg")
	narrow, err := t.narrowSuballocGroups()
	if err != nil {
		return err
	}
	if !on {
		if len(narrow) == 0 {
			t.already("discontig-bg", false)
			return nil
		}
		t.verbosef("The discontig-bg feature is already disabled; widening the bitmaps of %d suballocator groups an interrupted run left\n", len(narrow))
		return t.widenGroups(narrow)
	}
	ok, err := t.askFeature("discontig-bg", false)
	if err != nil || !ok {
		return err
	}
	t.setFeature("discontig-bg", false)
	if err := t.writeSuper(); err != nil {
		return err
	}
	if err := t.r.interrupt("discontig-bg-off"); err != nil {
		return err
	}
	return t.widenGroups(narrow)
}

// narrowSuballocGroups lists the groups of every slot's inode_alloc and
// extent_alloc whose bitmap is smaller than a whole block's, and refuses
// when one of them is discontiguous.
func (t *tunefsVol) narrowSuballocGroups() ([]*ondisk.GroupDesc, error) {
	var out []*ondisk.GroupDesc
	full := ondisk.GroupBitmapBytes(t.bs(), false, 0)
	for _, k := range []ondisk.SystemFileKind{ondisk.SysInodeAlloc, ondisk.SysExtentAlloc} {
		for slot := 0; slot < int(t.SB.MaxSlots); slot++ {
			blk, err := t.SystemFile(k, slot)
			if err != nil {
				return nil, err
			}
			_, groups, err := t.allocatorGroups(blk)
			if err != nil {
				return nil, err
			}
			for _, g := range groups {
				if g.Discontig() {
					return nil, tunefsRefuse("the discontig-bg feature cannot be turned off while a discontiguous block group exists (group %d of %s)", g.Blkno, mustName(k, slot))
				}
				if len(g.Bitmap) != full {
					out = append(out, g)
				}
			}
		}
	}
	return out, nil
}

// widenGroups gives each group a whole block's bitmap.
func (t *tunefsVol) widenGroups(groups []*ondisk.GroupDesc) error {
	full := ondisk.GroupBitmapBytes(t.bs(), false, 0)
	for _, g0 := range groups {
		g := cloneGroup(g0)
		bm := make([]byte, full)
		copy(bm, g.Bitmap)
		g.Bitmap = bm
		g.List = nil
		if err := t.writeGroup(g); err != nil {
			return err
		}
	}
	return t.Dev.Sync()
}

func mustName(k ondisk.SystemFileKind, slot int) string {
	n, _ := ondisk.SystemFileName(k, slot)
	return n
}
