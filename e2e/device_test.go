package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/agentsetup"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/qemu"
	"github.com/rfsbuild/rfs/reset"
)

// The device on the network (issue 16), on qemu-arm64 and qemu-amd64,
// each in a private network namespace: the guest's DHCP address from
// QEMU's user network, SSH with a key only (remote command, refusals, scp
// both ways, a pty), the host key kept by a reboot and a factory reset
// and replaced by reset --all, a second device from the same image with
// its own key, the clock from an NTP server the test runs (reached through
// the guest's gateway) and restored from the data partition when a reboot
// has no network.
func TestDeviceNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	for _, board := range []string{"qemu-arm64", "qemu-amd64"} {
		t.Run(board, func(t *testing.T) {
			t.Parallel()
			testDeviceNetwork(t, board)
		})
	}
}

// ntpServedTime is what the test's NTP server says: years after the build
// epoch and this machine's clock, so that a guest showing it (or later)
// after an offline reboot can only have it from the saved clock.
var ntpServedTime = time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)

func testDeviceNetwork(t *testing.T, board string) {
	keys := newSSHKeys(t)
	hostname := "rfs-" + strings.TrimPrefix(board, "qemu-")
	img := buildImage(t, board, func(c *builder.Config) {
		c.Hostname = hostname
		c.Device = &agentsetup.Settings{
			Network: agentconf.Network{DHCP: true},
			// 10.0.2.2 is the host's loopback on QEMU's user network
			// (--net internet), which inPrivateNet confines.
			Time: agentconf.Time{Servers: []string{"10.0.2.2"}},
			Keys: []string{keys.authorized},
		}
	})
	noPrivateKey(t, img)
	second := copyFile(t, img) // another device flashed from the same image
	if !inPrivateNet(t) {
		return
	}
	startSNTP(t, "127.0.0.1:123", func() time.Time { return ntpServedTime })

	// First boot: DHCP, SSH, the clock from NTP.
	port := freePort(t)
	vm := bootDevice(t, img, qemu.Network{Mode: qemu.NetInternet, Forwards: []qemu.Forward{{Proto: "tcp", HostPort: port, GuestPort: 22}}})
	ssh := waitSSH(t, port, keys.private)
	if got := strings.TrimSpace(ssh.run(t, "cat /etc/hostname")); got != hostname {
		t.Errorf("ssh cat /etc/hostname = %q, want %q", got, hostname)
	}
	checkLease(t, ssh)
	checkRefusals(t, port, keys)
	checkSCP(t, ssh)
	checkPTY(t, ssh)
	key1 := hostKey(t, port)
	checkStatus(t, ssh, hostname)
	synced := waitClockSynced(t, ssh)
	if synced.Before(ntpServedTime) {
		t.Errorf("guest clock %v after NTP sync, want ≥ %v", synced, ntpServedTime)
	}
	t.Logf("first boot: lease, ssh, scp, pty checked; host key %s; clock after NTP %v", key1, synced.UTC())
	ssh.run(t, "sync")
	vm.Close()

	// Reboot without a network: the saved time, the same host key.
	vm = bootDevice(t, img, qemu.Network{Mode: qemu.NetNone})
	waitShell(t, vm)
	now := guestTime(t, vm)
	if now.Before(ntpServedTime) {
		t.Errorf("offline reboot: guest clock %v is before the saved %v", now, ntpServedTime)
	}
	t.Logf("offline reboot: clock %v", now.UTC())
	if st := run(t, vm, "cat /run/rfs/status.json"); !strings.Contains(st, `"source": "saved"`) {
		t.Errorf("status.json does not say the clock came from the saved time:\n%s", st)
	}
	shutdown(t, vm)
	if got := keyAfterBoot(t, img, keys); got != key1 {
		t.Errorf("host key changed across a reboot:\n%s\n%s", key1, got)
	}

	// A factory reset keeps the identity; reset --all replaces it.
	if _, err := reset.Flag(img, false); err != nil {
		t.Fatal(err)
	}
	if got := keyAfterBoot(t, img, keys); got != key1 {
		t.Errorf("host key changed by a factory reset:\n%s\n%s", key1, got)
	}
	if _, err := reset.Flag(img, true); err != nil {
		t.Fatal(err)
	}
	if got := keyAfterBoot(t, img, keys); got == key1 {
		t.Errorf("host key kept by reset --all: %s", got)
	}
	t.Logf("after reset --all: host key %s", keyAfterBoot(t, img, keys))
	if got := keyAfterBoot(t, second, keys); got == key1 {
		t.Errorf("two devices from one image share a host key: %s", got)
	}
}

