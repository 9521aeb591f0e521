package agentsetup

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/rootfs"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIELECXPt5QmHTVmehValMeHuKLAQl/FTVT49R1+sitho me@laptop"

func TestParseKey(t *testing.T) {
	for _, c := range []struct {
		name, in, want, err string
	}{
		{name: "ed25519", in: testKey, want: testKey},
		{name: "spaces around", in: "  " + testKey + "\t", want: testKey},
		{name: "no comment", in: strings.TrimSuffix(testKey, " me@laptop"), want: strings.TrimSuffix(testKey, " me@laptop")},
		{name: "options refused", in: `from="10.0.0.0/8" ` + testKey, err: "key options (from=\"10.0.0.0/8\") are not supported"},
		{name: "truncated", in: testKey[:40], err: "not an OpenSSH public key"},
		{name: "garbage", in: "hello", err: "not an OpenSSH public key"},
		{name: "private", in: "-----BEGIN OPENSSH PRIVATE KEY-----", err: "private key; give the .pub file"},
		{name: "two lines", in: testKey + "\n" + testKey, err: "one key per line"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseKey(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("ParseKey = %q, %v; want error %q", got, err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ParseKey = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.pub", "# mine\n\n"+testKey+"\n")
	private := write("id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
	bad := write("bad.pub", testKey+"\nssh-ed25519 AAAA!!\n")
	empty := write("empty.pub", "# nothing\n")
	for _, c := range []struct {
		path, err string
		n         int
	}{
		{path: good, n: 1},
		{path: private, err: private + ":1: " + private + " is a private key; give the .pub file"},
		{path: bad, err: bad + ":2: not an OpenSSH public key"},
		{path: empty, err: empty + ": no public key in it"},
		{path: filepath.Join(dir, "missing.pub"), err: "missing.pub"},
		{path: dir, err: "directory"},
	} {
		keys, err := ReadKeyFile(c.path)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.path, err, c.err)
			}
			continue
		}
		if err != nil || len(keys) != c.n {
			t.Errorf("%s: %d keys, %v; want %d", c.path, len(keys), err, c.n)
		}
	}
}

func TestIsInlineKey(t *testing.T) {
	for in, want := range map[string]bool{
		testKey: true, "keys/me.pub": false, "/home/me/.ssh/id_ed25519.pub": false,
		"ecdsa-sha2-nistp256 AAAA": true, "-----BEGIN OPENSSH PRIVATE KEY-----": true, "ssh-keys.pub": true, `from="10.0.0.0/8" ssh-ed25519 AAAA`: true, "my keys/ssh.pub": false,
	} {
		if got := IsInlineKey(in); got != want {
			t.Errorf("IsInlineKey(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestCheckInterface(t *testing.T) {
	for _, c := range []struct {
		name string
		ifc  agentconf.Interface
		err  string
	}{
		{name: "dhcp", ifc: agentconf.Interface{Name: "eth0", DHCP: true}},
		{name: "static v4", ifc: agentconf.Interface{Name: "eth0", Address: "192.168.1.10/24", Gateway: "192.168.1.1", DNS: []string{"192.168.1.1", "fd00::53"}}},
		{name: "static v6", ifc: agentconf.Interface{Name: "eth0", Address: "fd00::10/64", Gateway: "fd00::1"}},
		{name: "neither", ifc: agentconf.Interface{Name: "eth0"}, err: "give dhcp: true or a static address"},
		{name: "both", ifc: agentconf.Interface{Name: "eth0", DHCP: true, Address: "10.0.0.2/8"}, err: "choose one"},
		{name: "no prefix", ifc: agentconf.Interface{Name: "eth0", Address: "10.0.0.2"}, err: `address "10.0.0.2": want ADDR/PREFIX`},
		{name: "prefix too long", ifc: agentconf.Interface{Name: "eth0", Address: "10.0.0.2/33"}, err: "want ADDR/PREFIX"},
		{name: "gateway not IP", ifc: agentconf.Interface{Name: "eth0", Address: "10.0.0.2/8", Gateway: "router"}, err: `gateway "router": not an IP address`},
		{name: "gateway family", ifc: agentconf.Interface{Name: "eth0", Address: "10.0.0.2/8", Gateway: "fd00::1"}, err: "not of address 10.0.0.2/8's family"},
		{name: "gateway with dhcp", ifc: agentconf.Interface{Name: "eth0", DHCP: true, Gateway: "10.0.0.1"}, err: "gateway needs a static address"},
		{name: "bad dns", ifc: agentconf.Interface{Name: "eth0", Address: "10.0.0.2/8", DNS: []string{"dns.google"}}, err: `dns "dns.google": not an IP address`},
	} {
		err := CheckInterface(c.ifc)
		if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
	}
}

func TestCheckInterfaceName(t *testing.T) {
	for name, bad := range map[string]bool{
		"eth0": false, "enp0s31f6": false, "usb0": false, "wlan0": false, "abcdefghijklmno": false,
		"": true, "abcdefghijklmnop": true, "a/b": true, "a b": true, "eth0:1": true, "..": true, "a\tb": true,
	} {
		if err := CheckInterfaceName(name); (err != nil) != bad {
			t.Errorf("CheckInterfaceName(%q) = %v, want bad=%v", name, err, bad)
		}
	}
}

func TestCheckServer(t *testing.T) {
	for s, bad := range map[string]bool{
		"pool.ntp.org": false, "time.example.com:123": false, "10.0.0.1": false, "10.0.0.1:1123": false,
		"fd00::1": false, "[fd00::1]:123": false, "ntp_1.lan": false,
		"": true, "host:": true, "host:0": true, "host:70000": true, "a b": true, "-x.org": true, "a..b": true, "[fd00::1": true,
	} {
		if err := CheckServer(s); (err != nil) != bad {
			t.Errorf("CheckServer(%q) = %v, want bad=%v", s, err, bad)
		}
	}
}

func TestEnabled(t *testing.T) {
	off := Settings{Network: agentconf.Network{Off: true}}
	if off.Enabled() {
		t.Error("network off, time off, no keys: agent enabled")
	}
	if !Default().Enabled() {
		t.Error("default: agent not enabled")
	}
	off.Keys = []string{testKey}
	if !off.Enabled() {
		t.Error("keys only: agent not enabled")
	}
}

// The configuration's bytes are the same for the same settings.
func TestConfigDeterministic(t *testing.T) {
	s := Default()
	s.Network.Interfaces = []agentconf.Interface{{Name: "eth0", Address: "10.0.0.2/8", DNS: []string{"10.0.0.1"}}}
	a, _ := MarshalConfig(s.Config("kiosk"))
	b, _ := MarshalConfig(s.Config("kiosk"))
	if !bytes.Equal(a, b) {
		t.Fatal("two marshals differ")
	}
	c, err := agentconf.ParseConfig(bytes.NewReader(a))
	if err != nil || c.Hostname != "kiosk" || c.Version != 1 || len(c.Time.Servers) != 3 || c.Network.Interfaces[0].Address != "10.0.0.2/8" {
		t.Fatalf("round trip: %+v, %v", c, err)
	}
}

func readNode(t *testing.T, tr *rootfs.Tree, p string) (*rootfs.Node, string) {
	t.Helper()
	n := tr.Lookup(p)
	if n == nil {
		t.Fatalf("%s missing", p)
	}
	if n.Type != rootfs.Regular {
		return n, ""
	}
	r, _ := n.Content.Open()
	defer r.Close()
	b, _ := io.ReadAll(r)
	return n, string(b)
}

func TestInstall(t *testing.T) {
	for _, userland := range []string{"busybox", "u-root"} {
		t.Run(userland, func(t *testing.T) {
			tr := rootfs.New(100)
			if err := (rootfs.Skeleton{Hostname: "kiosk"}).Add(tr); err != nil {
				t.Fatal(err)
			}
			s := Default()
			s.Keys = []string{testKey}
			notes, err := Install(tr, s, "kiosk", []byte("\x7fELF"), userland)
			if err != nil || len(notes) != 0 {
				t.Fatalf("Install: %v %v", notes, err)
			}
			if n, _ := readNode(t, tr, agentconf.Binary); n.Perm != 0o755 {
				t.Errorf("binary mode %o", n.Perm)
			}
			_, cfg := readNode(t, tr, agentconf.ConfigFile)
			if !strings.Contains(cfg, `"hostname": "kiosk"`) || !strings.Contains(cfg, "pool.ntp.org") {
				t.Errorf("config:\n%s", cfg)
			}
			if n, keys := readNode(t, tr, agentconf.AuthorizedKeysFile); keys != testKey+"\n" || n.Perm != 0o644 {
				t.Errorf("authorized_keys %o %q", n.Perm, keys)
			}
			if n, _ := readNode(t, tr, ResolvConfPath); n.Type != rootfs.Symlink || n.Target != agentconf.ResolvConf {
				t.Errorf("resolv.conf: %v -> %s", n.Type, n.Target)
			}
			if userland == "busybox" {
				if _, tab := readNode(t, tr, "/etc/inittab"); !strings.Contains(tab, "\n::respawn:"+SuperviseCommand+"\n") {
					t.Errorf("inittab:\n%s", tab)
				}
			} else if _, svc := readNode(t, tr, datapart.ServicesFile); !strings.HasSuffix(svc, "\n"+agentconf.Binary+"\n") {
				t.Errorf("services:\n%s", svc)
			}
		})
	}
}

func TestInstallKeepsUsersResolvConf(t *testing.T) {
	tr := rootfs.New(100)
	if err := (rootfs.Skeleton{}).Add(tr); err != nil {
		t.Fatal(err)
	}
	tr.Add(ResolvConfPath, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, Content: rootfs.Bytes("nameserver 10.0.0.1\n")})
	s := Default()
	notes, err := Install(tr, s, "rfs", []byte("x"), "busybox")
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "/etc/resolv.conf comes with the files (a file): kept") {
		t.Fatalf("Install: %q, %v", notes, err)
	}
	if tr.Lookup(agentconf.AuthorizedKeysFile) != nil {
		t.Error("authorized_keys without keys")
	}
	if _, c := readNode(t, tr, ResolvConfPath); c != "nameserver 10.0.0.1\n" {
		t.Errorf("resolv.conf replaced: %q", c)
	}
}
