package config

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"o2go/internal/base"
)

// ignoreLines compares configurations without the source lines Parse keeps.
var ignoreLines = cmp.Options{cmpopts.IgnoreUnexported(Cluster{}, Node{}, Heartbeat{}), cmpopts.EquateComparable(netip.Addr{})}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestParseWebcluster(t *testing.T) {
	// testdata/o2cb-webcluster.conf was written by o2cb 1.8.7 (see
	// TestRealO2CBWritesWhatWeWrite, which remakes it).
	data, err := os.ReadFile("testdata/o2cb-webcluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("cluster.conf", data)
	if err != nil {
		t.Fatal(err)
	}
	want := &ClusterConf{Clusters: []Cluster{{
		Name:          "webcluster",
		HeartbeatMode: HeartbeatGlobal,
		Nodes: []Node{
			{Name: "node7", Number: 7, Addr: addr("192.168.0.107"), Port: 7777},
			{Name: "node6", Number: 0, Addr: addr("192.168.0.106"), Port: 7777},
			{Name: "node1", Number: 1, Addr: addr("192.168.0.101"), Port: 7778},
		},
		Heartbeats: []Heartbeat{{Region: "77D95EF51C0149D2823674FCC162CF8B"}},
	}}}
	if d := cmp.Diff(want, c, ignoreLines); d != "" {
		t.Fatalf("parsed config differs (-want +got):\n%s", d)
	}
	if got := string(c.Format()); got != string(data) {
		t.Fatalf("Format does not reproduce o2cb's file:\n%s\nwant:\n%s", got, data)
	}
}

func TestParseAcceptsWhatJconfigAccepts(t *testing.T) {
	// Hand-written files: any attribute order, stanzas in any order,
	// spaces for indent, column-0 comments (also inside a stanza), extra
	// blank lines, whitespace around '=', trailing blanks, no final newline,
	// heartbeat_mode in capitals or absent.
	in := "# two clusters\n\n\n" +
		"node:\n" +
		"    name = b1\n" +
		"\tcluster=beta\n" +
		"# comment inside a stanza does not end it\n" +
		"\tnumber   =   3  \n" +
		"\tip_address = 10.0.1.1\n" +
		"\tip_port = 7000\n" +
		"\n" +
		"cluster:   \n" +
		"\tnode_count = 1\n" +
		"\tname = beta\n" +
		"\theartbeat_mode = GLOBAL\n" +
		" \t \n" +
		"cluster:\n" +
		"\tname = alpha\n" +
		"\tnode_count = 0\n" +
		"\n" +
		"heartbeat:\n" +
		"\tregion = 0123456789abcdef0123456789ABCDEF\n" +
		"\tcluster = beta"
	c, err := Parse("cluster.conf", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &ClusterConf{Clusters: []Cluster{
		{
			Name: "beta", HeartbeatMode: HeartbeatGlobal,
			Nodes:      []Node{{Name: "b1", Number: 3, Addr: addr("10.0.1.1"), Port: 7000}},
			Heartbeats: []Heartbeat{{Region: "0123456789abcdef0123456789ABCDEF"}},
		},
		{Name: "alpha", HeartbeatMode: HeartbeatLocal},
	}}
	if d := cmp.Diff(want, c, ignoreLines); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	// Format is canonical and stable.
	out := c.Format()
	c2, err := Parse("formatted", out)
	if err != nil {
		t.Fatalf("our output does not parse: %v\n%s", err, out)
	}
	if d := cmp.Diff(c, c2, ignoreLines); d != "" {
		t.Fatalf("round trip changed the config (-first +second):\n%s", d)
	}
	if string(c2.Format()) != string(out) {
		t.Fatal("Format is not stable")
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# nothing\n"} {
		c, err := Parse("cluster.conf", []byte(in))
		if err != nil || len(c.Clusters) != 0 {
			t.Errorf("Parse(%q) = %+v, %v; want no clusters", in, c, err)
		}
	}
	if got := (&ClusterConf{}).Format(); len(got) != 0 {
		t.Errorf("empty config formats as %q, want an empty file like o2cb's", got)
	}
}

const goodNode = "node:\n\tname = n0\n\tcluster = c\n\tnumber = 0\n\tip_address = 10.0.0.1\n\tip_port = 7777\n\n"
const goodCluster = "cluster:\n\tname = c\n\tnode_count = 1\n\n"

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // each must appear in the error
	}{
		{"crlf", "cluster:\r\n\tname = c\r\n", []string{"cluster.conf:1: carriage return"}},
		{"nul", "cluster:\n\tname = c\x00\n", []string{"cluster.conf:2: NUL"}},
		{"attribute after blank line", "cluster:\n\tname = c\n\n\tnode_count = 0\n", []string{"cluster.conf:4: attribute 'node_count' is not in a stanza"}},
		{"attribute first", "\tname = c\n", []string{"cluster.conf:1: attribute 'name' is not in a stanza"}},
		{"indented comment", "cluster:\n\t# hi\n", []string{"cluster.conf:2: comment does not start in the first column"}},
		{"space before colon", "cluster :\n", []string{"cluster.conf:1: invalid character ' ' after stanza name 'cluster'"}},
		{"no colon", "cluster\n", []string{"cluster.conf:1: stanza name 'cluster' lacks ':'"}},
		{"text after colon", "cluster: x\n", []string{"cluster.conf:1: text after 'cluster:'"}},
		{"bad start", "-cluster:\n", []string{"cluster.conf:1: invalid character '-' at the start"}},
		{"no equals", "cluster:\n\tname c\n", []string{"cluster.conf:2: expected '=' after attribute name 'name'"}},
		{"continuation", "cluster:\n\tname = c\\\n", []string{"cluster.conf:2: value of 'name' ends in a backslash"}},
		{"duplicate key", "cluster:\n\tname = c\n\tname = d\n", []string{"cluster.conf:3: 'name' is set twice in this cluster stanza (first on line 2)"}},
		{"unknown stanza", goodCluster + goodNode + "o2go:\n\tfence = panic\n", []string{"cluster.conf:12: unknown stanza 'o2go:'", "sysconfig"}},
		{"unknown key", "cluster:\n\tname = c\n\tnode_count = 0\n\theartbeat_mod = global\n", []string{"cluster.conf:4: unknown attribute 'heartbeat_mod' in cluster stanza"}},
		{"no node_count", "cluster:\n\tname = c\n", []string{"cluster.conf:1: cluster stanza lacks 'node_count'"}},
		{"no cluster name", "cluster:\n\tnode_count = 0\n", []string{"cluster.conf:1: cluster stanza lacks 'name'"}},
		{"bad cluster name", "cluster:\n\tname = my-cluster\n\tnode_count = 0\n", []string{"cluster.conf:1: cluster name 'my-cluster' has '-'"}},
		{"long cluster name", "cluster:\n\tname = abcdefghijklmnopq\n\tnode_count = 0\n", []string{"longer than 16"}},
		{"bad mode", "cluster:\n\tname = c\n\tnode_count = 0\n\theartbeat_mode = disk\n", []string{"cluster.conf:4: heartbeat mode 'disk' is neither 'local' nor 'global'"}},
		{"node_count mismatch", "cluster:\n\tname = c\n\tnode_count = 2\n\n" + goodNode, []string{"cluster.conf:3: cluster 'c' has node_count = 2 but 1 node stanzas; set node_count = 1"}},
		{"node_count not number", "cluster:\n\tname = c\n\tnode_count = two\n", []string{"cluster.conf:3: node_count: 'two' is not a decimal number"}},
		{"node lacks number", goodCluster + strings.Replace(goodNode, "\tnumber = 0\n", "", 1), []string{"cluster.conf:5: node stanza lacks 'number'"}},
		{"node lacks cluster", goodCluster + strings.Replace(goodNode, "\tcluster = c\n", "", 1), []string{"cluster.conf:5: node stanza lacks 'cluster'"}},
		{"node of unknown cluster", goodCluster + strings.Replace(goodNode, "cluster = c", "cluster = d", 1), []string{"cluster.conf:7: node stanza names cluster 'd', which has no cluster: stanza"}},
		{"node number too big", goodCluster + strings.Replace(goodNode, "number = 0", "number = 255", 1), []string{"cluster.conf:8: number: 255 is out of range 0..254"}},
		{"node number negative", goodCluster + strings.Replace(goodNode, "number = 0", "number = -1", 1), []string{"cluster.conf:8: number: '-1' is not a decimal number"}},
		{"port zero", goodCluster + strings.Replace(goodNode, "ip_port = 7777", "ip_port = 0", 1), []string{"cluster.conf:10: ip_port: 0 is out of range 1..65534"}},
		{"port 65535", goodCluster + strings.Replace(goodNode, "ip_port = 7777", "ip_port = 65535", 1), []string{"cluster.conf:10: ip_port: 65535 is out of range 1..65534"}},
		{"ipv6", goodCluster + strings.Replace(goodNode, "10.0.0.1", "::1", 1), []string{"cluster.conf:9: ip_address: '::1' is not an IPv4 address"}},
		{"short ip", goodCluster + strings.Replace(goodNode, "10.0.0.1", "10.0.1", 1), []string{"cluster.conf:9: ip_address: '10.0.1' is not an IPv4 address"}},
		{"leading zero ip", goodCluster + strings.Replace(goodNode, "10.0.0.1", "10.0.0.01", 1), []string{"cluster.conf:9: ip_address"}},
		{"unspecified ip", goodCluster + strings.Replace(goodNode, "10.0.0.1", "0.0.0.0", 1), []string{"cluster.conf:9: ip_address: 0.0.0.0 is not an address"}},
		{"multicast ip", goodCluster + strings.Replace(goodNode, "10.0.0.1", "224.0.0.1", 1), []string{"multicast"}},
		{"bad node name", goodCluster + strings.Replace(goodNode, "name = n0", "name = n/0", 1), []string{"cluster.conf:5: cluster 'c': node name 'n/0' has '/'"}},
		{"duplicate node name", "cluster:\n\tname = c\n\tnode_count = 2\n\n" + goodNode + strings.NewReplacer("number = 0", "number = 1", "10.0.0.1", "10.0.0.2").Replace(goodNode),
			[]string{"cluster.conf:12: cluster 'c': node name 'n0' is used twice (first on line 5)"}},
		{"duplicate node number", "cluster:\n\tname = c\n\tnode_count = 2\n\n" + goodNode + strings.NewReplacer("n0", "n1", "10.0.0.1", "10.0.0.2").Replace(goodNode),
			[]string{"cluster.conf:12: cluster 'c': node 'n1' has number 0, already used by node 'n0' (line 5)"}},
		{"duplicate address", "cluster:\n\tname = c\n\tnode_count = 2\n\n" + goodNode + strings.NewReplacer("n0", "n1", "number = 0", "number = 1").Replace(goodNode),
			[]string{"cluster.conf:12: cluster 'c': node 'n1' has address 10.0.0.1:7777, already used by node 'n0' (line 5)"}},
		{"duplicate cluster", goodCluster + goodNode + "cluster:\n\tname = c\n\tnode_count = 1\n", []string{"cluster.conf:12: cluster 'c' is defined twice (first on line 1)"}},
		{"bad region", goodCluster + goodNode + "heartbeat:\n\tcluster = c\n\tregion = 1234\n", []string{"cluster.conf:14: cluster 'c': region '1234' is not a volume UUID of 32 hex digits"}},
		{"region lacking", goodCluster + goodNode + "heartbeat:\n\tcluster = c\n", []string{"cluster.conf:12: heartbeat stanza lacks 'region'"}},
		{"duplicate region", goodCluster + goodNode +
			"heartbeat:\n\tcluster = c\n\tregion = 0123456789ABCDEF0123456789ABCDEF\n\n" +
			"heartbeat:\n\tcluster = c\n\tregion = 0123456789abcdef0123456789abcdef\n",
			[]string{"cluster.conf:18: cluster 'c': heartbeat region 0123456789abcdef0123456789abcdef is listed twice (first on line 14)"}},
		{"several problems, all reported in line order", "cluster:\n\tname = c\n\tnode_count = 1\n\n" +
			strings.NewReplacer("number = 0", "number = 999", "10.0.0.1", "1.2.3").Replace(goodNode),
			[]string{"cluster.conf:8: number: 999 is out of range 0..254\ncluster.conf:9: ip_address: '1.2.3'"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("cluster.conf", []byte(tc.in))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.in)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.File != "cluster.conf" || pe.Line == 0 {
				t.Errorf("error %v is not a located ParseError", err)
			}
		})
	}
}

func TestParseManyProblemsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("cluster:\n\tname = c\n\tnode_count = 100\n\n")
	for i := 0; i < 100; i++ {
		b.WriteString("node:\n\tname = n\n\tcluster = c\n\tnumber = 1\n\tip_address = 10.0.0.1\n\tip_port = 1\n\n")
	}
	_, err := Parse("cluster.conf", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "more problems") {
		t.Fatalf("want a bounded list of problems, got %v", err)
	}
	if n := strings.Count(err.Error(), "\n"); n > maxReported {
		t.Fatalf("%d lines of errors", n)
	}
}

func TestValidateInMemory(t *testing.T) {
	good := func() *ClusterConf {
		return &ClusterConf{Clusters: []Cluster{{Name: "c", HeartbeatMode: HeartbeatLocal,
			Nodes: []Node{{Name: "a", Number: 0, Addr: addr("10.0.0.1"), Port: 7777}}}}}
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(c *ClusterConf)
		want   string
	}{
		{"mode", func(c *ClusterConf) { c.Clusters[0].HeartbeatMode = "Global" }, "heartbeat_mode 'Global'"},
		{"empty mode", func(c *ClusterConf) { c.Clusters[0].HeartbeatMode = "" }, "heartbeat_mode ''"},
		{"name", func(c *ClusterConf) { c.Clusters[0].Name = "" }, "cluster name is empty"},
		{"node number", func(c *ClusterConf) { c.Clusters[0].Nodes[0].Number = base.InvalidNode }, "number 255 is out of range 0..254"},
		{"no address", func(c *ClusterConf) { c.Clusters[0].Nodes[0].Addr = netip.Addr{} }, "is not an IPv4 address"},
		{"ipv6", func(c *ClusterConf) { c.Clusters[0].Nodes[0].Addr = addr("::1") }, "is not an IPv4 address"},
		{"port", func(c *ClusterConf) { c.Clusters[0].Nodes[0].Port = 0 }, "ip_port 0 is out of range 1..65534"},
		{"port max", func(c *ClusterConf) { c.Clusters[0].Nodes[0].Port = 65535 }, "ip_port 65535"},
		{"region", func(c *ClusterConf) { c.Clusters[0].Heartbeats = []Heartbeat{{Region: "x"}} }, "region 'x' is not a volume UUID"},
		{"too many regions", func(c *ClusterConf) {
			for i := 0; i <= MaxHeartbeatRegions; i++ {
				c.Clusters[0].Heartbeats = append(c.Clusters[0].Heartbeats, Heartbeat{Region: strings.Repeat("0", 30) + string("0123456789ABCDEF"[i/16]) + string("0123456789ABCDEF"[i%16])})
			}
		}, "more than 32 heartbeat regions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			if err := c.Save(t.TempDir() + "/cluster.conf"); err == nil {
				t.Fatal("Save wrote an invalid configuration")
			}
		})
	}
}

