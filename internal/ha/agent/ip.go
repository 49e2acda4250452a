package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"o2go/internal/ha"
)

// ip adds, checks and removes a service address. It goes on the first
// healthy interface of its network on this node (or on its interface), and
// after it is added three gratuitous ARPs (a request and a reply each)
// tell the segment's hosts and switches where it now lives.
func (r *Runner) ip(ctx context.Context, kind ha.OpKind, res *ha.Resource) (ha.OpStatus, error) {
	pfx, err := netip.ParsePrefix(res.Address)
	if err != nil {
		return ha.OpFailed, fmt.Errorf("resource %s: address %q: %v", res.Name, res.Address, err)
	}
	cur, err := linkWithAddr(pfx.Addr())
	if err != nil {
		return ha.OpFailed, err
	}
	switch kind {
	case ha.OpMonitor:
		if cur == nil {
			return ha.OpNotRunning, nil
		}
		if !healthy(cur) {
			return ha.OpFailed, fmt.Errorf("%s is on %s, which is down", pfx.Addr(), cur.Attrs().Name)
		}
		return ha.OpOK, nil
	case ha.OpStop:
		if cur == nil {
			return ha.OpOK, nil
		}
		if err := netlink.AddrDel(cur, nlAddr(pfx)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return ha.OpFailed, fmt.Errorf("removing %s from %s: %w", pfx, cur.Attrs().Name, err)
		}
		return ha.OpOK, nil
	}
	name, err := r.interfaceFor(res)
	if err != nil {
		return ha.OpFailed, err
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return ha.OpFailed, fmt.Errorf("interface %s: %w", name, err)
	}
	if cur != nil && cur.Attrs().Index != link.Attrs().Index {
		if err := netlink.AddrDel(cur, nlAddr(pfx)); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return ha.OpFailed, fmt.Errorf("moving %s off %s: %w", pfx, cur.Attrs().Name, err)
		}
		cur = nil
	}
	if cur == nil {
		if err := netlink.AddrAdd(link, nlAddr(pfx)); err != nil && !errors.Is(err, syscall.EEXIST) {
			return ha.OpFailed, fmt.Errorf("adding %s to %s: %w", pfx, name, err)
		}
	}
	if pfx.Addr().Is4() {
		if err := GratuitousARP(link, pfx.Addr(), 3); err != nil {
			r.logf("ha: %s: gratuitous ARP on %s: %v", res.Name, name, err)
		}
	}
	return ha.OpOK, nil
}

func nlAddr(p netip.Prefix) *netlink.Addr {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}}
}

// interfaceFor picks the interface a service address goes on.
func (r *Runner) interfaceFor(res *ha.Resource) (string, error) {
	if res.Network == "" {
		return res.Interface, nil
	}
	n := r.config().Network(res.Network)
	if n == nil {
		return "", fmt.Errorf("resource %s: network %s is not in the configuration", res.Name, res.Network)
	}
	st := r.networkState(n)
	if !st.Up {
		return "", fmt.Errorf("network %s has no healthy interface on %s (interfaces: %v)", n.Name, r.Node, n.InterfacesOn(r.Node))
	}
	return st.Active, nil
}

func healthy(l netlink.Link) bool {
	a := l.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return false
	}
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
}

// linkWithAddr finds the interface that holds addr (nil: none).
func linkWithAddr(addr netip.Addr) (netlink.Link, error) {
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(nil, fam)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			return netlink.LinkByIndex(a.LinkIndex)
		}
	}
	return nil, nil
}

func (r *Runner) networkState(n *ha.Network) ha.NetState {
	for _, name := range n.InterfacesOn(r.Node) {
		if l, err := netlink.LinkByName(name); err == nil && healthy(l) {
			return ha.NetState{Up: true, Active: name}
		}
	}
	return ha.NetState{}
}

// Networks reports the health of every configured network on this node.
func (r *Runner) Networks() map[string]ha.NetState {
	out := map[string]ha.NetState{}
	cfg := r.config()
	for i := range cfg.Networks {
		out[cfg.Networks[i].Name] = r.networkState(&cfg.Networks[i])
	}
	return out
}

// GratuitousARP announces that addr is at link's hardware address: count
// ARP requests and replies whose sender and target are addr, broadcast.
func GratuitousARP(link netlink.Link, addr netip.Addr, count int) error {
	mac := link.Attrs().HardwareAddr
	if len(mac) != 6 {
		return fmt.Errorf("%s has no Ethernet address", link.Attrs().Name)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: link.Attrs().Index, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	ip := addr.As4()
	for i := 0; i < count; i++ {
		for _, op := range []uint16{1, 2} { // request, reply
			pkt := make([]byte, 28)
			binary.BigEndian.PutUint16(pkt[0:], 1)      // Ethernet
			binary.BigEndian.PutUint16(pkt[2:], 0x0800) // IPv4
			pkt[4], pkt[5] = 6, 4
			binary.BigEndian.PutUint16(pkt[6:], op)
			copy(pkt[8:], mac)
			copy(pkt[14:], ip[:])
			if op == 2 {
				copy(pkt[18:], mac)
			}
			copy(pkt[24:], ip[:])
			if err := unix.Sendto(fd, pkt, 0, to); err != nil {
				return fmt.Errorf("sending on %s: %w", link.Attrs().Name, err)
			}
		}
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
