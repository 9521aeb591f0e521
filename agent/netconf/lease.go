package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Bounds on what a DHCP server may tell us. A lease shorter than
// minLease (Job's, normally defMinLease) would make the job spin; one longer than maxLease (or
// "infinite") is renewed as if it were maxLease, so a device still
// notices a changed network within days.
const (
	defMinLease = 60 * time.Second
	maxLease    = 30 * 24 * time.Hour
	defLease    = time.Hour // no lease-time option
	maxDNS      = 4         // per lease; resolvers read 3
	minPrefix   = 1
	defaultLen  = 24 // no subnet-mask option
)

// lease is a validated DHCPv4 lease: only values the job checked.
type lease struct {
	addr    netip.Prefix
	router  netip.Addr // invalid: none offered
	dns     []netip.Addr
	server  netip.Addr
	start   time.Time
	t1, t2  time.Time // renew, rebind
	expires time.Time
}

// parseLease checks an ACK's values and computes the lease's timers from
// start (when the request was sent, RFC 2131 4.4.1).
func parseLease(ack *dhcpv4.DHCPv4, start time.Time, minLease time.Duration) (lease, error) {
	var l lease
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !usable(ip) || ip.IsLoopback() {
		return l, fmt.Errorf("offered address %v is not a usable IPv4 address", ack.YourIPAddr)
	}
	bits, err := prefixLen(ack.SubnetMask())
	if err != nil {
		return l, err
	}
	l.addr = netip.PrefixFrom(ip, bits)
	l.router = firstUsable(ack.Router())
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok && usable(a) && len(l.dns) < maxDNS {
			l.dns = append(l.dns, a)
		}
	}
	if s, ok := netip.AddrFromSlice(ack.ServerIdentifier().To4()); ok {
		l.server = s
	}
	l.start = start
	l.t1, l.t2, l.expires = leaseTimes(start, minLease, ack.IPAddressLeaseTime(0),
		ack.IPAddressRenewalTime(0), ack.IPAddressRebindingTime(0))
	return l, nil
}

// prefixLen turns a subnet mask into a prefix length: contiguous, 1..32.
// No mask: the common /24.
func prefixLen(m net.IPMask) (int, error) {
	if m == nil {
		return defaultLen, nil
	}
	ones, bits := m.Size()
	if bits != 32 || ones < minPrefix {
		return 0, fmt.Errorf("subnet mask %v is not a usable IPv4 mask", net.IP(m))
	}
	return ones, nil
}

func firstUsable(ips []net.IP) netip.Addr {
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.To4()); ok && usable(a) {
			return a
		}
	}
	return netip.Addr{}
}

// leaseTimes computes T1, T2 and the expiry from the server's durations
// (0: absent), clamped to sane bounds (minLease..maxLease): T1 < T2 < lease, each defaulting to
// RFC 2131's 0.5 and 0.875 of the lease when absent or out of order.
func leaseTimes(start time.Time, minLease, leaseD, t1D, t2D time.Duration) (t1, t2, exp time.Time) {
	if leaseD <= 0 {
		leaseD = defLease
	}
	leaseD = min(max(leaseD, minLease), maxLease)
	if t2D <= 0 || t2D >= leaseD {
		t2D = leaseD * 7 / 8
	}
	if t1D <= 0 || t1D >= t2D {
		t1D = min(leaseD/2, t2D)
	}
	return start.Add(t1D), start.Add(t2D), start.Add(leaseD)
}

// retryIn is how long to wait before retransmitting a renew or rebind
// due at deadline: half the time left, at least 10 s (RFC 2131 4.4.5
// says 60 s; short test leases need less), never past the deadline.
func retryIn(now, deadline time.Time) time.Duration {
	left := deadline.Sub(now)
	if left <= 0 {
		return 0
	}
	return min(max(left/2, 10*time.Second), left)
}

// backoff is the wait after the n-th failed attempt (n from 0): 1 s
// doubling to 60 s.
func backoff(n int) time.Duration {
	if n > 6 {
		return 60 * time.Second
	}
	return min(time.Second<<n, 60*time.Second)
}

// errNoLease is the job's way of saying a lease ran out.
var errNoLease = errors.New("lease expired")
