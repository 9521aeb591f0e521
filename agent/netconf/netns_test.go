package netconf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agentconf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const childEnv = "RFS_NETCONF_NETNS_CHILD"

// testLease is the test server's lease, in seconds: renewed at 3 s.
const testLease = 6

// TestNetns runs TestNetnsChild in a re-executed test binary inside a new
// network namespace: every link it makes and every packet it sends stays
// there, away from the host's interfaces.
func TestNetns(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root for a private network namespace")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNetnsChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
		t.Skipf("no private network namespace: %v", err)
	}
	t.Logf("child:\n%s", out)
	if err == nil && bytes.Contains(out, []byte("--- SKIP: TestNetnsChild")) {
		t.Skip("the child skipped (see its output)")
	}
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestNetnsChild")) {
		t.Fatal("child did not pass")
	}
}

// TestNetnsChild: dev0 (DHCP) and dev1 (static) face a server namespace
// holding srv0 (an in-process DHCP server) and srv1; dev2 is an unlisted
// veth the job must leave alone.
func TestNetnsChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestNetns inside a private network namespace")
	}
	if links, err := netlink.LinkList(); err != nil || len(links) != 1 {
		t.Fatalf("not a fresh network namespace (%d links, %v)", len(links), err)
	}
	srvNS, hs := serverNamespace(t)
	pair(t, "dev0", "srv0", srvNS)
	pair(t, "dev1", "srv1", srvNS)
	pair(t, "dev2", "dev2p", netns.None())
	srvUp(t, hs, "srv0", "10.77.0.1/24")
	srvUp(t, hs, "srv1", "10.88.0.1/24")
	dhcp := startDHCPServer(t, srvNS)

	dir := t.TempDir()
	sysctl := filepath.Join(dir, "sys")
	for _, n := range []string{"dev0", "dev1", "dev2"} {
		if err := os.MkdirAll(filepath.Join(sysctl, "net/ipv6/conf", n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	job := &Job{
		Config: agentconf.Config{Hostname: "rfs-test", Network: agentconf.Network{DHCP: true,
			Interfaces: []agentconf.Interface{
				{Name: "dev0", DHCP: true},
				{Name: "dev1", Address: "10.88.0.2/24", Gateway: "10.88.0.1", DNS: []string{"10.88.0.53"}},
			}}},
		ResolvConf: filepath.Join(dir, "resolv.conf"),
		SysctlRoot: sysctl,
		SysfsNet:   filepath.Join(dir, "sysfs"),

		testMinLease: time.Second,
	}
	board := &agent.Board{StatusPath: filepath.Join(dir, "status.json"), Log: testWriter{t}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- job.Run(ctx, board) }()

	waitFor(t, "DHCP address on dev0", func() bool { return hasAddr("dev0", "10.77.0.50/24") })
	waitFor(t, "static address on dev1", func() bool { return hasAddr("dev1", "10.88.0.2/24") })
	waitFor(t, "default routes", func() bool { return hasDefault("dev0", "10.77.0.1") && hasDefault("dev1", "10.88.0.1") })
	waitFor(t, "resolv.conf", func() bool {
		b, _ := os.ReadFile(job.ResolvConf)
		return strings.Contains(string(b), "nameserver 10.77.0.53\n") && strings.Contains(string(b), "nameserver 10.88.0.53\n")
	})
	if h := dhcp.hostname(); h != "rfs-test" {
		t.Errorf("DHCP server saw hostname %q, want rfs-test", h)
	}
	checkStatus(t, board.StatusPath)
	checkSysctl(t, sysctl)
	if hasAddr("dev2", "") {
		t.Error("unlisted veth dev2 got an address")
	}

	// Renewal at T1 keeps the address; a silent server lets it expire;
	// an answering one gives it back.
	waitFor(t, "a renewal", func() bool { return dhcp.renewCount() > 0 })
	if !hasAddr("dev0", "10.77.0.50/24") {
		t.Fatal("address lost over a renewal")
	}
	dhcp.setSilent(true)
	waitFor(t, "lease expiry", func() bool { return !hasAddr("dev0", "10.77.0.50/24") && !hasDefault("dev0", "10.77.0.1") })
	dhcp.setSilent(false)
	waitFor(t, "lease after expiry", func() bool { return hasAddr("dev0", "10.77.0.50/24") })

	// Carrier lost: the lease goes; carrier back: a new lease.
	setLink(t, hs, "srv0", false)
	waitFor(t, "lease dropped on carrier loss", func() bool { return !hasAddr("dev0", "10.77.0.50/24") })
	waitFor(t, "leased DNS dropped", func() bool {
		b, _ := os.ReadFile(job.ResolvConf)
		return !strings.Contains(string(b), "10.77.0.53")
	})
	setLink(t, hs, "srv0", true)
	waitFor(t, "lease again on carrier", func() bool { return hasAddr("dev0", "10.77.0.50/24") })

	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func serverNamespace(t *testing.T) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	var ns netns.NsHandle
	err := inNewThread(func() error {
		var err error
		ns, err = netns.New() // this thread only; the thread dies with the goroutine
		return err
	})
	if err != nil {
		t.Fatalf("server namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if lo, err := h.LinkByName("lo"); err == nil {
		h.LinkSetUp(lo)
	}
	return ns, h
}

// inNewThread runs f on a locked thread that is thrown away afterwards,
// so a namespace switch in f never leaks to other goroutines.
func inNewThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: the thread exits with the goroutine
		errc <- f()
	}()
	return <-errc
}

func pair(t *testing.T, name, peer string, ns netns.NsHandle) {
	t.Helper()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}); err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) {
			t.Skipf("no veth in this kernel: %v", err)
		}
		t.Fatalf("veth %s: %v", name, err)
	}
	p, err := netlink.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	if !ns.IsOpen() {
		return // both ends here
	}
	if err := netlink.LinkSetNsFd(p, int(ns)); err != nil {
		t.Fatalf("move %s: %v", peer, err)
	}
}

