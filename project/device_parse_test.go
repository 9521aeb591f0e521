package project

import (
	"strings"
	"testing"
)

func TestParseDevice(t *testing.T) {
	tests := []struct {
		name, in string
		check    func(*File) bool
		wantErr  string
	}{
		{"absent", "board: qemu-arm64\n", func(f *File) bool { return f.Network == nil && f.Time == nil && f.SSH == nil }, ""},
		{"network off", "network: off\n", func(f *File) bool { return f.Network.Off && f.Network.Line == 1 }, ""},
		{"network dhcp", "network: dhcp\n", func(f *File) bool { return *f.Network.DHCP }, ""},
		{"network map", "network:\n  dhcp: false\n  interfaces:\n    eth1:\n      address: 10.0.0.2/8\n      gateway: 10.0.0.1\n      dns: [10.0.0.1]\n    eth0: {dhcp: true}\n",
			func(f *File) bool {
				n := f.Network
				return !*n.DHCP && len(n.Interfaces) == 2 && n.Interfaces[0].Name == "eth1" && n.Interfaces[0].Lines["gateway"] == 6 &&
					n.Interfaces[0].DNS[0] == "10.0.0.1" && n.Interfaces[1].DHCP
			}, ""},
		{"network bad word", "network: on\n", nil, `line 1: network "on": want off, dhcp or a map`},
		{"network unknown key", "network:\n  dchp: true\n", nil, `line 2: network: unknown key "dchp" (want dhcp, interfaces)`},
		{"interface unknown key", "network:\n  interfaces:\n    eth0:\n      adress: 10.0.0.2/8\n", nil, `line 4: network.interfaces.eth0: unknown key "adress"`},
		{"interface not a map", "network:\n  interfaces:\n    eth0: static\n", nil, "line 3: network.interfaces.eth0: want a map"},
		{"dhcp not bool", "network:\n  dhcp: maybe\n", nil, "line 2: network.dhcp"},
		{"time off", "time: off\n", func(f *File) bool { return f.Time.Off }, ""},
		{"time servers", "time:\n  servers:\n    - ntp.lan\n    - 10.0.0.1:123\n", func(f *File) bool {
			return len(f.Time.Servers) == 2 && f.Time.ServerLines[1] == 4
		}, ""},
		{"time bad", "time: pool\n", nil, `line 1: time "pool": want off or`},
		{"ssh", "ssh:\n  port: 2222\n  authorized_keys:\n    - keys/me.pub\n", func(f *File) bool {
			return f.SSH.Port == 2222 && f.SSH.AuthorizedKeys[0] == "keys/me.pub" && f.SSH.KeyLines[0] == 4
		}, ""},
		{"ssh port text", "ssh:\n  port: ssh\n", nil, "line 2: ssh.port"},
		{"ssh unknown", "ssh:\n  keys: [a]\n", nil, `line 2: ssh: unknown key "keys"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(f) {
				t.Fatalf("Parse = %+v", f)
			}
		})
	}
}
