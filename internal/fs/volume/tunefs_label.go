package volume

// tunefs -L (tunefs.ocfs2's op_set_label.c): the label in the superblock
// and its backups.

func (t *tunefsVol) setLabel(label string) error {
	if t.SB.Label() == label {
		t.verbosef("Device %q already has the label %q; nothing to do\n", t.Path, label)
		return nil
	}
	ok, err := t.r.interact("Change the label on device %q from %q to %q? ", t.Path, t.SB.Label(), label)
	if err != nil || !ok {
		return err
	}
	if err := t.SB.SetLabel(label); err != nil {
		return tunefsRefuse("%v", err)
	}
	return t.writeSuper()
}