func TestEditLikeO2CB(t *testing.T) {
	c := &ClusterConf{}
	cl, err := c.AddCluster("web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddCluster("web"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate cluster: %v", err)
	}
	for _, bad := range []string{"", "web-1", "abcdefghijklmnopq"} {
		if _, err := c.AddCluster(bad); err == nil {
			t.Errorf("AddCluster(%q) accepted", bad)
		}
	}
	resolve := func(host string) (netip.Addr, error) {
		if host == "dns" {
			return addr("10.9.9.9"), nil
		}
		return netip.Addr{}, errors.New("no such host")
	}
	add := func(spec NodeSpec) (Node, error) { return cl.AddNode(spec, resolve) }
	n, err := add(NodeSpec{Name: "a", IP: "10.0.0.1", Port: Auto, Number: 7})
	if err != nil || n.Number != 7 || n.Port != DefaultPort {
		t.Fatalf("add a: %+v %v", n, err)
	}
	n, err = add(NodeSpec{Name: " b ", IP: "10.0.0.2", Port: 7000, Number: Auto})
	if err != nil || n.Number != 0 || n.Port != 7000 || n.Name != "b" {
		t.Fatalf("add b (lowest free number, stripped name): %+v %v", n, err)
	}
	n, err = add(NodeSpec{Name: "dns", Port: Auto, Number: Auto})
	if err != nil || n.Addr != addr("10.9.9.9") || n.Number != 1 {
		t.Fatalf("add dns (resolved): %+v %v", n, err)
	}
	for _, tc := range []struct {
		spec NodeSpec
		want string
	}{
		{NodeSpec{Name: "a", IP: "10.0.0.9", Port: Auto, Number: Auto}, "node 'a' already exists"},
		{NodeSpec{Name: "x", IP: "10.0.0.9", Port: Auto, Number: 7}, "node number 7 is in use by node 'a'"},
		{NodeSpec{Name: "x", IP: "10.0.0.9", Port: Auto, Number: 255}, "node number 255 is out of range 0..254"},
		{NodeSpec{Name: "x", IP: "10.0.0.9", Port: Auto, Number: -5}, "out of range"},
		{NodeSpec{Name: "x", IP: "10.0.0.9", Port: 0, Number: Auto}, "port 0 is out of range 1..65534"},
		{NodeSpec{Name: "x", IP: "10.0.0.9", Port: 70000, Number: Auto}, "port 70000 is out of range"},
		{NodeSpec{Name: "x", IP: "10.0.0.1", Port: Auto, Number: Auto}, "address 10.0.0.1:7777 is in use by node 'a'"},
		{NodeSpec{Name: "x", IP: "fe80::1", Port: Auto, Number: Auto}, "bad IP address"},
		{NodeSpec{Name: "nowhere", Port: Auto, Number: Auto}, "looking up the IP address of 'nowhere' (give one with --ip): no such host"},
		{NodeSpec{Name: "", IP: "10.0.0.9", Port: Auto, Number: Auto}, "node name is empty"},
		{NodeSpec{Name: "a b", IP: "10.0.0.9", Port: Auto, Number: Auto}, "node name 'a b' has ' '"},
	} {
		if _, err := add(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddNode(%+v) = %v, want %q", tc.spec, err, tc.want)
		}
	}
	if _, err := cl.AddNode(NodeSpec{Name: "y", Port: Auto, Number: Auto}, nil); err == nil {
		t.Error("AddNode without address or resolver accepted")
	}
	// Same address on another port is allowed (several o2go nodes per host).
	if _, err := add(NodeSpec{Name: "a2", IP: "10.0.0.1", Port: 7778, Number: Auto}); err != nil {
		t.Fatal(err)
	}
	if err := cl.RemoveNode("b"); err != nil {
		t.Fatal(err)
	}
	if n, err := add(NodeSpec{Name: "c", IP: "10.0.0.3", Port: Auto, Number: Auto}); err != nil || n.Number != 0 {
		t.Fatalf("number 0 is free again after removing b: %+v %v", n, err)
	}
	if err := cl.RemoveNode("b"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "unknown node 'b' in cluster 'web'") {
		t.Fatalf("remove unknown node: %v", err)
	}

	r, err := cl.AddHeartbeat("77d95ef5-1c01-49d2-8236-74fcc162cf8b")
	if err != nil || r != "77D95EF51C0149D2823674FCC162CF8B" {
		t.Fatalf("dashed UUID: %q %v", r, err)
	}
	if _, err := cl.AddHeartbeat("77D95EF51C0149D2823674FCC162CF8B"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate region: %v", err)
	}
	if _, err := cl.AddHeartbeat("/dev/sdb1"); err == nil || !strings.Contains(err.Error(), "blkid") {
		t.Fatalf("device form: %v", err)
	}
	if err := cl.SetHeartbeatMode("global"); err != nil || cl.HeartbeatMode != HeartbeatGlobal {
		t.Fatal(err)
	}
	if err := cl.SetHeartbeatMode("both"); err == nil {
		t.Fatal("heartbeat mode 'both' accepted")
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("edited config invalid: %v", err)
	}
	if err := cl.RemoveHeartbeat("77d95ef51c0149d2823674fcc162cf8b"); err != nil {
		t.Fatal(err)
	}
	if err := cl.RemoveHeartbeat("77d95ef51c0149d2823674fcc162cf8b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove unknown region: %v", err)
	}
	if err := c.RemoveCluster("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "configured: web") {
		t.Fatalf("remove unknown cluster: %v", err)
	}
	if err := c.RemoveCluster("web"); err != nil || len(c.Clusters) != 0 {
		t.Fatal(err)
	}
}

