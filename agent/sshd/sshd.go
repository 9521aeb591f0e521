// Package sshd is the device's SSH server, a job of the on-device agent:
// public-key logins as root only, keys from agentconf.AuthorizedKeysFile
// (no key: no server), an ed25519 host key made at first start and kept in
// KeyDir (the data partition's identity directory when there is one, so
// the device keeps its identity across boots and factory resets). Sessions
// run commands and shells (with or without a pty) through root's shell,
// and the sftp subsystem (which OpenSSH's scp uses by default).
// On-device code: it imports nothing host-only.
package sshd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agentconf"
	"golang.org/x/crypto/ssh"
)

// Options configure the server. The zero value serves port 22 on every
// address with the device's paths.
type Options struct {
	// Port to listen on; 0: 22.
	Port int
	// ListenAddr is the address to listen on; "": all. With a port
	// ("127.0.0.1:0") it overrides Port.
	ListenAddr string
	// AuthorizedKeysPath: "" means agentconf.AuthorizedKeysFile.
	AuthorizedKeysPath string
	// KeyDir holds the host key; "" means DefaultKeyDir().
	KeyDir string
	// Persistent tells the status that KeyDir survives a reboot; it is
	// ignored (DefaultKeyDir decides) when KeyDir is "".
	Persistent bool
	// Shell overrides root's shell from /etc/passwd (tests).
	Shell string
	// Logf prints one log line; nil: no log.
	Logf func(format string, args ...any)
}

// Job is the agent's SSH job ("ssh").
type Job struct{ Options }

// Name is "ssh".
func (j *Job) Name() string { return "ssh" }

// Run serves until ctx ends, publishing the server's status on b.
func (j *Job) Run(ctx context.Context, b *agent.Board) error {
	o := j.Options
	if o.Logf == nil {
		o.Logf = func(f string, a ...any) { b.Logf("ssh: "+f, a...) }
	}
	return Serve(ctx, o, func(st agentconf.SSHStatus) {
		b.Update(func(s *agentconf.Status) { s.SSH = st })
	})
}

// DefaultKeyDir is where the host keys live: the data partition's identity
// directory when the partition is mounted (persistent), else /run/rfs/ssh
// (a new identity every boot).
func DefaultKeyDir() (dir string, persistent bool) {
	if isMountPoint(agentconf.DataDir) {
		return filepath.Join(agentconf.DataDir, agentconf.IdentityDir, "ssh"), true
	}
	return "/run/rfs/ssh", false
}

// isMountPoint: dir exists and is on another device than its parent.
func isMountPoint(dir string) bool {
	var st, parent syscall.Stat_t
	if syscall.Stat(dir, &st) != nil || syscall.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Mode&syscall.S_IFMT == syscall.S_IFDIR && st.Dev != parent.Dev
}

// Serve runs the server until ctx ends, then returns nil. report receives
// the status whenever it changes. Without an authorized key it does not
// listen: it reports Enabled=false and waits for ctx.
func Serve(ctx context.Context, o Options, report func(agentconf.SSHStatus)) error {
	o = o.withDefaults()
	st := agentconf.SSHStatus{Persistent: o.Persistent}
	keys, err := readAuthorizedKeys(o.AuthorizedKeysPath, o.Logf)
	if err == nil && len(keys) == 0 {
		if _, statErr := os.Stat(o.AuthorizedKeysPath); statErr == nil {
			err = fmt.Errorf("no valid key in %s", o.AuthorizedKeysPath)
		}
	}
	if err != nil || len(keys) == 0 {
		if err != nil {
			st.Error = err.Error()
			o.Logf("not serving: %v", err)
		}
		report(st)
		<-ctx.Done()
		return nil
	}
	signer, err := hostKey(o.KeyDir, o.Logf)
	if err != nil && signer == nil {
		st.Error = err.Error()
		report(st)
		return err
	}
	if err != nil {
		st.Error = err.Error()
		st.Persistent = false
		o.Logf("%v", err)
	}
	st.HostKeys = []string{fingerprint(signer.PublicKey())}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.listenAddr())
	if err != nil {
		st.Error = err.Error()
		report(st)
		return fmt.Errorf("listen: %w", err)
	}
	st.Enabled, st.Listen = true, ln.Addr().String()
	report(st)
	o.Logf("listening on %s, host key %s", st.Listen, st.HostKeys[0])
	s := &server{o: o, signer: signer}
	s.acceptLoop(ctx, ln)
	return nil
}

func (o Options) withDefaults() Options {
	if o.AuthorizedKeysPath == "" {
		o.AuthorizedKeysPath = agentconf.AuthorizedKeysFile
	}
	if o.KeyDir == "" {
		o.KeyDir, o.Persistent = DefaultKeyDir()
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

func (o Options) listenAddr() string {
	if _, _, err := net.SplitHostPort(o.ListenAddr); err == nil {
		return o.ListenAddr
	}
	port := o.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(o.ListenAddr, strconv.Itoa(port))
}

// server is one listening server's shared state.
type server struct {
	o      Options
	signer ssh.Signer
	// gate limits the connections that have not logged in yet.
	gate gate
	// refused limits the refusals' log lines.
	refused refusals
}

// acceptLoop accepts until ctx ends, then closes every connection (which
// kills their sessions' programs) and waits for them.
func (s *server) acceptLoop(ctx context.Context, ln net.Listener) {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: pause, never spin.
				s.o.Logf("accept: %v", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				continue
			}
			return
		}
		src := sourceOf(c.RemoteAddr())
		if !s.gate.enter(src) {
			s.refused.log(s.o.Logf, "refused %s: too many connections logging in", c.RemoteAddr())
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.handleConn(ctx, c, src)
		}()
	}
}
