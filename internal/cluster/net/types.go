package net

import "fmt"

// Message type ranges. Every message type a layer uses lies in its range, so
// that layers never collide and a node can tell which layer a stray message
// was for. The handler key (Header.Key) further separates users of one type,
// e.g. the DLM's domains.
const (
	// TypeStackFirst..TypeStackLast: the cluster stack itself (membership
	// views, health reports, evictions). Handled inside the node agent;
	// never registered by others.
	TypeStackFirst uint16 = 1
	TypeStackLast  uint16 = 99

	// TypeDLMFirst..TypeDLMLast: the distributed lock manager (internal/dlm).
	// o2dlm numbers its messages from 500 (DLM_MASTER_REQUEST_MSG) up; o2go
	// keeps the range so the DLM can follow o2dlm's numbering.
	TypeDLMFirst uint16 = 500
	TypeDLMLast  uint16 = 599

	// TypeFSFirst..TypeFSLast: the file system (lock glue, orphan scans).
	TypeFSFirst uint16 = 600
	TypeFSLast  uint16 = 699

	// TypeHAFirst..TypeHALast: the HA resource manager.
	TypeHAFirst uint16 = 700
	TypeHALast  uint16 = 799

	// TypeTestFirst..TypeTestLast: tests and tools; never used in production.
	TypeTestFirst uint16 = 60000
	TypeTestLast  uint16 = 65535
)

// The cluster stack's own message types (in TypeStackFirst..TypeStackLast).
const (
	TypeViewPropose uint16 = 1 // a leader proposes the next membership view
	TypeViewAccept  uint16 = 2 // a member accepts or refuses a proposal
	TypeViewCommit  uint16 = 3 // a leader commits a view (also sent to catch up)
	TypeNodeStatus  uint16 = 4 // every interval: view, links, disk health
	TypeEvict       uint16 = 5 // a leader tells a node to fence itself
	TypeCatchUp     uint16 = 6 // a node asks for committed views it missed
)

// Layer names the layer that owns a message type.
func Layer(typ uint16) string {
	switch {
	case typ >= TypeStackFirst && typ <= TypeStackLast:
		return "cluster stack"
	case typ >= TypeDLMFirst && typ <= TypeDLMLast:
		return "dlm"
	case typ >= TypeFSFirst && typ <= TypeFSLast:
		return "file system"
	case typ >= TypeHAFirst && typ <= TypeHALast:
		return "ha"
	case typ >= TypeTestFirst:
		return "test"
	}
	return fmt.Sprintf("unassigned type %d", typ)
}

// CheckUserType reports whether typ may be registered by a subscriber of the
// agent: any assigned range except the stack's own.
func CheckUserType(typ uint16) error {
	switch {
	case typ == 0:
		return fmt.Errorf("message type 0 is reserved")
	case typ <= TypeStackLast:
		return fmt.Errorf("message type %d is the cluster stack's own (1..%d)", typ, TypeStackLast)
	case typ >= TypeDLMFirst && typ <= TypeHALast, typ >= TypeTestFirst:
		return nil
	}
	return fmt.Errorf("message type %d is in no assigned range (dlm %d..%d, fs %d..%d, ha %d..%d, test %d..%d)",
		typ, TypeDLMFirst, TypeDLMLast, TypeFSFirst, TypeFSLast, TypeHAFirst, TypeHALast, TypeTestFirst, TypeTestLast)
}
