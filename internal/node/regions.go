package node

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"o2go/internal/blockdev"
	"o2go/internal/cluster/heartbeat"
	"o2go/internal/node/member"
)

// regionIO is one heartbeat region's device and its I/O goroutine, which
// performs the region's reads and writes one at a time, as o2hb's thread.
type regionIO struct {
	id      member.RegionID
	info    *VolumeInfo
	raw     blockdev.Device // unlatched: only for the fencing acknowledgement
	dev     blockdev.Device // gate -> latch -> raw
	reqs    chan func()
	stopped chan struct{}
	closed  bool
}

type regionRef struct {
	refs int
	rio  *regionIO
}

type regionWaiter struct {
	id       member.RegionID
	deadline time.Duration
	done     chan error
}

// checkStamp refuses a volume that is not this cluster's: stamped for
// another stack or cluster, or a local (single-node) volume.
func (a *Agent) checkStamp(info *VolumeInfo) error {
	if info.Stack != "" && info.Stack != "o2cb" {
		return fmt.Errorf("%s is stamped for the %q cluster stack; o2go runs o2cb", info.Path, info.Stack)
	}
	if info.ClusterName != "" && info.ClusterName != a.cfg.Cluster.Name {
		return fmt.Errorf("%s is stamped for cluster %q; this node is in cluster %q", info.Path, info.ClusterName, a.cfg.Cluster.Name)
	}
	if info.Local {
		return fmt.Errorf("%s is a local (single-node) volume: it has no cluster heartbeat", info.Path)
	}
	return nil
}

// checkHeartbeatMode refuses a volume formatted for the other heartbeat
// mode than the cluster runs, as mount.ocfs2 does ("Heartbeat mode is
// invalid"): a volume stamped for global heartbeat has no use for a
// heartbeat of its own, and one that is not would be mounted with nobody
// heartbeating on it in global mode.
func (a *Agent) checkHeartbeatMode(info *VolumeInfo) error {
	global := a.mode == heartbeat.Global
	if info.GlobalHeartbeat == global || info.HeartbeatDevice || info.Local {
		return nil
	}
	if global {
		return fmt.Errorf("%s is formatted for local heartbeat and cluster %q runs global heartbeat (heartbeat mode is invalid): stamp the volume with o2go tunefs --update-cluster-stack, or set the cluster's mode with o2go cluster heartbeat-mode", info.Path, a.cfg.Cluster.Name)
	}
	return fmt.Errorf("%s is formatted for global heartbeat and cluster %q runs local heartbeat (heartbeat mode is invalid): set the cluster's mode with o2go cluster heartbeat-mode global, or restamp the volume with o2go tunefs --update-cluster-stack", info.Path, a.cfg.Cluster.Name)
}

// openRegion opens a volume's device for heartbeating and starts its I/O
// goroutine; the caller adds it to the member on the loop.
func (a *Agent) openRegion(info *VolumeInfo) (*regionIO, error) {
	if err := a.checkStamp(info); err != nil {
		return nil, err
	}
	var raw blockdev.Device
	raw, err := blockdev.Open(info.Path, blockdev.OpenOptions{})
	if err != nil {
		return nil, err
	}
	if a.cfg.FaultFile != "" {
		raw = &faulted{Device: raw, f: &faultFile{path: a.cfg.FaultFile, region: info.UUID}}
	}
	if raw.SectorSize() != info.Geometry.SectorSize {
		raw.Close()
		return nil, fmt.Errorf("%s: sector size changed from %d to %d", info.Path, info.Geometry.SectorSize, raw.SectorSize())
	}
	rio := &regionIO{info: info, raw: raw, dev: &gated{Device: a.latch.Wrap(raw), g: a.gate, heartbeat: true},
		reqs: make(chan func(), 8), stopped: make(chan struct{})}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for fn := range rio.reqs {
			fn()
		}
	}()
	return rio, nil
}

