package ha

import (
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
	f.Fuzz(func(t *testing.T, typ uint16, p []byte) {
		for _, self := range []base.NodeID{1, 2} {
			n := New(NodeConfig{Self: self, Topo: topo3(), Incarnation: 1, Config: validConfig(t)})
			n.Membership(1, base.NodeMapOf(1, 2, 3))
			n.Ready()
			_ = n.Receive(1, typ, p)
			_ = n.Receive(3, typ, p)
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
