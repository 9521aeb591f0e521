package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeMetric is a default route's metric: one per interface, so two
// interfaces' default routes sit side by side instead of replacing each
// other; static routes win over leased ones.
func routeMetric(index int, mode string) int {
	if mode == modeStatic {
		return 50 + index
	}
	return 100 + index
}

// enableSLAAC lets the kernel take router advertisements and form its own
// IPv6 addresses on an interface. No IPv6 in the kernel: nothing to do.
func enableSLAAC(sysctlRoot, name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("interface name %q", name)
	}
	dir := filepath.Join(sysctlRoot, "net/ipv6/conf", name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, k := range []string{"accept_ra", "autoconf"} {
		if err := os.WriteFile(filepath.Join(dir, k), []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("ipv6 %s on %s: %w", k, name, err)
		}
	}
	return nil
}

// addAddr sets an address on a link; a lifetime (> 0) makes the kernel
// drop it by itself if the job ever stops renewing.
func addAddr(h *netlink.Handle, link netlink.Link, p netip.Prefix, life time.Duration) error {
	a := &netlink.Addr{IPNet: prefixNet(p)}
	if p.Addr().Is4() && p.Bits() < 31 {
		a.Broadcast = broadcast(p)
	}
	if life > 0 {
		secs := int(min(life, maxLease) / time.Second)
		a.ValidLft, a.PreferedLft = secs, secs
	}
	if err := h.AddrReplace(link, a); err != nil {
		return fmt.Errorf("address %s on %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

func delAddr(h *netlink.Handle, link netlink.Link, p netip.Prefix) error {
	err := h.AddrDel(link, &netlink.Addr{IPNet: prefixNet(p)})
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("remove %s from %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

// defaultRoute is one interface's default route via gw.
func defaultRoute(link netlink.Link, gw netip.Addr, metric int, proto netlink.RouteProtocol, onlink bool) *netlink.Route {
	r := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Gw:        net.IP(gw.AsSlice()),
		Priority:  metric,
		Protocol:  proto,
		Family:    netlink.FAMILY_V4,
	}
	if gw.Is6() {
		r.Family = netlink.FAMILY_V6
	}
	if onlink {
		r.Flags = int(netlink.FLAG_ONLINK)
	}
	return r
}

func setRoute(h *netlink.Handle, r *netlink.Route) error {
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("default route via %v: %w", r.Gw, err)
	}
	return nil
}

func delRoute(h *netlink.Handle, r *netlink.Route) error {
	err := h.RouteDel(r)
	if err != nil && !errors.Is(err, syscall.ESRCH) && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("remove default route via %v: %w", r.Gw, err)
	}
	return nil
}

// linkAddrs lists a link's addresses (IPv4 and IPv6, including SLAAC's)
// as ADDR/PREFIX.
func linkAddrs(h *netlink.Handle, link netlink.Link) []string {
	as, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range as {
		if a.IPNet != nil {
			out = append(out, a.IPNet.String())
		}
	}
	return out
}

// carrier reports whether a link is up with its lower layer up.
func carrier(l netlink.Link) bool {
	return l.Attrs().RawFlags&unix.IFF_UP != 0 && l.Attrs().RawFlags&unix.IFF_LOWER_UP != 0
}

func linkState(l netlink.Link) string {
	switch {
	case carrier(l):
		return "up"
	case l.Attrs().RawFlags&unix.IFF_UP != 0:
		return "no-carrier"
	}
	return "down"
}

func prefixNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

func broadcast(p netip.Prefix) net.IP {
	ip := p.Addr().As4()
	m := net.CIDRMask(p.Bits(), 32)
	for i := range ip {
		ip[i] |= ^m[i]
	}
	return net.IP(ip[:])
}
