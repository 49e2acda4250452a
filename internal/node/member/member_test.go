package member

import (
	"errors"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/cluster/heartbeat"
	"o2go/internal/cluster/quorum"
	"o2go/internal/ondisk"
)

// soloDisk drives one member against an in-memory region synchronously.
type soloDisk struct {
	t      *testing.T
	m      *Member
	geo    heartbeat.Geometry
	data   []byte
	now    time.Duration
	hold   bool // writes do not complete (a hung path)
	held   []WriteReq
	events []quorum.Event
	fence  *Fence
}

func newSolo(t *testing.T, kill bool) *soloDisk {
	tm := config.Timeouts{HeartbeatThreshold: 11, HeartbeatInterval: time.Second, IdleTimeout: 5 * time.Second,
		KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second, KillAckTimeout: 3 * time.Second}
	d := &soloDisk{t: t, geo: heartbeat.Geometry{SectorSize: 512, Size: 512 * 512}}
	d.geo.PlaceKillInFile()
	d.data = make([]byte, d.geo.Size)
	d.m = New(Config{Self: 3, Nodes: base.NodeMapOf(1, 3), Timeouts: tm, Mode: heartbeat.Local, Generation: 0x33})
	d.m.AddRegion(0, RegionSpec{Name: "R", SectorSize: 512, HasKill: kill})
	return d
}

func (d *soloDisk) sector(off int64) []byte { return append([]byte(nil), d.data[off:off+512]...) }

func (d *soloDisk) pump() {
	for i := 0; i < 20; i++ {
		r := d.m.Ready()
		d.events = append(d.events, r.Events...)
		if r.Fence != nil {
			d.fence = r.Fence
		}
		if len(r.Reads)+len(r.Writes) == 0 {
			return
		}
		for _, rd := range r.Reads {
			var hb, kill [][]byte
			for n := int(rd.Plan.First); n <= int(rd.Plan.Last); n++ {
				hb = append(hb, d.sector(d.geo.SlotOffset(base.NodeID(n))))
				if rd.Plan.Kill {
					kill = append(kill, d.sector(d.geo.KillOffset(base.NodeID(n))))
				}
			}
			d.m.ReadDone(d.now, uint64(d.now.Milliseconds())+1, rd.Region, hb, kill, nil)
		}
		for _, w := range r.Writes {
			if d.hold {
				d.held = append(d.held, w)
				continue
			}
			copy(d.data[d.geo.SlotOffset(3):], w.HB)
			if w.Kill != nil {
				copy(d.data[d.geo.KillOffset(3):], w.Kill)
			}
			d.m.WriteDone(d.now, w.Region, nil)
		}
	}
}

func (d *soloDisk) run(until time.Duration) {
	for d.now < until && d.fence == nil {
		d.now += 100 * time.Millisecond
		d.m.Tick(d.now, uint64(d.now.Milliseconds())+1)
		d.pump()
	}
}

func TestSoloMemberFormsAViewAndGetsALease(t *testing.T) {
	d := newSolo(t, true)
	if err := d.m.MayWrite(0); !errors.Is(err, ErrNoLease) {
		t.Fatalf("before any heartbeat: %v", err)
	}
	d.run(12 * time.Second)
	if v := d.m.View(); v.Members != base.NodeMapOf(3) || !v.Has(3, 0x33) {
		t.Fatalf("view %v", v)
	}
	if len(d.events) != 1 || d.events[0].Node != 3 || !d.events[0].Initial || d.events[0].Generation != 0x33 {
		t.Fatalf("events %v", d.events)
	}
	if err := d.m.MayWrite(d.now); err != nil {
		t.Fatalf("with a lease: %v", err)
	}
	if !d.m.Steady() {
		t.Fatal("not steady")
	}
}

func TestHungDiskHoldsWritesThenFences(t *testing.T) {
	d := newSolo(t, true)
	d.run(12 * time.Second)
	d.hold = true
	stall := d.now
	d.run(stall + 1500*time.Millisecond)
	if err := d.m.MayWrite(d.now); !errors.Is(err, ErrSlowDisk) {
		t.Fatalf("heartbeat write overdue: %v", err)
	}
	d.run(stall + 30*time.Second)
	if d.fence == nil || d.fence.Reason != heartbeat.FenceWriteStall {
		t.Fatalf("fence %+v", d.fence)
	}
	// It fenced within the self-fence bound of its last good write.
	if d.now-stall > d.m.Config().Timeouts.MaxWriteStall() {
		t.Fatalf("fenced %v after the disk hung; the bound is %v", d.now-stall, d.m.Config().Timeouts.MaxWriteStall())
	}
	if len(d.fence.Acks) != 1 {
		t.Fatalf("acks %v", d.fence.Acks)
	}
	k, err := heartbeat.DecodeKillBlock(d.fence.Acks[0].Kill, 3)
	if err != nil || k.FencedGen != 0x33 || k.FenceReason != heartbeat.FenceWriteStall {
		t.Fatalf("ack %+v %v", k, err)
	}
	if err := d.m.MayWrite(d.now); !errors.Is(err, ErrFenced) {
		t.Fatalf("after the fence: %v", err)
	}
}

func TestKillOrderFences(t *testing.T) {
	d := newSolo(t, true)
	d.run(12 * time.Second)
	// Node 1 heartbeats (twice, to become live) and orders node 3 killed.
	beat := func(seq uint64) {
		b := make([]byte, 512)
		hb := heartbeatBlock(1, seq, 0x11)
		copy(b, hb)
		copy(d.data[d.geo.SlotOffset(1):], b)
	}
	for i := uint64(1); i <= 3; i++ {
		beat(i)
		d.run(d.now + time.Second)
	}
	if !d.m.Live().Has(1) {
		t.Fatal("node 1 not live")
	}
	k := heartbeat.KillBlock{Owner: 1, Generation: 0x11, Seq: 1, Orders: []heartbeat.KillOrder{{Victim: 3, Generation: 0x33}}}
	s := make([]byte, 512)
	if err := k.Encode(s); err != nil {
		t.Fatal(err)
	}
	copy(d.data[d.geo.KillOffset(1):], s)
	beat(4)
	d.run(d.now + 2*time.Second)
	if d.fence == nil || d.fence.Reason != heartbeat.FenceKilled {
		t.Fatalf("fence %+v", d.fence)
	}
}

func heartbeatBlock(node uint8, seq, gen uint64) []byte {
	b := make([]byte, 512)
	blk := ondisk.HeartbeatBlock{Seq: seq, Node: node, Generation: gen, DeadMs: 11000}
	_ = blk.Encode(b)
	return b
}
