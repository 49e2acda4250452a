package heartbeat

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"o2go/internal/base"
	"o2go/internal/ondisk"

	"o2go/internal/testutil/transcript"
)

// fakeDisk holds the slots and kill blocks of one region.
type fakeDisk struct {
	slots map[base.NodeID][]byte
	kills map[base.NodeID][]byte
}

func (d *fakeDisk) read(p ReadPlan, size int) (hb, kill [][]byte) {
	for n := int(p.First); n <= int(p.Last); n++ {
		s := d.slots[base.NodeID(n)]
		if s == nil {
			s = make([]byte, size)
		}
		hb = append(hb, append([]byte(nil), s...))
		if p.Kill {
			k := d.kills[base.NodeID(n)]
			if k == nil {
				k = make([]byte, size)
			}
			kill = append(kill, append([]byte(nil), k...))
		}
	}
	return hb, kill
}

// TestRegionTranscript drives a Region through testdata/region.txt:
//
//	region SELF THRESHOLD NODE...   a region (2s interval, 512-byte sectors)
//	at DURATION                     set the clock
//	write N SEQ GEN                 node N's slot now holds seq SEQ, generation GEN
//	corrupt N                       node N's slot has a bad checksum
//	beat [read-fails|write-fails|write-lost]
//	                                one iteration; our write lands unless lost
//	state                           live nodes, steady, lease, slots
func TestRegionTranscript(t *testing.T) {
	var r *Region
	var d *fakeDisk
	var now time.Duration
	transcript.Run(t, "testdata/region.txt", func(cmd string) string {
		f := strings.Fields(cmd)
		num := func(i int) uint64 {
			v, err := strconv.ParseUint(f[i], 0, 64)
			if err != nil {
				t.Fatalf("%s: %v", cmd, err)
			}
			return v
		}
		switch f[0] {
		case "region":
			var nodes base.NodeMap
			for i := 3; i < len(f); i++ {
				nodes.Add(base.NodeID(num(i)))
			}
			r = NewRegion(RegionConfig{Name: "R", Self: base.NodeID(num(1)), Nodes: nodes, Threshold: int(num(2)),
				Interval: 2 * time.Second, SectorSize: 512, Generation: 0xa1})
			d = &fakeDisk{slots: map[base.NodeID][]byte{}, kills: map[base.NodeID][]byte{}}
			return ""
		case "at":
			now, _ = time.ParseDuration(f[1])
			return ""
		case "write":
			b := ondisk.HeartbeatBlock{Seq: num(2), Node: uint8(num(1)), Generation: num(3), DeadMs: 14000}
			s := make([]byte, 512)
			_ = b.Encode(s)
			d.slots[base.NodeID(num(1))] = s
			return ""
		case "corrupt":
			d.slots[base.NodeID(num(1))][0x1F] ^= 0xff
			return ""
		case "beat":
			mode := ""
			if len(f) > 1 {
				mode = f[1]
			}
			p, ok := r.Begin(now)
			if !ok {
				return "not due (next at " + r.Due().String() + ")"
			}
			hb, kill := d.read(p, 512)
			var err error
			if mode == "read-fails" {
				err = fmt.Errorf("EIO")
			}
			w, ok := r.ReadDone(now, 1000+uint64(now.Milliseconds()), hb, kill, err)
			out := formatRegionReady(r.Ready())
			if !ok {
				return out + "no write\n"
			}
			var werr error
			switch mode {
			case "write-fails":
				werr = fmt.Errorf("EIO")
			case "write-lost":
			default:
				d.slots[r.cfg.Self] = w.HB
			}
			r.WriteDone(now, werr)
			return out + formatRegionReady(r.Ready())
		case "state":
			lb, leased := r.Lease()
			rs, ws := r.Health(now)
			s := fmt.Sprintf("live [%v] steady %v unresolved [%v] leased %v at %v read-stalled %v write-stalled %v\n", r.Live(), r.Steady(), r.Unresolved(), leased, lb, rs, ws)
			for _, n := range r.cfg.Nodes.Nodes() {
				si := r.Slot(n)
				s += fmt.Sprintf("  node %d: live %v gen %x missed %d\n", n, si.Live, si.Generation, si.Missed)
			}
			return s
		}
		t.Fatalf("unknown command %q", cmd)
		return ""
	})
}

