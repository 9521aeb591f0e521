package netconf

import (
	"context"
	"fmt"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// iface manages one link: a goroutine that configures it whenever it has
// carrier, fed the carrier state by the job's watch loop.
type iface struct {
	j       *Job
	name    string
	link    netlink.Link
	plan    plan
	carrier chan bool // latest state only
	cancel  context.CancelFunc
	done    chan struct{}
}

func (j *Job) newIface(ctx context.Context, link netlink.Link) *iface {
	a := link.Attrs()
	m := &iface{j: j, name: a.Name, link: link, carrier: make(chan bool, 1)}
	info := linkInfo{
		name:     a.Name,
		kind:     link.Type(),
		loopback: a.RawFlags&unix.IFF_LOOPBACK != 0,
		ether:    a.EncapType == "ether",
		wireless: isWireless(j.SysfsNet, a.Name),
	}
	p, err := choose(j.Config.Network, info)
	m.plan = p
	j.st.set(m.name, func(s *agentconf.IfaceStatus) {
		s.Mode, s.MAC = p.mode, a.HardwareAddr.String()
		if err != nil {
			s.Error = err.Error()
		}
	})
	if err != nil {
		m.logf("%v", err)
	}
	if p.mode == modeUnmanaged {
		return m
	}
	m.logf("appeared (%s)", p.mode)
	mctx, cancel := context.WithCancel(ctx)
	m.cancel, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		m.run(mctx, ctx)
	}()
	return m
}

func (m *iface) logf(format string, args ...any) {
	m.j.b.Logf("network: %s: %s", m.name, fmt.Sprintf(format, args...))
}

// update takes a link notification: state, MAC, carrier.
func (m *iface) update(link netlink.Link) {
	a := link.Attrs()
	m.j.st.set(m.name, func(s *agentconf.IfaceStatus) {
		s.State, s.MAC = linkState(link), a.HardwareAddr.String()
	})
	m.refreshAddrs()
	if m.cancel == nil {
		return
	}
	c := carrier(link)
	select {
	case m.carrier <- c:
	default:
		select { // replace the unread state; the watch loop is the only sender
		case <-m.carrier:
		default:
		}
		m.carrier <- c
	}
}

func (m *iface) refreshAddrs() {
	as := linkAddrs(m.j.h, m.link)
	m.j.st.set(m.name, func(s *agentconf.IfaceStatus) { s.Addresses = as })
}

// stop ends the manager and waits for it.
func (m *iface) stop() {
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
}

// run switches SLAAC on, brings the link up and configures it for as
// long as it has carrier, again each time carrier comes back.
func (m *iface) run(ctx, jobCtx context.Context) {
	if err := enableSLAAC(m.j.SysctlRoot, m.name); err != nil {
		m.logf("%v", err)
	}
	if err := m.j.h.LinkSetUp(m.link); err != nil {
		m.logf("set up: %v", err)
	}
	var r runner
	defer r.halt()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-m.carrier:
			if c && !r.running() {
				r.start(ctx, func(cctx context.Context) { m.configure(cctx, jobCtx) })
			} else if !c && r.running() {
				m.logf("no carrier")
				r.halt()
			}
		}
	}
}

// runner is one goroutine that can be stopped and waited for.
type runner struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *runner) running() bool { return r.cancel != nil }

func (r *runner) start(ctx context.Context, f func(context.Context)) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		f(ctx)
	}()
}

func (r *runner) halt() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// configure applies the plan while ctx lasts.
func (m *iface) configure(ctx, jobCtx context.Context) {
	if m.plan.mode == modeDHCP {
		m.runDHCP(ctx, jobCtx)
		return
	}
	for fails := 0; ; fails++ {
		err := m.applyStatic()
		m.j.st.set(m.name, func(s *agentconf.IfaceStatus) { s.Error = errString(err) })
		if err == nil {
			break
		}
		m.logf("%v", err)
		sleep(ctx, backoff(fails))
		if ctx.Err() != nil {
			return
		}
	}
	<-ctx.Done()
}

// applyStatic sets the static address, default route and DNS; all are
// replaced in place, so it is safe to repeat on each carrier.
func (m *iface) applyStatic() error {
	p, h := m.plan, m.j.h
	if err := addAddr(h, m.link, p.address, 0); err != nil {
		return err
	}
	if p.gateway.IsValid() {
		onlink := p.gateway.Is4() == p.address.Addr().Is4() && !p.address.Contains(p.gateway)
		r := defaultRoute(m.link, p.gateway, routeMetric(m.link.Attrs().Index, modeStatic),
			netlink.RouteProtocol(unix.RTPROT_STATIC), onlink)
		if err := setRoute(h, r); err != nil {
			return err
		}
	}
	m.j.st.setDNS(m.name, p.dns)
	m.j.st.set(m.name, func(s *agentconf.IfaceStatus) { s.Gateway = addrString(p.gateway) })
	m.logf("static %s (gateway %s, dns %v)", p.address, addrString(p.gateway), p.dns)
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
