package ha

import (
	"errors"
	"strings"
	"testing"
)

func topo3() Topology {
	return Topology{Nodes: []TopoNode{{"n1", 1}, {"n2", 2}, {"n3", 3}}}
}

func goodConfig() *Config {
	return &Config{
		Networks: []Network{{Name: "pub", Interfaces: []string{"eth0", "eth1"}}},
		Groups: []Group{
			{Name: "db", Nodes: []string{"n1", "n2"}, Startup: StartupHome, Resources: []Resource{
				{Name: "db-ip", Type: TypeIP, Address: "10.0.0.10/24", Network: "pub"},
				{Name: "db-fs", Type: TypeFS, Device: "/dev/sdb", Mountpoint: "/srv/db", FSType: "ext4"},
				{Name: "db-app", Type: TypeApp, StartScript: "/etc/ha/db start", StopScript: "/etc/ha/db-stop", MonitorScript: "/etc/ha/db-mon"},
			}},
			{Name: "web", Nodes: []string{"n2", "n3", "n1"}, Parents: []string{"db"}, Resources: []Resource{
				{Name: "web-ip", Type: TypeIP, Address: "10.0.0.11/24", Interface: "eth0"},
				{Name: "web-srv", Type: TypeProcess, Command: []string{"/usr/bin/websrv", "-p", "80"}},
			}},
			{Name: "agents", Nodes: []string{"n1", "n2", "n3"}, Startup: StartupAll, Resources: []Resource{
				{Name: "mon", Type: TypeOCF, Agent: "heartbeat:Dummy", Params: map[string]string{"state": "/run/x"}},
				{Name: "shared-fs", Type: TypeFS, Device: "UUID=0123456789ABCDEF0123456789ABCDEF", Mountpoint: "/srv/all", FSType: "o2go", Options: "noatime"},
			}},
		},
		Events: []EventScripts{{Event: EvNodeDown, Pre: "/etc/ha/pre", Post: "/etc/ha/post", Recovery: "/etc/ha/rec", Retries: 2}},
	}
}

func TestValidateAcceptsAGoodConfig(t *testing.T) {
	r, err := Validate(goodConfig(), topo3())
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, g := range r.Groups {
		order = append(order, g.Name)
	}
	// Parents before children, otherwise by name.
	if got := strings.Join(order, ","); got != "agents,db,web" {
		t.Errorf("placement order %s", got)
	}
	db := r.Group("db")
	if db.Fallback != FallbackHigher || db.Fallover != FalloverNext {
		t.Errorf("defaults for a home group: fallback %q fallover %q", db.Fallback, db.Fallover)
	}
	if web := r.Group("web"); web.Startup != StartupFirst || web.Fallback != FallbackNever {
		t.Errorf("defaults: startup %q fallback %q", web.Startup, web.Fallback)
	}
	if got := r.Group("agents").Fallover; got != FalloverOffline {
		t.Errorf("concurrent group fallover %q", got)
	}
	// Nodes validate the resolved configuration the coordinator commits:
	// it must pass as it is, and resolve to itself.
	again, err := Validate(r.Config, topo3())
	if err != nil {
		t.Fatalf("the resolved configuration is refused: %v", err)
	}
	if again.Config.Digest() != r.Config.Digest() {
		t.Errorf("resolving twice changes the configuration:\n%s\n%s", r.Config.Marshal(), again.Config.Marshal())
	}
}

