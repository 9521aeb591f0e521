package netconf

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/atomicfile"
)

// state is the job's view of every interface; each change is published
// to the board, and resolv.conf is rewritten when the DNS set changes.
type state struct {
	board  *agent.Board
	resolv string

	mu      sync.Mutex
	ifaces  map[string]*agentconf.IfaceStatus
	dns     map[string][]netip.Addr // by interface: static or leased
	written []string                // what resolv.conf names; nil: not yet written
}

func newState(b *agent.Board, resolv string) *state {
	return &state{
		board:  b,
		resolv: resolv,
		ifaces: map[string]*agentconf.IfaceStatus{},
		dns:    map[string][]netip.Addr{},
	}
}

// set changes one interface's status (creating it) and publishes.
func (s *state) set(name string, f func(*agentconf.IfaceStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.ifaces[name]
	if st == nil {
		st = &agentconf.IfaceStatus{Name: name}
		s.ifaces[name] = st
	}
	f(st)
	s.publishLocked()
}

// setDNS records an interface's name servers (nil: none) and publishes.
func (s *state) setDNS(name string, dns []netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(dns) == 0 {
		delete(s.dns, name)
	} else {
		s.dns[name] = slices.Clone(dns)
	}
	if st := s.ifaces[name]; st != nil {
		st.DNS = addrStrings(dns)
	}
	s.publishLocked()
}

// remove forgets an interface that went away.
func (s *state) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ifaces, name)
	delete(s.dns, name)
	s.publishLocked()
}

// publish writes the current state (the first call writes resolv.conf
// even when empty, so /etc/resolv.conf never dangles).
func (s *state) publish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked()
}

func (s *state) publishLocked() {
	list := make([]agentconf.IfaceStatus, 0, len(s.ifaces))
	for _, st := range s.ifaces {
		c := *st
		c.Addresses = slices.Clone(st.Addresses)
		c.DNS = slices.Clone(st.DNS)
		list = append(list, c)
	}
	slices.SortFunc(list, func(a, b agentconf.IfaceStatus) int { return strings.Compare(a.Name, b.Name) })
	dns := unionDNS(s.dns)
	if s.written == nil || !slices.Equal(dns, s.written) {
		if err := writeResolv(s.resolv, dns); err != nil {
			s.board.Logf("network: %v", err)
		} else {
			s.written = append([]string{}, dns...)
		}
	}
	s.board.Update(func(st *agentconf.Status) {
		st.Interfaces = list
		st.DNS = dns
	})
}

// unionDNS merges the interfaces' servers, in interface-name order,
// without repeats.
func unionDNS(by map[string][]netip.Addr) []string {
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		for _, a := range by[n] {
			if s := a.String(); !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// renderResolv is resolv.conf's text: one nameserver line per server.
func renderResolv(dns []string) []byte {
	var b strings.Builder
	b.WriteString("# written by rfs-agent; changes are lost\n")
	for _, d := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", d)
	}
	return []byte(b.String())
}

func writeResolv(path string, dns []string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	if err := atomicfile.WriteFile(path, renderResolv(dns), 0o644); err != nil {
		return fmt.Errorf("resolv.conf: %w", err)
	}
	return nil
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