func srvUp(t *testing.T, h *netlink.Handle, name, addr string) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr(addr)
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatal(err)
	}
	setLink(t, h, name, true)
}

func setLink(t *testing.T, h *netlink.Handle, name string, up bool) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err == nil {
		if up {
			err = h.LinkSetUp(l)
		} else {
			err = h.LinkSetDown(l)
		}
	}
	if err != nil {
		t.Fatalf("%s up=%v: %v", name, up, err)
	}
}

// dhcpServer hands 10.77.0.50/24 to anyone on srv0.
type dhcpServer struct {
	mu     sync.Mutex
	host   string
	renews int  // REQUESTs from a bound client (ciaddr set)
	silent bool // answer nothing
}

func (d *dhcpServer) renewCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.renews
}

func (d *dhcpServer) setSilent(s bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.silent = s
}

func (d *dhcpServer) hostname() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.host
}

func startDHCPServer(t *testing.T, ns netns.NsHandle) *dhcpServer {
	t.Helper()
	d := &dhcpServer{}
	var conn net.PacketConn
	err := inNewThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		var err error
		conn, err = server4.NewIPv4UDPConn("srv0", &net.UDPAddr{Port: dhcpv4.ServerPort})
		return err
	})
	if err != nil {
		t.Fatalf("DHCP server socket: %v", err)
	}
	srv, err := server4.NewServer("", nil, d.handle, server4.WithConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	return d
}

func (d *dhcpServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	typ := dhcpv4.MessageTypeAck
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
	default:
		return
	}
	d.mu.Lock()
	silent := d.silent
	d.host = m.HostName()
	if typ == dhcpv4.MessageTypeAck && !m.ClientIPAddr.IsUnspecified() {
		d.renews++
	}
	d.mu.Unlock()
	if silent {
		return
	}
	srv := net.IPv4(10, 77, 0, 1)
	reply, err := dhcpv4.NewReplyFromRequest(m,
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithYourIP(net.IPv4(10, 77, 0, 50)),
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(srv),
		dhcpv4.WithDNS(net.IPv4(10, 77, 0, 53)),
		dhcpv4.WithLeaseTime(testLease),
		dhcpv4.WithServerIP(srv),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srv)))
	if err != nil {
		return
	}
	conn.WriteTo(reply.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
}

func hasAddr(link, want string) bool {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return false
	}
	as, _ := netlink.AddrList(l, netlink.FAMILY_V4)
	for _, a := range as {
		if want == "" || a.IPNet.String() == want {
			return true
		}
	}
	return false
}

func hasDefault(link, gw string) bool {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return false
	}
	rs, _ := netlink.RouteList(l, netlink.FAMILY_V4)
	for _, r := range rs {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw.String() == gw {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func checkStatus(t *testing.T, path string) {
	t.Helper()
	var st agentconf.Status
	waitFor(t, "status of dev0, dev1, dev2, dev2p", func() bool {
		b, err := os.ReadFile(path)
		if err != nil || json.Unmarshal(b, &st) != nil {
			return false
		}
		return len(st.Interfaces) == 4 && st.Interfaces[0].DHCPServer != "" && len(st.Interfaces[0].Addresses) > 0
	})
	want := map[string]string{"dev0": modeDHCP, "dev1": modeStatic, "dev2": modeUnmanaged, "dev2p": modeUnmanaged}
	for _, i := range st.Interfaces {
		if i.Mode != want[i.Name] {
			t.Errorf("%s: mode %q, want %q", i.Name, i.Mode, want[i.Name])
		}
	}
	d := st.Interfaces[0]
	if d.State != "up" || d.DHCPServer != "10.77.0.1" || d.Gateway != "10.77.0.1" || d.LeaseExpiry.IsZero() || d.MAC == "" {
		t.Errorf("dev0 status: %+v", d)
	}
	waitFor(t, "an IPv6 link-local address in dev0's status", func() bool {
		b, _ := os.ReadFile(path)
		return bytes.Contains(b, []byte(`"fe80::`))
	})
	if fmt.Sprint(st.DNS) != "[10.77.0.53 10.88.0.53]" {
		t.Errorf("status DNS = %v", st.DNS)
	}
}

func checkSysctl(t *testing.T, root string) {
	t.Helper()
	for _, n := range []string{"dev0/accept_ra", "dev0/autoconf", "dev1/autoconf"} {
		if b, err := os.ReadFile(filepath.Join(root, "net/ipv6/conf", n)); err != nil || string(b) != "1\n" {
			t.Errorf("%s = %q, %v", n, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "net/ipv6/conf/dev2/autoconf")); err == nil {
		t.Error("SLAAC switched on for unmanaged dev2")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
