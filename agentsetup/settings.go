// Package agentsetup is the build side of the on-device agent: it checks a
// build's device settings (network, time, SSH keys) and installs the agent
// into the lower with its configuration (package agentconf), the
// authorized keys, the /etc/resolv.conf link and a supervised start.
// Host-side: the agent itself is cmd/rfs-agent, compiled by
// initramfs.Builder.Agent.
package agentsetup

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/rfsbuild/rfs/agentconf"
)

// Settings are a build's device settings, resolved from rfs.yaml and the
// flags.
type Settings struct {
	Network agentconf.Network
	Time    agentconf.Time
	SSH     agentconf.SSH
	// Keys are root's authorized keys, normalized (ParseKey), in the order
	// given; none: no SSH server.
	Keys []string
}

// Default is a device's setup when rfs.yaml says nothing: DHCP on every
// wired interface, time from the NTP pool, no SSH.
func Default() Settings {
	return Settings{
		Network: agentconf.Network{DHCP: true},
		Time:    agentconf.Time{Servers: slices.Clone(agentconf.DefaultNTPServers)},
	}
}

// Enabled reports whether the device needs the agent: networking, time or
// SSH is on.
func (s Settings) Enabled() bool {
	return !s.Network.Off || len(s.Time.Servers) > 0 || len(s.Keys) > 0
}

// Config is the agent's configuration file's content for s.
func (s Settings) Config(hostname string) agentconf.Config {
	return agentconf.Config{Version: 1, Hostname: hostname, Network: s.Network, Time: s.Time, SSH: s.SSH}
}

// MarshalConfig is agentconf.ConfigFile's bytes: indented JSON, the same
// bytes for the same settings (struct fields in order, no maps).
func MarshalConfig(c agentconf.Config) ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Check validates s without knowing where its values came from (for
// callers of package builder; rfs.yaml's values are checked with their
// lines by package project, with the same functions).
func (s Settings) Check() error {
	for _, ifc := range s.Network.Interfaces {
		if err := CheckInterfaceName(ifc.Name); err != nil {
			return fmt.Errorf("network interface %q: %w", ifc.Name, err)
		}
		if err := CheckInterface(ifc); err != nil {
			return fmt.Errorf("network interface %s: %w", ifc.Name, err)
		}
	}
	for _, srv := range s.Time.Servers {
		if err := CheckServer(srv); err != nil {
			return fmt.Errorf("time server %q: %w", srv, err)
		}
	}
	if err := CheckPort(s.SSH.Port); err != nil {
		return fmt.Errorf("ssh port: %w", err)
	}
	for _, k := range s.Keys {
		if _, err := ParseKey(k); err != nil {
			return fmt.Errorf("ssh key: %w", err)
		}
	}
	return nil
}

// CheckInterfaceName checks the form of a kernel interface name (whether
// the device has it is known only there): 1-15 bytes, no '/', ':' or
// white space (the kernel's dev_valid_name, plus ':' which marks an alias).
func CheckInterfaceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty interface name")
	case len(name) > 15:
		return fmt.Errorf("interface name of %d bytes: at most 15", len(name))
	case name == "." || name == "..":
		return fmt.Errorf("not an interface name")
	}
	for _, r := range name {
		if r == '/' || r == ':' || unicode.IsSpace(r) || r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q is not allowed in an interface name", r)
		}
	}
	return nil
}

// FieldError is a mistake in one key of an interface's settings
// ("address"), so a caller can name the key's line.
type FieldError struct {
	Key string
	Err error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// CheckInterface checks one interface's settings: DHCP, or a static
// ADDR/PREFIX with an optional gateway of the same family and DNS servers.
// Its errors are *FieldError.
func CheckInterface(ifc agentconf.Interface) error {
	if ifc.Address == "" {
		switch {
		case !ifc.DHCP:
			return &FieldError{"dhcp", fmt.Errorf("give dhcp: true or a static address")}
		case ifc.Gateway != "":
			return &FieldError{"gateway", fmt.Errorf("gateway needs a static address (DHCP gives the gateway)")}
		case len(ifc.DNS) > 0:
			return &FieldError{"dns", fmt.Errorf("dns needs a static address (DHCP gives the DNS servers)")}
		}
		return nil
	}
	if ifc.DHCP {
		return &FieldError{"address", fmt.Errorf("dhcp: true and a static address: choose one")}
	}
	prefix, err := CheckAddress(ifc.Address)
	if err != nil {
		return &FieldError{"address", err}
	}
	if ifc.Gateway != "" {
		if err := CheckGateway(ifc.Gateway, prefix); err != nil {
			return &FieldError{"gateway", err}
		}
	}
	for _, d := range ifc.DNS {
		if err := CheckDNS(d); err != nil {
			return &FieldError{"dns", err}
		}
	}
	return nil
}

// CheckAddress parses a static address, ADDR/PREFIX.
func CheckAddress(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address %q: want ADDR/PREFIX (192.168.1.10/24, fd00::10/64): %v", s, err)
	}
	if p.Addr().Zone() != "" || p.Addr().IsUnspecified() || p.Addr().IsMulticast() || p.Addr().IsLoopback() {
		return netip.Prefix{}, fmt.Errorf("address %q: not a usable host address", s)
	}
	return p, nil
}

// CheckGateway checks a gateway: an IP address of the address's family.
func CheckGateway(s string, p netip.Prefix) error {
	gw, err := netip.ParseAddr(s)
	if err != nil || gw.Zone() != "" {
		return fmt.Errorf("gateway %q: not an IP address", s)
	}
	if gw.Is4() != p.Addr().Is4() {
		return fmt.Errorf("gateway %s: not of address %s's family (IPv4 and IPv6 do not mix)", s, p)
	}
	if gw.IsUnspecified() || gw.IsMulticast() {
		return fmt.Errorf("gateway %s: not a usable address", s)
	}
	return nil
}

// CheckDNS checks a DNS server: an IP address (resolv.conf takes no names).
func CheckDNS(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil || a.IsUnspecified() || a.IsMulticast() {
		return fmt.Errorf("dns %q: not an IP address of a DNS server", s)
	}
	return nil
}

// CheckServer checks an NTP server, host or host:port ([v6addr]:port).
func CheckServer(s string) error {
	if s == "" || len(s) > 253+6 {
		return fmt.Errorf("want host or host:port")
	}
	host, port, err := splitHostPort(s)
	if err != nil {
		return err
	}
	if port != "" || strings.HasSuffix(s, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1-65535", port)
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return fmt.Errorf("%q is not a host name or IP address", host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return fmt.Errorf("%q is not allowed in a host name", r)
			}
		}
	}
	return nil
}

// splitHostPort splits "host:port" and "[v6]:port"; a bare IPv6 address
// has no port.
func splitHostPort(s string) (string, string, error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", fmt.Errorf("missing ] after an IPv6 address")
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if !strings.HasPrefix(rest, ":") {
			return "", "", fmt.Errorf("want [IPv6]:port")
		}
		return host, rest[1:], nil
	}
	if strings.Count(s, ":") == 1 {
		h, p, _ := strings.Cut(s, ":")
		return h, p, nil
	}
	return s, "", nil
}

// CheckPort checks the SSH port: 0 (the default, 22) or 1-65535.
func CheckPort(n int) error {
	if n < 0 || n > 65535 {
		return fmt.Errorf("%d: want 1-65535", n)
	}
	return nil
}