// checkStatus: rfs-init status --json and status.json carry the agent's
// section: the hostname, eth0's lease and the host key's fingerprint.
func checkStatus(t *testing.T, c sshClient, hostname string) {
	t.Helper()
	for _, cmd := range []string{"rfs-init status --json", "cat /run/rfs/status.json"} {
		var st struct {
			Agent *agentconf.Status `json:"agent"`
		}
		out := c.run(t, cmd)
		if err := json.Unmarshal([]byte(out), &st); err != nil || st.Agent == nil {
			t.Errorf("%s: no agent section (%v):\n%s", cmd, err, out)
			continue
		}
		a := st.Agent
		if a.Hostname != hostname || len(a.Interfaces) == 0 || a.Interfaces[0].Gateway != "10.0.2.2" ||
			!slices.Contains(a.Interfaces[0].Addresses, "10.0.2.15/24") ||
			len(a.SSH.HostKeys) != 1 || !strings.HasPrefix(a.SSH.HostKeys[0], "ED25519 SHA256:") || !a.SSH.Persistent {
			t.Errorf("%s: agent section %+v, want %s, eth0 10.0.2.15/24 via 10.0.2.2, a persistent ed25519 host key", cmd, a, hostname)
		}
	}
}

// keyAfterBoot boots the image with SSH forwarded and returns its host key.
func keyAfterBoot(t *testing.T, img string, keys sshKeys) string {
	t.Helper()
	port := freePort(t)
	vm := bootDevice(t, img, qemu.Network{Mode: qemu.NetRestricted, Forwards: []qemu.Forward{{Proto: "tcp", HostPort: port, GuestPort: 22}}})
	ssh := waitSSH(t, port, keys.private)
	k := hostKey(t, port)
	ssh.run(t, "sync")
	vm.Close()
	return k
}

// bootNet boots img like `rfs run --persist --net ...`.
func bootDevice(t *testing.T, img string, n qemu.Network) *qemu.VM {
	t.Helper()
	vm, _ := startNet(t, img, true, n)
	return vm
}

// noPrivateKey: the built image holds no private key (host keys are made
// on the device at first boot).
func noPrivateKey(t *testing.T, img string) {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		t.Errorf("%s contains a private key", img)
	}
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

type sshKeys struct {
	private, authorized, other string
}

// newSSHKeys makes the user's key pair and a second, unauthorized key.
func newSSHKeys(t *testing.T) sshKeys {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("no OpenSSH client (apt-get install openssh-client)")
	}
	dir := t.TempDir()
	gen := func(name string) string {
		p := filepath.Join(dir, name)
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
		return p
	}
	k := sshKeys{private: gen("user"), other: gen("other")}
	pub, err := os.ReadFile(k.private + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	k.authorized = strings.TrimSpace(string(pub))
	return k
}

// sshClient runs the machine's OpenSSH client against a guest.
type sshClient struct {
	port int
	key  string
}

func sshOpts(port int, key string) []string {
	return []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10",
		"-o", "LogLevel=ERROR", "-i", key, "-p", strconv.Itoa(port)}
}

func (c sshClient) cmd(args ...string) *exec.Cmd {
	return exec.Command("ssh", append(append(sshOpts(c.port, c.key), "root@127.0.0.1"), args...)...)
}

func (c sshClient) run(t *testing.T, command string) string {
	t.Helper()
	out, err := c.cmd(command).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh %q: %v\n%s", command, err, out)
	}
	return string(out)
}

// waitSSH waits until the guest's SSH server runs a command for key.
func waitSSH(t *testing.T, port int, key string) sshClient {
	t.Helper()
	c := sshClient{port: port, key: key}
	deadline := time.Now().Add(bootTimeout)
	for {
		out, err := c.cmd("true").CombinedOutput()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SSH login on 127.0.0.1:%d within %s: %v %s", port, bootTimeout, err, out)
		}
		time.Sleep(time.Second)
	}
}

