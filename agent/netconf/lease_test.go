package netconf

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestLeaseTimes(t *testing.T) {
	start := time.Unix(1000, 0)
	h := time.Hour
	for _, c := range []struct {
		name               string
		lease, t1, t2      time.Duration
		wT1, wT2, wExpires time.Duration
	}{
		{"defaults from lease", h, 0, 0, h / 2, h * 7 / 8, h},
		{"server timers", h, 10 * time.Minute, 20 * time.Minute, 10 * time.Minute, 20 * time.Minute, h},
		{"no lease time", 0, 0, 0, h / 2, h * 7 / 8, h},
		{"too short", time.Second, 0, 0, 30 * time.Second, 52500 * time.Millisecond, time.Minute},
		{"infinite", 0xffffffff * time.Second, 0, 0, 15 * 24 * h, 30 * 24 * h * 7 / 8, 30 * 24 * h},
		{"t2 past lease", h, 0, 2 * h, h / 2, h * 7 / 8, h},
		{"t1 past t2", h, 50 * time.Minute, 40 * time.Minute, h / 2, 40 * time.Minute, h},
		{"t1 and t2 past lease", h, 3 * h, 2 * h, h / 2, h * 7 / 8, h},
	} {
		t1, t2, exp := leaseTimes(start, defMinLease, c.lease, c.t1, c.t2)
		if t1.Sub(start) != c.wT1 || t2.Sub(start) != c.wT2 || exp.Sub(start) != c.wExpires {
			t.Errorf("%s: got %v %v %v, want %v %v %v", c.name, t1.Sub(start), t2.Sub(start),
				exp.Sub(start), c.wT1, c.wT2, c.wExpires)
		}
		if !t1.Before(t2) || !t2.Before(exp) {
			t.Errorf("%s: timers out of order", c.name)
		}
	}
}

func TestRetryInAndBackoff(t *testing.T) {
	now := time.Unix(0, 0)
	for left, want := range map[time.Duration]time.Duration{
		time.Hour: 30 * time.Minute, 15 * time.Second: 10 * time.Second,
		5 * time.Second: 5 * time.Second, 0: 0, -time.Second: 0,
	} {
		if got := retryIn(now, now.Add(left)); got != want {
			t.Errorf("retryIn(%v left) = %v, want %v", left, got, want)
		}
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for n, w := range want {
		if got := backoff(n); got != w*time.Second {
			t.Errorf("backoff(%d) = %v, want %v", n, got, w*time.Second)
		}
	}
	if backoff(1000) != 60*time.Second {
		t.Error("backoff does not cap for large n")
	}
}

func ack(t *testing.T, yiaddr string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithYourIP(net.ParseIP(yiaddr)),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck)}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseLease(t *testing.T) {
	start := time.Now()
	good := ack(t, "10.0.0.5",
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(net.ParseIP("0.0.0.0"), net.ParseIP("10.0.0.1")),
		dhcpv4.WithDNS(net.ParseIP("10.0.0.1"), net.ParseIP("255.255.255.255"), net.ParseIP("1.1.1.1"),
			net.ParseIP("9.9.9.9"), net.ParseIP("8.8.8.8"), net.ParseIP("8.8.4.4")),
		dhcpv4.WithLeaseTime(600),
		dhcpv4.WithServerIP(net.ParseIP("10.0.0.1")),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP("10.0.0.1"))))
	l, err := parseLease(good, start, defMinLease)
	if err != nil {
		t.Fatal(err)
	}
	if l.addr != netip.MustParsePrefix("10.0.0.5/24") || l.router != netip.MustParseAddr("10.0.0.1") ||
		l.server != netip.MustParseAddr("10.0.0.1") || len(l.dns) != maxDNS || l.expires.Sub(start) != 10*time.Minute {
		t.Errorf("lease = %+v", l)
	}
	if l, err := parseLease(ack(t, "10.0.0.5"), start, defMinLease); err != nil || l.addr.Bits() != defaultLen || l.router.IsValid() {
		t.Errorf("no options: %+v, %v", l, err)
	}
	bad := map[string]*dhcpv4.DHCPv4{
		"zero address": ack(t, "0.0.0.0"),
		"broadcast":    ack(t, "255.255.255.255"),
		"multicast":    ack(t, "239.1.1.1"),
		"loopback":     ack(t, "127.0.0.9"),
		"mask /0":      ack(t, "10.0.0.5", dhcpv4.WithNetmask(net.IPv4Mask(0, 0, 0, 0))),
		"holey mask":   ack(t, "10.0.0.5", dhcpv4.WithNetmask(net.IPv4Mask(255, 0, 255, 0))),
		"ipv6 yiaddr":  ack(t, "2001:db8::1"),
	}
	for name, m := range bad {
		if _, err := parseLease(m, start, defMinLease); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
