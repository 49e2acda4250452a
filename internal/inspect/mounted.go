package inspect

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"o2go/internal/base"
	"o2go/internal/blockdev"
	"o2go/internal/cluster/config"
	"o2go/internal/fs/volume"
	"o2go/internal/ondisk"
)

// MountedOptions configure FindVolumes.
type MountedOptions struct {
	// Devices are the block devices or image files to look at. Empty: every
	// block device of /proc/partitions (loop devices included) larger than
	// 1 MiB, as mounted.ocfs2 scans.
	Devices []string
	// Full also reads each volume's heartbeat area and slot map to say
	// which nodes use it (mounted.ocfs2 -f).
	Full bool
	// ClusterConf is read, when it exists, to show node names instead of
	// numbers. Empty: config.DefaultClusterConfPath.
	ClusterConf string
	// Sample, when non-zero, decides liveness by reading the heartbeat area
	// twice this far apart: a node is live if its sector changed, which is
	// o2hb's own rule. When zero a node is live if its sequence — which the
	// kernel and o2go set to the wall-clock seconds of each beat — is within
	// its dead threshold of Now.
	Sample time.Duration
	// Now is the time liveness is judged at (zero: time.Now()).
	Now time.Time
}

// MountedVolume is one OCFS2 volume found (`o2go mounted --json` prints a
// list of these).
type MountedVolume struct {
	Device          string `json:"device"`
	Stack           string `json:"stack"`             // "None" (local), "o2cb", "pcmk", ...
	Cluster         string `json:"cluster,omitempty"` // from the volume's cluster info
	GlobalHeartbeat bool   `json:"global_heartbeat"`  // the "G" of mounted.ocfs2's F column
	UUID            string `json:"uuid"`
	Label           string `json:"label"`
	// The rest is filled with Full.
	HeartbeatDevice bool            `json:"heartbeat_device,omitempty"` // mkfs -H: a heartbeat-only device
	Heartbeating    []HeartbeatNode `json:"heartbeating,omitempty"`
	SlotNodes       []uint32        `json:"slot_map_nodes,omitempty"` // nodes the slot map says have it mounted
	Error           string          `json:"error,omitempty"`          // why the nodes could not be found
}

// HeartbeatNode is a node whose heartbeat looks alive.
type HeartbeatNode struct {
	Node       int    `json:"node"`
	Name       string `json:"name,omitempty"` // from cluster.conf
	Seq        uint64 `json:"seq"`
	Generation uint64 `json:"generation"`
}

// UnreadableError lists devices that could not be read.
type UnreadableError struct{ Errs []error }

func (e *UnreadableError) Error() string {
	var s []string
	for _, err := range e.Errs {
		s = append(s, err.Error())
	}
	return strings.Join(s, "; ")
}

