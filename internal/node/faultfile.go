package node

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"o2go/internal/blockdev"
)

// faultFile injects disk stalls into this agent's heartbeat I/O, for tests
// and benchmarks (o2go agent --fault-file, hidden): while the file holds a
// line "stall-until=<unix milliseconds>" in the future, every read and write
// of the heartbeat regions waits until then — a disk latency spike as a SAN
// hiccup makes one. A line "stall-until=<ms> region=<UUID>" stalls only
// that region (global heartbeat: one voting disk lost). It is never set in
// production.
type faultFile struct {
	path   string
	region string // this region's UUID
	mu     sync.Mutex
	read   time.Time
	till   time.Time
}

func (f *faultFile) until() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.read) < 50*time.Millisecond {
		return f.till
	}
	f.read = time.Now()
	f.till = time.Time{}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return f.till
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "stall-until=")
		if !ok {
			continue
		}
		v, region, _ := strings.Cut(v, " region=")
		if region != "" && !strings.EqualFold(strings.TrimSpace(region), f.region) {
			continue
		}
		if ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && time.UnixMilli(ms).After(f.till) {
			f.till = time.UnixMilli(ms)
		}
	}
	return f.till
}

func (f *faultFile) wait() {
	if d := time.Until(f.until()); d > 0 {
		time.Sleep(d)
	}
}

// faulted wraps a region device with the fault file.
type faulted struct {
	blockdev.Device
	f *faultFile
}

func (d *faulted) ReadAt(p []byte, off int64) (int, error) {
	d.f.wait()
	return d.Device.ReadAt(p, off)
}

func (d *faulted) WriteAt(p []byte, off int64) (int, error) {
	d.f.wait()
	return d.Device.WriteAt(p, off)
}
