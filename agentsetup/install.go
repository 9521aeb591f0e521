package agentsetup

import (
	"fmt"
	"path"
	"strings"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/apps"
	"github.com/rfsbuild/rfs/rootfs"
)

// initBin is where the init copies itself at boot; its `supervise`
// helper restarts the agent with back-off and keeps its log.
const initBin = "/run/rfs/bin/rfs-init"

// SuperviseCommand is the agent's command line in busybox's inittab.
const SuperviseCommand = initBin + " supervise " + agentconf.Binary

// ResolvConfPath is the lower's resolver file.
const ResolvConfPath = "/etc/resolv.conf"

// Install puts the agent into t: the binary at agentconf.Binary, its
// configuration at agentconf.ConfigFile, the authorized keys (when there
// are any), /etc/resolv.conf as a link to agentconf.ResolvConf (when the
// network is on), and its start: a busybox inittab line, or u-root's
// services list. It returns notes for the build log: an /etc/resolv.conf
// already in t (from --files) is kept, and said so.
func Install(t *rootfs.Tree, s Settings, hostname string, bin []byte, userland string) ([]string, error) {
	cfg, err := MarshalConfig(s.Config(hostname))
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	type file struct {
		path    string
		perm    uint32
		content []byte
	}
	files := []file{{agentconf.Binary, 0o755, bin}, {agentconf.ConfigFile, 0o644, cfg}}
	if len(s.Keys) > 0 {
		files = append(files, file{agentconf.AuthorizedKeysFile, 0o644, []byte(strings.Join(s.Keys, "\n") + "\n")})
	}
	for _, f := range files {
		if err := put(t, f.path, f.perm, f.content); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	notes, err := linkResolvConf(t, s)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := addService(t, userland); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return notes, nil
}

// put adds a regular file, its parent directories 0755, replacing a file
// of that name (rfs.yaml's settings win over --files).
func put(t *rootfs.Tree, p string, perm uint32, content []byte) error {
	if err := t.MkdirAll(path.Dir(p), 0o755); err != nil {
		return err
	}
	if old := t.Lookup(p); old != nil && old.Type != rootfs.Regular {
		return fmt.Errorf("%s: a %s is in the way (from --files?)", p, old.Type)
	}
	return t.Add(p, &rootfs.Node{Type: rootfs.Regular, Perm: perm, MTime: t.MTime, Content: rootfs.Bytes(content)})
}

// linkResolvConf makes /etc/resolv.conf a link to the agent's file in
// /run, so leases never land in the upper. A resolv.conf the user put in
// the tree wins: a fixed resolver is a legitimate choice.
func linkResolvConf(t *rootfs.Tree, s Settings) ([]string, error) {
	if s.Network.Off {
		return nil, nil
	}
	if old := t.Lookup(ResolvConfPath); old != nil {
		if old.Type == rootfs.Symlink && old.Target == agentconf.ResolvConf {
			return nil, nil
		}
		return []string{fmt.Sprintf("%s comes with the files (a %s): kept, so the DNS servers the agent learns (DHCP, network dns:) are not used; leave it out to let the agent manage DNS", ResolvConfPath, old.Type)}, nil
	}
	if err := t.MkdirAll(path.Dir(ResolvConfPath), 0o755); err != nil {
		return nil, err
	}
	return nil, t.Add(ResolvConfPath, &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, MTime: t.MTime, Target: agentconf.ResolvConf})
}

// addService starts the agent at boot under the init's supervisor.
func addService(t *rootfs.Tree, userland string) error {
	const comment = "rfs-agent: network, clock and SSH (rfs.yaml network, time, ssh),\nrestarted with back-off by rfs-init supervise; log in " + agentconf.LogDir + "."
	if userland == "busybox" {
		return apps.AddInittab(t, comment, []string{SuperviseCommand})
	}
	return apps.AddSupervised(t, comment, []string{agentconf.Binary})
}

// Summary describes s for the build log: "network dhcp, time 3 servers,
// ssh 1 key".
func (s Settings) Summary() string {
	var parts []string
	switch {
	case s.Network.Off:
		parts = append(parts, "network off")
	case len(s.Network.Interfaces) > 0:
		parts = append(parts, fmt.Sprintf("network %d interfaces%s", len(s.Network.Interfaces), map[bool]string{true: " + dhcp"}[s.Network.DHCP]))
	case s.Network.DHCP:
		parts = append(parts, "network dhcp")
	default:
		parts = append(parts, "network unmanaged")
	}
	if len(s.Time.Servers) == 0 {
		parts = append(parts, "time off")
	} else {
		parts = append(parts, fmt.Sprintf("time %d servers", len(s.Time.Servers)))
	}
	if n := len(s.Keys); n > 0 {
		parts = append(parts, fmt.Sprintf("ssh %d key%s", n, map[bool]string{true: "s"}[n > 1]))
	}
	return strings.Join(parts, ", ")
}
