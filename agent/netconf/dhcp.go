package netconf

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/rfsbuild/rfs/agentconf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dhcpClient runs DHCPv4 on one interface while it has carrier. Lease
// times come from time.Now and keep its monotonic reading, so the clock
// job stepping the wall clock (1970 to today) does not expire a lease.
type dhcpClient struct {
	m   *iface
	cur *lease
	raw *nclient4.Lease
}

// runDHCP obtains and keeps a lease until ctx ends (carrier lost or job
// stopping). On carrier loss the lease's address, route and DNS go; when
// the job stops they stay, so a restarted agent does not cut the
// device's connections.
func (m *iface) runDHCP(ctx, jobCtx context.Context) {
	// The DHCP library draws its transaction ids by polling getrandom
	// without blocking until the kernel's random pool is ready, and
	// polling never readies it: early in a boot with no entropy source
	// (QEMU without virtio-rng, after a boot that made no host key) it
	// spins for ever. A blocking read makes the kernel gather jitter
	// entropy and returns within a second or so.
	rand.Read(make([]byte, 1))
	d := &dhcpClient{m: m}
	defer func() {
		if jobCtx.Err() == nil && d.cur != nil {
			d.drop()
		}
	}()
	for fails := 0; ctx.Err() == nil; {
		err := d.bind(ctx)
		if err == nil {
			fails = 0
			err = d.keep(ctx)
			if ctx.Err() != nil {
				return
			}
			d.drop()
			m.logf("%v; asking again", err)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		wait := backoff(fails)
		fails++
		msg := fmt.Sprintf("%v; retrying in %s", err, wait)
		m.logf("%s", msg)
		m.j.st.set(m.name, func(s *agentconf.IfaceStatus) { s.Error = msg })
		sleep(ctx, wait)
	}
}

// bind runs DISCOVER/OFFER/REQUEST/ACK and applies the lease.
func (d *dhcpClient) bind(ctx context.Context) error {
	cl, err := d.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	raw, err := cl.Request(ctx, d.modifiers(netip.Addr{})...)
	if err != nil {
		return fmt.Errorf("no DHCP lease: %w", err)
	}
	return d.accept(raw, start)
}

// keep renews the lease at T1, rebinds at T2 and returns at expiry (or on
// a NAK, or when ctx ends).
func (d *dhcpClient) keep(ctx context.Context) error {
	for ctx.Err() == nil {
		now := time.Now()
		l := d.cur
		switch {
		case now.Before(l.t1):
			sleep(ctx, l.t1.Sub(now))
		case now.Before(l.t2):
			if err := d.renew(ctx, false); err != nil {
				var nak *nclient4.ErrNak
				if errors.As(err, &nak) {
					return fmt.Errorf("DHCP server refused the renewal")
				}
				d.m.logf("renew: %v", err)
				sleep(ctx, retryIn(time.Now(), l.t2))
			}
		case now.Before(l.expires):
			if err := d.renew(ctx, true); err != nil {
				d.m.logf("rebind: %v", err)
				sleep(ctx, retryIn(time.Now(), l.expires))
			}
		default:
			return errNoLease
		}
	}
	return nil
}

// renew extends the lease with its server (rebind false) or with any
// server, asking for the same address (rebind true).
func (d *dhcpClient) renew(ctx context.Context, rebind bool) error {
	cl, err := d.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	var raw *nclient4.Lease
	if rebind {
		raw, err = cl.Request(ctx, d.modifiers(d.cur.addr.Addr())...)
	} else {
		raw, err = cl.Renew(ctx, d.raw, d.modifiers(netip.Addr{})...)
	}
	if err != nil {
		return err
	}
	return d.accept(raw, start)
}

// client opens a raw socket for one exchange: kept open, it would copy
// every IPv4 packet the interface receives into the agent.
func (d *dhcpClient) client() (*nclient4.Client, error) {
	cl, err := nclient4.New(d.m.name, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(2))
	if err != nil {
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	return cl, nil
}

func (d *dhcpClient) modifiers(want netip.Addr) []dhcpv4.Modifier {
	var mods []dhcpv4.Modifier
	if h := d.m.j.hostname(); h != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(h)))
	}
	if want.IsValid() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(want.AsSlice()))))
	}
	return mods
}

// accept checks an ACK and applies it: address (with the lease as its
// kernel lifetime), default route, DNS, status.
func (d *dhcpClient) accept(raw *nclient4.Lease, start time.Time) error {
	if raw == nil || raw.ACK == nil {
		return errors.New("DHCP: empty lease")
	}
	l, err := parseLease(raw.ACK, start, d.m.j.minLease())
	if err != nil {
		return fmt.Errorf("DHCP server %v: %w", raw.ACK.ServerIdentifier(), err)
	}
	m, h := d.m, d.m.j.h
	prev := d.cur
	if prev != nil && prev.addr != l.addr {
		d.drop()
		prev = nil
	}
	if err := addAddr(h, m.link, l.addr, time.Until(l.expires)); err != nil {
		return err
	}
	if l.router.IsValid() {
		r := defaultRoute(m.link, l.router, routeMetric(m.link.Attrs().Index, modeDHCP),
			netlink.RouteProtocol(unix.RTPROT_DHCP), !l.addr.Contains(l.router))
		if err := setRoute(h, r); err != nil {
			m.logf("%v", err)
		}
	}
	d.cur, d.raw = &l, raw
	m.j.st.setDNS(m.name, l.dns)
	m.j.st.set(m.name, func(s *agentconf.IfaceStatus) {
		s.Mode, s.Error = modeDHCP, ""
		s.Gateway = addrString(l.router)
		s.DHCPServer = addrString(l.server)
		s.LeaseExpiry = time.Now().Add(time.Until(l.expires)).UTC().Truncate(time.Second)
	})
	if prev == nil {
		m.logf("leased %s from %s for %s (gateway %s, dns %v)", l.addr, addrString(l.server),
			l.expires.Sub(l.start), addrString(l.router), l.dns)
	}
	return nil
}

// drop removes the current lease's address, route and DNS.
func (d *dhcpClient) drop() {
	l := d.cur
	if l == nil {
		return
	}
	m, h := d.m, d.m.j.h
	if l.router.IsValid() {
		r := defaultRoute(m.link, l.router, routeMetric(m.link.Attrs().Index, modeDHCP),
			netlink.RouteProtocol(unix.RTPROT_DHCP), false)
		if err := delRoute(h, r); err != nil {
			m.logf("%v", err)
		}
	}
	if err := delAddr(h, m.link, l.addr); err != nil {
		m.logf("%v", err)
	}
	d.cur, d.raw = nil, nil
	m.j.st.setDNS(m.name, nil)
	m.j.st.set(m.name, func(s *agentconf.IfaceStatus) {
		s.Gateway, s.DHCPServer, s.LeaseExpiry = "", "", time.Time{}
	})
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