// addRegion runs on the loop.
func (a *Agent) addRegion(rio *regionIO) member.RegionID {
	rio.id = a.m.AddRegion(a.clock(), member.RegionSpec{Name: rio.info.UUID, SectorSize: rio.info.Geometry.SectorSize, HasKill: rio.info.Geometry.HasKill})
	a.regions[rio.id] = rio
	if !rio.info.Geometry.HasKill && a.cfg.Settings.Timeouts.KillBlocks() {
		a.logf("heartbeat region %s (%s) has no room for kill blocks: survivors will wait out the dead threshold to recover this node", rio.info.UUID, rio.info.Path)
	}
	return rio.id
}

func (a *Agent) issueRead(rd member.ReadReq) {
	rio := a.regions[rd.Region]
	if rio == nil || rio.closed {
		return
	}
	g := rio.info.Geometry
	rio.reqs <- func() {
		n := rd.Plan.Count()
		var hb, kill [][]byte
		buf := blockdev.AlignedBuffer(n*g.SectorSize, 4096)
		_, err := rio.raw.ReadAt(buf, g.SlotOffset(rd.Plan.First))
		if err == nil && rd.Plan.Kill && g.HasKill {
			kbuf := blockdev.AlignedBuffer(n*g.SectorSize, 4096)
			if _, err = rio.raw.ReadAt(kbuf, g.KillOffset(rd.Plan.First)); err == nil {
				kill = split(kbuf, g.SectorSize)
			}
		}
		if err == nil {
			hb = split(buf, g.SectorSize)
		}
		a.do(func() { a.m.ReadDone(a.clock(), a.wallMs(), rd.Region, hb, kill, err) })
	}
}

func split(b []byte, size int) [][]byte {
	var out [][]byte
	for off := 0; off+size <= len(b); off += size {
		out = append(out, b[off:off+size])
	}
	return out
}

func (a *Agent) issueWrite(w member.WriteReq) {
	rio := a.regions[w.Region]
	if rio == nil || rio.closed {
		return
	}
	g := rio.info.Geometry
	self := a.self.Number
	rio.reqs <- func() {
		_, err := rio.dev.WriteAt(w.HB, g.SlotOffset(self))
		if err == nil && w.Kill != nil && g.HasKill {
			_, err = rio.dev.WriteAt(w.Kill, g.KillOffset(self))
		}
		a.do(func() { a.m.WriteDone(a.clock(), w.Region, err) })
	}
}

// issueStop writes the clean-stop block and retires the region.
func (a *Agent) issueStop(w member.WriteReq) {
	rio := a.regions[w.Region]
	if rio == nil || rio.closed {
		return
	}
	g := rio.info.Geometry
	self := a.self.Number
	rio.reqs <- func() {
		if _, err := rio.dev.WriteAt(w.HB, g.SlotOffset(self)); err != nil && !errors.Is(err, blockdev.ErrFenced) {
			a.logf("heartbeat region %s: writing the stop block: %v", rio.info.UUID, err)
		}
	}
	a.closeRegion(rio, nil)
}

// closeRegion retires a region on the loop: its goroutine ends after the
// requests queued, then the device closes.
func (a *Agent) closeRegion(rio *regionIO, why error) {
	if rio.closed {
		return
	}
	rio.closed = true
	delete(a.regions, rio.id)
	for _, w := range a.waiters {
		if w.id == rio.id && why != nil {
			w.done <- why
			w.id = 0
		}
	}
	reqs := rio.reqs
	reqs <- func() {
		close(rio.stopped)
		// Keep the device open while a fence may still write its
		// acknowledgement through it; the process ends soon after.
		if !a.gate.fenced.Load() {
			rio.raw.Close()
		}
	}
	close(reqs)
}

// checkWaiters answers heartbeat starts once their region is steady.
func (a *Agent) checkWaiters() {
	if len(a.waiters) == 0 {
		return
	}
	now := a.clock()
	keep := a.waiters[:0]
	for _, w := range a.waiters {
		switch {
		case w.id == 0:
			continue
		case a.m.RegionSteady(w.id):
			w.done <- nil
		case now > w.deadline:
			w.done <- fmt.Errorf("the heartbeat did not settle in time")
		default:
			keep = append(keep, w)
		}
	}
	a.waiters = keep
}

