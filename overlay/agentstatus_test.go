package overlay

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/agentconf"
)

var sampleTime = time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)

func sampleAgent() *agentconf.Status {
	return &agentconf.Status{
		Updated:  sampleTime,
		Hostname: "pi-kitchen",
		Interfaces: []agentconf.IfaceStatus{
			{Name: "eth0", MAC: "dc:a6:32:00:00:01", State: "up", Mode: "dhcp",
				Addresses: []string{"10.0.2.15/24", "fec0::5054:ff:fe12:3456/64"}, Gateway: "10.0.2.2",
				DNS: []string{"10.0.2.3"}, DHCPServer: "10.0.2.2", LeaseExpiry: sampleTime.Add(time.Hour)},
			{Name: "usb0", State: "no-carrier", Mode: "static", Addresses: []string{"192.168.7.2/24"}},
			{Name: "eth1", State: "up", Mode: "dhcp", Error: "no DHCP offer; retrying in 8s"},
		},
		DNS:   []string{"10.0.2.3"},
		Clock: agentconf.ClockStatus{Synchronized: true, Source: "ntp", Server: "10.0.2.2:123", LastSync: sampleTime},
		SSH: agentconf.SSHStatus{Enabled: true, Listen: ":22", Persistent: true,
			HostKeys: []string{"ssh-ed25519 SHA256:abc", "ecdsa-sha2-nistp256 SHA256:def"}},
	}
}

func TestWriteAgentText(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *agentconf.Status
		want string
	}{
		{"full", sampleAgent(), `hostname:      pi-kitchen
interface:     eth0 up dhcp dc:a6:32:00:00:01
  address:     10.0.2.15/24 fec0::5054:ff:fe12:3456/64
  gateway:     10.0.2.2
  dns:         10.0.2.3
  lease:       from 10.0.2.2 until 2026-12-02T14:00:00Z
interface:     usb0 no-carrier static
  address:     192.168.7.2/24
interface:     eth1 up dhcp
  error:       no DHCP offer; retrying in 8s
dns:           10.0.2.3
clock:         synchronized (source ntp, server 10.0.2.2:123, last sync 2026-12-02T13:00:00Z)
ssh:           listening on :22, host keys persistent
  host key:    ssh-ed25519 SHA256:abc
  host key:    ecdsa-sha2-nistp256 SHA256:def
agent status:  updated 2026-12-02T13:00:00Z
`},
		{"offline, no key", &agentconf.Status{
			Updated: sampleTime,
			Clock:   agentconf.ClockStatus{Source: "saved", Error: "no NTP reply from 0.pool.ntp.org"},
			SSH:     agentconf.SSHStatus{Error: "/etc/rfs/ssh/authorized_keys line 2: a private key"},
		}, `interfaces:    none configured
clock:         not synchronized (source saved); no NTP reply from 0.pool.ntp.org
ssh:           off
  error:       /etc/rfs/ssh/authorized_keys line 2: a private key
agent status:  updated 2026-12-02T13:00:00Z
`},
		{"ssh in /run, zero times", &agentconf.Status{
			Interfaces: []agentconf.IfaceStatus{{Name: "eth0", State: "up", Mode: "dhcp", DHCPServer: "10.0.2.2"}},
			SSH:        agentconf.SSHStatus{Enabled: true},
		}, `interface:     eth0 up dhcp
  lease:       from 10.0.2.2 until ?
clock:         not synchronized (source ?)
ssh:           listening on ?, host keys in /run (a new identity every boot)
agent status:  updated ?
`},
	} {
		var b bytes.Buffer
		writeAgentText(&b, tc.in)
		if b.String() != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.name, b.String(), tc.want)
		}
	}
}

