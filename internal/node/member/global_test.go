package member

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/cluster/config"
	"o2go/internal/cluster/heartbeat"
)

// votingDisks drives one global-mode member (node 3 of nodes 1 and 3)
// against in-memory heartbeat devices synchronously: the devices it has
// added, by region id; a region in hung has its writes held.
type votingDisks struct {
	t     *testing.T
	m     *Member
	geo   heartbeat.Geometry
	disks map[RegionID][]byte
	hung  map[RegionID]bool
	now   time.Duration
	fence *Fence
}

func newVotingDisks(t *testing.T, configured ...string) *votingDisks {
	tm := config.Timeouts{HeartbeatThreshold: 11, HeartbeatInterval: time.Second, IdleTimeout: 5 * time.Second,
		KeepaliveDelay: time.Second, ReconnectDelay: 2 * time.Second}
	d := &votingDisks{t: t, geo: heartbeat.Geometry{SectorSize: 512, Size: 512 * 512}, disks: map[RegionID][]byte{}, hung: map[RegionID]bool{}}
	d.m = New(Config{Self: 3, Nodes: base.NodeMapOf(1, 3), Timeouts: tm, Mode: heartbeat.Global, Generation: 0x33})
	d.m.SetConfiguredRegions(configured)
	return d
}

func (d *votingDisks) add(name string) RegionID {
	id := d.m.AddRegion(d.now, RegionSpec{Name: name, SectorSize: 512})
	d.disks[id] = make([]byte, d.geo.Size)
	return id
}

func (d *votingDisks) pump() {
	for i := 0; i < 20; i++ {
		r := d.m.Ready()
		if r.Fence != nil {
			d.fence = r.Fence
		}
		if len(r.Reads)+len(r.Writes) == 0 {
			return
		}
		for _, rd := range r.Reads {
			data := d.disks[rd.Region]
			var hb [][]byte
			for n := int(rd.Plan.First); n <= int(rd.Plan.Last); n++ {
				off := d.geo.SlotOffset(base.NodeID(n))
				hb = append(hb, append([]byte(nil), data[off:off+512]...))
			}
			d.m.ReadDone(d.now, uint64(d.now.Milliseconds())+1, rd.Region, hb, nil, nil)
		}
		for _, w := range r.Writes {
			if d.hung[w.Region] {
				continue
			}
			copy(d.disks[w.Region][d.geo.SlotOffset(3):], w.HB)
			d.m.WriteDone(d.now, w.Region, nil)
		}
	}
}

func (d *votingDisks) run(until time.Duration) {
	for d.now < until && d.fence == nil {
		d.now += 100 * time.Millisecond
		d.m.Tick(d.now, uint64(d.now.Milliseconds())+1)
		d.pump()
	}
}

// wrote reports whether node 3 ever wrote its heartbeat to a region.
func (d *votingDisks) wrote(id RegionID) bool {
	off := d.geo.SlotOffset(3)
	for _, b := range d.disks[id][off : off+512] {
		if b != 0 {
			return true
		}
	}
	return false
}

// TestGlobalMinorityOfDevicesNeverStarts: a node that found one of three
// configured heartbeat devices does not heartbeat, is never steady, never
// forms a view and never gets a lease (issue 5: it used to take the
// majority over the one device it found and go on alone).
func TestGlobalMinorityOfDevicesNeverStarts(t *testing.T) {
	d := newVotingDisks(t, "A", "B", "C")
	d.m.RegionMissing("B", "not found")
	a := d.add("A")
	d.run(30 * time.Second)
	if d.fence != nil {
		t.Fatalf("fenced: %+v", d.fence)
	}
	if d.wrote(a) || d.m.Steady() || d.m.View().Epoch != 0 || d.m.Live().Has(3) {
		t.Fatalf("with 1 of 3 devices: wrote %v, steady %v, view %v, live [%v]", d.wrote(a), d.m.Steady(), d.m.View(), d.m.Live())
	}
	if _, ok := d.m.LeaseExpiry(); ok {
		t.Fatal("a lease on 1 of 3 devices")
	}
	if err := d.m.MayWrite(d.now); !errors.Is(err, ErrNoLease) {
		t.Fatalf("MayWrite: %v", err)
	}
	if got := fmt.Sprint(d.m.MissingRegions()); got != "[{B not found} {C not added}]" {
		t.Fatalf("missing regions %s", got)
	}
	if c, need, added := d.m.RegionQuorum(); c != 3 || need != 2 || added != 1 {
		t.Fatalf("region quorum %d %d %d", c, need, added)
	}
	// The second device appears: the node starts on both.
	b := d.add("B")
	d.run(d.now + 15*time.Second)
	if !d.wrote(a) || !d.wrote(b) || !d.m.Steady() || !d.m.View().Members.Has(3) {
		t.Fatalf("with 2 of 3 devices: wrote %v %v, steady %v, view %v", d.wrote(a), d.wrote(b), d.m.Steady(), d.m.View())
	}
	if err := d.m.MayWrite(d.now); err != nil {
		t.Fatalf("MayWrite with 2 of 3 devices: %v", err)
	}
	if got := fmt.Sprint(d.m.MissingRegions()); got != "[{C not added}]" {
		t.Fatalf("missing regions %s", got)
	}
}

// TestGlobalLosingTheMajorityFences: with two of three devices, the node
// must keep both: one that hangs, or is removed, ends the lease and the
// node fences within the self-fence bound.
func TestGlobalLosingTheMajorityFences(t *testing.T) {
	for _, how := range []string{"hang", "remove"} {
		t.Run(how, func(t *testing.T) {
			d := newVotingDisks(t, "A", "B", "C")
			d.add("A")
			b := d.add("B")
			d.run(15 * time.Second)
			if !d.m.View().Members.Has(3) {
				t.Fatalf("no view: %v", d.m.View())
			}
			lost := d.now
			if how == "hang" {
				d.hung[b] = true
			} else {
				d.m.RemoveRegion(d.now, uint64(d.now.Milliseconds()), b)
			}
			d.run(lost + 30*time.Second)
			if d.fence == nil || d.fence.Reason != heartbeat.FenceWriteStall {
				t.Fatalf("fence %+v", d.fence)
			}
			if took, bound := d.now-lost, d.m.Config().Timeouts.MaxWriteStall(); took > bound {
				t.Fatalf("fenced %v after losing the majority; the bound is %v", took, bound)
			}
		})
	}
}

// TestGlobalThreeOfThreeSurvivesOneLoss: with every device, losing one
// keeps the lease (the voting-disk rule).
func TestGlobalThreeOfThreeSurvivesOneLoss(t *testing.T) {
	d := newVotingDisks(t, "A", "B", "C")
	d.add("A")
	d.add("B")
	c := d.add("C")
	d.run(15 * time.Second)
	d.hung[c] = true
	d.run(d.now + 40*time.Second)
	if d.fence != nil {
		t.Fatalf("fenced after losing 1 of 3 devices: %+v", d.fence)
	}
	if err := d.m.MayWrite(d.now); err != nil {
		t.Fatalf("MayWrite: %v", err)
	}
}
