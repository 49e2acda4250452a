package blockdev

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Memory is an in-memory Device: the disk of unit tests and of the
// simulator. Writes are applied sector by sector under a lock, so that a
// concurrent reader sees each sector either old or new, as on a real disk.
type Memory struct {
	mu         sync.RWMutex
	name       string
	data       []byte
	sectorSize int
}

// NewMemory returns a zeroed in-memory device of size bytes.
func NewMemory(name string, size int64, sectorSize int) *Memory {
	if sectorSize == 0 {
		sectorSize = 512
	}
	return &Memory{name: name, data: make([]byte, size), sectorSize: sectorSize}
}

// NewMemoryFrom wraps a copy of data as a device.
func NewMemoryFrom(name string, data []byte, sectorSize int) *Memory {
	m := NewMemory(name, int64(len(data)), sectorSize)
	copy(m.data, data)
	return m
}

// Name implements Device.
func (m *Memory) Name() string { return m.name }

// Size implements Device.
func (m *Memory) Size() int64 { return int64(len(m.data)) }

// SectorSize implements Device.
func (m *Memory) SectorSize() int { return m.sectorSize }

// ReadAt implements Device.
func (m *Memory) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if off < 0 {
		return 0, errors.New("blockdev: negative offset")
	}
	if off >= int64(len(m.data)) {
		return 0, io.EOF
	}
	n := copy(p, m.data[off:])
	if n < len(p) {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}

// WriteAt implements Device.
func (m *Memory) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(m.data)) {
		return 0, fmt.Errorf("blockdev: write [%d,+%d) beyond device size %d", off, len(p), len(m.data))
	}
	return copy(m.data[off:], p), nil
}

// Sync implements Device.
func (m *Memory) Sync() error { return nil }

// Close implements Device.
func (m *Memory) Close() error { return nil }

// Snapshot returns a copy of the device's contents.
func (m *Memory) Snapshot() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]byte(nil), m.data...)
}
