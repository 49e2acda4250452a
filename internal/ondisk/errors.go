package ondisk

import (
	"errors"
	"fmt"
)

// ErrCorrupt is the class of every error that says on-disk bytes are not a
// valid structure. Test with errors.Is(err, ondisk.ErrCorrupt).
var ErrCorrupt = errors.New("corrupt metadata")

// CorruptError says which structure, at which block, failed which check.
// Decoders fill Struct/Field/Msg; callers that know the device and block add
// them with At/OnDevice so that the message points an operator at the
// damage ("/dev/sdb: block 70165: dinode: i_blkno: is 5, want 70165").
type CorruptError struct {
	Device string // device or image path, when known
	Blkno  uint64 // fs block number, when known (HasBlk)
	HasBlk bool
	Struct string // e.g. "dinode", "extent block", "group descriptor"
	Field  string // the on-disk field name, e.g. "l_next_free_rec"
	Msg    string // what is wrong, with the expected value
}

func (e *CorruptError) Error() string {
	s := ""
	if e.Device != "" {
		s = e.Device + ": "
	}
	if e.HasBlk {
		s += fmt.Sprintf("block %d: ", e.Blkno)
	}
	s += e.Struct
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Msg
}

// Is makes errors.Is(err, ErrCorrupt) true for every CorruptError.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// corrupt builds a CorruptError; decoders use it for every failed check.
func corrupt(structName, field, format string, args ...any) *CorruptError {
	return &CorruptError{Struct: structName, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// AtBlock returns err with the block number filled in when err is a
// CorruptError that does not carry one yet; other errors pass unchanged.
func AtBlock(err error, blkno uint64) error {
	var ce *CorruptError
	if errors.As(err, &ce) && !ce.HasBlk {
		c := *ce
		c.Blkno, c.HasBlk = blkno, true
		return &c
	}
	return err
}

// OnDevice returns err with the device name filled in, like AtBlock.
func OnDevice(err error, device string) error {
	var ce *CorruptError
	if errors.As(err, &ce) && ce.Device == "" {
		c := *ce
		c.Device = device
		return &c
	}
	return err
}
