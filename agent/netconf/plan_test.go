package netconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/agentconf"
)

func TestWired(t *testing.T) {
	for _, c := range []struct {
		l    linkInfo
		want bool
	}{
		{linkInfo{name: "eth0", kind: "device", ether: true}, true},
		{linkInfo{name: "lo", kind: "device", loopback: true}, false},
		{linkInfo{name: "wlan0", kind: "device", ether: true, wireless: true}, false},
		{linkInfo{name: "veth0", kind: "veth", ether: true}, false},
		{linkInfo{name: "br0", kind: "bridge", ether: true}, false},
		{linkInfo{name: "wwan0", kind: "device", ether: false}, false},
	} {
		if got := wired(c.l); got != c.want {
			t.Errorf("wired(%+v) = %v, want %v", c.l, got, c.want)
		}
	}
}

func TestIsWireless(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"eth0", "wlan0/wireless", "wlan1/phy80211"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]bool{"eth0": false, "wlan0": true, "wlan1": true, "nope": false} {
		if got := isWireless(dir, name); got != want {
			t.Errorf("isWireless(%s) = %v, want %v", name, got, want)
		}
	}
}

func TestChoose(t *testing.T) {
	eth := linkInfo{name: "eth0", kind: "device", ether: true}
	veth := linkInfo{name: "veth1", kind: "veth", ether: true}
	static := agentconf.Interface{Name: "eth0", Address: "192.168.1.5/24", Gateway: "192.168.1.1", DNS: []string{"192.168.1.1", "2001:db8::53"}}
	for _, c := range []struct {
		name    string
		net     agentconf.Network
		l       linkInfo
		mode    string
		wantErr bool
	}{
		{"default dhcp", agentconf.Network{DHCP: true}, eth, modeDHCP, false},
		{"dhcp off", agentconf.Network{}, eth, modeUnmanaged, false},
		{"network off", agentconf.Network{Off: true, DHCP: true}, eth, modeUnmanaged, false},
		{"veth not by default", agentconf.Network{DHCP: true}, veth, modeUnmanaged, false},
		{"veth listed", agentconf.Network{Interfaces: []agentconf.Interface{{Name: "veth1", DHCP: true}}}, veth, modeDHCP, false},
		{"static", agentconf.Network{DHCP: true, Interfaces: []agentconf.Interface{static}}, eth, modeStatic, false},
		{"bad address", agentconf.Network{DHCP: true, Interfaces: []agentconf.Interface{{Name: "eth0", Address: "192.168.1.5/33"}}}, eth, modeUnmanaged, true},
		{"no prefix", agentconf.Network{Interfaces: []agentconf.Interface{{Name: "eth0", Address: "192.168.1.5"}}}, eth, modeUnmanaged, true},
		{"multicast", agentconf.Network{Interfaces: []agentconf.Interface{{Name: "eth0", Address: "224.0.0.1/4"}}}, eth, modeUnmanaged, true},
		{"bad gateway", agentconf.Network{Interfaces: []agentconf.Interface{{Name: "eth0", Address: "10.0.0.2/8", Gateway: "router"}}}, eth, modeUnmanaged, true},
		{"bad dns", agentconf.Network{Interfaces: []agentconf.Interface{{Name: "eth0", Address: "10.0.0.2/8", DNS: []string{"0.0.0.0"}}}}, eth, modeUnmanaged, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := choose(c.net, c.l)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if p.mode != c.mode {
				t.Errorf("mode = %s, want %s", p.mode, c.mode)
			}
		})
	}
	p, _ := choose(agentconf.Network{Interfaces: []agentconf.Interface{static}}, eth)
	if p.address != netip.MustParsePrefix("192.168.1.5/24") || p.gateway != netip.MustParseAddr("192.168.1.1") || len(p.dns) != 2 {
		t.Errorf("static plan = %+v", p)
	}
}

func TestValidHostname(t *testing.T) {
	for s, want := range map[string]bool{
		"pi": true, "rfs-device-1": true, "": false, "-a": false, "a-": false,
		"pi.example.org": true, "a..b": false, "a.": false, "a b": false,
		strings.Repeat("a", 64): false, strings.Repeat("a.", 127) + "a": false,
	} {
		if got := validHostname(s); got != want {
			t.Errorf("validHostname(%q) = %v, want %v", s, got, want)
		}
	}
}
