package clustermount

import (
	"context"
	"errors"
	"sync"

	"o2go/internal/dlm"
	"o2go/internal/fs/lockglue"
	"o2go/internal/node"
)

// dlmService is lockglue's Service on the agent's lock manager, in one
// domain.
type dlmService struct {
	d      *node.DLM
	domain string
}

// dlmHeld is a granted lock, with the value block its last grant read.
type dlmHeld struct {
	l     *node.Lock
	mu    sync.Mutex
	value lockglue.ValueBlock
	valid bool
}

// note records the value block an AST carries.
func (h *dlmHeld) note(a dlm.AST) {
	h.mu.Lock()
	h.value, h.valid = lockglue.ValueBlock(a.LVB), a.LVBRead && a.LVBValid
	h.mu.Unlock()
}

// LastValue implements lockglue.ValueReader.
func (h *dlmHeld) LastValue() (lockglue.ValueBlock, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.value, h.valid
}

func dlmMode(m lockglue.Mode) dlm.Mode {
	switch m {
	case lockglue.PR:
		return dlm.ModePR
	case lockglue.EX:
		return dlm.ModeEX
	}
	return dlm.ModeNL
}

func glueMode(m dlm.Mode) lockglue.Mode {
	switch {
	case m >= dlm.ModePW:
		return lockglue.EX
	case m >= dlm.ModeCR:
		return lockglue.PR
	}
	return lockglue.NL
}

func dlmFlags(r lockglue.Request) dlm.Flags {
	var f dlm.Flags
	if r.Try {
		f |= dlm.NoQueue
	}
	if r.Recovery {
		f |= dlm.Recovery
	}
	return f
}

// isBusy says whether err is the lock manager refusing a NOQUEUE request
// that cannot be granted now.
func isBusy(err error) bool {
	var ng *node.ErrNotGranted
	return errors.As(err, &ng) && ng.Status == dlm.StatusBusy
}

func busy(err error) error {
	if isBusy(err) {
		return lockglue.ErrBusy
	}
	return err
}

func (s dlmService) Lock(ctx context.Context, name string, r lockglue.Request, onBlock func(lockglue.Mode)) (lockglue.Held, error) {
	l, a, err := s.d.Lock(ctx, s.domain, name, dlmMode(r.Mode), dlmFlags(r), func(b dlm.BAST) { onBlock(glueMode(b.Mode)) })
	if err != nil {
		return nil, busy(err)
	}
	h := &dlmHeld{l: l}
	h.note(a)
	return h, nil
}

func (h *dlmHeld) Convert(ctx context.Context, r lockglue.Request) error {
	var lvb *dlm.LVB
	if r.Value != nil {
		v := dlm.LVB(*r.Value)
		lvb = &v
	}
	a, err := h.l.Convert(ctx, dlmMode(r.Mode), dlmFlags(r), lvb)
	if err != nil {
		return busy(err)
	}
	h.note(a)
	return nil
}

func (h *dlmHeld) Unlock() error { return h.l.Unlock(nil) }
