package sshd

import (
	"net"
	"sync"
	"time"
)

const (
	// maxUnauthenticated connections at once; more are closed at once.
	maxUnauthenticated = 10
	// maxUnauthPerSource is the share of one address, so a single
	// scanner cannot take every slot and lock the owner out.
	maxUnauthPerSource = 3
	// authTimeout bounds the handshake and login.
	authTimeout = 30 * time.Second
	// maxAuthTries per connection.
	maxAuthTries = 6
	// maxRefusalLogs per minute: the Internet's password guessers would
	// otherwise fill the log (kept in RAM).
	maxRefusalLogs = 20
)

// gate counts the connections that have not logged in yet.
type gate struct {
	mu       sync.Mutex
	total    int
	bySource map[string]int
}

func sourceOf(a net.Addr) string {
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// enter takes a slot for a connection from src, or says there is none.
func (g *gate) enter(src string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total >= maxUnauthenticated || g.bySource[src] >= maxUnauthPerSource {
		return false
	}
	if g.bySource == nil {
		g.bySource = map[string]int{}
	}
	g.total++
	g.bySource[src]++
	return true
}

// leave gives back the slot enter took.
func (g *gate) leave(src string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.bySource[src]--; g.bySource[src] <= 0 {
		delete(g.bySource, src)
	}
}

// refusals limits the refusal log lines to maxRefusalLogs a minute and
// counts the rest.
type refusals struct {
	mu         sync.Mutex
	start      time.Time
	logged     int
	suppressed int
}

// log prints the refusal through logf unless this minute's share is used.
func (r *refusals) log(logf func(string, ...any), format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.start) >= time.Minute {
		if r.suppressed > 0 {
			logf("%d more refusals not logged", r.suppressed)
		}
		r.start, r.logged, r.suppressed = now, 0, 0
	}
	if r.logged >= maxRefusalLogs {
		r.suppressed++
		return
	}
	r.logged++
	logf(format, args...)
}
