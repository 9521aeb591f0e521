package badinput

import (
	"testing"
)

// The device's network, time and SSH settings (rfs.yaml network:, time:,
// ssh:, --network, --ssh-key) are checked before any work: the message
// names the file and line (rfs.yaml's, and the key file's) and the
// problem. Whether an interface exists is known only on the device; its
// name's form is checked here.

const testPubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIELECXPt5QmHTVmehValMeHuKLAQl/FTVT49R1+sitho me@laptop"

// keyFiles writes rfs.yaml and the key files a case names.
func keyFiles(yaml []string, files map[string]string) func(t tester, dir string) {
	return func(t tester, dir string) {
		project(yaml...)(t, dir)
		for name, content := range files {
			writeFile(t, dir, name, content)
		}
	}
}

func TestSettingsDevice(t *testing.T) {
	private := map[string]string{"id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"}
	iface := func(lines ...string) func(t tester, dir string) {
		return project(append([]string{"network:", "  interfaces:", "    eth0:"}, lines...)...)
	}
	runCases(t, []badCase{
		{name: "network flag", args: []string{"build", "--network", "static"}, want: []string{`--network "static": want off or dhcp`}},
		{name: "network word", args: yamlArgs, setup: project("board: qemu-arm64", "network: on"), want: []string{"{dir}/rfs.yaml", `line 2: network "on": want off, dhcp or a map`}},
		{name: "network unknown key", args: yamlArgs, setup: project("network:", "  dchp: true"), want: []string{`line 2: network: unknown key "dchp"`}},
		{name: "address without prefix", args: yamlArgs, setup: iface("      address: 192.168.1.10"), want: []string{`{dir}/rfs.yaml:4: network.interfaces.eth0: address "192.168.1.10": want ADDR/PREFIX`}},
		{name: "address prefix too long", args: yamlArgs, setup: iface("      address: 192.168.1.10/33"), want: []string{`{dir}/rfs.yaml:4: network.interfaces.eth0: address "192.168.1.10/33"`}},
		{name: "gateway not an IP", args: yamlArgs, setup: iface("      address: 192.168.1.10/24", "      gateway: router.lan"), want: []string{`{dir}/rfs.yaml:5: network.interfaces.eth0: gateway "router.lan": not an IP address`}},
		{name: "gateway of the other family", args: yamlArgs, setup: iface("      address: 192.168.1.10/24", "      gateway: fd00::1"), want: []string{"{dir}/rfs.yaml:5: network.interfaces.eth0: gateway fd00::1: not of address 192.168.1.10/24's family"}},
		{name: "dns not an IP", args: yamlArgs, setup: iface("      address: 192.168.1.10/24", "      dns: [192.168.1.1, dns.google]"), want: []string{`{dir}/rfs.yaml:5: network.interfaces.eth0: dns "dns.google": not an IP address`}},
		{name: "interface neither dhcp nor address", args: yamlArgs, setup: iface("      gateway: 192.168.1.1"), want: []string{"{dir}/rfs.yaml:3: network.interfaces.eth0: give dhcp: true or a static address"}},
		{name: "interface name too long", args: yamlArgs, setup: project("network:", "  interfaces:", "    enp0s31f6-uplink0: {dhcp: true}"), want: []string{`{dir}/rfs.yaml:3: network.interfaces "enp0s31f6-uplink0": interface name of 17 bytes: at most 15`}},
		{name: "interface name with slash", args: yamlArgs, setup: project("network:", "  interfaces:", "    eth/0: {dhcp: true}"), want: []string{`{dir}/rfs.yaml:3: network.interfaces "eth/0": '/' is not allowed`}},
		{name: "interface name with space", args: yamlArgs, setup: project("network:", "  interfaces:", "    'eth 0': {dhcp: true}"), want: []string{`{dir}/rfs.yaml:3: network.interfaces "eth 0": ' ' is not allowed`}},
		{name: "interface name empty", args: yamlArgs, setup: project("network:", "  interfaces:", "    '': {dhcp: true}"), want: []string{`{dir}/rfs.yaml:3: network.interfaces "": empty interface name`}},
		{name: "time word", args: yamlArgs, setup: project("time: pool"), want: []string{`line 1: time "pool": want off or`}},
		{name: "time server with space", args: yamlArgs, setup: project("time:", "  servers:", "    - ntp.lan", "    - 'ntp lan'"), want: []string{`{dir}/rfs.yaml:4: time.servers "ntp lan"`, "not allowed in a host name"}},
		{name: "time server port", args: yamlArgs, setup: project("time:", "  servers: ['ntp.lan:99999']"), want: []string{`{dir}/rfs.yaml:2: time.servers "ntp.lan:99999": port "99999": want 1-65535`}},
		{name: "ssh port", args: yamlArgs, setup: project("ssh:", "  port: 70000"), want: []string{"{dir}/rfs.yaml:2: ssh.port: 70000: want 1-65535"}},
		{name: "key file unreadable", args: yamlArgs, setup: project("ssh:", "  authorized_keys:", "    - keys/me.pub"), want: []string{"{dir}/rfs.yaml:3: ssh.authorized_keys: SSH key file", "keys/me.pub", "no such file"}},
		{name: "key file is a directory", args: yamlArgs, setup: keyFiles([]string{"ssh:", "  authorized_keys: [keys]"}, map[string]string{"keys/x": "x"}), want: []string{"{dir}/rfs.yaml:2: ssh.authorized_keys", "directory"}},
		{name: "private key in rfs.yaml", args: yamlArgs, setup: keyFiles([]string{"ssh:", "  authorized_keys:", "    - id_ed25519"}, private),
			want: []string{"{dir}/rfs.yaml:3: ssh.authorized_keys: {dir}/id_ed25519:1: {dir}/id_ed25519 is a private key; give the .pub file"}},
		{name: "private key flag", args: []string{"build", "--ssh-key", "{dir}/id_ed25519"}, setup: keyFiles(nil, private), want: []string{"--ssh-key: {dir}/id_ed25519:1: {dir}/id_ed25519 is a private key; give the .pub file"}},
		{name: "malformed key line", args: []string{"build", "--ssh-key", "{dir}/me.pub"}, setup: keyFiles(nil, map[string]string{"me.pub": "# mine\n" + testPubKey + "\nssh-ed25519 AAAAC3Nza\n"}), want: []string{"--ssh-key: {dir}/me.pub:3: not an OpenSSH public key"}},
		{name: "key with options", args: yamlArgs, setup: project("ssh:", "  authorized_keys:", `    - 'command="/bin/date" `+testPubKey+`'`), want: []string{"{dir}/rfs.yaml:3: ssh.authorized_keys: key options (command=\"/bin/date\") are not supported"}},
		{name: "inline key truncated", args: yamlArgs, setup: project("ssh:", "  authorized_keys:", "    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA me"), want: []string{"{dir}/rfs.yaml:3: ssh.authorized_keys: not an OpenSSH public key"}},
		{name: "empty key file", args: []string{"build", "--ssh-key", "{dir}/me.pub"}, setup: keyFiles(nil, map[string]string{"me.pub": "\n# none\n"}), want: []string{"--ssh-key: {dir}/me.pub: no public key in it"}},
	})
}
