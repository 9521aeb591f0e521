package e2e

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/agentsetup"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/qemu"
)

// TestGuestNetwork: rfs run's networks, in a private network namespace.
// By default (restricted) the guest has eth0 with the image's MAC; a host
// port forwarded from 127.0.0.1 reaches a guest server; a guestfwd
// reaches a host server; and the host itself (10.0.2.2) is out of reach,
// which --net internet opens, for TCP and UDP (NTP from startSNTP).
func TestGuestNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	img := buildImage(t, "qemu-arm64", nil)
	// The Pi images run the agent: their network path is the device's.
	pi3, pi4 := buildImage(t, "rpi3", dhcpOnly), buildImage(t, "rpi4", dhcpOnly)
	if !inPrivateNet(t) {
		return
	}
	t.Run("restricted", func(t *testing.T) {
		hostSrv := serveLine(t, "from-host")
		fwdPort, err := qemu.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		vm, cfg := bootNet(t, img, qemu.Network{
			Forwards: []qemu.Forward{{Proto: "tcp", HostPort: fwdPort, GuestPort: 8080}},
			Netdev: []string{
				qemu.GuestForward("10.0.2.100", 80, "127.0.0.1", hostSrv),
				qemu.GuestForwardCmd("10.0.2.101", 80, "echo from-cmd"),
			},
		})
		if mac := strings.TrimSpace(run(t, vm, "cat /sys/class/net/eth0/address")); mac != cfg.Net.MAC {
			t.Errorf("eth0's MAC %s, want the image's %s", mac, cfg.Net.MAC)
		}
		// The chardev guestfwd never closes the guest's end: -w ends nc.
		if out := run(t, vm, "nc -w 3 10.0.2.100 80 </dev/null"); !strings.Contains(out, "from-host") {
			t.Errorf("guestfwd: the guest read %q, want from-host", out)
		}
		// A command per connection.
		if out := run(t, vm, "nc -w 10 10.0.2.101 80 </dev/null; nc -w 10 10.0.2.101 80 </dev/null"); out != "from-cmd\nfrom-cmd\n" {
			t.Errorf("guestfwd cmd: the guest read %q, want from-cmd twice", out)
		}
		// Under restrict=on the gateway does not lead to the host.
		if out, err := vm.Run("nc -w 3 10.0.2.2 "+strconv.Itoa(hostSrv)+" </dev/null", 30*time.Second); err == nil || strings.Contains(out, "from-host") {
			t.Errorf("restricted guest reached the host through 10.0.2.2: %q, %v", out, err)
		}
		run(t, vm, "(while true; do echo from-guest | nc -l -p 8080; done) </dev/null >/dev/null 2>&1 & echo started")
		if got := readForwarded(t, fwdPort); got != "from-guest" {
			t.Errorf("hostfwd 127.0.0.1:%d: read %q, want from-guest", fwdPort, got)
		}
	})
	t.Run("internet", func(t *testing.T) {
		hostSrv := serveLine(t, "from-host")
		when := time.Date(2031, 7, 8, 9, 10, 11, 0, time.UTC)
		sntp := startSNTP(t, "127.0.0.1:123", func() time.Time { return when })
		vm, _ := bootNet(t, img, qemu.Network{Mode: qemu.NetInternet})
		// 10.0.2.2 is the host's loopback: here the namespace's.
		if out := run(t, vm, "nc -w 10 10.0.2.2 "+strconv.Itoa(hostSrv)+" </dev/null"); !strings.Contains(out, "from-host") {
			t.Errorf("the guest read %q from the host, want from-host", out)
		}
		// UDP too: busybox ntpd sets the guest's clock from startSNTP.
		if out, err := vm.Run("ntpd -n -q -p 10.0.2.2 2>&1; date -u +%Y", 90*time.Second); err != nil || !strings.HasSuffix(out, "2031\n") {
			t.Errorf("ntpd from 10.0.2.2: %q, %v (served %d)", out, err, sntp.Served())
		}
	})

	// QEMU's Pi models have the NIC on USB (dwc2; on the Pi 4 rfs turns
	// it on in QEMU's device tree): the kernel's cdc_ether eth0, whose
	// MAC is the image's with QEMU's usb-net first byte, 0x40, and which
	// the agent's DHCP configures.
	for _, pi := range []struct{ machine, img string }{{"raspi3b", pi3}, {"raspi4b", pi4}} {
		t.Run(pi.machine, func(t *testing.T) {
			needMachine(t, "rpi4", pi.machine)
			hostSrv := serveLine(t, "from-host")
			vm, cfg := bootAgent(t, pi.img, qemu.Network{Netdev: []string{qemu.GuestForward("10.0.2.100", 80, "127.0.0.1", hostSrv)}})
			if mac := strings.TrimSpace(run(t, vm, "cat /sys/class/net/eth0/address")); mac != "40"+cfg.Net.MAC[2:] {
				t.Errorf("eth0's MAC %s, want the image's %s with 40 first", mac, cfg.Net.MAC)
			}
			if out := run(t, vm, "nc -w 3 10.0.2.100 80 </dev/null"); !strings.Contains(out, "from-host") {
				t.Errorf("guestfwd: the guest read %q, want from-host", out)
			}
		})
	}
}

