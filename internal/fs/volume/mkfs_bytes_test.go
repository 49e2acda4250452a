package volume

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"o2go/internal/blockdev"
	"o2go/internal/ondisk"
	"o2go/internal/testutil/realtools"
)

// TestMkfsBytesMatchMkfsOcfs2 is the strictest comparison: it formats
// with mkfs.ocfs2, then builds o2go's image with mkfs.ocfs2's random
// values (generation, UUID, dx seeds, format time, read back from its
// superblock) and compares the two devices block by block. Only inode
// timestamps may differ (mkfs.ocfs2's second phase stamps the time of day
// again), and the bytes mkfs.ocfs2 leaves unspecified: it copies
// uninitialised memory into the tail of the cluster name (ci_cluster past
// its NUL), into the slack of the first entries of lost+found (without
// inline data) and into the global quota files' header block past its
// fields; o2go writes zeros there.
func TestMkfsBytesMatchMkfsOcfs2(t *testing.T) {
	realtools.Require(t)
	cases := []mkfsCase{
		{"1G-default", 1 << 30, []string{"-N", "4"}, MkfsOptions{Slots: 4}},
		{"600M-2k-local-8k", 600 << 20, []string{"-b", "2048", "-C", "8192", "--fs-features=local"}, MkfsOptions{BlockSize: 2048, ClusterSize: 8192, Features: "local"}},
		{"1200M-metaecc-quota", 1200 << 20, []string{"-N", "2", "--fs-features=metaecc,usrquota,grpquota"}, MkfsOptions{Slots: 2, Features: "metaecc,usrquota,grpquota"}},
		{"2G-maxcompat-pcmk", 2 << 30, []string{"--fs-feature-level=max-compat", "--cluster-stack=pcmk", "--cluster-name=abc"}, MkfsOptions{Level: LevelMaxCompat, ClusterStack: "pcmk", ClusterName: "abc"}},
		{"1G-512-noindex", 1 << 30, []string{"-b", "512", "-N", "3", "-J", "size=8M", "--fs-features=noindexed-dirs"}, MkfsOptions{BlockSize: 512, Slots: 3, JournalSize: 8 << 20, Features: "noindexed-dirs"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ref := realtools.MkfsImage(t, tc.size, tc.args...)
			rv, err := Open(ref, OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			r := mkfsRandom{gen: rv.Super.FSGeneration, uuid: rv.SB.UUID, seeds: rv.SB.DxSeed, now: rv.Super.Ctime.Sec}
			rv.Close()

			img := filepath.Join(t.TempDir(), "o2go.img")
			if err := truncateFile(img, tc.size); err != nil {
				t.Fatal(err)
			}
			o := tc.o
			p, err := planMkfs(&o, tc.size, 512)
			if err != nil {
				t.Fatal(err)
			}
			b := newMkfsBuilder(p, r)
			im, err := b.build()
			if err != nil {
				t.Fatal(err)
			}
			if b.sysdir.dx != nil {
				t.Fatal("pick a case where mkfs.ocfs2 needs no fixup")
			}
			dev, err := blockdev.Open(img, blockdev.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := writeMkfsImage(dev, p, b, im, &o, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			dev.Close()
			compareImages(t, ref, img, p.blockSize, b.metaECC, unspecifiedBytes(b))
		})
	}
}

// unspecifiedBytes returns, by block, a function that zeroes the bytes of
// that block mkfs.ocfs2 fills with whatever its buffers held.
func unspecifiedBytes(b *mkfsBuilder) map[uint64]func([]byte) {
	m := map[uint64]func([]byte){}
	super := func(blk []byte) {
		ci := blk[ondisk.DinodeID2Offset+0xA8 : ondisk.DinodeID2Offset+0xB8]
		if i := bytes.IndexByte(ci, 0); i >= 0 {
			clear(ci[i:])
		}
	}
	m[ondisk.SuperBlockBlkno] = super
	for _, blk := range b.img.backups {
		m[blk] = super
	}
	for _, d := range b.allDirs() {
		for i := 0; !d.inline && i < d.nblocks(); i++ {
			m[d.blknos[i]] = func(blk []byte) {
				area := ondisk.DirEntryArea(blk, d.trailer)
				for off := 0; off+ondisk.DirEntryHeaderSize <= len(area); {
					rec := int(binary.LittleEndian.Uint16(area[off+8:]))
					if rec < ondisk.DirEntryMinRecLen || off+rec > len(area) {
						return
					}
					clear(area[off+ondisk.DirEntryHeaderSize+int(area[off+10]) : off+rec])
					off += rec
				}
			}
		}
	}
	for _, k := range []ondisk.SystemFileKind{ondisk.SysUserQuota, ondisk.SysGroupQuota} {
		if d := b.file(k, 0); d != nil {
			m[d.Extents.Recs[0].Blkno] = func(blk []byte) { clear(blk[0x20:]) }
		}
	}
	return m
}

// compareImages compares two volumes block by block, ignoring inode
// timestamps, unspecified bytes and, with META_ECC, the checks that cover
// them.
func compareImages(t *testing.T, ref, img string, bs int, metaECC bool, unspecified map[uint64]func([]byte)) {
	t.Helper()
	a, err := os.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const chunk = 4 << 20
	ba, bb := make([]byte, chunk), make([]byte, chunk)
	var diffs []string
	for off := int64(0); ; off += chunk {
		na, ea := io.ReadFull(a, ba)
		nb, _ := io.ReadFull(b, bb)
		if na != nb {
			t.Fatalf("images differ in size near byte %d", off)
		}
		if !bytes.Equal(ba[:na], bb[:nb]) {
			for i := 0; i < na; i += bs {
				x, y := ba[i:i+bs], bb[i:i+bs]
				if bytes.Equal(x, y) {
					continue
				}
				blk := (off + int64(i)) / int64(bs)
				if fix, ok := unspecified[uint64(blk)]; ok {
					x, y = append([]byte(nil), x...), append([]byte(nil), y...)
					fix(x)
					fix(y)
					if metaECC {
						// Every block with unspecified bytes carries a check
						// in one of these places; clear whichever it is.
						for _, c := range []int{ondisk.DinodeCheckOffset, ondisk.DirBlockCheckOffset(bs), bs - quotaReserved} {
							x[c], y[c] = 0, 0
							clear(x[c : c+ondisk.BlockCheckSize])
							clear(y[c : c+ondisk.BlockCheckSize])
						}
					}
					if bytes.Equal(x, y) {
						continue
					}
				}
				if string(x[:8]) == ondisk.InodeSignature && string(y[:8]) == ondisk.InodeSignature {
					x, y = withoutTimes(x, metaECC), withoutTimes(y, metaECC)
					if bytes.Equal(x, y) {
						continue
					}
				}
				first := 0
				for first < bs && x[first] == y[first] {
					first++
				}
				diffs = append(diffs, fmt.Sprintf("block %d differs from byte 0x%x: mkfs.ocfs2 % x, o2go % x", blk, first, x[first:min(first+16, bs)], y[first:min(first+16, bs)]))
			}
		}
		if ea != nil {
			break
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%d blocks differ:\n%s", len(diffs), joinFirst(diffs, 20))
	}
}

func withoutTimes(blk []byte, metaECC bool) []byte {
	c := append([]byte(nil), blk...)
	for _, off := range []int{0x30, 0x38, 0x40, 0x64, 0x68, 0x6C} {
		binary.LittleEndian.PutUint32(c[off:], 0)
		if off < 0x64 {
			binary.LittleEndian.PutUint64(c[off:], 0)
		}
	}
	if metaECC {
		clear(c[ondisk.DinodeCheckOffset : ondisk.DinodeCheckOffset+ondisk.BlockCheckSize])
	}
	return c
}

func joinFirst(s []string, n int) string {
	var b bytes.Buffer
	for i, l := range s {
		if i == n {
			fmt.Fprintf(&b, "... and %d more\n", len(s)-n)
			break
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}
