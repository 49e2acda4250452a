package ha

import (
	"encoding/json"
	"errors"
	"fmt"

	"o2go/internal/base"
)

// Message types, in cluster/net's HA range (700..799). Every payload is a
// JSON object carrying the sender's membership sequence number (Seq): HA
// traffic is control traffic — a few messages per event — and JSON keeps it
// readable in traces. Decoding refuses unknown types, malformed or oversized
// payloads with ErrMessage and changes nothing.
const (
	MsgReport  uint16 = 700 // node -> coordinator: its groups, versions, readiness
	MsgSync    uint16 = 701 // coordinator -> node: send your report
	MsgOrder   uint16 = 702 // coordinator -> node: bring groups online or offline here
	MsgState   uint16 = 703 // coordinator -> all: the new State
	MsgConfig  uint16 = 704 // coordinator -> all: a committed Config
	MsgRecords uint16 = 705 // coordinator -> all: numbered history records
	MsgNote    uint16 = 706 // node -> coordinator: records to number and distribute
	MsgFetch   uint16 = 707 // either way: send me your replica (config, state, history from)
	MsgReplica uint16 = 708 // the answer to a fetch
	MsgRequest uint16 = 709 // node -> coordinator: an operator's request
	MsgReply   uint16 = 710 // coordinator -> node: its answer
	MsgCheck   uint16 = 711 // coordinator -> node: run the local checks of a configuration
	MsgChecked uint16 = 712 // node -> coordinator: their result

	MsgFirst = MsgReport
	MsgLast  = MsgChecked
)

// MsgKey is the message key of HA traffic (the key separates users of a
// type; HA has one cluster-wide instance).
const MsgKey uint32 = 0x4841 // "HA"

// MaxMessage is the largest payload HA sends: below cluster/net's 64 KiB.
// Histories travel in batches under it; a configuration must fit in it.
const MaxMessage = 60 << 10

// ErrMessage is wrapped by every refusal of a peer's message.
var ErrMessage = errors.New("bad HA message")

// Outgoing is a message for the messaging layer.
type Outgoing struct {
	To      base.NodeID
	Type    uint16
	Payload []byte
}

// GroupReport is one group as a node reports it.
type GroupReport struct {
	Name      string      `json:"name"`
	Want      bool        `json:"want,omitempty"`
	Phase     string      `json:"phase"`
	Resources []ResReport `json:"resources,omitempty"`
	// FailedHere: the group failed here (and is stopped); kept until the
	// coordinator's State lists this node among the group's failures.
	FailedHere bool   `json:"failed_here,omitempty"`
	Detail     string `json:"detail,omitempty"`
}

// ResReport is a resource's state on a node.
type ResReport struct {
	Name     string `json:"name"`
	State    string `json:"state"` // stopped, starting, running, stopping, failed, unknown
	Restarts int    `json:"restarts,omitempty"`
}

type reportMsg struct {
	Seq           uint64        `json:"seq"`
	Inc           uint64        `json:"inc"`
	Ready         bool          `json:"ready,omitempty"`
	Leaving       string        `json:"leaving,omitempty"`
	ConfigVersion uint64        `json:"config_version"`
	ConfigDigest  string        `json:"config_digest"`
	StateVersion  uint64        `json:"state_version"`
	StateLive     bool          `json:"state_live,omitempty"`
	HistSeq       uint64        `json:"hist_seq"`
	Groups        []GroupReport `json:"groups,omitempty"`
	NetDown       []string      `json:"net_down,omitempty"`
}

type syncMsg struct {
	Seq uint64 `json:"seq"`
}

type orderMsg struct {
	Seq    uint64          `json:"seq"`
	Wants  map[string]bool `json:"wants"`
	Manage []string        `json:"manage,omitempty"` // unmanaged groups to manage again
}

type stateMsg struct {
	Seq   uint64 `json:"seq"`
	State *State `json:"state"`
}

type configMsg struct {
	Seq    uint64  `json:"seq"`
	Config *Config `json:"config"`
}

type recordsMsg struct {
	Seq     uint64   `json:"seq"`
	Records []Record `json:"records"`
}

type fetchMsg struct {
	Seq      uint64 `json:"seq"`
	Config   bool   `json:"config,omitempty"`
	State    bool   `json:"state,omitempty"`
	HistFrom uint64 `json:"hist_from,omitempty"` // 0: no history
}

type replicaMsg struct {
	Seq     uint64   `json:"seq"`
	Config  *Config  `json:"config,omitempty"`
	State   *State   `json:"state,omitempty"`
	Live    bool     `json:"live,omitempty"`
	Records []Record `json:"records,omitempty"`
	More    bool     `json:"more,omitempty"`
}

type requestMsg struct {
	Seq     uint64   `json:"seq"`
	ID      uint64   `json:"id"`
	Request *Request `json:"request"`
}

type replyMsg struct {
	Seq   uint64          `json:"seq"`
	ID    uint64          `json:"id"`
	Err   string          `json:"err,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

type checkMsg struct {
	Seq    uint64  `json:"seq"`
	ID     uint64  `json:"id"`
	Config *Config `json:"config"`
}

type checkedMsg struct {
	Seq          uint64   `json:"seq"`
	ID           uint64   `json:"id"`
	Problems     []string `json:"problems,omitempty"`
	ConfigDigest string   `json:"config_digest"`
	ConfigVer    uint64   `json:"config_version"`
}

// seqOf reads the envelope's membership sequence number.
type envelope struct {
	Seq uint64 `json:"seq"`
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ha: encoding a message: %v", err)) // plain data only
	}
	return b
}

// decode parses payload p of type typ into its message struct.
func decode(typ uint16, p []byte) (any, uint64, error) {
	if len(p) > MaxMessage+4096 {
		return nil, 0, fmt.Errorf("%w: type %d: %d bytes", ErrMessage, typ, len(p))
	}
	var v any
	switch typ {
	case MsgReport:
		v = &reportMsg{}
	case MsgSync:
		v = &syncMsg{}
	case MsgOrder:
		v = &orderMsg{}
	case MsgState:
		v = &stateMsg{}
	case MsgConfig:
		v = &configMsg{}
	case MsgRecords:
		v = &recordsMsg{}
	case MsgNote:
		v = &recordsMsg{}
	case MsgFetch:
		v = &fetchMsg{}
	case MsgReplica:
		v = &replicaMsg{}
	case MsgRequest:
		v = &requestMsg{}
	case MsgReply:
		v = &replyMsg{}
	case MsgCheck:
		v = &checkMsg{}
	case MsgChecked:
		v = &checkedMsg{}
	default:
		return nil, 0, fmt.Errorf("%w: unknown type %d", ErrMessage, typ)
	}
	if err := json.Unmarshal(p, v); err != nil {
		return nil, 0, fmt.Errorf("%w: type %d: %v", ErrMessage, typ, err)
	}
	var e envelope
	_ = json.Unmarshal(p, &e)
	switch m := v.(type) {
	case *stateMsg:
		if m.State == nil {
			return nil, 0, fmt.Errorf("%w: state message without a state", ErrMessage)
		}
	case *configMsg:
		if m.Config == nil {
			return nil, 0, fmt.Errorf("%w: configuration message without a configuration", ErrMessage)
		}
	case *requestMsg:
		if m.Request == nil {
			return nil, 0, fmt.Errorf("%w: request message without a request", ErrMessage)
		}
	case *checkMsg:
		if m.Config == nil {
			return nil, 0, fmt.Errorf("%w: check message without a configuration", ErrMessage)
		}
	}
	return v, e.Seq, nil
}
