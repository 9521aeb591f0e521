package project

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/agentsetup"
	"github.com/rfsbuild/rfs/builder"
)

// at names a value of the project file by its line: "rfs.yaml:7: key".
func (r *resolver) at(line int, key string) string {
	if r.p.Path != "" && line > 0 {
		return fmt.Sprintf("%s:%d: %s", r.p.Path, line, key)
	}
	return r.p.Where(strings.SplitN(key, ".", 2)[0])
}

// device resolves network, time and ssh (defaults: DHCP, the NTP pool,
// no SSH) and checks them; the agent runs when any is on.
func (r *resolver) device(cfg *builder.Config) error {
	s := agentsetup.Default()
	for _, step := range []func(*agentsetup.Settings) error{r.network, r.time, r.ssh} {
		if err := step(&s); err != nil {
			return err
		}
	}
	cfg.Device = &s
	return nil
}

// network: --network off|dhcp, else network:.
func (r *resolver) network(s *agentsetup.Settings) error {
	if r.f.Changed("network") {
		r.origin["network"] = "--network"
		switch r.f.Network {
		case "off":
			s.Network = agentconf.Network{Off: true}
		case "dhcp":
			s.Network = agentconf.Network{DHCP: true}
		default:
			return fmt.Errorf("--network %q: want off or dhcp (static addresses: network: in rfs.yaml)", r.f.Network)
		}
		return nil
	}
	r.from("network", "network")
	nw := r.p.Network
	switch {
	case nw == nil:
		return nil
	case nw.Off:
		s.Network = agentconf.Network{Off: true}
		return nil
	}
	s.Network = agentconf.Network{DHCP: nw.DHCP == nil || *nw.DHCP}
	for _, ifc := range nw.Interfaces {
		key := "network.interfaces." + ifc.Name
		if err := agentsetup.CheckInterfaceName(ifc.Name); err != nil {
			return fmt.Errorf("%s %q: %w", r.at(ifc.Lines["name"], "network.interfaces"), ifc.Name, err)
		}
		c := agentconf.Interface{Name: ifc.Name, DHCP: ifc.DHCP, Address: ifc.Address, Gateway: ifc.Gateway, DNS: ifc.DNS}
		if err := agentsetup.CheckInterface(c); err != nil {
			line := ifc.Lines["name"]
			var fe *agentsetup.FieldError
			if errors.As(err, &fe) && ifc.Lines[fe.Key] > 0 {
				line = ifc.Lines[fe.Key]
			}
			return fmt.Errorf("%s: %w", r.at(line, key), err)
		}
		s.Network.Interfaces = append(s.Network.Interfaces, c)
	}
	// By name: the same settings give the same agent.json.
	slices.SortFunc(s.Network.Interfaces, func(a, b agentconf.Interface) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

// time: time: off, {servers: [...]}, or the NTP pool.
func (r *resolver) time(s *agentsetup.Settings) error {
	r.from("time", "time")
	t := r.p.Time
	switch {
	case t == nil:
		return nil
	case t.Off:
		s.Time.Servers = nil
		return nil
	}
	s.Time.Servers = nil
	for i, srv := range t.Servers {
		if err := agentsetup.CheckServer(srv); err != nil {
			line := t.Line
			if i < len(t.ServerLines) {
				line = t.ServerLines[i]
			}
			return fmt.Errorf("%s %q: %w", r.at(line, "time.servers"), srv, err)
		}
		s.Time.Servers = append(s.Time.Servers, srv)
	}
	return nil
}

// ssh: --ssh-key FILE (repeatable; replaces ssh.authorized_keys), else
// ssh.authorized_keys: files relative to rfs.yaml, or keys inline.
func (r *resolver) ssh(s *agentsetup.Settings) error {
	p := r.p.SSH
	if p == nil {
		p = &SSH{}
	}
	if err := agentsetup.CheckPort(p.Port); err != nil {
		return fmt.Errorf("%s: %w", r.at(p.PortLine, "ssh.port"), err)
	}
	s.SSH.Port = p.Port
	type entry struct{ value, where, path string }
	var entries []entry
	if r.f.Changed("ssh-key") {
		r.origin["ssh"] = "--ssh-key"
		for _, k := range r.f.SSHKeys {
			entries = append(entries, entry{k, "--ssh-key", k})
		}
	} else {
		r.from("ssh", "ssh")
		for i, k := range p.AuthorizedKeys {
			line := p.Line
			if i < len(p.KeyLines) {
				line = p.KeyLines[i]
			}
			entries = append(entries, entry{k, r.at(line, "ssh.authorized_keys"), r.rel(k)})
		}
	}
	for _, e := range entries {
		keys, err := readKeyEntry(e.value, e.path)
		if err != nil {
			return fmt.Errorf("%s: %w", e.where, err)
		}
		for _, k := range keys {
			if !slices.ContainsFunc(s.Keys, func(old string) bool { return sameKey(old, k) }) {
				s.Keys = append(s.Keys, k)
			}
		}
	}
	return nil
}

// sameKey reports whether two normalized key lines hold the same key,
// whatever their comments: the first one given is kept.
func sameKey(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	return len(fa) >= 2 && len(fb) >= 2 && fa[0] == fb[0] && fa[1] == fb[1]
}

// readKeyEntry reads an authorized_keys entry: an inline key, or a file.
func readKeyEntry(value, path string) ([]string, error) {
	if agentsetup.IsInlineKey(value) {
		k, err := agentsetup.ParseKey(value)
		if err != nil {
			return nil, err
		}
		return []string{k}, nil
	}
	return agentsetup.ReadKeyFile(path)
}
