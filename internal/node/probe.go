package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"o2go/internal/blockdev"
	"o2go/internal/cluster/heartbeat"
	"o2go/internal/fs/dir"
	"o2go/internal/fs/metacache"
	"o2go/internal/ondisk"
)

// VolumeInfo is what the agent reads from a device's superblock to use it
// as a heartbeat region.
type VolumeInfo struct {
	Path            string
	UUID            string // 32 upper-case hex digits: the region name
	Label           string
	BlockSize       int
	ClusterSize     int
	Stack           string // cluster stack stamped on disk ("" for classic o2cb)
	ClusterName     string // cluster name stamped on disk (with CLUSTERINFO)
	GlobalHeartbeat bool   // stamped for O2CB global heartbeat
	HeartbeatDevice bool   // mkfs.ocfs2 -H: a heartbeat-only device
	Local           bool   // a local (single-node) volume
	Geometry        heartbeat.Geometry
}

// ProbeVolume reads the superblock and heartbeat system file of an OCFS2
// volume or heartbeat-only device at path, read-only. It does not use
// fs/volume.Open, which refuses heartbeat-only devices: it needs only the
// superblock, the system directory and two system inodes.
func ProbeVolume(path string) (*VolumeInfo, error) {
	dev, err := blockdev.Open(path, blockdev.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	return probeDevice(dev, path)
}

func probeDevice(dev blockdev.Device, path string) (*VolumeInfo, error) {
	var sbd *ondisk.Dinode
	bs := 0
	for _, try := range []int{512, 1024, 2048, 4096} {
		b := make([]byte, try)
		if _, err := dev.ReadAt(b, int64(ondisk.SuperBlockBlkno)*int64(try)); err != nil {
			continue
		}
		d, err := ondisk.DecodeDinode(b)
		if err != nil || d.Super == nil || ondisk.ValidateSuperBlock(d, try) != nil {
			continue
		}
		sbd, bs = d, try
		break
	}
	if sbd == nil {
		return nil, fmt.Errorf("%s: no OCFS2 superblock at block 2 for any block size 512..4096", path)
	}
	sb := sbd.Super
	info := &VolumeInfo{
		Path:            path,
		UUID:            fmt.Sprintf("%X", sb.UUID[:]),
		Label:           sb.Label(),
		BlockSize:       bs,
		ClusterSize:     1 << sb.ClusterSizeBits,
		HeartbeatDevice: sb.Features.Incompat&ondisk.IncompatHeartbeatDev != 0,
		Local:           sb.Features.Incompat&ondisk.IncompatLocalMount != 0,
	}
	if sb.Features.Incompat&(ondisk.IncompatClusterInfo|ondisk.IncompatUserspaceStack) != 0 {
		info.Stack = sb.ClusterInfo.StackName()
		info.ClusterName = sb.ClusterInfo.ClusterName()
		info.GlobalHeartbeat = sb.Features.Incompat&ondisk.IncompatClusterInfo != 0 &&
			sb.ClusterInfo.StackFlags&ondisk.ClusterO2CBGlobalHeartbeat != 0
	}
	c := metacache.New(dev, bs, metacache.Options{MetaECC: sb.Features.Incompat&ondisk.IncompatMetaECC != 0, FSGeneration: sbd.FSGeneration})
	sysdir, err := c.Dinode(sb.SystemDirBlkno)
	if err != nil {
		return nil, fmt.Errorf("%s: system directory: %w", path, err)
	}
	d := dir.Dir{C: c, SB: sb, Inode: sysdir}
	lookup := func(name string) (*ondisk.Dinode, error) {
		e, ok, err := d.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("%s: looking up system file %s: %w", path, name, err)
		}
		if !ok {
			return nil, fmt.Errorf("%s: no system file %s", path, name)
		}
		return c.Dinode(e.Inode)
	}
	hb, err := lookup("heartbeat")
	if err != nil {
		return nil, err
	}
	g, err := heartbeat.GeometryFromInode(hb, sb, dev.SectorSize())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if info.HeartbeatDevice && !g.HasKill {
		if bm, err := lookup("global_bitmap"); err == nil {
			g.PlaceKillAfter(int64(bm.Clusters)<<sb.ClusterSizeBits, dev.Size())
		}
	}
	if err := g.Check(dev.Size()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	info.Geometry = g
	return info, nil
}

// ReadSlotMap reads a volume's slot map (which node has it mounted in which
// slot), read-only.
func ReadSlotMap(path string) (*ondisk.SlotMap, error) {
	dev, err := blockdev.Open(path, blockdev.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	info, err := probeDevice(dev, path)
	if err != nil {
		return nil, err
	}
	if info.HeartbeatDevice {
		return nil, fmt.Errorf("%s is a heartbeat-only device: it has no slot map", path)
	}
	bs := info.BlockSize
	b := make([]byte, bs)
	if _, err := dev.ReadAt(b, int64(ondisk.SuperBlockBlkno)*int64(bs)); err != nil {
		return nil, err
	}
	sbd, err := ondisk.DecodeDinode(b)
	if err != nil || sbd.Super == nil {
		return nil, fmt.Errorf("%s: superblock: %v", path, err)
	}
	sb := sbd.Super
	c := metacache.New(dev, bs, metacache.Options{MetaECC: sb.Features.Incompat&ondisk.IncompatMetaECC != 0, FSGeneration: sbd.FSGeneration})
	sysdir, err := c.Dinode(sb.SystemDirBlkno)
	if err != nil {
		return nil, err
	}
	e, ok, err := dir.Dir{C: c, SB: sb, Inode: sysdir}.Lookup("slot_map")
	if err != nil || !ok {
		return nil, fmt.Errorf("%s: no slot_map system file (%v)", path, err)
	}
	sm, err := c.Dinode(e.Inode)
	if err != nil {
		return nil, err
	}
	if sm.Extents == nil || sm.Extents.TreeDepth != 0 || len(sm.Extents.Recs) == 0 {
		return nil, fmt.Errorf("%s: slot_map is not one extent", path)
	}
	extended := sb.Features.Incompat&ondisk.IncompatExtendedSlotMap != 0
	need := ondisk.SlotMapSize(extended, int(sb.MaxSlots))
	data := make([]byte, (need+bs-1)/bs*bs)
	if _, err := dev.ReadAt(data, int64(sm.Extents.Recs[0].Blkno)*int64(bs)); err != nil {
		return nil, err
	}
	return ondisk.DecodeSlotMap(data[:need], extended, int(sb.MaxSlots))
}

// ErrNoDevice is returned when no device matches a UUID or label.
var ErrNoDevice = errors.New("no device found")

// Finder finds volumes by UUID or label: in the --scan paths (image files,
// or folders of them), then under /dev/disk/by-uuid and by-label.
type Finder struct {
	Scan []string
}

// candidates lists the files to probe, in order.
func (f Finder) candidates() []string {
	var out []string
	add := func(dirPath string) {
		ents, err := os.ReadDir(dirPath)
		if err != nil {
			return
		}
		var names []string
		for _, e := range ents {
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, filepath.Join(dirPath, n))
		}
	}
	for _, p := range f.Scan {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.IsDir() {
			add(p)
		} else {
			out = append(out, p)
		}
	}
	add("/dev/disk/by-uuid")
	add("/dev/disk/by-label")
	return out
}

// Find resolves spec: a device path, UUID=<uuid> or LABEL=<label>.
func (f Finder) Find(spec string) (*VolumeInfo, error) {
	switch {
	case strings.HasPrefix(spec, "UUID="):
		want := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(spec, "UUID="), "-", ""))
		return f.find(spec, func(v *VolumeInfo) bool { return v.UUID == want })
	case strings.HasPrefix(spec, "LABEL="):
		want := strings.TrimPrefix(spec, "LABEL=")
		return f.find(spec, func(v *VolumeInfo) bool { return v.Label == want })
	}
	return ProbeVolume(spec)
}

func (f Finder) find(spec string, match func(*VolumeInfo) bool) (*VolumeInfo, error) {
	seen := map[string]bool{}
	for _, p := range f.candidates() {
		real, err := filepath.EvalSymlinks(p)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		v, err := ProbeVolume(p)
		if err == nil && match(v) {
			return v, nil
		}
	}
	where := "/dev/disk/by-uuid and by-label"
	if len(f.Scan) > 0 {
		where = strings.Join(f.Scan, ", ") + " and " + where
	}
	return nil, fmt.Errorf("%s: %w (looked in %s; add image files or folders with the agent's --scan)", spec, ErrNoDevice, where)
}
