package volume

import (
	"crypto/rand"
	"strings"

	"o2go/internal/ondisk"
)

// tunefs -U and --cloned-volume (tunefs.ocfs2's op_reset_uuid.c and
// op_cloned_volume.c): a new volume UUID in the superblock and its
// backups.
//
// The UUID names the volume to the cluster (DLM domain, heartbeat region)
// and nothing on disk is derived from it except two things, which
// tunefs.ocfs2 1.8.7 treats differently:
//
//   - s_uuid_hash seeds the hash of every extended attribute name stored
//     (XATTR) and the kernel's indexed-directory hash: it stays, or every
//     stored xattr would be lost. tunefs.ocfs2 keeps it too.
//   - each journal's JBD2 superblock carries the UUID mkfs gave it. No
//     kernel or tool checks it (OCFS2's journals are internal), and
//     tunefs.ocfs2 leaves the old one; o2go rewrites it, so that the volume
//     reads as if it had been made with the new UUID. The journals are
//     clean (checked before any change), so nothing else in them counts.

// newUUID draws a random (version 4) UUID, as uuid_generate does.
func newUUID() ([ondisk.UUIDLen]byte, error) {
	var u [ondisk.UUIDLen]byte
	if _, err := rand.Read(u[:]); err != nil {
		return u, err
	}
	u[6] = u[6]&0x0F | 0x40
	u[8] = u[8]&0x3F | 0x80
	return u, nil
}

const uuidWarning = "WARNING!!! OCFS2 uses the UUID to uniquely identify a file system. " +
	"Having two OCFS2 file systems with the same UUID could, in the least, cause erratic " +
	"behavior, and if unlucky, cause file system damage. Please choose the UUID with care.\n" +
	"Update the UUID ?"

// resetUUID is -U: uuid nil draws a random one.
func (t *tunefsVol) resetUUID(uuid *[ondisk.UUIDLen]byte) error {
	ok, err := t.r.interact("Reset the volume UUID on device %q? ", t.Path)
	if err != nil || !ok {
		return err
	}
	if uuid != nil {
		ok, err := t.r.interactCritical(uuidWarning)
		if err != nil || !ok {
			return err
		}
	} else {
		u, err := newUUID()
		if err != nil {
			return err
		}
		uuid = &u
	}
	return t.setUUID(*uuid)
}

// clonedVolume is --cloned-volume: a random UUID and a new label.
func (t *tunefsVol) clonedVolume(label string) error {
	ok, err := t.r.interactCritical("Updating the UUID and label on cloned volume %q.\n"+
		"DANGER: THIS WILL MODIFY THE UUID WITHOUT ACCESSING THE CLUSTER SOFTWARE.  "+
		"YOU MUST BE ABSOLUTELY SURE THAT NO OTHER NODE IS USING THIS FILESYSTEM "+
		"BEFORE MODIFYING ITS UUID.\nUpdate the UUID and label? ", t.Path)
	if err != nil || !ok {
		return err
	}
	u, err := newUUID()
	if err != nil {
		return err
	}
	old := t.SB.Label()
	switch {
	case label == "":
		const suffix = "-cloned"
		if !strings.HasSuffix(old, suffix) {
			if len(old)+len(suffix) >= ondisk.VolumeLabelLen {
				old = old[:ondisk.VolumeLabelLen-1-len(suffix)]
			}
			label = old + suffix
		} else {
			label = old
		}
	case label == old:
		t.verbosef("Device %q already has the label %q; label not updated\n", t.Path, label)
	}
	t.verbosef("Setting the label %q on device %q\n", label, t.Path)
	if err := t.SB.SetLabel(label); err != nil {
		return tunefsRefuse("%v", err)
	}
	return t.setUUID(u)
}

// setUUID writes the new UUID into the journals' superblocks, then the
// superblock and its backups.
func (t *tunefsVol) setUUID(u [ondisk.UUIDLen]byte) error {
	for slot := 0; slot < int(t.SB.MaxSlots); slot++ {
		d, err := t.systemInode(ondisk.SysJournal, slot)
		if err != nil {
			return err
		}
		jsb, err := t.readJournalSuper(d)
		if err != nil {
			return err
		}
		jsb.UUID = u
		if err := t.writeJournalSuper(d, jsb); err != nil {
			return err
		}
	}
	t.SB.UUID = u
	return t.writeSuper()
}