// startGlobalRegions starts heartbeating on the cluster's heartbeat
// devices (global mode).
func (a *Agent) startGlobalRegions() error {
	if len(a.cfg.Cluster.Heartbeats) == 0 {
		return fmt.Errorf("cluster %s has global heartbeat but no heartbeat region (o2go cluster add-heartbeat)", a.cfg.Cluster.Name)
	}
	started := 0
	var errs []string
	for _, hb := range a.cfg.Cluster.Heartbeats {
		if _, err := a.StartHeartbeat("UUID=" + hb.Region); err != nil {
			errs = append(errs, err.Error())
			a.logf("global heartbeat region %s: %v", hb.Region, err)
			continue
		}
		started++
	}
	if started == 0 {
		return fmt.Errorf("no global heartbeat region could start: %s", strings.Join(errs, "; "))
	}
	return nil
}

// RegionInfo describes a running heartbeat region.
type RegionInfo struct {
	UUID     string `json:"uuid"`
	Device   string `json:"device"`
	Label    string `json:"label,omitempty"`
	KillArea bool   `json:"kill_area"`
	Refs     int    `json:"refs"`
}

// StartHeartbeat starts heartbeating on the volume spec names (a device
// path, UUID=... or LABEL=...) and returns once the region is steady, like
// ocfs2_hb_ctl -S for mount.ocfs2. Starting a region that runs already
// counts one more user.
//
// In global mode the heartbeat runs on the cluster's heartbeat devices from
// the agent's start, and a volume gets none of its own (as with O2CB, whose
// mount.ocfs2 starts no region then): for a volume that is not one of those
// devices StartHeartbeat only finds it, checks its stamp and counts its
// users; no region is added, so the voting disks stay the configured ones.
func (a *Agent) StartHeartbeat(spec string) (RegionInfo, error) {
	info, err := a.finder.Find(spec)
	if err != nil {
		return RegionInfo{}, err
	}
	if !a.globalRegion(info.UUID) {
		if err := a.checkHeartbeatMode(info); err != nil {
			return RegionInfo{}, err
		}
	}
	if a.mode == heartbeat.Global && !a.globalRegion(info.UUID) {
		if err := a.checkStamp(info); err != nil {
			return RegionInfo{}, err
		}
		a.regsMu.Lock()
		defer a.regsMu.Unlock()
		u := a.volumeUsers[info.UUID]
		if u == nil {
			u = &volumeUse{info: info}
			a.volumeUsers[info.UUID] = u
		}
		u.refs++
		return RegionInfo{UUID: info.UUID, Device: info.Path, Label: info.Label, Refs: u.refs}, nil
	}
	a.regsMu.Lock()
	if ref := a.regRefs[info.UUID]; ref != nil {
		ref.refs++
		ri := regionInfo(ref)
		a.regsMu.Unlock()
		return ri, nil
	}
	a.regsMu.Unlock()
	rio, err := a.openRegion(info)
	if err != nil {
		return RegionInfo{}, err
	}
	w := &regionWaiter{done: make(chan error, 1)}
	t := a.cfg.Settings.Timeouts
	if err := a.doSync(func() {
		w.id = a.addRegion(rio)
		w.deadline = a.clock() + t.DeadTime() + 20*t.HeartbeatInterval
		a.waiters = append(a.waiters, w)
	}); err != nil {
		return RegionInfo{}, err
	}
	if err := <-w.done; err != nil {
		_ = a.doSync(func() {
			a.m.RemoveRegion(a.clock(), a.wallMs(), rio.id)
			a.process()
		})
		return RegionInfo{}, fmt.Errorf("heartbeat on %s (%s): %w", info.UUID, info.Path, err)
	}
	a.regsMu.Lock()
	defer a.regsMu.Unlock()
	ref := a.regRefs[info.UUID]
	if ref == nil {
		ref = &regionRef{rio: rio}
		a.regRefs[info.UUID] = ref
	}
	ref.refs++
	a.logf("heartbeat region %s (%s) is steady", info.UUID, info.Path)
	return regionInfo(ref), nil
}

