package agent

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"

	"o2go/internal/ha"
)

// Check runs the local checks of `o2go ha verify` (clverify) on this node:
// event scripts and the scripts, agents and commands of the groups that may
// run here exist and are executable, the networks' interfaces and named
// interfaces exist, and no service address is configured here while its
// group is not active here (someone else uses it). active lists the groups
// running on this node. Each problem says what to fix.
func (r *Runner) Check(cfg *ha.Config, active []string) []string {
	var p []string
	isActive := map[string]bool{}
	for _, g := range active {
		isActive[g] = true
	}
	exe := func(what, path string) {
		if path == "" {
			return
		}
		path = strings.Fields(path)[0]
		st, err := os.Stat(path)
		switch {
		case err != nil:
			p = append(p, fmt.Sprintf("%s %s does not exist here: install it on every node of the group", what, path))
		case !st.Mode().IsRegular():
			p = append(p, fmt.Sprintf("%s %s is not a regular file", what, path))
		case st.Mode().Perm()&0o111 == 0:
			p = append(p, fmt.Sprintf("%s %s is not executable: chmod +x it", what, path))
		}
	}
	for _, e := range cfg.Events {
		for _, s := range []struct{ what, path string }{{"pre", e.Pre}, {"post", e.Post}, {"notify", e.Notify}, {"recovery", e.Recovery}} {
			exe(fmt.Sprintf("event %s %s script", e.Event, s.what), s.path)
		}
	}
	iface := func(what, name string) {
		if _, err := netlink.LinkByName(name); err != nil {
			p = append(p, fmt.Sprintf("%s: interface %s does not exist here: create it or fix the name", what, name))
		}
	}
	for _, n := range cfg.Networks {
		for _, name := range n.InterfacesOn(r.Node) {
			iface("network "+n.Name, name)
		}
	}
	for _, g := range cfg.Groups {
		here := false
		for _, x := range g.Nodes {
			here = here || x == r.Node
		}
		for _, res := range g.Resources {
			where := fmt.Sprintf("group %s: resource %s", g.Name, res.Name)
			if res.Type == ha.TypeIP {
				if pfx, err := netip.ParsePrefix(res.Address); err == nil {
					if l, err := linkWithAddr(pfx.Addr()); err == nil && l != nil && !isActive[g.Name] {
						p = append(p, fmt.Sprintf("%s: address %s is already configured on %s while the group is not active here: remove it, or give the resource a free address",
							where, pfx.Addr(), l.Attrs().Name))
					}
				}
			}
			if !here {
				continue
			}
			switch res.Type {
			case ha.TypeApp:
				exe(where+": start script", res.StartScript)
				exe(where+": stop script", res.StopScript)
				exe(where+": monitor script", res.MonitorScript)
			case ha.TypeOCF:
				exe(where+": OCF agent", r.OCFPath(&res))
			case ha.TypeProcess:
				if len(res.Command) > 0 {
					exe(where+": command", res.Command[0])
				}
			case ha.TypeIP:
				if res.Interface != "" {
					iface(where, res.Interface)
				}
			case ha.TypeFS:
				if strings.HasPrefix(res.Device, "/") {
					if _, err := os.Stat(res.Device); err != nil {
						p = append(p, fmt.Sprintf("%s: device %s is not here: %v", where, res.Device, err))
					}
				}
				if res.FSType == "o2go" {
					exe(where+": the o2go binary", r.O2go)
				}
			}
		}
	}
	return p
}
