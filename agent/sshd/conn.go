package sshd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// maxChannels open at once on one connection.
	maxChannels = 16
	// maxOfferedLogged bounds the refused keys remembered for the log.
	maxOfferedLogged = 4
	// fpExtension carries the accepted key's fingerprint from the key
	// callback to the login log (Permissions are tied to the key that
	// actually signed, unlike the callback's calls).
	fpExtension = "rfs-key-fingerprint"
)

// authLog gathers what one connection tried, for the refusal's log line.
type authLog struct {
	mu      sync.Mutex
	user    string
	methods []string
	offered []string
}

func (a *authLog) add(user, method, fp string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.user = user
	if len(a.methods) < maxAuthTries+2 && !contains(a.methods, method) {
		a.methods = append(a.methods, method)
	}
	if fp != "" && len(a.offered) < maxOfferedLogged && !contains(a.offered, fp) {
		a.offered = append(a.offered, fp)
	}
}

func (a *authLog) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := fmt.Sprintf("user %q, methods %s", a.user, strings.Join(a.methods, ","))
	if len(a.offered) > 0 {
		s += ", keys " + strings.Join(a.offered, "; ")
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// config is the ssh server configuration for one connection: public keys
// for root only; no password, no keyboard-interactive (no callbacks, so
// the library refuses them). The authorized keys are read per connection,
// so a changed file takes effect at the next login.
func (s *server) config(alog *authLog) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		MaxAuthTries: maxAuthTries,
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			fp := fingerprint(k)
			alog.add(c.User(), "publickey", fp)
			if c.User() != "root" {
				return nil, errors.New("only root may log in")
			}
			keys, err := readAuthorizedKeys(s.o.AuthorizedKeysPath, func(string, ...any) {})
			if err != nil {
				return nil, err
			}
			if !keys[string(k.Marshal())] {
				return nil, errors.New("key not authorized")
			}
			return &ssh.Permissions{Extensions: map[string]string{fpExtension: fp}}, nil
		},
		AuthLogCallback: func(c ssh.ConnMetadata, method string, err error) {
			if method != "publickey" {
				alog.add(c.User(), method, "")
			}
		},
		ServerVersion: "SSH-2.0-rfs",
	}
	cfg.AddHostKey(s.signer)
	return cfg
}

// handleConn logs the client in (bounded in time, holding the slot src
// took at the gate), then serves its channels until it goes or ctx ends.
func (s *server) handleConn(ctx context.Context, c net.Conn, src string) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	alog := &authLog{}
	c.SetDeadline(time.Now().Add(authTimeout))
	sconn, chans, reqs, err := ssh.NewServerConn(c, s.config(alog))
	s.gate.leave(src)
	if err != nil {
		s.refused.log(s.o.Logf, "refused %s: %v (%s)", c.RemoteAddr(), err, alog)
		return
	}
	defer sconn.Close()
	c.SetDeadline(time.Time{})
	s.o.Logf("root login from %s with %s", c.RemoteAddr(), sconn.Permissions.Extensions[fpExtension])
	go ssh.DiscardRequests(reqs)

	var wg sync.WaitGroup
	defer wg.Wait()
	open := make(chan struct{}, maxChannels)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "only sessions are served")
			continue
		}
		select {
		case open <- struct{}{}:
		default:
			nc.Reject(ssh.ResourceShortage, "too many channels")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-open }()
			s.session(sconn, nc)
		}()
	}
	s.o.Logf("root logout from %s", c.RemoteAddr())
}
