package builder

import (
	"bytes"
	"debug/elf"
	"io"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/agentsetup"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

const agentTestKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIELECXPt5QmHTVmehValMeHuKLAQl/FTVT49R1+sitho me@laptop"

// openLower reads an image's root partition as a tree whose files stay
// readable until the test ends.
func openLower(t *testing.T, path string) *rootfs.Tree {
	t.Helper()
	disk, err := image.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	rp, err := disk.Partition(image.RootPartition)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := squashfs.Open(disk.Section(rp))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := sq.ToTree()
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func nodeBytes(t *testing.T, tree *rootfs.Tree, p string) (*rootfs.Node, []byte) {
	t.Helper()
	n := tree.Lookup(p)
	if n == nil {
		t.Fatalf("%s is not in the lower", p)
	}
	if n.Type != rootfs.Regular {
		return n, nil
	}
	r, err := n.Content.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return n, b
}

// The default device settings put the agent, its configuration, the
// keys, the resolv.conf link and the inittab line into the lower; two
// builds write the same agent.json.
func TestAgentInLower(t *testing.T) {
	var configs [][]byte
	for range 2 {
		c := config(t, "qemu-arm64")
		c.Hostname = "kiosk"
		s := agentsetup.Default()
		s.Keys = []string{agentTestKey}
		s.Network.Interfaces = []agentconf.Interface{{Name: "eth1", Address: "10.0.0.2/24", Gateway: "10.0.0.1", DNS: []string{"10.0.0.1"}}}
		c.Device = &s
		tree := openLower(t, build(t, c).Path)

		n, bin := nodeBytes(t, tree, agentconf.Binary)
		if n.Perm != 0o755 {
			t.Errorf("agent mode %04o", n.Perm)
		}
		if f, err := elf.NewFile(bytes.NewReader(bin)); err != nil || f.Machine != elf.EM_AARCH64 {
			t.Errorf("agent is not an arm64 executable: %v", err)
		}
		_, cfg := nodeBytes(t, tree, agentconf.ConfigFile)
		got, err := agentconf.ParseConfig(bytes.NewReader(cfg))
		if err != nil || got.Hostname != "kiosk" || !got.Network.DHCP || got.Network.Interfaces[0].Address != "10.0.0.2/24" {
			t.Errorf("agent.json: %v\n%s", err, cfg)
		}
		configs = append(configs, cfg)
		if n, keys := nodeBytes(t, tree, agentconf.AuthorizedKeysFile); n.Perm != 0o644 || string(keys) != agentTestKey+"\n" {
			t.Errorf("authorized_keys %04o %q", n.Perm, keys)
		}
		if n, _ := nodeBytes(t, tree, "/etc/resolv.conf"); n.Type != rootfs.Symlink || n.Target != agentconf.ResolvConf {
			t.Errorf("/etc/resolv.conf is a %v -> %q", n.Type, n.Target)
		}
		if _, tab := nodeBytes(t, tree, "/etc/inittab"); !strings.Contains(string(tab), "::respawn:"+agentsetup.SuperviseCommand+"\n") {
			t.Errorf("inittab does not start the agent:\n%s", tab)
		}
	}
	if !bytes.Equal(configs[0], configs[1]) {
		t.Errorf("two builds wrote different agent.json:\n%s\n%s", configs[0], configs[1])
	}
}

// Network and time off and no key: no agent.
func TestNoAgentWhenAllOff(t *testing.T) {
	c := config(t, "qemu-arm64")
	c.Device = &agentsetup.Settings{Network: agentconf.Network{Off: true}}
	tree := lowerTree(t, build(t, c).Path)
	for _, p := range []string{agentconf.Binary, agentconf.ConfigFile, agentconf.AuthorizedKeysFile, "/etc/resolv.conf"} {
		if tree.Lookup(p) != nil {
			t.Errorf("%s in the lower of a device with everything off", p)
		}
	}
}
