package project

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Network is rfs.yaml's network: "off", "dhcp", or a map
// {dhcp: BOOL, interfaces: {NAME: {dhcp, address, gateway, dns}}}.
type Network struct {
	Off bool
	// DHCP on the interfaces not listed; nil: the default, on.
	DHCP       *bool
	Interfaces []Interface // in the file's order
	Line       int
}

// Interface is one entry of network.interfaces.
type Interface struct {
	Name    string
	DHCP    bool
	Address string
	Gateway string
	DNS     []string
	// Lines holds the line of the name ("name") and of each key.
	Lines map[string]int
}

// Time is rfs.yaml's time: "off" or {servers: [host[:port], ...]}.
type Time struct {
	Off     bool
	Servers []string
	// ServerLines is each server's line.
	ServerLines []int
	Line        int
}

// SSH is rfs.yaml's ssh: {authorized_keys: [FILE or KEY, ...], port: N}.
type SSH struct {
	AuthorizedKeys []string
	KeyLines       []int
	Port           int
	PortLine       int
	Line           int
}

// typeErr is a structural mistake at a line, worded like yaml.v3's own.
func typeErr(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

// mapping checks n is a map with only the known keys and calls f per
// key with its value.
func mapping(n *yaml.Node, what string, known []string, f func(k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return typeErr(n, "%s: want a map", what)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if known != nil && !slices.Contains(known, k.Value) {
			return typeErr(k, "%s: unknown key %q (want %s)", what, k.Value, strings.Join(known, ", "))
		}
		if err := f(k, v); err != nil {
			return err
		}
	}
	return nil
}

// decode decodes a scalar or sequence value strictly into v.
func decode(v *yaml.Node, what string, out any) error {
	if err := v.Decode(out); err != nil {
		return typeErr(v, "%s: %v", what, strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  "))
	}
	return nil
}

// UnmarshalYAML reads "off", "dhcp" or the map.
func (nw *Network) UnmarshalYAML(n *yaml.Node) error {
	nw.Line = n.Line
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "off":
			nw.Off = true
			return nil
		case "dhcp":
			on := true
			nw.DHCP = &on
			return nil
		}
		return typeErr(n, "network %q: want off, dhcp or a map {dhcp: true, interfaces: {eth0: {...}}}", n.Value)
	}
	return mapping(n, "network", []string{"dhcp", "interfaces"}, func(k, v *yaml.Node) error {
		if k.Value == "dhcp" {
			nw.DHCP = new(bool)
			return decode(v, "network.dhcp", nw.DHCP)
		}
		return mapping(v, "network.interfaces", nil, func(k, v *yaml.Node) error {
			ifc, err := parseInterface(k.Value, k.Line, v)
			nw.Interfaces = append(nw.Interfaces, ifc)
			return err
		})
	})
}

func parseInterface(name string, line int, n *yaml.Node) (Interface, error) {
	ifc := Interface{Name: name, Lines: map[string]int{"name": line}}
	what := "network.interfaces." + name
	err := mapping(n, what, []string{"dhcp", "address", "gateway", "dns"}, func(k, v *yaml.Node) error {
		ifc.Lines[k.Value] = v.Line
		switch k.Value {
		case "dhcp":
			return decode(v, what+".dhcp", &ifc.DHCP)
		case "address":
			return decode(v, what+".address", &ifc.Address)
		case "gateway":
			return decode(v, what+".gateway", &ifc.Gateway)
		}
		return decode(v, what+".dns", &ifc.DNS)
	})
	return ifc, err
}

// UnmarshalYAML reads "off" or {servers: [...]}.
func (t *Time) UnmarshalYAML(n *yaml.Node) error {
	t.Line = n.Line
	if n.Kind == yaml.ScalarNode {
		if n.Value == "off" {
			t.Off = true
			return nil
		}
		return typeErr(n, "time %q: want off or {servers: [host, host:port]}", n.Value)
	}
	return mapping(n, "time", []string{"servers"}, func(_, v *yaml.Node) error {
		if err := decode(v, "time.servers", &t.Servers); err != nil {
			return err
		}
		for _, s := range v.Content {
			t.ServerLines = append(t.ServerLines, s.Line)
		}
		return nil
	})
}

// UnmarshalYAML reads {authorized_keys: [...], port: N}.
func (s *SSH) UnmarshalYAML(n *yaml.Node) error {
	s.Line = n.Line
	return mapping(n, "ssh", []string{"authorized_keys", "port"}, func(k, v *yaml.Node) error {
		if k.Value == "port" {
			s.PortLine = v.Line
			return decode(v, "ssh.port", &s.Port)
		}
		if err := decode(v, "ssh.authorized_keys", &s.AuthorizedKeys); err != nil {
			return err
		}
		for _, k := range v.Content {
			s.KeyLines = append(s.KeyLines, k.Line)
		}
		return nil
	})
}
