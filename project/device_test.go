package project

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/agentsetup"
)

const (
	edKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIELECXPt5QmHTVmehValMeHuKLAQl/FTVT49R1+sitho me@laptop"
	edKey2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIELECXPt5QmHTVmehValMeHuKLAQl/FTVT49R1+sitho other"
	rsaKey = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDfBMXPqGmnHR5Nnz4n2bq7i3TPVTEA8nzO4Uq3q8ExbBvJ8FmyxRXO8Hy3gwCKXbxBcLt5SrKZWv2jxxNrS4bx0y3VLbD4MV2X6b1gYpNKEyOVL4XbQh2XKpAOlv7WbZ6u5S4JQGbLz4GkJEnRrD3+vZpW7MaW3eJv4HNzxbBkBw== rsa@x"
)

func TestResolveDevice(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("keys/me.pub", edKey+"\n")
	priv := write("keys/id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n")
	write("keys/bad.pub", "# ok\nssh-ed25519 AAAA\n")
	tests := []struct {
		name    string
		yaml    string
		flags   BuildFlags
		changed []string
		check   func(t *testing.T, s *agentsetup.Settings)
		wantErr string // {yaml} is the project file's path
	}{
		{name: "defaults", check: func(t *testing.T, s *agentsetup.Settings) {
			if !s.Network.DHCP || s.Network.Off || !slices.Equal(s.Time.Servers, agentconf.DefaultNTPServers) || len(s.Keys) != 0 || !s.Enabled() {
				t.Errorf("%+v", s)
			}
		}},
		{name: "all off", yaml: "network: off\ntime: off\n", check: func(t *testing.T, s *agentsetup.Settings) {
			if !s.Network.Off || len(s.Time.Servers) != 0 || s.Enabled() {
				t.Errorf("%+v", s)
			}
		}},
		{name: "flag network off", flags: BuildFlags{Network: "off"}, changed: []string{"network"}, check: func(t *testing.T, s *agentsetup.Settings) {
			if !s.Network.Off {
				t.Errorf("%+v", s)
			}
		}},
		{name: "flag network bad", flags: BuildFlags{Network: "static"}, changed: []string{"network"}, wantErr: `--network "static": want off or dhcp`},
		{name: "static and dhcp, sorted", yaml: "network:\n  dhcp: false\n  interfaces:\n    usb0: {address: 10.0.0.2/24, gateway: 10.0.0.1, dns: [10.0.0.1]}\n    eth0: {dhcp: true}\n",
			check: func(t *testing.T, s *agentsetup.Settings) {
				n := s.Network
				if n.DHCP || len(n.Interfaces) != 2 || n.Interfaces[0].Name != "eth0" || n.Interfaces[1].Gateway != "10.0.0.1" {
					t.Errorf("%+v", n)
				}
			}},
		{name: "bad address", yaml: "board: qemu-arm64\nnetwork:\n  interfaces:\n    eth0:\n      address: 10.0.0.2/33\n", wantErr: `{yaml}:5: network.interfaces.eth0: address "10.0.0.2/33": want ADDR/PREFIX`},
		{name: "gateway family", yaml: "network:\n  interfaces:\n    eth0:\n      address: 10.0.0.2/24\n      gateway: fd00::1\n", wantErr: "{yaml}:5: network.interfaces.eth0: gateway fd00::1: not of address 10.0.0.2/24's family"},
		{name: "gateway not IP", yaml: "network:\n  interfaces:\n    eth0:\n      address: 10.0.0.2/24\n      gateway: router\n", wantErr: `{yaml}:5: network.interfaces.eth0: gateway "router": not an IP address`},
		{name: "bad dns", yaml: "network:\n  interfaces:\n    eth0:\n      address: 10.0.0.2/24\n      dns: [1.1.1.1, one]\n", wantErr: `{yaml}:5: network.interfaces.eth0: dns "one": not an IP address`},
		{name: "interface name too long", yaml: "network:\n  interfaces:\n    averyveryverylongname0: {dhcp: true}\n", wantErr: `{yaml}:3: network.interfaces "averyveryverylongname0": interface name of 22 bytes: at most 15`},
		{name: "interface name slash", yaml: "network:\n  interfaces:\n    eth/0: {dhcp: true}\n", wantErr: `{yaml}:3: network.interfaces "eth/0": '/' is not allowed`},
		{name: "interface neither", yaml: "network:\n  interfaces:\n    eth0: {}\n", wantErr: "{yaml}:3: network.interfaces.eth0: give dhcp: true or a static address"},
		{name: "time servers", yaml: "time:\n  servers: [ntp.lan, '10.0.0.1:123']\n", check: func(t *testing.T, s *agentsetup.Settings) {
			if !slices.Equal(s.Time.Servers, []string{"ntp.lan", "10.0.0.1:123"}) {
				t.Errorf("%+v", s.Time)
			}
		}},
		{name: "time bad server", yaml: "time:\n  servers:\n    - ntp.lan\n    - 'ntp lan'\n", wantErr: `{yaml}:4: time.servers "ntp lan"`},
		{name: "keys from file and inline, deduplicated", yaml: "ssh:\n  port: 2222\n  authorized_keys:\n    - keys/me.pub\n    - " + rsaKey + "\n    - " + edKey2 + "\n",
			check: func(t *testing.T, s *agentsetup.Settings) {
				if !slices.Equal(s.Keys, []string{edKey, rsaKey}) || s.SSH.Port != 2222 {
					t.Errorf("%+v", s)
				}
			}},
		{name: "key file missing", yaml: "ssh:\n  authorized_keys: [keys/nope.pub]\n", wantErr: "{yaml}:2: ssh.authorized_keys: SSH key file"},
		{name: "private key", yaml: "ssh:\n  authorized_keys:\n    - keys/id_ed25519\n", wantErr: "{yaml}:3: ssh.authorized_keys: " + priv + ":1: " + priv + " is a private key; give the .pub file"},
		{name: "malformed key line", yaml: "ssh:\n  authorized_keys:\n    - keys/bad.pub\n", wantErr: "keys/bad.pub:2: not an OpenSSH public key"},
		{name: "bad port", yaml: "ssh:\n  port: 70000\n", wantErr: "{yaml}:2: ssh.port: 70000: want 1-65535"},
		{name: "flag key replaces file's", yaml: "ssh:\n  authorized_keys: [keys/nope.pub]\n", flags: BuildFlags{SSHKeys: []string{filepath.Join(dir, "keys/me.pub")}}, changed: []string{"ssh-key"},
			check: func(t *testing.T, s *agentsetup.Settings) {
				if !slices.Equal(s.Keys, []string{edKey}) {
					t.Errorf("%+v", s.Keys)
				}
			}},
		{name: "flag private key", flags: BuildFlags{SSHKeys: []string{priv}}, changed: []string{"ssh-key"}, wantErr: "--ssh-key: " + priv + ":1: " + priv + " is a private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.flags
			if tt.yaml != "" {
				f.Config = write(strings.ReplaceAll(t.Name(), "/", "_")+".yaml", tt.yaml)
			} else {
				f.Config = write("empty.yaml", "")
			}
			f.Changed = func(name string) bool { return slices.Contains(tt.changed, name) }
			f.Getenv = func(string) string { return "" }
			c, err := ResolveBuild(f)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "{yaml}", f.Config)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c.Device)
		})
	}
}