func formatRegionReady(rd RegionReady) string {
	var sb strings.Builder
	for _, e := range rd.Events {
		if e.Up {
			fmt.Fprintf(&sb, "node %d up (generation %x)\n", e.Node, e.Generation)
		} else {
			fmt.Fprintf(&sb, "node %d down: %s\n", e.Node, e.Reason)
		}
	}
	for _, n := range rd.Notes {
		fmt.Fprintf(&sb, "note: %s\n", n)
	}
	if rd.Conflict != "" {
		fmt.Fprintf(&sb, "CONFLICT: %s\n", rd.Conflict)
	}
	return sb.String()
}

func TestKillBlockRoundTrip(t *testing.T) {
	k := &KillBlock{Owner: 3, Generation: 0x1234, Seq: 9, FencedGen: 0x77, FenceReason: FenceQuorum,
		Orders: []KillOrder{{Victim: 5, Generation: 0xabc}, {Victim: 254, Generation: 1}}}
	s := make([]byte, 512)
	if err := k.Encode(s); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeKillBlock(s, 3)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(k) || !got.OrdersKill(5, 0xabc) || got.OrdersKill(5, 0xabd) {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := DecodeKillBlock(s, 4); err == nil {
		t.Error("block of node 3 accepted as node 4's")
	}
	s[0x50] ^= 1
	if _, err := DecodeKillBlock(s, 3); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("bad checksum: %v", err)
	}
	if b, err := DecodeKillBlock(make([]byte, 512), 1); b != nil || err != nil {
		t.Errorf("zero sector: %v %v", b, err)
	}
	big := &KillBlock{Owner: 1, Orders: make([]KillOrder, MaxKillOrders(512)+1)}
	if err := big.Encode(s); err == nil {
		t.Error("too many orders encoded")
	}
	if MaxKillOrders(512) != 28 {
		t.Errorf("MaxKillOrders(512) = %d", MaxKillOrders(512))
	}
}

func FuzzDecodeKillBlock(f *testing.F) {
	s := make([]byte, 512)
	_ = (&KillBlock{Owner: 2, Generation: 5, Orders: []KillOrder{{Victim: 1, Generation: 3}}}).Encode(s)
	f.Add(s, uint8(2))
	f.Fuzz(func(t *testing.T, b []byte, owner uint8) {
		k, err := DecodeKillBlock(b, base.NodeID(owner))
		if err != nil || k == nil {
			return
		}
		out := make([]byte, len(b))
		if err := k.Encode(out); err != nil {
			t.Fatalf("decoded block does not encode: %v", err)
		}
		if k2, err := DecodeKillBlock(out, base.NodeID(owner)); err != nil || fmt.Sprint(k2) != fmt.Sprint(k) {
			t.Fatalf("re-encoded block differs: %v", err)
		}
	})
}

// FuzzRegionRead feeds arbitrary sectors to a region: never a panic.
func FuzzRegionRead(f *testing.F) {
	f.Add(make([]byte, 512), make([]byte, 512))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		r := NewRegion(RegionConfig{Name: "R", Self: 1, Nodes: base.NodeMapOf(0, 1), Threshold: 7, Interval: time.Second,
			SectorSize: 512, Generation: 9, KillArea: true})
		pad := func(x []byte) []byte { s := make([]byte, 512); copy(s, x); return s }
		for i := 0; i < 4; i++ {
			now := time.Duration(i) * time.Second
			if _, ok := r.Begin(now); !ok {
				continue
			}
			if _, ok := r.ReadDone(now, uint64(i), [][]byte{pad(a), pad(b)}, [][]byte{pad(b), pad(a)}, nil); ok {
				r.WriteDone(now, nil)
			}
			_ = r.Ready()
		}
	})
}
