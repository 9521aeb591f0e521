// Package netconf is the agent's network job: it brings loopback up,
// watches links appear, vanish and gain or lose carrier (netlink), and
// configures each as agentconf.Network says: DHCPv4 (insomniacslk/dhcp)
// on wired interfaces by default, static addresses where configured,
// IPv6 SLAAC by the kernel everywhere it manages. It writes resolv.conf
// from the configured and leased name servers and publishes each
// interface's status. On-device code.
package netconf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agentconf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Job is the network job. Zero paths mean the device's own.
type Job struct {
	Config agentconf.Config
	// ResolvConf is the resolv.conf to write (agentconf.ResolvConf).
	ResolvConf string
	// SysctlRoot is /proc/sys, where IPv6 SLAAC is switched on.
	SysctlRoot string
	// SysfsNet is /sys/class/net, where wireless links are told apart.
	SysfsNet string

	// testMinLease lowers the shortest lease honoured, so a test sees
	// renewals in seconds; 0: defMinLease.
	testMinLease time.Duration

	st *state
	h  *netlink.Handle
	b  *agent.Board
}

func (j *Job) minLease() time.Duration {
	if j.testMinLease > 0 {
		return j.testMinLease
	}
	return defMinLease
}

// Name implements agent.Job.
func (j *Job) Name() string { return "network" }

func (j *Job) defaults() {
	if j.ResolvConf == "" {
		j.ResolvConf = agentconf.ResolvConf
	}
	if j.SysctlRoot == "" {
		j.SysctlRoot = "/proc/sys"
	}
	if j.SysfsNet == "" {
		j.SysfsNet = "/sys/class/net"
	}
}

func (j *Job) hostname() string {
	if validHostname(j.Config.Hostname) {
		return j.Config.Hostname
	}
	return ""
}

// Run implements agent.Job: it returns nil when ctx ends, an error when
// the kernel's link notifications stop (the supervisor restarts the
// agent, which starts over from the links as they are).
func (j *Job) Run(ctx context.Context, b *agent.Board) error {
	j.defaults()
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	j.h, j.b, j.st = h, b, newState(b, j.ResolvConf)
	if lo, err := h.LinkByName("lo"); err == nil {
		if err := h.LinkSetUp(lo); err != nil {
			b.Logf("network: lo: %v", err)
		}
	}
	j.st.publish()
	if j.Config.Network.Off {
		b.Logf("network: off (loopback only)")
		<-ctx.Done()
		return nil
	}
	return j.watch(ctx)
}

// watch follows link and address notifications until ctx ends.
func (j *Job) watch(ctx context.Context) error {
	done := make(chan struct{})
	defer close(done)
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 64)
	var mu sync.Mutex
	var subErr error // the last; read after the channel closes
	onErr := func(err error) {
		if ctx.Err() != nil {
			return // the sockets closing as the job stops
		}
		mu.Lock()
		subErr = err
		mu.Unlock()
		j.b.Logf("network: netlink: %v", err)
	}
	if err := netlink.LinkSubscribeWithOptions(links, done, netlink.LinkSubscribeOptions{
		ListExisting: true, ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("watch links: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(addrs, done, netlink.AddrSubscribeOptions{
		ErrorCallback: onErr}); err != nil {
		return fmt.Errorf("watch addresses: %w", err)
	}
	ifs := map[int]*iface{}
	defer stopAll(ifs)
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-links:
			if !ok {
				mu.Lock()
				defer mu.Unlock()
				return subscriptionEnded("links", subErr)
			}
			j.linkUpdate(ctx, ifs, u)
		case u, ok := <-addrs:
			if !ok {
				mu.Lock()
				defer mu.Unlock()
				return subscriptionEnded("addresses", subErr)
			}
			if m := ifs[u.LinkIndex]; m != nil {
				m.refreshAddrs()
			}
		}
	}
}

func subscriptionEnded(what string, err error) error {
	if err == nil {
		err = errors.New("closed")
	}
	return fmt.Errorf("netlink %s notifications: %w", what, err)
}

// linkUpdate starts, updates or stops an interface's manager.
func (j *Job) linkUpdate(ctx context.Context, ifs map[int]*iface, u netlink.LinkUpdate) {
	a := u.Link.Attrs()
	m := ifs[a.Index]
	if u.Header.Type == unix.RTM_DELLINK || (m != nil && m.name != a.Name) {
		if m != nil {
			m.stop()
			delete(ifs, a.Index)
			j.st.remove(m.name)
		}
		if u.Header.Type == unix.RTM_DELLINK {
			return
		}
		m = nil
	}
	if m == nil {
		if a.RawFlags&unix.IFF_LOOPBACK != 0 || a.Name == "" {
			return
		}
		m = j.newIface(ctx, u.Link)
		ifs[a.Index] = m
	}
	m.update(u.Link)
}

func stopAll(ifs map[int]*iface) {
	for _, m := range ifs {
		m.stop()
	}
}
