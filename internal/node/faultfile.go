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
// and benchmarks (o2go agent --fault-file, hidden): while the file holds
// "stall-until=<unix milliseconds>" in the future, every read and write of
// the heartbeat regions waits until then — a disk latency spike as a SAN
// hiccup makes one. It is never set in production.
type faultFile struct {
	path string
	mu   sync.Mutex
	read time.Time
	till time.Time
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
	if v, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "stall-until="); ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
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