func TestClusterFull(t *testing.T) {
	cl := &Cluster{Name: "c", HeartbeatMode: HeartbeatLocal}
	for i := 0; i < base.MaxNodes; i++ {
		ip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if _, err := cl.AddNode(NodeSpec{Name: "n" + ip.String(), IP: ip.String(), Port: Auto, Number: Auto}, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err := cl.AddNode(NodeSpec{Name: "last", IP: "10.1.0.1", Port: Auto, Number: Auto}, nil)
	if err == nil || !strings.Contains(err.Error(), "is full") {
		t.Fatalf("full cluster: %v", err)
	}
}

func TestListingsAndJSON(t *testing.T) {
	cl := Cluster{Name: "a", HeartbeatMode: HeartbeatGlobal,
		Nodes:      []Node{{Name: "n1", Number: 3, Addr: addr("10.0.0.1"), Port: 7777}},
		Heartbeats: []Heartbeat{{Region: "1123456789ABCDEF0123456789ABCDEF"}}}
	// Expected texts are o2cb 1.8.7's output for the same cluster
	// (TestRealO2CBListings compares with the tool itself).
	wantOneline := "heartbeat: 1123456789ABCDEF0123456789ABCDEF a\nnode: 3 n1 10.0.0.1:7777 a\ncluster: 1 global a\n"
	if got := cl.List(true); got != wantOneline {
		t.Errorf("List(oneline) =\n%s\nwant\n%s", got, wantOneline)
	}
	wantNodes := "node:\n\tnumber = 3\n\tname = n1\n\tip_address = 10.0.0.1\n\tip_port = 7777\n\tcluster = a\n\n"
	if got := cl.ListNodes(false); got != wantNodes {
		t.Errorf("ListNodes =\n%q\nwant\n%q", got, wantNodes)
	}
	b, err := json.Marshal(cl)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"a","heartbeat_mode":"global","node_count":1,"nodes":[{"name":"n1","number":3,"ip_address":"10.0.0.1","ip_port":7777}],"heartbeats":[{"region":"1123456789ABCDEF0123456789ABCDEF"}]}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
	b, _ = json.Marshal(Cluster{Name: "e", HeartbeatMode: HeartbeatLocal})
	if !strings.Contains(string(b), `"nodes":[],"heartbeats":[]`) {
		t.Errorf("empty lists are not []: %s", b)
	}
}

func TestParseRegion(t *testing.T) {
	for in, want := range map[string]string{
		"77D95EF51C0149D2823674FCC162CF8B":     "77D95EF51C0149D2823674FCC162CF8B",
		"77d95ef51c0149d2823674fcc162cf8b":     "77D95EF51C0149D2823674FCC162CF8B",
		"77d95ef5-1c01-49d2-8236-74fcc162cf8b": "77D95EF51C0149D2823674FCC162CF8B",
		"77d95ef5-1c01-49d2-8236-74fcc162cf8":  "",
		"77d95ef51c0149d2823674fcc162cf8g":     "",
		"77d95ef5-1c0149d2-8236-74fcc162cf8b":  "",
		"":                                     "",
	} {
		got, err := ParseRegion(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("ParseRegion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
