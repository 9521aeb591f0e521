package qemu

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// NetMode is how far a guest's network reaches (rfs run --net).
type NetMode string

// The network modes. All but NetNone give the guest one NIC on QEMU's
// user-mode network (slirp: 10.0.2.0/24, the guest 10.0.2.15 by DHCP,
// the gateway 10.0.2.2), which needs no privileges on the host.
const (
	// NetRestricted isolates the guest (QEMU restrict=on): it reaches
	// neither the host nor beyond; only explicit forwards connect. The
	// default: a guest under test sends nothing off the machine.
	NetRestricted NetMode = "restricted"
	// NetInternet routes the guest's connections through the host's
	// sockets: it reaches what the host reaches (10.0.2.2 is the host's
	// loopback, 10.0.2.3 a DNS relay to the host's resolver).
	NetInternet NetMode = "internet"
	// NetNone gives the guest no network device.
	NetNone NetMode = "none"
)

// ParseNetMode reads rfs run --net.
func ParseNetMode(s string) (NetMode, error) {
	switch m := NetMode(s); m {
	case NetRestricted, NetInternet, NetNone:
		return m, nil
	}
	return "", fmt.Errorf("--net %q: want restricted (only --forward and --ssh ports connect; the default), internet (the guest reaches what this host reaches) or none (no network device)", s)
}

// Forward is a port on the host's 127.0.0.1 that QEMU forwards to a port
// of the guest (QEMU's hostfwd): only this host can connect to it.
type Forward struct {
	Proto     string // "tcp" or "udp"
	HostPort  int
	GuestPort int
}

// String is the forward as rfs run --forward reads it.
func (f Forward) String() string {
	return fmt.Sprintf("%s:%d:%d", f.Proto, f.HostPort, f.GuestPort)
}

// hostfwd is the forward as a QEMU user netdev option. The guest address
// is left empty: QEMU's default, the address its DHCP gives (10.0.2.15).
func (f Forward) hostfwd() string {
	return fmt.Sprintf("hostfwd=%s:127.0.0.1:%d-:%d", f.Proto, f.HostPort, f.GuestPort)
}

// ParseForward reads rfs run --forward [tcp:|udp:]HOSTPORT:GUESTPORT
// (TCP when no protocol is given).
func ParseForward(s string) (Forward, error) {
	fields := strings.Split(s, ":")
	f := Forward{Proto: "tcp"}
	if len(fields) == 3 {
		f.Proto = strings.ToLower(fields[0])
		if f.Proto != "tcp" && f.Proto != "udp" {
			return Forward{}, fmt.Errorf("--forward %q: protocol %q: want tcp or udp", s, fields[0])
		}
		fields = fields[1:]
	}
	if len(fields) != 2 {
		return Forward{}, fmt.Errorf("--forward %q: want [tcp:|udp:]HOSTPORT:GUESTPORT, e.g. 8080:80 or udp:5353:53", s)
	}
	var err error
	if f.HostPort, err = parsePort(fields[0]); err != nil {
		return Forward{}, fmt.Errorf("--forward %q: host port: %w", s, err)
	}
	if f.GuestPort, err = parsePort(fields[1]); err != nil {
		return Forward{}, fmt.Errorf("--forward %q: guest port: %w", s, err)
	}
	return f, nil
}

// parsePort reads a port number, 1 to 65535, in decimal.
func parsePort(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" || len(s) > 5 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("%d is not a port number (1-65535)", n)
	}
	return n, nil
}

// Network is a guest's network: its mode and what QEMU forwards.
type Network struct {
	Mode     NetMode // empty is NetRestricted
	Forwards []Forward
	// Netdev are further options of the user-mode netdev, for what
	// Forwards do not cover: tests add guestfwd (GuestForward) this way.
	Netdev []string
	// MAC is the guest NIC's address (empty: QEMU's default). ForImage
	// derives it from the image (MACFor), so a DHCP server sees one
	// device boot after boot. QEMU's usb-net shows the guest the same
	// address with its first byte 0x40.
	MAC string
}

// mode is n.Mode with the default filled in.
func (n Network) mode() NetMode {
	if n.Mode == "" {
		return NetRestricted
	}
	return n.Mode
}

// GuestForward is a Network.Netdev option (QEMU's guestfwd) that connects
// the guest's TCP connections to guestAddr:guestPort (an address in
// 10.0.2.0/24 nothing else uses, e.g. 10.0.2.100) to host:hostPort. QEMU
// makes that one connection (a chardev), when it starts: the host's
// server must listen by then, and every guest connection shares it. For a
// connection each, use GuestForwardCmd. QEMU forwards only TCP this way;
// UDP services (NTP) need NetInternet inside a private network namespace.
func GuestForward(guestAddr string, guestPort int, host string, hostPort int) string {
	return fmt.Sprintf("guestfwd=tcp:%s:%d-tcp:%s:%d", guestAddr, guestPort, host, hostPort)
}

