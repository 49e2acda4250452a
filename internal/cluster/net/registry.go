package net

import (
	"errors"
	"fmt"
)

// ErrHandlerExists is returned when (type, key) already has a handler.
var ErrHandlerExists = errors.New("a handler is already registered for this message type and key")

type handlerKey struct {
	typ uint16
	key uint32
}

type handlerEntry[H any] struct {
	maxLen int
	h      H
}

// Registry maps (message type, key) to a handler and the longest payload it
// accepts, as o2net's handler tree does. H is whatever the driver calls.
// A Registry is not safe for concurrent use; the agent guards it.
type Registry[H any] struct {
	entries map[handlerKey]handlerEntry[H]
}

// Register adds a handler. maxLen bounds the payloads given to it: longer
// messages are answered SysOverflow without calling it.
func (r *Registry[H]) Register(typ uint16, key uint32, maxLen int, h H) error {
	if typ == 0 {
		return fmt.Errorf("register handler: message type 0 is reserved")
	}
	if maxLen < 0 || maxLen > MaxPayload {
		return fmt.Errorf("register handler for type %d key %08x: max length %d out of range 0..%d", typ, key, maxLen, MaxPayload)
	}
	if r.entries == nil {
		r.entries = make(map[handlerKey]handlerEntry[H])
	}
	k := handlerKey{typ, key}
	if _, ok := r.entries[k]; ok {
		return fmt.Errorf("register handler for type %d key %08x: %w", typ, key, ErrHandlerExists)
	}
	r.entries[k] = handlerEntry[H]{maxLen: maxLen, h: h}
	return nil
}

// Unregister removes the handler of (typ, key) and reports whether there was one.
func (r *Registry[H]) Unregister(typ uint16, key uint32) bool {
	k := handlerKey{typ, key}
	if _, ok := r.entries[k]; !ok {
		return false
	}
	delete(r.entries, k)
	return true
}

// Lookup finds the handler for a message. It returns SysNone with the handler,
// SysNoHandler when none is registered, or SysOverflow when the payload is
// longer than the handler accepts.
func (r *Registry[H]) Lookup(h Header) (H, SysStatus) {
	var zero H
	e, ok := r.entries[handlerKey{h.Type, h.Key}]
	if !ok {
		return zero, SysNoHandler
	}
	if int(h.DataLen) > e.maxLen {
		return zero, SysOverflow
	}
	return e.h, SysNone
}

// Len is the number of registered handlers.
func (r *Registry[H]) Len() int { return len(r.entries) }
