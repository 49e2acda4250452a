package clustermount

import (
	"context"
	"errors"

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

type dlmHeld struct{ l *node.Lock }

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
	l, _, err := s.d.Lock(ctx, s.domain, name, dlmMode(r.Mode), dlmFlags(r), func(b dlm.BAST) { onBlock(glueMode(b.Mode)) })
	if err != nil {
		return nil, busy(err)
	}
	return dlmHeld{l}, nil
}

func (h dlmHeld) Convert(ctx context.Context, r lockglue.Request) error {
	_, err := h.l.Convert(ctx, dlmMode(r.Mode), dlmFlags(r), nil)
	return busy(err)
}

func (h dlmHeld) Unlock() error { return h.l.Unlock(nil) }
