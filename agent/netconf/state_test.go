package netconf

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agentconf"
)

func TestRenderResolv(t *testing.T) {
	got := string(renderResolv([]string{"10.0.0.1", "2001:db8::53"}))
	want := "# written by rfs-agent; changes are lost\nnameserver 10.0.0.1\nnameserver 2001:db8::53\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestUnionDNS(t *testing.T) {
	a := netip.MustParseAddr
	got := unionDNS(map[string][]netip.Addr{
		"eth1": {a("10.0.0.1"), a("10.0.0.3")},
		"eth0": {a("10.0.0.2"), a("10.0.0.1")},
	})
	if want := []string{"10.0.0.2", "10.0.0.1", "10.0.0.3"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestStateWritesResolvOnChange(t *testing.T) {
	dir := t.TempDir()
	resolv := filepath.Join(dir, "run/resolv.conf")
	var log bytes.Buffer
	b := &agent.Board{StatusPath: filepath.Join(dir, "status.json"), Log: &log}
	s := newState(b, resolv)
	s.publish()
	if data, err := os.ReadFile(resolv); err != nil || bytes.Contains(data, []byte("nameserver")) {
		t.Fatalf("first publish: %q, %v", data, err)
	}
	s.set("eth0", func(st *agentconf.IfaceStatus) { st.Mode = modeDHCP })
	s.setDNS("eth0", []netip.Addr{netip.MustParseAddr("10.0.0.1")})
	data, _ := os.ReadFile(resolv)
	if !bytes.Contains(data, []byte("nameserver 10.0.0.1\n")) {
		t.Errorf("resolv.conf = %q", data)
	}
	status, _ := os.ReadFile(b.StatusPath)
	if !bytes.Contains(status, []byte(`"dns": [`)) || !bytes.Contains(status, []byte(`"name": "eth0"`)) {
		t.Errorf("status = %s", status)
	}
	s.remove("eth0")
	if data, _ := os.ReadFile(resolv); bytes.Contains(data, []byte("nameserver")) {
		t.Errorf("after remove: %q", data)
	}
}
