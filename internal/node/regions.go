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
	if a.mode == heartbeat.Global && why != nil {
		// A refused device: findGlobalRegions looks for it again.
		a.regsMu.Lock()
		if ref := a.regRefs[rio.info.UUID]; ref != nil && ref.rio == rio {
			delete(a.regRefs, rio.info.UUID)
		}
		a.regsMu.Unlock()
	}
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
// devices (global mode) and returns once this node is steady on a strict
// majority of them, or when the agent stops.
//
// The majority is always over the devices configured, not over those found
// (issue 5): a node that found one device of three while two other nodes
// found the other two would otherwise go on alone beside them, on the same
// data volumes. A device this node cannot find or open counts as lost; it
// does not heartbeat at all while it has fewer than a majority (node/member
// holds it back), and the log and the status say which devices are missing
// and why. The devices are looked for again by UUID (the --scan paths,
// /dev/disk/by-uuid) every globalRetry, for as long as the agent runs, and
// each one found joins the heartbeat and the lease.
func (a *Agent) startGlobalRegions() error {
	if len(a.cfg.Cluster.Heartbeats) == 0 {
		return fmt.Errorf("cluster %s has global heartbeat but no heartbeat region (o2go cluster add-heartbeat)", a.cfg.Cluster.Name)
	}
	var names []string
	for _, hb := range a.cfg.Cluster.Heartbeats {
		names = append(names, regionName(hb.Region))
	}
	if err := a.doSync(func() { a.m.SetConfiguredRegions(names) }); err != nil {
		return nil // the agent stops
	}
	steady := make(chan struct{})
	go a.findGlobalRegions(steady)
	select {
	case <-steady:
	case <-a.done:
	case <-a.ctx.Done():
	}
	return nil
}

// regionName is a heartbeat region's UUID as the agent names regions: 32
// upper-case hex digits.
func regionName(uuid string) string {
	return strings.ToUpper(strings.ReplaceAll(uuid, "-", ""))
}

// globalRetry is how often the agent looks again for global heartbeat
// devices it could not find or open: every five heartbeat intervals,
// within 1 s to 10 s (each look probes every --scan file and
// /dev/disk/by-uuid entry).
func (a *Agent) globalRetry() time.Duration {
	return min(max(5*a.cfg.Settings.Timeouts.HeartbeatInterval, time.Second), 10*time.Second)
}

// globalState is what findGlobalRegions reads from the member.
type globalState struct {
	steady                   bool
	missing                  []member.MissingRegion
	configured, need, active int
}

// findGlobalRegions runs for the agent's life in global mode: it adds the
// configured heartbeat devices that are missing as soon as it finds them,
// logs every change of what is missing, and closes steady once this node
// is steady on a majority.
func (a *Agent) findGlobalRegions(steady chan struct{}) {
	t := a.cfg.Settings.Timeouts
	retry := a.globalRetry()
	lastLook := a.clock() - retry
	said := ""
	for {
		if now := a.clock(); now-lastLook >= retry {
			lastLook = now
			a.addFoundRegions()
		}
		var st globalState
		if err := a.doSync(func() {
			st.steady, st.missing = a.m.Steady(), a.m.MissingRegions()
			st.configured, st.need, st.active = a.m.RegionQuorum()
		}); err != nil {
			return
		}
		if msg := a.describeGlobal(st, retry); msg != said {
			a.logf("%s", msg)
			said = msg
		}
		wait := retry
		if steady != nil {
			if st.steady {
				a.logf("global heartbeat: steady on %d of the %d heartbeat devices", st.active, st.configured)
				close(steady)
				steady = nil
			} else {
				wait = max(t.HeartbeatInterval/2, 10*time.Millisecond)
			}
		}
		select {
		case <-a.done:
			return
		case <-a.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// describeGlobal says where this node stands on its heartbeat devices.
func (a *Agent) describeGlobal(st globalState, retry time.Duration) string {
	if len(st.missing) == 0 {
		return fmt.Sprintf("global heartbeat: all %d heartbeat devices found", st.configured)
	}
	var ms []string
	for _, m := range st.missing {
		ms = append(ms, m.Name+" ("+m.Why+")")
	}
	missing := strings.Join(ms, "; ")
	if st.active < st.need {
		return fmt.Sprintf("global heartbeat: this node found %d of the %d heartbeat devices and needs %d (a strict majority) to heartbeat and join cluster %s: it waits, and looks for the missing ones again every %v. Missing: %s",
			st.active, st.configured, st.need, a.cfg.Cluster.Name, retry, missing)
	}
	return fmt.Sprintf("global heartbeat: heartbeating on %d of the %d heartbeat devices; the missing ones count as lost (losing %d more fences this node), looked for again every %v. Missing: %s",
		st.active, st.configured, st.active-st.need+1, retry, missing)
}

// addFoundRegions looks for every missing global heartbeat device by UUID
// and adds those it finds and can open; for the others it tells the member
// why they are missing.
func (a *Agent) addFoundRegions() {
	var missing []member.MissingRegion
	if err := a.doSync(func() { missing = a.m.MissingRegions() }); err != nil {
		return
	}
	for _, mr := range missing {
		info, err := a.finder.Find("UUID=" + mr.Name)
		var rio *regionIO
		if err == nil {
			rio, err = a.openRegion(info)
		}
		if err != nil {
			why := err.Error()
			if errors.Is(err, ErrNoDevice) {
				why = "not found: " + why
			}
			if a.doSync(func() { a.m.RegionMissing(mr.Name, why) }) != nil {
				return
			}
			continue
		}
		if err := a.doSync(func() {
			a.addRegion(rio)
			a.regsMu.Lock()
			a.regRefs[info.UUID] = &regionRef{refs: 1, rio: rio}
			a.regsMu.Unlock()
		}); err != nil {
			close(rio.reqs)
			rio.raw.Close()
			return
		}
		a.logf("global heartbeat device %s found at %s", info.UUID, info.Path)
	}
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
	if a.mode == heartbeat.Global && a.globalRegion(info.UUID) {
		a.regsMu.Lock()
		defer a.regsMu.Unlock()
		if ref := a.regRefs[info.UUID]; ref != nil {
			ref.refs++
			return regionInfo(ref), nil
		}
		return RegionInfo{}, fmt.Errorf("%s (%s) is one of cluster %s's global heartbeat devices: the agent heartbeats on it by itself once it finds it (o2go cluster status says why it has not)",
			info.UUID, info.Path, a.cfg.Cluster.Name)
	}
	if a.mode == heartbeat.Global {
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
	select {
	case err = <-w.done:
	case <-a.done:
		err = errors.New("the agent stopped")
	}
	if err != nil {
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
		if regionName(hb.Region) == regionName(uuid) {
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