// startNet starts QEMU on img as rfs run [--persist] does, on the network
// n with the image's MAC.
func startNet(t *testing.T, img string, persist bool, n qemu.Network) (*qemu.VM, qemu.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg, _, err := qemu.ForImage(img, dir, persist)
	if err != nil {
		t.Fatal(err)
	}
	n.MAC = cfg.Net.MAC
	cfg.Net = n
	return startVM(t, cfg, dir), cfg
}

// bootNet boots img with the network n (its MAC the image's) to a shell,
// and gives eth0 the address QEMU's DHCP would: these images are built
// without the agent, so the test sees QEMU's network alone.
func bootNet(t *testing.T, img string, n qemu.Network) (*qemu.VM, qemu.Config) {
	t.Helper()
	vm, cfg := startNet(t, img, false, n)
	waitShell(t, vm)
	run(t, vm, "ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0")
	return vm, cfg
}

// dhcpOnly: the agent with DHCP and nothing else (no NTP, no SSH).
func dhcpOnly(c *builder.Config) {
	c.Device = &agentsetup.Settings{Network: agentconf.Network{DHCP: true}}
}

// bootAgent boots an image whose agent runs DHCP and waits for its lease
// from QEMU's DHCP server: 10.0.2.15/24, in the agent's status and on eth0.
func bootAgent(t *testing.T, img string, n qemu.Network) (*qemu.VM, qemu.Config) {
	t.Helper()
	vm, cfg := startNet(t, img, false, n)
	waitShell(t, vm)
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := run(t, vm, "rfs-init status")
		if strings.Contains(st, "10.0.2.15/24") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no DHCP lease 10.0.2.15/24 in rfs-init status:\n%s", st)
		}
		time.Sleep(2 * time.Second)
	}
	if addr := run(t, vm, "ip -4 addr show eth0"); !strings.Contains(addr, "10.0.2.15/24") {
		t.Errorf("eth0 lacks the lease:\n%s", addr)
	}
	return vm, cfg
}

// serveLine listens on a free port of 127.0.0.1 and writes line to every
// connection until the test ends; it returns the port.
func serveLine(t *testing.T, line string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(line + "\n"))
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// readForwarded reads a line through the forward on 127.0.0.1:port. QEMU
// accepts a connection before the guest does (and closes it when the
// guest refuses), so it tries until the guest's server answers.
func readForwarded(t *testing.T, port int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if line != "" {
				return strings.TrimSpace(line)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing read through 127.0.0.1:%d: %v", port, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
