package qemu

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/image"
)

func TestParseForward(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Forward
		err  string // part of the error; empty: no error
	}{
		{"8080:80", Forward{"tcp", 8080, 80}, ""},
		{"tcp:2222:22", Forward{"tcp", 2222, 22}, ""},
		{"udp:5353:53", Forward{"udp", 5353, 53}, ""},
		{"UDP:1:65535", Forward{"udp", 1, 65535}, ""},
		{"0:80", Forward{}, "host port: 0 is not a port number (1-65535)"},
		{"8080:65536", Forward{}, "guest port: 65536 is not a port number"},
		{"8080:-1", Forward{}, `guest port: "-1" is not a port number`},
		{"8080:99999999999999999999", Forward{}, "is not a port number"},
		{"+80:80", Forward{}, `host port: "+80" is not a port number`},
		{"sctp:1:2", Forward{}, `protocol "sctp": want tcp or udp`},
		{"8080", Forward{}, "want [tcp:|udp:]HOSTPORT:GUESTPORT"},
		{"tcp:1:2:3", Forward{}, "want [tcp:|udp:]HOSTPORT:GUESTPORT"},
		{"127.0.0.1:8080:80", Forward{}, `protocol "127.0.0.1"`},
		{":80", Forward{}, `host port: "" is not a port number`},
		{"", Forward{}, "want [tcp:|udp:]HOSTPORT:GUESTPORT"},
	} {
		got, err := ParseForward(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParseForward(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--forward") {
			t.Errorf("ParseForward(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
}

func TestParseNetMode(t *testing.T) {
	for _, s := range []string{"restricted", "internet", "none"} {
		if m, err := ParseNetMode(s); err != nil || string(m) != s {
			t.Errorf("ParseNetMode(%q) = %q, %v", s, m, err)
		}
	}
	for _, s := range []string{"", "user", "Restricted", "host"} {
		if _, err := ParseNetMode(s); err == nil || !strings.Contains(err.Error(), "want restricted") {
			t.Errorf("ParseNetMode(%q) = %v", s, err)
		}
	}
}

// TestNetArgs: QEMU's network options per mode and machine.
func TestNetArgs(t *testing.T) {
	fwd := []Forward{{"tcp", 2222, 22}, {"udp", 5353, 53}}
	for _, tc := range []struct {
		name    string
		machine string
		net     Network
		want    string
	}{
		{"default restricted", "virt", Network{}, "-netdev user,id=rfsnet0,restrict=on -device virtio-net-pci,netdev=rfsnet0"},
		{"forwards", "virt", Network{Mode: NetRestricted, Forwards: fwd, MAC: "52:54:00:01:02:03"},
			"-netdev user,id=rfsnet0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:127.0.0.1:5353-:53 -device virtio-net-pci,netdev=rfsnet0,mac=52:54:00:01:02:03"},
		{"internet", "q35", Network{Mode: NetInternet}, "-netdev user,id=rfsnet0 -device virtio-net-pci,netdev=rfsnet0"},
		{"guestfwd", "virt", Network{Netdev: []string{GuestForward("10.0.2.100", 80, "127.0.0.1", 8080)}},
			"-netdev user,id=rfsnet0,restrict=on,guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080 -device"},
		{"guestfwd cmd", "virt", Network{Netdev: []string{GuestForwardCmd("10.0.2.101", 80, "printf a,b")}},
			"-netdev user,id=rfsnet0,restrict=on,guestfwd=tcp:10.0.2.101:80-cmd:printf a,,b -device"},
		{"none", "virt", Network{Mode: NetNone, Forwards: fwd}, "-nic none"},
		{"pi 3 over USB", "raspi3b", Network{}, "-netdev user,id=rfsnet0,restrict=on -device usb-net,netdev=rfsnet0"},
		{"pi 4: no NIC", "raspi4b", Network{Mode: NetInternet}, "-nic none"},
		{"pi 4 with its USB on", "raspi4b+usb", Network{}, "-netdev user,id=rfsnet0,restrict=on -device usb-net,netdev=rfsnet0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			machine, usbOn := strings.CutSuffix(tc.machine, "+usb")
			c := Config{QEMU: boards.QEMU{Machine: machine, Memory: "1G"}, Net: tc.net, usbOn: usbOn}
			got := strings.Join(c.Args(), " ")
			if !strings.Contains(got, tc.want) {
				t.Errorf("args %q lack %q", got, tc.want)
			}
			if strings.Count(got, "-netdev")+strings.Count(got, "-nic") != 1 {
				t.Errorf("args %q: want one network", got)
			}
		})
	}
}

// TestCheckNet: networks QEMU could not give are refused before it starts.
func TestCheckNet(t *testing.T) {
	fwd := []Forward{{"tcp", 2222, 22}}
	for _, tc := range []struct {
		name    string
		machine string
		net     Network
		err     string // empty: accepted
	}{
		{"default", "virt", Network{}, ""},
		{"forward", "raspi3b", Network{Forwards: fwd}, ""},
		{"tcp and udp on one port", "virt", Network{Forwards: []Forward{{"tcp", 53, 53}, {"udp", 53, 53}}}, ""},
		{"no NIC, no forwards", "raspi4b", Network{}, ""},
		{"none with forwards", "virt", Network{Mode: NetNone, Forwards: fwd}, "not with --net none"},
		{"no NIC", "raspi4b", Network{Forwards: fwd}, "raspi4b machine has no network device"},
		{"no NIC, netdev", "raspi4b", Network{Netdev: []string{"guestfwd=x"}}, "no network device"},
		{"twice", "virt", Network{Forwards: []Forward{{"tcp", 2222, 22}, {"tcp", 2222, 23}}}, "host port tcp 2222 forwarded twice"},
		{"bad mode", "virt", Network{Mode: "bridge"}, `--net "bridge"`},
		{"bad MAC", "virt", Network{MAC: "52:54"}, "guest MAC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{QEMU: boards.QEMU{Machine: tc.machine}, Net: tc.net}.CheckNet()
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("CheckNet = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestNetNote(t *testing.T) {
	if n := (Config{QEMU: boards.QEMU{Machine: "raspi4b"}}).NetNote(); !strings.Contains(n, "raspi4b machine has no network device") || !strings.Contains(n, "Pi 3") {
		t.Errorf("raspi4b note %q", n)
	}
	for _, c := range []Config{{QEMU: boards.QEMU{Machine: "virt"}}, {QEMU: boards.QEMU{Machine: "raspi4b"}, Net: Network{Mode: NetNone}}} {
		if n := c.NetNote(); n != "" {
			t.Errorf("%s: note %q", c.QEMU.Machine, n)
		}
	}
}

// TestMACFor: a stable, valid unicast address per identity.
func TestMACFor(t *testing.T) {
	a, b := MACFor("bc31ba3d-03"), MACFor("7fab0a52-03")
	if a != MACFor("bc31ba3d-03") || a == b {
		t.Errorf("MACFor: %s, %s", a, b)
	}
	for _, m := range []string{a, b} {
		hw, err := net.ParseMAC(m)
		if err != nil || !regexp.MustCompile(`^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$`).MatchString(m) || hw[0]&1 != 0 {
			t.Errorf("MACFor = %q (%v)", m, err)
		}
	}
}

// TestImageMAC: the data partition's PARTUUID names the device, else
// the root's, else the image's path.
func TestImageMAC(t *testing.T) {
	for _, tc := range []struct {
		meta image.Meta
		want string
	}{
		{image.Meta{DataGUID: "d", RootGUID: "r"}, MACFor("d")},
		{image.Meta{RootGUID: "r", BootGUID: "b"}, MACFor("r")},
		{image.Meta{BootGUID: "b"}, MACFor("b")},
		{image.Meta{}, MACFor("/x/y.img")},
	} {
		if got := imageMAC(tc.meta, "/x/y.img"); got != tc.want {
			t.Errorf("imageMAC(%+v) = %s, want %s", tc.meta, got, tc.want)
		}
	}
}

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	l.Close()
}
