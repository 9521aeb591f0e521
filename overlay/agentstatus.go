package overlay

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rfsbuild/rfs/agentconf"
)

// maxAgentStatus bounds the read of agentconf.StatusFile.
const maxAgentStatus = 1 << 20

// readAgentStatus reads the agent's status file; no file is nil, nil.
func readAgentStatus(path string) (*agentconf.Status, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAgentStatus+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", agentconf.StatusFile, err)
	}
	if len(b) > maxAgentStatus {
		return nil, fmt.Errorf("%s: larger than 1 MiB", agentconf.StatusFile)
	}
	var a agentconf.Status
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", agentconf.StatusFile, err)
	}
	return &a, nil
}

// writeAgentText is the agent's part of `rfs-init status`: hostname,
// interfaces, DNS, clock and SSH.
func writeAgentText(out io.Writer, a *agentconf.Status) {
	w := func(k, v string) { fmt.Fprintf(out, "%-14s %s\n", k+":", v) }
	if a.Hostname != "" {
		w("hostname", a.Hostname)
	}
	for i := range a.Interfaces {
		writeIfaceText(w, &a.Interfaces[i])
	}
	if len(a.Interfaces) == 0 {
		w("interfaces", "none configured")
	}
	if len(a.DNS) > 0 {
		w("dns", strings.Join(a.DNS, " "))
	}
	w("clock", clockText(&a.Clock))
	writeSSHText(w, &a.SSH)
	w("agent status", "updated "+timeText(a.Updated))
}

func writeIfaceText(w func(k, v string), i *agentconf.IfaceStatus) {
	line := i.Name + " " + i.State + " " + i.Mode
	if i.MAC != "" {
		line += " " + i.MAC
	}
	w("interface", line)
	if len(i.Addresses) > 0 {
		w("  address", strings.Join(i.Addresses, " "))
	}
	if i.Gateway != "" {
		w("  gateway", i.Gateway)
	}
	if len(i.DNS) > 0 {
		w("  dns", strings.Join(i.DNS, " "))
	}
	if i.DHCPServer != "" || !i.LeaseExpiry.IsZero() {
		w("  lease", "from "+orUnknown(i.DHCPServer)+" until "+timeText(i.LeaseExpiry))
	}
	if i.Error != "" {
		w("  error", i.Error)
	}
}

func clockText(c *agentconf.ClockStatus) string {
	s := "not synchronized"
	if c.Synchronized {
		s = "synchronized"
	}
	s += " (source " + orUnknown(c.Source)
	if c.Server != "" {
		s += ", server " + c.Server
	}
	if !c.LastSync.IsZero() {
		s += ", last sync " + timeText(c.LastSync)
	}
	s += ")"
	if c.Error != "" {
		s += "; " + c.Error
	}
	return s
}

func writeSSHText(w func(k, v string), s *agentconf.SSHStatus) {
	switch {
	case s.Enabled:
		keys := "host keys in /run (a new identity every boot)"
		if s.Persistent {
			keys = "host keys persistent"
		}
		w("ssh", "listening on "+orUnknown(s.Listen)+", "+keys)
	default:
		w("ssh", "off")
	}
	for _, k := range s.HostKeys {
		w("  host key", k)
	}
	if s.Error != "" {
		w("  error", s.Error)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.UTC().Format(time.RFC3339)
}