// Acceptance 3: bad configurations are refused with a message that says
// what to fix.
func TestValidateRefusesBadConfigs(t *testing.T) {
	cases := []struct {
		name string
		edit func(c *Config)
		want []string // fragments of the one problem expected
	}{
		{"missing script path", func(c *Config) { c.Groups[0].Resources[2].StopScript = "" },
			[]string{"group db", "db-app", "stop is missing", "absolute path"}},
		{"relative script", func(c *Config) { c.Events[0].Pre = "pre.sh" },
			[]string{"event node_down", "pre script", "absolute path"}},
		{"duplicate IP", func(c *Config) { c.Groups[1].Resources[0].Address = "10.0.0.10/24" },
			[]string{"web-ip", "10.0.0.10", "already the address of resource db-ip", "one resource"}},
		{"unknown node", func(c *Config) { c.Groups[1].Nodes = append(c.Groups[1].Nodes, "n9") },
			[]string{"group web", `"n9"`, "not a node of the cluster", "n1, n2, n3"}},
		{"dependency cycle", func(c *Config) { c.Groups[0].Parents = []string{"web"} },
			[]string{"dependency cycle", "db -> web -> db", "remove one"}},
		{"unknown parent", func(c *Config) { c.Groups[1].Parents = []string{"nosuch"} },
			[]string{"group web", "nosuch", "not defined"}},
		{"bad address", func(c *Config) { c.Groups[0].Resources[0].Address = "10.0.0.10" },
			[]string{"db-ip", "prefix length"}},
		{"unknown network", func(c *Config) { c.Groups[0].Resources[0].Network = "priv" },
			[]string{"network \"priv\" is not defined"}},
		{"bad policy", func(c *Config) { c.Groups[0].Fallback = "sometimes" },
			[]string{"fallback \"sometimes\"", "higher", "never"}},
		{"fallback of a concurrent group", func(c *Config) { c.Groups[2].Fallback = FallbackHigher },
			[]string{"group agents", "fallback does not apply to a concurrent group"}},
		{"duplicate group", func(c *Config) { c.Groups[2].Name = "db" },
			[]string{"group db is defined twice"}},
		{"shared mount point", func(c *Config) {
			c.Groups[1].Resources = append(c.Groups[1].Resources, Resource{Name: "web-fs", Type: TypeFS, Device: "/dev/sdc", Mountpoint: "/srv/db", FSType: "xfs"})
		}, []string{"mount point /srv/db", "db-fs", "web-fs"}},
		{"different node with a concurrent group", func(c *Config) { c.Groups[1].DifferentNode = []string{"agents"} },
			[]string{"concurrent group runs everywhere"}},
		{"local file system in a concurrent group", func(c *Config) {
			c.Groups[2].Resources = append(c.Groups[2].Resources, Resource{Name: "shared", Type: TypeFS, Device: "/dev/sdc", Mountpoint: "/srv/shared", FSType: "xfs"})
		}, []string{"group agents", `"shared"`, "every node at once", "xfs cannot", "clustered o2go volume"}},
		{"nocluster volume in a concurrent group", func(c *Config) {
			c.Groups[2].Resources = append(c.Groups[2].Resources, Resource{Name: "shared", Type: TypeFS, Device: "/dev/sdc", Mountpoint: "/srv/shared", FSType: "o2go", Options: "noatime,nocluster"})
		}, []string{"group agents", "nocluster mounts the volume on one node only", "drop nocluster"}},
		{"retries without recovery", func(c *Config) { c.Events[0].Recovery = "" },
			[]string{"retries 2 without a recovery script"}},
		{"unknown event", func(c *Config) { c.Events[0].Event = "node_sideways" },
			[]string{"node_sideways", "is not an event"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := goodConfig()
			tc.edit(c)
			before := string(c.Marshal())
			_, err := Validate(c, topo3())
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("want a ConfigError, got %v", err)
			}
			if len(ce.Problems) != 1 {
				t.Fatalf("want one problem, got %d: %v", len(ce.Problems), ce)
			}
			for _, w := range tc.want {
				if !strings.Contains(ce.Problems[0], w) {
					t.Errorf("%q lacks %q", ce.Problems[0], w)
				}
			}
			if string(c.Marshal()) != before {
				t.Error("Validate changed its input")
			}
		})
	}
}

func TestValidateCollectsEveryProblem(t *testing.T) {
	c := goodConfig()
	c.Groups[0].Nodes = []string{"x"}
	c.Groups[1].Resources[1].Command = nil
	_, err := Validate(c, topo3())
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("want two problems, got %v", err)
	}
}

func TestParseConfigRefusesUnknownKeys(t *testing.T) {
	_, err := ParseConfig([]byte(`{"groups":[{"name":"a","nodez":["n1"]}]}`))
	if err == nil || !strings.Contains(err.Error(), "nodez") {
		t.Fatalf("got %v", err)
	}
	c, err := ParseConfig(goodConfig().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if c.Digest() != goodConfig().Digest() {
		t.Error("a configuration does not survive its own encoding")
	}
}
