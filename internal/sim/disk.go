package sim

import (
	"errors"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/heartbeat"
	"o2go/internal/node/member"
)

// disk is one shared heartbeat region's bytes.
type disk struct {
	geo  heartbeat.Geometry
	data []byte
}

func newDisk(g heartbeat.Geometry) *disk {
	size := g.Start + g.Size
	if g.HasKill && g.KillStart+int64(heartbeat.Slots*g.SectorSize) > size {
		size = g.KillStart + int64(heartbeat.Slots*g.SectorSize)
	}
	return &disk{geo: g, data: make([]byte, size)}
}

func (d *disk) read(off int64) []byte {
	return append([]byte(nil), d.data[off:off+int64(d.geo.SectorSize)]...)
}

func (d *disk) write(off int64, b []byte) { copy(d.data[off:], b) }

type writeKind int

const (
	writeHB writeKind = iota
	writeStop
	writeAck
	writeData
)

func (k writeKind) String() string { return [...]string{"heartbeat", "stop", "ack", "data"}[k] }

var errInjected = errors.New("injected I/O error")

// ioLatency is how long an I/O of node n to region r takes now, or that it
// fails or hangs.
func (c *Cluster) ioLatency(n *simNode, region int) (lat time.Duration, fail bool, stallUntil time.Duration) {
	lat = 200*time.Microsecond + time.Duration(c.rng.Intn(1800))*time.Microsecond
	p := c.active.path(n.id, region, c.now)
	switch {
	case p.errUntil > c.now:
		return time.Millisecond, true, 0
	case p.stallUntil > c.now:
		return 0, false, p.stallUntil
	case p.spikeUntil > c.now:
		lat = p.spike
	}
	return lat, false, 0
}

func (c *Cluster) issueRead(n *simNode, rd member.ReadReq) {
	region := n.regions[rd.Region]
	epoch := n.epoch
	lat, fail, stall := c.ioLatency(n, region)
	if c.invisible(n.id, region) {
		fail, stall = true, 0 // the device went away
	}
	complete := func(at time.Duration) {
		c.q.at(at, func() {
			if n.epoch != epoch {
				return
			}
			d := c.disks[region]
			var hb, kill [][]byte
			var err error
			if fail {
				err = errInjected
			} else {
				for i := 0; i < rd.Plan.Count(); i++ {
					node := rd.Plan.First + base.NodeID(i)
					hb = append(hb, d.read(d.geo.SlotOffset(node)))
					if rd.Plan.Kill {
						kill = append(kill, d.read(d.geo.KillOffset(node)))
					}
				}
			}
			c.deliverTo(n, epoch, func() { n.m.ReadDone(c.now, c.wall(n), rd.Region, hb, kill, err) })
		})
	}
	if stall > 0 {
		c.waitPath(n, region, epoch, c.now+c.opt.IOTimeout, complete, func(at time.Duration) {
			fail = true
			complete(at)
		})
		return
	}
	complete(c.now + lat)
}

// waitPath completes an I/O once the node's stalled path heals, or fails
// it at the host's I/O timeout; the I/O is lost if the node's incarnation
// ends first (a reset or power loss drops the host's queued I/O).
func (c *Cluster) waitPath(n *simNode, region, epoch int, timeout time.Duration, complete, timedOut func(at time.Duration)) {
	var poll func()
	poll = func() {
		if n.epoch != epoch || n.state == stDown || n.state == stFenced {
			return
		}
		lat, _, stall := c.ioLatency(n, region)
		switch {
		case stall == 0:
			complete(c.now + lat)
		case stall >= timeout:
			c.q.at(timeout, func() {
				if n.epoch == epoch && n.state != stDown && n.state != stFenced {
					timedOut(c.now)
				}
			})
		default:
			c.q.at(stall, poll)
		}
	}
	poll()
}

// issueWrite sends a write of node n to the disk of a region (region id 0
// for data writes: the first disk). hb is the heartbeat sector, kill the
// kill block.
func (c *Cluster) issueWrite(n *simNode, rid member.RegionID, kind writeKind, hb, kill []byte) {
	region := 0
	if kind != writeData {
		region = n.regions[rid]
	}
	epoch := n.epoch
	w := c.chk.issue(n, kind)
	n.inflight++
	lat, fail, stall := c.ioLatency(n, region)
	if kind != writeData && c.invisible(n.id, region) {
		fail, stall = true, 0 // the device went away
	}
	land := func(at time.Duration) {
		c.q.at(at, func() {
			c.landed(n, epoch)
			var err error
			if fail {
				err = errInjected
			} else {
				d := c.disks[region]
				c.chk.write(w, c.now)
				if hb != nil {
					d.write(d.geo.SlotOffset(n.id), hb)
				}
				if kill != nil && d.geo.HasKill {
					d.write(d.geo.KillOffset(n.id), kill)
				}
			}
			if kind == writeHB {
				c.deliverTo(n, epoch, func() { n.m.WriteDone(c.now, rid, err) })
			}
		})
	}
	if stall > 0 {
		// Lost with the incarnation, like waitPath (count it landed then),
		// or failed at the host's I/O timeout.
		deadline := c.now + c.opt.IOTimeout
		var poll func()
		poll = func() {
			if n.epoch != epoch || n.state == stDown || (n.state == stFenced && kind != writeAck) {
				c.landed(n, epoch)
				return
			}
			lat, _, st := c.ioLatency(n, region)
			switch {
			case st == 0:
				land(c.now + lat)
			case st >= deadline:
				c.q.at(deadline, func() {
					fail = true
					land(c.now)
				})
			default:
				c.q.at(st, poll)
			}
		}
		poll()
		return
	}
	land(c.now + lat)
}

// landed counts a write of incarnation epoch as done; a fencing node
// writes its acknowledgement once nothing is in flight (Latch.Fence waits).
func (c *Cluster) landed(n *simNode, epoch int) {
	if n.epoch != epoch {
		return
	}
	n.inflight--
	if n.inflight == 0 && len(n.onDrained) > 0 {
		fns := n.onDrained
		n.onDrained = nil
		for _, f := range fns {
			f()
		}
	}
}
