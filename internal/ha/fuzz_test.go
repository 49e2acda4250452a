package ha

import (
	"errors"
	"testing"

	"o2go/internal/base"
)

// FuzzReceive: a hostile peer's message is an error or harmless, never a
// panic, on a coordinator and on a plain member.
func FuzzReceive(f *testing.F) {
	f.Add(uint16(MsgReport), []byte(`{"seq":1,"inc":7,"ready":true,"groups":[{"name":"db","want":true,"phase":"online"}]}`))
	f.Add(uint16(MsgOrder), []byte(`{"seq":1,"wants":{"db":true,"web":false},"manage":["db"]}`))
	f.Add(uint16(MsgConfig), goodConfigMsg())
	f.Add(uint16(MsgRecords), []byte(`{"seq":1,"records":[{"seq":5,"event":"node_up","phase":"start"}]}`))
	f.Add(uint16(MsgRequest), []byte(`{"seq":1,"id":3,"request":{"op":"move","group":"db","node":"n2","sticky":true}}`))
	f.Add(uint16(MsgState), []byte(`{"seq":1,"state":{"version":3,"groups":[{"name":"db","sticky":2,"prefer":255,"parked":255,"forced":255,"unmanaged":255}]}}`))
	f.Add(uint16(MsgFetch), []byte(`{"seq":1,"config":true,"state":true,"hist_from":1}`))
	// Every other type, so that each handler is reached from the start.
	f.Add(uint16(MsgSync), encode(syncMsg{Seq: 1}))
	f.Add(uint16(MsgNote), []byte(`{"seq":1,"records":[{"event":"resource_failed","phase":"start","group":"db","resource":"ip"}]}`))
	f.Add(uint16(MsgReplica), encode(replicaMsg{Seq: 1, Config: goodConfig(), State: &State{Version: 2}, Live: true,
		Records: []Record{{Seq: 1, Event: EvNodeUp, Phase: PhaseStart}}, More: true}))
	f.Add(uint16(MsgReply), []byte(`{"seq":1,"id":3,"err":"refused","value":{"group":"db"}}`))
	f.Add(uint16(MsgCheck), encode(checkMsg{Seq: 1, ID: 4, Config: goodConfig()}))
	f.Add(uint16(MsgChecked), encode(checkedMsg{Seq: 1, ID: 4, Problems: []string{"n2: /x does not exist"}, ConfigDigest: "ab", ConfigVer: 1}))
	f.Fuzz(func(t *testing.T, k uint16, p []byte) {
		// Every HA type, and one past them (unknown).
		typ := MsgFirst + k%(MsgLast-MsgFirst+2)
		for _, self := range []base.NodeID{1, 2} {
			n := New(NodeConfig{Self: self, Topo: topo3(), Incarnation: 1, Config: validConfig(t)})
			n.Membership(1, base.NodeMapOf(1, 2, 3))
			n.Ready()
			for _, from := range []base.NodeID{1, 3} {
				if err := n.Receive(from, typ, p); err != nil && !errors.Is(err, ErrMessage) {
					t.Fatalf("type %d: a refusal not of class ErrMessage: %v", typ, err)
				}
			}
			n.Tick(0, 0)
			n.Ready()
		}
	})
}

func validConfig(t *testing.T) *Config {
	r, err := Validate(goodConfig(), topo3())
	if err != nil {
		t.Fatal(err)
	}
	return r.Config
}

func goodConfigMsg() []byte { return encode(configMsg{Seq: 1, Config: goodConfig()}) }