// FindVolumes looks for OCFS2 volumes. Devices without an OCFS2 superblock
// are skipped silently; devices that cannot be read are reported in
// unreadable (the scan goes on).
func FindVolumes(opts MountedOptions) (found []MountedVolume, unreadable []error) {
	devs := opts.Devices
	if len(devs) == 0 {
		devs = scanPartitions()
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	var names *config.ClusterConf
	if opts.Full {
		path := opts.ClusterConf
		if path == "" {
			path = config.DefaultClusterConfPath
		}
		names, _ = config.Load(path) // no cluster.conf: numbers instead of names
	}
	for _, dev := range devs {
		mv, ok, err := probeVolume(dev)
		if err != nil {
			unreadable = append(unreadable, err)
			continue
		}
		if !ok {
			continue
		}
		if opts.Full && !mv.HeartbeatDevice {
			if err := mv.findNodes(opts, now, names); err != nil {
				mv.Error = err.Error()
			}
		}
		found = append(found, mv)
	}
	return found, unreadable
}

// probeVolume reads the superblock the way mounted.ocfs2 -d does: 512
// bytes at 1, 2, 4 and 8 KiB (block 2 for each block size), looking for
// the OCFSV2 signature.
func probeVolume(path string) (MountedVolume, bool, error) {
	mv := MountedVolume{Device: path}
	dev, err := blockdev.Open(path, blockdev.OpenOptions{ReadOnly: true})
	if err != nil {
		if errors.Is(err, syscall.ENOMEDIUM) {
			return mv, false, nil // an empty removable drive holds nothing
		}
		return mv, false, err
	}
	defer dev.Close()
	buf := make([]byte, 512)
	for off := int64(1024); off <= 8192; off <<= 1 {
		if off+512 > dev.Size() {
			break
		}
		if _, err := dev.ReadAt(buf, off); err != nil {
			return mv, false, fmt.Errorf("%s: reading byte %d: %w", path, off, err)
		}
		if string(buf[:6]) != "OCFSV2" {
			continue
		}
		// The superblock's fields all lie in the first 512 bytes of its
		// block, whatever the block size.
		d, err := ondisk.DecodeDinode(buf)
		if err != nil || d.Super == nil {
			return mv, false, nil
		}
		sb := d.Super
		mv.Label = cstr(sb.VolumeLabel[:])
		mv.UUID = sb.UUIDString()
		switch {
		case sb.Features.Incompat&ondisk.IncompatLocalMount != 0:
			mv.Stack = "None"
		case sb.HasClusterInfo():
			mv.Stack = cstr(sb.ClusterInfo.Stack[:])
			mv.Cluster = cstr(sb.ClusterInfo.Cluster[:])
			mv.GlobalHeartbeat = mv.Stack == "o2cb" && sb.ClusterInfo.StackFlags&ondisk.ClusterO2CBGlobalHeartbeat != 0
		default:
			mv.Stack = "o2cb"
		}
		mv.HeartbeatDevice = sb.Features.Incompat&ondisk.IncompatHeartbeatDev != 0
		return mv, true, nil
	}
	return mv, false, nil
}

// findNodes reads the heartbeat area and the slot map.
func (mv *MountedVolume) findNodes(opts MountedOptions, now time.Time, names *config.ClusterConf) error {
	v, err := volume.Open(mv.Device, volume.OpenOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer v.Close()
	read := func() ([]byte, error) {
		blk, err := v.SystemFile(ondisk.SysHeartbeat, -1)
		if err != nil {
			return nil, err
		}
		ino, err := v.FS.Inode(blk)
		if err != nil {
			return nil, err
		}
		n := min(ino.Size, uint64(ondisk.HeartbeatMaxNodes*ondisk.MaxBlockSize))
		buf := make([]byte, n)
		got, err := v.FS.ReadAt(ino, buf, 0)
		return buf[:got], err
	}
	first, err := read()
	if err != nil {
		return fmt.Errorf("reading the heartbeat area: %w", err)
	}
	var second []byte
	if opts.Sample > 0 {
		time.Sleep(opts.Sample)
		if second, err = read(); err != nil {
			return fmt.Errorf("reading the heartbeat area: %w", err)
		}
	}
	var cl *config.Cluster
	if names != nil && len(names.Clusters) > 0 {
		cl = &names.Clusters[0]
		if mv.Cluster != "" {
			cl = names.Cluster(mv.Cluster)
		}
	}
	ss := v.Dev.SectorSize()
	for node := 0; node < ondisk.HeartbeatMaxNodes && (node+1)*ss <= len(first); node++ {
		sector := first[node*ss : (node+1)*ss]
		h, err := ondisk.DecodeHeartbeatBlock(sector)
		if err != nil || h.Seq == 0 || ondisk.VerifyHeartbeat(sector) != nil {
			continue
		}
		live := false
		if second != nil {
			later := second[node*ss : (node+1)*ss]
			live = string(later) != string(sector)
		} else {
			dead := time.Duration(h.DeadMs) * time.Millisecond
			if dead == 0 {
				dead = 31 * 2 * time.Second // o2cb's default dead threshold
			}
			age := now.Sub(heartbeatTime(h.Seq))
			live = age <= dead+2*time.Second && age >= -dead
		}
		if !live {
			continue
		}
		hn := HeartbeatNode{Node: node, Seq: h.Seq, Generation: h.Generation}
		if cl != nil {
			if n := cl.NodeByNumber(base.NodeID(node)); n != nil {
				hn.Name = n.Name
			}
		}
		mv.Heartbeating = append(mv.Heartbeating, hn)
	}
	blk, err := v.SystemFile(ondisk.SysSlotMap, -1)
	if err != nil {
		return err
	}
	ino, err := v.FS.Inode(blk)
	if err != nil {
		return err
	}
	data := make([]byte, min(ino.Size, 1<<20))
	n, err := v.FS.ReadAt(ino, data, 0)
	if err != nil {
		return fmt.Errorf("reading the slot map: %w", err)
	}
	m, err := ondisk.DecodeSlotMap(data[:n], v.SB.Features.Incompat&ondisk.IncompatExtendedSlotMap != 0, int(v.SB.MaxSlots))
	if err != nil {
		return fmt.Errorf("reading the slot map: %w", err)
	}
	for _, s := range m.Slots {
		if s.Valid {
			mv.SlotNodes = append(mv.SlotNodes, s.Node)
		}
	}
	return nil
}

// scanPartitions lists /dev/<name> for the block devices of
// /proc/partitions over 1 MiB, leaving out whole disks that have
// partitions, plus attached loop devices /proc/partitions may lack.
func scanPartitions() []string {
	var out []string
	seen := map[string]bool{}
	if f, err := os.Open("/proc/partitions"); err == nil {
		sc := bufio.NewScanner(f)
		var entries []partition
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 4 {
				continue
			}
			major, err1 := strconv.Atoi(fields[0])
			minor, err2 := strconv.Atoi(fields[1])
			kb, err3 := strconv.ParseUint(fields[2], 10, 64)
			if err1 != nil || err2 != nil || err3 != nil || kb <= 1024 {
				continue
			}
			entries = append(entries, partition{major, minor, fields[3]})
		}
		f.Close()
		for _, e := range entries {
			if hasPartitions(e, entries) {
				continue
			}
			name := "/dev/" + e.name
			if strings.HasPrefix(e.name, "dm-") {
				if m := mapperName(e.name); m != "" {
					name = m
				}
			}
			out = append(out, name)
			seen[e.name] = true
		}
	}
	loops, _ := filepath.Glob("/sys/block/loop*")
	sort.Strings(loops)
	for _, l := range loops {
		name := filepath.Base(l)
		if seen[name] {
			continue
		}
		b, err := os.ReadFile(filepath.Join(l, "size"))
		if err != nil {
			continue
		}
		if sectors, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && sectors*512 > 1<<20 {
			out = append(out, "/dev/"+name)
		}
	}
	return out
}

type partition struct {
	major, minor int
	name         string
}

// hasPartitions reports whether p is a whole disk one of whose partitions
// is listed too (the partitions are what holds file systems).
func hasPartitions(p partition, all []partition) bool {
	for _, q := range all {
		if q.name != p.name && q.major == p.major {
			if _, err := os.Stat(fmt.Sprintf("/sys/dev/block/%d:%d/partition", q.major, q.minor)); err != nil {
				continue
			}
			parent, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d/..", q.major, q.minor))
			if err == nil && filepath.Base(parent) == p.name {
				return true
			}
		}
	}
	return false
}

// mapperName finds the /dev/mapper name of a dm-N device.
func mapperName(dm string) string {
	b, err := os.ReadFile("/sys/block/" + dm + "/dm/name")
	if err != nil {
		return ""
	}
	return "/dev/mapper/" + strings.TrimSpace(string(b))
}

// PrintMounted prints volumes as mounted.ocfs2 does: -d's columns, or -f's
// with the nodes.
func PrintMounted(w io.Writer, vols []MountedVolume, full bool) {
	devW, clW := 7, 7
	for _, v := range vols {
		devW = max(devW, len(v.Device))
		clW = max(clW, len(v.Cluster))
	}
	flag := func(v MountedVolume) byte {
		if v.GlobalHeartbeat {
			return 'G'
		}
		return ' '
	}
	if !full {
		fmt.Fprintf(w, "%-*s  %-5s  %-*s  %c  %-32s  %-s\n", devW, "Device", "Stack", clW, "Cluster", 'F', "UUID", "Label")
		for _, v := range vols {
			fmt.Fprintf(w, "%-*s  %-5s  %-*s  %c  %-32s  %-s\n", devW, v.Device, v.Stack, clW, v.Cluster, flag(v), v.UUID, v.Label)
		}
		return
	}
	fmt.Fprintf(w, "%-*s  %-5s  %-*s  %c  %-s\n", devW, "Device", "Stack", clW, "Cluster", 'F', "Nodes")
	for _, v := range vols {
		fmt.Fprintf(w, "%-*s  %-5s  %-*s  %c  ", devW, v.Device, v.Stack, clW, v.Cluster, flag(v))
		switch {
		case v.Error != "":
			fmt.Fprintf(w, "Unknown: %s", v.Error)
		case v.HeartbeatDevice:
			fmt.Fprint(w, "Heartbeat device")
		case len(v.Heartbeating) == 0:
			fmt.Fprint(w, "Not mounted")
		default:
			for i, n := range v.Heartbeating {
				if i > 0 {
					fmt.Fprint(w, ", ")
				}
				if n.Name != "" {
					fmt.Fprint(w, n.Name)
				} else {
					fmt.Fprint(w, n.Node)
				}
			}
		}
		fmt.Fprintln(w)
	}
}

// heartbeatTime is when a heartbeat block's hb_seq says it was written:
// the kernel's o2hb writes wall-clock seconds, o2go's heartbeat wall-clock
// milliseconds (it beats more often than once a second, and hb_seq must
// change every beat). Seconds stay below 1e11 until the year 5138.
func heartbeatTime(seq uint64) time.Time {
	if seq >= 1e11 {
		return time.UnixMilli(int64(seq))
	}
	return time.Unix(int64(seq), 0)
}
