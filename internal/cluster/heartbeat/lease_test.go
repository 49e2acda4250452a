package heartbeat

import (
	"testing"
	"time"
)

func TestLeaseExpiry(t *testing.T) {
	s := time.Second
	const stall = 58 * time.Second
	cases := []struct {
		name       string
		mode       Mode
		configured int
		bases      []time.Duration
		want       time.Duration // 0: no lease
	}{
		{"local: the oldest region decides", Local, 0, []time.Duration{10 * s, 4 * s, 7 * s}, 4*s + stall},
		{"global, 1 of 1", Global, 1, []time.Duration{10 * s}, 10*s + stall},
		{"global, 2 of 2: both needed", Global, 2, []time.Duration{10 * s, 4 * s}, 4*s + stall},
		{"global, 3 of 3: the second newest decides", Global, 3, []time.Duration{10 * s, 4 * s, 7 * s}, 7*s + stall},
		{"global, 4 of 4: three needed", Global, 4, []time.Duration{1 * s, 2 * s, 3 * s, 4 * s}, 2*s + stall},
		{"global, 5 of 5: three needed", Global, 5, []time.Duration{1 * s, 2 * s, 3 * s, 4 * s, 5 * s}, 3*s + stall},
		// Regions this node could not find count as lost (issue 5: node 0
		// finding only one of three devices must not hold a lease).
		{"global, found 1 of 3", Global, 3, []time.Duration{10 * s}, 0},
		{"global, found 2 of 3", Global, 3, []time.Duration{10 * s, 4 * s}, 4*s + stall},
		{"global, found 1 of 2", Global, 2, []time.Duration{10 * s}, 0},
		{"global, found 2 of 4", Global, 4, []time.Duration{10 * s, 4 * s}, 0},
		{"global, found 3 of 5", Global, 5, []time.Duration{10 * s, 4 * s, 7 * s}, 4*s + stall},
		// A configured count below the regions in use is a driver's slip:
		// the regions in use count.
		{"global, configured 0, 3 in use", Global, 0, []time.Duration{10 * s, 4 * s, 7 * s}, 7*s + stall},
		{"no region", Local, 0, nil, 0},
		{"no region, global", Global, 3, nil, 0},
	}
	for _, c := range cases {
		got, ok := LeaseExpiry(c.mode, c.configured, c.bases, stall)
		if ok != (c.want != 0) || got != c.want {
			t.Errorf("%s: got %v (lease %v), want %v", c.name, got, ok, c.want)
		}
	}
}

// TestMajoritiesIntersect: any two strict majorities of the same regions
// share one, so two nodes that both hold a lease see each other's
// heartbeat on it; with "at least half" two disjoint halves would not.
func TestMajoritiesIntersect(t *testing.T) {
	for n := 1; n <= 8; n++ {
		if need := MajorityOf(n); 2*need <= n || need > n {
			t.Errorf("%d regions: a lease needs %d", n, need)
		}
	}
}
