package sshd

import (
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

const (
	// maxEnv bounds the variables a client may set, and their size.
	maxEnv     = 32
	maxEnvSize = 4096
	// maxTerm bounds the TERM a pty request names.
	maxTerm = 64
)

// session is one "session" channel: its settings until a program starts,
// then the program.
type session struct {
	srv  *server
	conn ssh.ConnMetadata
	ch   ssh.Channel
	env  []string
	pty  *ptyRequest
	// run is the started program; nil before exec/shell/subsystem.
	run  *running
	done chan struct{}
}

// ptyRequest is RFC 4254 6.2's "pty-req" payload.
type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

// windowChange is RFC 4254 6.7's "window-change" payload.
type windowChange struct {
	Cols, Rows    uint32
	Width, Height uint32
}

// session serves one channel: requests until the client closes it; the
// program it started, if still running then, is killed. The server stops
// sessions by closing their connection.
func (s *server) session(conn ssh.ConnMetadata, nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	ss := &session{srv: s, conn: conn, ch: ch, done: make(chan struct{})}
	for req := range reqs {
		req.Reply(ss.handle(req), nil)
	}
	if ss.run != nil {
		ss.run.kill()
	}
	ch.Close()
	if ss.run != nil {
		<-ss.done
	}
}

// handle answers one request: whether it was granted.
func (ss *session) handle(req *ssh.Request) bool {
	switch req.Type {
	case "env":
		return ss.setEnv(req.Payload)
	case "pty-req":
		var p ptyRequest
		if ss.run != nil || ss.pty != nil || ssh.Unmarshal(req.Payload, &p) != nil || len(p.Term) > maxTerm {
			return false
		}
		ss.pty = &p
		return true
	case "window-change":
		var w windowChange
		if ss.run == nil || ssh.Unmarshal(req.Payload, &w) != nil {
			return false
		}
		return ss.run.resize(w.Cols, w.Rows, w.Width, w.Height)
	case "exec":
		var cmd struct{ Command string }
		if ss.run != nil || ssh.Unmarshal(req.Payload, &cmd) != nil {
			return false
		}
		return ss.start(cmd.Command, false)
	case "shell":
		return ss.run == nil && ss.start("", true)
	case "subsystem":
		var sub struct{ Name string }
		if ss.run != nil || ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != "sftp" {
			return false
		}
		return ss.startSFTP()
	case "signal":
		var sig struct{ Signal string }
		if ss.run == nil || ssh.Unmarshal(req.Payload, &sig) != nil {
			return false
		}
		return ss.run.signal(sig.Signal)
	}
	return false
}

// setEnv accepts the locale and TERM only: variables like LD_PRELOAD or
// PATH would change what the shell runs before the user's command.
func (ss *session) setEnv(payload []byte) bool {
	var kv struct{ Name, Value string }
	if ss.run != nil || ssh.Unmarshal(payload, &kv) != nil || len(ss.env) >= maxEnv ||
		len(kv.Name)+len(kv.Value) > maxEnvSize || strings.ContainsAny(kv.Name, "=\x00") ||
		strings.Contains(kv.Value, "\x00") {
		return false
	}
	if kv.Name != "LANG" && kv.Name != "TERM" && !strings.HasPrefix(kv.Name, "LC_") {
		return false
	}
	ss.env = append(ss.env, kv.Name+"="+kv.Value)
	return true
}

// sendExit reports how the program ended and closes the channel.
func (ss *session) sendExit(code int, signal string) {
	if signal != "" {
		ss.ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: signal}))
	} else {
		ss.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
	}
	ss.ch.Close()
}

// sshConnection is SSH_CONNECTION: "CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT".
func sshConnection(c ssh.ConnMetadata) string {
	ch, cp, _ := net.SplitHostPort(c.RemoteAddr().String())
	sh, sp, _ := net.SplitHostPort(c.LocalAddr().String())
	return strings.Join([]string{ch, cp, sh, sp}, " ")
}

// running is a started program, so requests can reach it.
type running struct {
	mu     sync.Mutex
	exited bool
	// kill ends the program (and its process group) if still running.
	killf   func()
	resizef func(cols, rows, w, h uint32) bool
	signalf func(name string) bool
}

func (r *running) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.exited && r.killf != nil {
		r.killf()
	}
}

func (r *running) resize(cols, rows, w, h uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.exited && r.resizef != nil && r.resizef(cols, rows, w, h)
}

func (r *running) signal(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.exited && r.signalf != nil && r.signalf(name)
}

// exit marks the program reaped: no signal may reach a reused pid.
func (r *running) exit() {
	r.mu.Lock()
	r.exited = true
	r.mu.Unlock()
}