// writeJSONFile writes v to root/p.
func writeJSONFile(t *testing.T, root, p string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
	if err := os.WriteFile(filepath.Join(root, p), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLiveStatusAgent: the agent's own file wins over the copy in
// status.json; a damaged one is a warning, not a failure; a configured
// agent without a status is pointed out; text and JSON show it.
func TestLiveStatusAgent(t *testing.T) {
	merged := &agentconf.Status{Hostname: "from-status-json"}
	for _, tc := range []struct {
		name      string
		inStatus  *agentconf.Status // the "agent" key of status.json
		file      any               // agentconf.StatusFile: nil none, string raw
		config    bool              // agentconf.ConfigFile present
		hostname  string            // of the agent status shown, "" none
		warning   string
		wantInTxt string
	}{
		{"agent file", merged, sampleAgent(), true, "pi-kitchen", "", "ssh:           listening on :22"},
		{"merged only", merged, nil, true, "from-status-json", "", "hostname:      from-status-json"},
		{"damaged file", merged, "{not json", true, "from-status-json", "agent status: /run/rfs/agent.json: ", "hostname:      from-status-json"},
		{"configured, no status", nil, nil, true, "", "the agent is configured (/etc/rfs/agent.json) but has published no status (/run/rfs/agent.json); see /run/rfs/log/rfs-agent.log", "warning:"},
		{"no agent", nil, nil, false, "", "", "version:       v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeJSONFile(t, root, StatusPath, &Status{Version: "v1", Mode: "tmpfs", Agent: tc.inStatus})
			switch f := tc.file.(type) {
			case string:
				os.WriteFile(filepath.Join(root, agentconf.StatusFile), []byte(f), 0o644)
			case *agentconf.Status:
				writeJSONFile(t, root, agentconf.StatusFile, f)
			}
			if tc.config {
				writeJSONFile(t, root, agentconf.ConfigFile, map[string]int{"version": 1})
			}
			s, err := liveStatus(root)
			if err != nil {
				t.Fatal(err)
			}
			host := ""
			if s.Agent != nil {
				host = s.Agent.Hostname
			}
			if host != tc.hostname {
				t.Errorf("agent %+v, want hostname %q", s.Agent, tc.hostname)
			}
			if w := strings.Join(s.Warnings, "\n"); tc.warning == "" && w != "" || !strings.Contains(w, tc.warning) {
				t.Errorf("warnings %q, want %q", w, tc.warning)
			}
			var txt bytes.Buffer
			writeStatusText(&txt, s)
			if !strings.Contains(txt.String(), tc.wantInTxt) {
				t.Errorf("text lacks %q:\n%s", tc.wantInTxt, txt.String())
			}
			j, _ := json.Marshal(s)
			if strings.Contains(string(j), `"agent":`) != (tc.hostname != "") {
				t.Errorf("json: %s", j)
			}
		})
	}
}

// TestWriteStatusKeepsAgent: the init's rewrites of status.json keep the
// agent's merged status, unless they carry one.
func TestWriteStatusKeepsAgent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status.json")
	if err := WriteStatus(p, &Status{Version: "v1", Agent: sampleAgent()}); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatus(p, &Status{Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	s, err := ReadStatus(p)
	if err != nil || s.Version != "v2" || s.Agent == nil || s.Agent.Hostname != "pi-kitchen" || len(s.Agent.Interfaces) != 3 {
		t.Fatalf("after a rewrite: %+v %v", s, err)
	}
	WriteStatus(p, &Status{Version: "v3", Agent: &agentconf.Status{Hostname: "new"}})
	if s, _ := ReadStatus(p); s.Agent.Hostname != "new" {
		t.Errorf("agent not replaced: %+v", s.Agent)
	}
}

// TestStatusTextBootClock: the init's own clock step is one line, shown
// only when the init set the clock.
func TestStatusTextBootClock(t *testing.T) {
	for _, tc := range []struct {
		clock *ClockStatus
		want  string
	}{
		{&ClockStatus{Source: ClockSaved, Kernel: "1970-01-01T00:00:05Z", SetTo: "2026-12-02T13:00:00Z"},
			"boot clock:    set from 1970-01-01T00:00:05Z to the saved time 2026-12-02T13:00:00Z\n"},
		{&ClockStatus{Source: ClockKernel, Kernel: "2026-12-02T13:00:00Z"}, ""},
		{nil, ""},
	} {
		var b bytes.Buffer
		writeStatusText(&b, &Status{Clock: tc.clock})
		got := ""
		for _, l := range strings.SplitAfter(b.String(), "\n") {
			if strings.HasPrefix(l, "boot clock:") {
				got += l
			}
		}
		if got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.clock, got, tc.want)
		}
	}
}
