package net

import (
	"encoding/binary"
	"fmt"
)

// Header magics: o2net's values. A frame is a message, a status reply to one,
// or a keepalive request or response.
const (
	MagicMsg      uint16 = 0xfa55 // O2NET_MSG_MAGIC: a message for a handler
	MagicStatus   uint16 = 0xfa56 // O2NET_MSG_STATUS_MAGIC: a handler's status reply
	MagicKeepReq  uint16 = 0xfa57 // O2NET_MSG_KEEP_REQ_MAGIC
	MagicKeepResp uint16 = 0xfa58 // O2NET_MSG_KEEP_RESP_MAGIC
)

// HeaderSize is the bytes of a message header on the wire (struct o2net_msg).
const HeaderSize = 24

// MaxPayload is the largest payload a message carries: data_len is a u16.
// (o2net allows 4096 - 24; o2go lets the DLM send larger recovery batches.)
const MaxPayload = 1<<16 - 1

// Flags of a message header (o2net's pad1).
const (
	// FlagWantStatus asks the receiver to answer with a status frame
	// carrying the handler's return value and the same MsgNum. o2net always
	// answers; o2go only when asked, so one-way traffic costs one frame.
	FlagWantStatus uint16 = 1 << 0
	knownFlags            = FlagWantStatus
)

// SysStatus is o2net's system status of a reply: what the receiving
// transport, not the handler, says about the message.
type SysStatus uint32

// The system statuses (enum o2net_system_error).
const (
	SysNone      SysStatus = 0 // the handler ran; Status is its return value
	SysNoHandler SysStatus = 1 // no handler for (type, key): -ENOPROTOOPT
	SysOverflow  SysStatus = 2 // payload longer than the handler's maximum: -EOVERFLOW
	SysDied      SysStatus = 3 // the connection died before a reply: -EHOSTDOWN
	sysMax       SysStatus = 4
)

func (s SysStatus) String() string {
	switch s {
	case SysNone:
		return "ok"
	case SysNoHandler:
		return "no handler"
	case SysOverflow:
		return "payload too long"
	case SysDied:
		return "connection died"
	}
	return fmt.Sprintf("system status %d", uint32(s))
}

// Header is struct o2net_msg, big-endian on the wire:
//
//	0x00 be16 magic       MagicMsg, MagicStatus, MagicKeepReq or MagicKeepResp
//	0x02 be16 data_len    payload bytes that follow the header
//	0x04 be16 msg_type    selects the handler together with key
//	0x06 be16 flags       o2net's pad1; FlagWantStatus
//	0x08 be32 sys_status  in status replies: SysStatus
//	0x0C be32 status      in status replies: the handler's return value
//	0x10 be32 key         the handler key (a DLM domain's key, 0 for the stack)
//	0x14 be32 msg_num     the sender's number for matching a status reply
type Header struct {
	Magic     uint16
	DataLen   uint16
	Type      uint16
	Flags     uint16
	SysStatus SysStatus
	Status    int32
	Key       uint32
	MsgNum    uint32
}

// Encode writes h into b, which must hold HeaderSize bytes.
func (h Header) Encode(b []byte) {
	be := binary.BigEndian
	be.PutUint16(b[0:], h.Magic)
	be.PutUint16(b[2:], h.DataLen)
	be.PutUint16(b[4:], h.Type)
	be.PutUint16(b[6:], h.Flags)
	be.PutUint32(b[8:], uint32(h.SysStatus))
	be.PutUint32(b[12:], uint32(h.Status))
	be.PutUint32(b[16:], h.Key)
	be.PutUint32(b[20:], h.MsgNum)
}

// Bytes returns the encoded header.
func (h Header) Bytes() []byte {
	b := make([]byte, HeaderSize)
	h.Encode(b)
	return b
}

// DecodeHeader reads and checks a header: a known magic, no unknown flags,
// and for the frames that carry no payload (status, keepalives) a zero
// data_len. A hostile peer's header is an error, never a panic.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("message header: %d bytes, want %d", len(b), HeaderSize)
	}
	be := binary.BigEndian
	h := Header{
		Magic:     be.Uint16(b[0:]),
		DataLen:   be.Uint16(b[2:]),
		Type:      be.Uint16(b[4:]),
		Flags:     be.Uint16(b[6:]),
		SysStatus: SysStatus(be.Uint32(b[8:])),
		Status:    int32(be.Uint32(b[12:])),
		Key:       be.Uint32(b[16:]),
		MsgNum:    be.Uint32(b[20:]),
	}
	switch h.Magic {
	case MagicMsg:
		if h.Type == 0 {
			return h, fmt.Errorf("message header: msg_type 0 is not a message type")
		}
		if h.SysStatus != SysNone || h.Status != 0 {
			return h, fmt.Errorf("message header: a message (type %d) carries sys_status %d, status %d; want 0",
				h.Type, h.SysStatus, h.Status)
		}
	case MagicStatus:
		if h.DataLen != 0 {
			return h, fmt.Errorf("message header: status reply with data_len %d, want 0", h.DataLen)
		}
		if h.SysStatus >= sysMax {
			return h, fmt.Errorf("message header: unknown sys_status %d", uint32(h.SysStatus))
		}
	case MagicKeepReq, MagicKeepResp:
		if h.DataLen != 0 {
			return h, fmt.Errorf("message header: keepalive with data_len %d, want 0", h.DataLen)
		}
	default:
		return h, fmt.Errorf("message header: bad magic 0x%04x", h.Magic)
	}
	if h.Flags&^knownFlags != 0 {
		return h, fmt.Errorf("message header: unknown flags 0x%04x", h.Flags&^knownFlags)
	}
	return h, nil
}

// Message returns the header of a message of type typ for handler key key.
func Message(typ uint16, key uint32, payloadLen int, msgNum uint32, wantStatus bool) (Header, error) {
	if typ == 0 {
		return Header{}, fmt.Errorf("message type 0 is reserved")
	}
	if payloadLen < 0 || payloadLen > MaxPayload {
		return Header{}, fmt.Errorf("payload of %d bytes: at most %d", payloadLen, MaxPayload)
	}
	h := Header{Magic: MagicMsg, DataLen: uint16(payloadLen), Type: typ, Key: key, MsgNum: msgNum}
	if wantStatus {
		h.Flags |= FlagWantStatus
	}
	return h, nil
}

// StatusReply returns the status frame answering msg.
func StatusReply(msg Header, sys SysStatus, status int32) Header {
	return Header{Magic: MagicStatus, Type: msg.Type, Key: msg.Key, MsgNum: msg.MsgNum, SysStatus: sys, Status: status}
}

// KeepaliveRequest and KeepaliveResponse are the keepalive frames.
var (
	KeepaliveRequest  = Header{Magic: MagicKeepReq}
	KeepaliveResponse = Header{Magic: MagicKeepResp}
)
