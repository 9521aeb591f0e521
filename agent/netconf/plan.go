package netconf

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/rfsbuild/rfs/agentconf"
)

// Modes, as agentconf.IfaceStatus.Mode names them.
const (
	modeDHCP      = "dhcp"
	modeStatic    = "static"
	modeUnmanaged = "unmanaged"
)

// plan is what the job does with one interface.
type plan struct {
	mode    string
	address netip.Prefix // static
	gateway netip.Addr   // static; invalid: no default route
	dns     []netip.Addr // static
}

// linkInfo is what the interface filter needs to know about a link.
type linkInfo struct {
	name     string
	kind     string // netlink's Link.Type(): "device", "veth", "bridge", ...
	loopback bool
	ether    bool // Ethernet hardware address (EncapType "ether")
	wireless bool
}

// wired reports whether the default DHCP applies to a link: a physical
// Ethernet device (netlink kind "device": virtio-net, smsc95xx, lan78xx,
// GENET, macb, cdc_ether all are), not loopback, not wireless. Virtual
// links (veth, bridge, bond, vlan, tun, wireguard) are someone's
// deliberate construction: the job leaves them alone unless listed in
// Network.Interfaces by name.
func wired(l linkInfo) bool {
	return l.kind == "device" && !l.loopback && l.ether && !l.wireless
}

// isWireless reports whether sysfs marks a link as 802.11.
func isWireless(sysfsNet, name string) bool {
	for _, f := range []string{"wireless", "phy80211"} {
		if _, err := os.Stat(filepath.Join(sysfsNet, name, f)); err == nil {
			return true
		}
	}
	return false
}

// choose picks the plan for a link: its own entry in Interfaces first,
// then the default DHCP for wired links, else unmanaged. A malformed
// entry gives an error (the build checks them; the device must not trust
// that) and the interface stays unmanaged.
func choose(n agentconf.Network, l linkInfo) (plan, error) {
	if n.Off || l.loopback {
		return plan{mode: modeUnmanaged}, nil
	}
	for _, c := range n.Interfaces {
		if c.Name == l.name {
			p, err := parseInterface(c)
			if err != nil {
				return plan{mode: modeUnmanaged}, err
			}
			return p, nil
		}
	}
	if n.DHCP && wired(l) {
		return plan{mode: modeDHCP}, nil
	}
	return plan{mode: modeUnmanaged}, nil
}

// maxStaticDNS bounds one interface's name servers.
const maxStaticDNS = 8

func parseInterface(c agentconf.Interface) (plan, error) {
	if c.Address == "" {
		return plan{mode: modeDHCP}, nil
	}
	p := plan{mode: modeStatic}
	pfx, err := netip.ParsePrefix(c.Address)
	if err != nil {
		return p, fmt.Errorf("%s: address %q: %w", c.Name, c.Address, err)
	}
	if !usable(pfx.Addr()) {
		return p, fmt.Errorf("%s: address %q: not a unicast address", c.Name, c.Address)
	}
	p.address = pfx
	if c.Gateway != "" {
		if p.gateway, err = netip.ParseAddr(c.Gateway); err != nil || !usable(p.gateway) {
			return p, fmt.Errorf("%s: gateway %q: not a unicast address", c.Name, c.Gateway)
		}
	}
	if len(c.DNS) > maxStaticDNS {
		return p, fmt.Errorf("%s: %d DNS servers, at most %d", c.Name, len(c.DNS), maxStaticDNS)
	}
	for _, s := range c.DNS {
		a, err := netip.ParseAddr(s)
		if err != nil || !usable(a) {
			return p, fmt.Errorf("%s: DNS server %q: not a unicast address", c.Name, s)
		}
		p.dns = append(p.dns, a)
	}
	return p, nil
}

// usable reports whether an address can be a host's, a gateway's or a
// name server's: unicast, not unspecified, not IPv4 broadcast.
func usable(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
		return false
	}
	return a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
