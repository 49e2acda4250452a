package journal

import (
	"encoding/binary"
	"testing"

	"o2go/internal/blockdev"
)

// FuzzReplay replays arbitrary bytes in place of a small journal's log
// (superblock kept): it must never panic, and a second replay of the
// result must change nothing (replay is idempotent).
func FuzzReplay(f *testing.F) {
	l := layout{bs: 512, journalBlocks: 16, homeBlocks: 8}
	v := l.build(f)
	j, c, _ := load(f, v, v.mem, l.cfg())
	for n := range 3 {
		change(f, j, c, v, byte(n), n, n+3)
		h, _ := j.Begin(0)
		h.Revoke(v.homeStart + uint64(n+1))
		h.Stop()
		j.CommitAndWait()
	}
	j.Abandon()
	base := v.mem.Snapshot()
	logOff := (fixtureJStart + 2) * v.bs // after the two superblock blocks
	logLen := (l.journalBlocks - 2) * v.bs
	f.Add(base[logOff : logOff+logLen])
	f.Add([]byte{0xc0, 0x3b, 0x39, 0x98, 0, 0, 0, 1, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, log []byte) {
		img := append([]byte(nil), base...)
		copy(img[logOff:logOff+logLen], log)
		// Replay from the first log block, whatever the superblock said.
		binary.BigEndian.PutUint32(img[fixtureJStart*v.bs+0x1C:], 2)
		mem := blockdev.NewMemoryFrom("fuzz", img, 512)
		if _, err := Replay(v.cache(mem, 0), fixtureIno, l.cfg()); err != nil {
			return // a corruption report, not a crash
		}
		once := mem.Snapshot()
		if _, err := Replay(v.cache(mem, 0), fixtureIno, l.cfg()); err != nil {
			t.Fatalf("second replay: %v", err)
		}
		if string(mem.Snapshot()) != string(once) {
			t.Fatal("a second replay changed the volume")
		}
	})
}