// checkLease: the agent's status shows the DHCP address QEMU's user
// network hands out, and the kernel has it.
func checkLease(t *testing.T, c sshClient) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := c.run(t, "rfs-init status")
		if strings.Contains(st, "10.0.2.15/24") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no DHCP lease 10.0.2.15/24 in rfs-init status:\n%s", st)
		}
		time.Sleep(time.Second)
	}
	if addr := c.run(t, "ip -4 addr show"); !strings.Contains(addr, "10.0.2.15/24") {
		t.Errorf("ip addr does not show the lease:\n%s", addr)
	}
}

// checkRefusals: a password login and a key not in authorized_keys fail.
func checkRefusals(t *testing.T, port int, keys sshKeys) {
	t.Helper()
	for name, opts := range map[string][]string{
		"password":  {"-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no"},
		"wrong key": nil,
	} {
		args := append(sshOpts(port, keys.other), opts...)
		out, err := exec.Command("ssh", append(args, "root@127.0.0.1", "true")...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("%s login: err %v, output %q; want Permission denied", name, err, out)
		}
	}
}

// checkSCP copies a file to the guest and back.
func checkSCP(t *testing.T, c sshClient) {
	t.Helper()
	dir := t.TempDir()
	src, back := filepath.Join(dir, "up"), filepath.Join(dir, "down")
	payload := bytes.Repeat([]byte("rfs scp\n"), 64<<10)
	if err := os.WriteFile(src, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	scp := func(from, to string) {
		opts := sshOpts(c.port, c.key)
		for i, o := range opts {
			if o == "-p" {
				opts[i] = "-P"
			}
		}
		if out, err := exec.Command("scp", append(opts, from, to)...).CombinedOutput(); err != nil {
			t.Fatalf("scp %s %s: %v %s", from, to, err, out)
		}
	}
	scp(src, "root@127.0.0.1:/tmp/up")
	if got := strings.Fields(c.run(t, "wc -c < /tmp/up")); len(got) != 1 || got[0] != strconv.Itoa(len(payload)) {
		t.Errorf("after scp to the guest, /tmp/up has %v bytes, want %d", got, len(payload))
	}
	scp("root@127.0.0.1:/tmp/up", back)
	if got, _ := os.ReadFile(back); !bytes.Equal(got, payload) {
		t.Errorf("scp from the guest: %d bytes, not what was sent", len(got))
	}
}

// checkPTY: an interactive session (ssh -tt) has a terminal.
func checkPTY(t *testing.T, c sshClient) {
	t.Helper()
	args := append(append([]string{"-tt"}, sshOpts(c.port, c.key)...), "root@127.0.0.1", "tty")
	out, err := exec.Command("ssh", args...).CombinedOutput()
	if err != nil || !regexp.MustCompile(`/dev/pts/\d+`).Match(out) {
		t.Errorf("ssh -tt tty: %v %q; want /dev/pts/N", err, out)
	}
}

// hostKey is the guest's ed25519 host key, as ssh-keyscan sees it.
func hostKey(t *testing.T, port int) string {
	t.Helper()
	out, err := exec.Command("ssh-keyscan", "-T", "10", "-t", "ed25519", "-p", strconv.Itoa(port), "127.0.0.1").Output()
	if err != nil {
		t.Fatalf("ssh-keyscan: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[1] == "ssh-ed25519" {
			return f[2]
		}
	}
	t.Fatalf("ssh-keyscan: no ed25519 key in %q", out)
	return ""
}

// waitClockSynced waits for the agent's clock job to report a sync and
// returns the guest's time then.
func waitClockSynced(t *testing.T, c sshClient) time.Time {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := c.run(t, "cat /run/rfs/agent.json")
		if strings.Contains(st, `"synchronized": true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clock did not synchronise:\n%s", st)
		}
		time.Sleep(2 * time.Second)
	}
	return parseEpoch(t, c.run(t, "date +%s"))
}

func guestTime(t *testing.T, vm *qemu.VM) time.Time {
	t.Helper()
	return parseEpoch(t, run(t, vm, "date +%s"))
}

func parseEpoch(t *testing.T, s string) time.Time {
	t.Helper()
	// The agent may log on the console between the command's lines.
	m := regexp.MustCompile(`(?m)^\s*(\d{9,})\s*$`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("date +%%s: %q", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatalf("date +%%s: %q", s)
	}
	return time.Unix(n, 0)
}

func freePort(t *testing.T) int {
	t.Helper()
	p, err := qemu.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The agent does not depend on busybox: on u-root (gosh as root's shell,
// the agent supervised by rfs-init as u-root's uinit) the device leases
// its address and serves SSH, remote commands and scp.
func TestDeviceURoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	keys := newSSHKeys(t)
	img := buildImage(t, "qemu-arm64", func(c *builder.Config) {
		c.Userland = "u-root"
		c.Hostname = "rfs-uroot"
		c.Device = &agentsetup.Settings{Network: agentconf.Network{DHCP: true}, Keys: []string{keys.authorized}}
	})
	if !inPrivateNet(t) {
		return
	}
	port := freePort(t)
	vm := bootDevice(t, img, qemu.Network{Forwards: []qemu.Forward{{Proto: "tcp", HostPort: port, GuestPort: 22}}})
	ssh := waitSSH(t, port, keys.private)
	if got := strings.TrimSpace(ssh.run(t, "cat /etc/hostname")); got != "rfs-uroot" {
		t.Errorf("ssh cat /etc/hostname = %q, want rfs-uroot", got)
	}
	if st := ssh.run(t, "/run/rfs/bin/rfs-init status"); !strings.Contains(st, "10.0.2.15/24") {
		t.Errorf("no DHCP lease in rfs-init status:\n%s", st)
	}
	checkSCP(t, ssh)
	vm.Close()
}

// A static configuration: the address, default route and name server the
// build was given, checked inside the guest, and the wire works (a
// connection from the guest to a host server through QEMU).
func TestDeviceStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	t.Parallel()
	img := buildImage(t, "qemu-amd64", func(c *builder.Config) {
		c.Device = &agentsetup.Settings{Network: agentconf.Network{Interfaces: []agentconf.Interface{
			{Name: "eth0", Address: "10.0.2.50/24", Gateway: "10.0.2.2", DNS: []string{"10.0.2.3"}},
		}}}
	})
	if !inPrivateNet(t) {
		return
	}
	hostSrv := serveLine(t, "from-host")
	vm := bootDevice(t, img, qemu.Network{Netdev: []string{qemu.GuestForward("10.0.2.100", 80, "127.0.0.1", hostSrv)}})
	waitShell(t, vm)
	deadline := time.Now().Add(60 * time.Second)
	for {
		addr := run(t, vm, "ip -4 addr show eth0")
		if strings.Contains(addr, "10.0.2.50/24") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eth0 lacks the static address 10.0.2.50/24:\n%s", addr)
		}
		time.Sleep(time.Second)
	}
	if r := run(t, vm, "ip route"); !strings.Contains(r, "default via 10.0.2.2 dev eth0") {
		t.Errorf("no default route via 10.0.2.2:\n%s", r)
	}
	if rc := run(t, vm, "cat /etc/resolv.conf"); !strings.Contains(rc, "nameserver 10.0.2.3") {
		t.Errorf("/etc/resolv.conf lacks the static name server:\n%s", rc)
	}
	if out := run(t, vm, "nc -w 10 10.0.2.100 80 </dev/null"); !strings.Contains(out, "from-host") {
		t.Errorf("from the static address, the guest read %q, want from-host", out)
	}
	if st := run(t, vm, "rfs-init status"); !strings.Contains(st, "static") {
		t.Errorf("rfs-init status does not show the static mode:\n%s", st)
	}
	// No key configured: no SSH server (nothing listens on port 22).
	if socks := run(t, vm, "cat /proc/net/tcp /proc/net/tcp6"); regexp.MustCompile(`:0016 \S+ 0A `).MatchString(socks) {
		t.Errorf("something listens on port 22 without an authorized key:\n%s", socks)
	}
}