func regionInfo(ref *regionRef) RegionInfo {
	i := ref.rio.info
	return RegionInfo{UUID: i.UUID, Device: i.Path, Label: i.Label, KillArea: i.Geometry.HasKill, Refs: ref.refs}
}

// StopHeartbeat drops one user of a region (by UUID, UUID=..., LABEL=... or
// device path); the last one stops it cleanly (ocfs2_hb_ctl -K).
func (a *Agent) StopHeartbeat(spec string) (RegionInfo, error) {
	uuid, err := a.resolveRunning(spec)
	if err != nil {
		if ri, ok := a.dropVolumeUser(spec); ok {
			return ri, nil
		}
		return RegionInfo{}, err
	}
	a.regsMu.Lock()
	ref := a.regRefs[uuid]
	ref.refs--
	ri := regionInfo(ref)
	last := ref.refs == 0
	if last {
		delete(a.regRefs, uuid)
	}
	a.regsMu.Unlock()
	if last {
		rio := ref.rio
		if err := a.doSync(func() {
			a.m.RemoveRegion(a.clock(), a.wallMs(), rio.id)
			a.process()
		}); err != nil {
			return ri, err
		}
		select {
		case <-rio.stopped:
		case <-time.After(2 * a.cfg.Settings.Timeouts.HeartbeatInterval):
		}
		a.logf("heartbeat region %s stopped", uuid)
	}
	return ri, nil
}

// volumeUse counts the users of a volume that has no region of its own
// (global mode).
type volumeUse struct {
	refs int
	info *VolumeInfo
}

// globalRegion reports whether uuid is one of the cluster's heartbeat
// devices.
func (a *Agent) globalRegion(uuid string) bool {
	for _, hb := range a.cfg.Cluster.Heartbeats {
		if strings.EqualFold(hb.Region, uuid) {
			return true
		}
	}
	return false
}

// dropVolumeUser is StopHeartbeat for a volume without a region.
func (a *Agent) dropVolumeUser(spec string) (RegionInfo, bool) {
	a.regsMu.Lock()
	defer a.regsMu.Unlock()
	up := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(spec, "UUID="), "-", ""))
	for uuid, u := range a.volumeUsers {
		if uuid == up || u.info.Path == spec || "LABEL="+u.info.Label == spec {
			u.refs--
			if u.refs == 0 {
				delete(a.volumeUsers, uuid)
			}
			return RegionInfo{UUID: uuid, Device: u.info.Path, Label: u.info.Label, Refs: u.refs}, true
		}
	}
	return RegionInfo{}, false
}

func (a *Agent) resolveRunning(spec string) (string, error) {
	a.regsMu.Lock()
	defer a.regsMu.Unlock()
	up := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(spec, "UUID="), "-", ""))
	if ref := a.regRefs[up]; ref != nil {
		return up, nil
	}
	for u, ref := range a.regRefs {
		if ref.rio.info.Path == spec || "LABEL="+ref.rio.info.Label == spec {
			return u, nil
		}
	}
	return "", fmt.Errorf("no heartbeat region %s is running on this node", spec)
}

// Heartbeats lists the running regions.
func (a *Agent) Heartbeats() []RegionInfo {
	a.regsMu.Lock()
	defer a.regsMu.Unlock()
	var out []RegionInfo
	for _, ref := range a.regRefs {
		out = append(out, regionInfo(ref))
	}
	sortRegions(out)
	return out
}

func sortRegions(rs []RegionInfo) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].UUID < rs[j-1].UUID; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// WrapDevice returns dev guarded for data writes from this node: every
// write first passes the gate (it waits while the disk is frozen or the
// heartbeat is overdue, fails once the node fenced or its lease ran out,
// fencing it) and then the latch. The file system wraps every shared device
// with it.
func (a *Agent) WrapDevice(dev blockdev.Device) blockdev.Device {
	return &gated{Device: a.latch.Wrap(dev), g: a.gate}
}

// MayWrite reports whether this node may write to shared disks now (the
// gate's check, without writing).
func (a *Agent) MayWrite() error { return a.gate.check(false) }