// GuestForwardCmd is a Network.Netdev option (QEMU's guestfwd) that runs
// command on the host (by the shell) for each of the guest's TCP
// connections to guestAddr:guestPort, its stdin and stdout the connection.
func GuestForwardCmd(guestAddr string, guestPort int, command string) string {
	return fmt.Sprintf("guestfwd=tcp:%s:%d-cmd:%s", guestAddr, guestPort, driveValue(command))
}

// MACFor is the guest MAC of an image whose identity is id (e.g. the
// PARTUUID of its data partition): QEMU's prefix 52:54:00 and three bytes
// of the id's hash, so one image is one device to a DHCP server.
func MACFor(id string) string {
	h := sha256.Sum256([]byte("rfs-guest-mac:" + id))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", h[0], h[1], h[2])
}

// nicDevice is QEMU's NIC model for the machine, "" when rfs knows of
// none the guest can use. The Pi models have no PCI: a USB NIC on their
// dwc2 controller, which the guest sees as a cdc_ether eth0. QEMU's Pi 4
// (raspi4b) models neither the board's GENET Ethernet nor the PCIe xHCI
// behind its USB-A ports, and the Pi 4 device tree keeps the dwc2 off:
// ForImage turns it on in QEMU's copy (usbNodes), else there is no NIC.
func (c Config) nicDevice() string {
	switch c.QEMU.Machine {
	case "virt", "q35", "pc":
		return "virtio-net-pci"
	case "raspi3b":
		return "usb-net"
	}
	if c.usbOn {
		return "usb-net"
	}
	return ""
}

// usbNodes are the device tree nodes of USB controllers that QEMU models
// but the machine's device tree turns off: the Pi 4's dwc2 (the real
// board's USB-C port, off there in favour of the xHCI that QEMU lacks).
var usbNodes = map[string]string{"raspi4b": "/soc/usb@7e980000"}

// netID is the user-mode netdev's id.
const netID = "rfsnet0"

// netArgs are QEMU's options for c.Net: -nic none without a network (or a
// NIC model), else a user-mode netdev and the machine's NIC on it.
func (c Config) netArgs() []string {
	n := c.Net
	dev := c.nicDevice()
	if n.mode() == NetNone || dev == "" {
		// Without it QEMU would add its default NIC on an unrestricted
		// user network.
		return []string{"-nic", "none"}
	}
	netdev := "user,id=" + netID
	if n.mode() == NetRestricted {
		netdev += ",restrict=on"
	}
	for _, f := range n.Forwards {
		netdev += "," + f.hostfwd()
	}
	for _, o := range n.Netdev {
		netdev += "," + o
	}
	device := dev + ",netdev=" + netID
	if n.MAC != "" {
		device += ",mac=" + n.MAC
	}
	return []string{"-netdev", netdev, "-device", device}
}

// NetNote says why the guest has no network when it was asked for one
// and the machine has no NIC rfs can give it; empty otherwise.
func (c Config) NetNote() string {
	if c.Net.mode() == NetNone || c.nicDevice() != "" {
		return ""
	}
	return fmt.Sprintf("QEMU's %s machine has no network device this guest can use, so it has no network (QEMU's virt and Pi 3 machines have one)", c.QEMU.Machine)
}

// CheckNet refuses a network that cannot be given: forwards without a
// network, or on a machine without a NIC; two forwards of one host port.
func (c Config) CheckNet() error {
	n := c.Net
	if _, err := ParseNetMode(string(n.mode())); err != nil {
		return err
	}
	if n.MAC != "" {
		if _, err := net.ParseMAC(n.MAC); err != nil {
			return fmt.Errorf("guest MAC: %w", err)
		}
	}
	if len(n.Forwards) == 0 && len(n.Netdev) == 0 {
		return nil
	}
	if n.mode() == NetNone {
		return errors.New("--forward and --ssh need a network: not with --net none")
	}
	if c.nicDevice() == "" {
		return fmt.Errorf("--forward, --ssh: %s", c.NetNote())
	}
	seen := map[string]bool{}
	for _, f := range n.Forwards {
		key := f.Proto + ":" + strconv.Itoa(f.HostPort)
		if seen[key] {
			return fmt.Errorf("--forward: host port %s %d forwarded twice", f.Proto, f.HostPort)
		}
		seen[key] = true
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now
// (the kernel's pick), for a forward such as rfs run --ssh. Another
// program may take it before QEMU does; QEMU then fails to start.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
