package sshd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agentconf"
	"golang.org/x/crypto/ssh"
)

// testServer is a server on 127.0.0.1 with a fresh authorized key.
type testServer struct {
	addr    string
	status  agentconf.SSHStatus
	key     ssh.Signer // the authorized client key
	keyPEM  []byte     // its OpenSSH private key file
	keyDir  string
	hostKey ssh.PublicKey
	stop    func() // cancels Serve and checks it returned nil
}

func newClientKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

// startServer serves until the test ends; keyDir "" means a temp dir.
func startServer(t *testing.T, keyDir string) *testServer {
	t.Helper()
	ts := &testServer{keyDir: keyDir}
	if ts.keyDir == "" {
		ts.keyDir = filepath.Join(t.TempDir(), "keys")
	}
	ts.key, ts.keyPEM = newClientKey(t)
	ak := filepath.Join(t.TempDir(), "authorized_keys")
	data := "# the test key\n" + string(ssh.MarshalAuthorizedKey(ts.key.PublicKey()))
	if err := os.WriteFile(ak, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	ts.status, ts.stop = runServe(t, Options{
		ListenAddr: "127.0.0.1:0", AuthorizedKeysPath: ak, KeyDir: ts.keyDir,
		Persistent: true, Shell: "/bin/sh", Logf: t.Logf,
	})
	if !ts.status.Enabled {
		t.Fatalf("server not enabled: %+v", ts.status)
	}
	ts.addr = ts.status.Listen
	return ts
}

// runServe starts Serve and returns its first status and a function that
// stops it, checking it returns nil; the test's end calls that too.
func runServe(t *testing.T, o Options) (agentconf.SSHStatus, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	statuses := make(chan agentconf.SSHStatus, 4)
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, o, func(s agentconf.SSHStatus) { statuses <- s }) }()
	stop := sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	t.Cleanup(stop)
	select {
	case st := <-statuses:
		return st, stop
	case err := <-errc:
		t.Fatalf("Serve returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no status from Serve")
	}
	return agentconf.SSHStatus{}, stop
}

func (ts *testServer) dial(t *testing.T, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	t.Helper()
	return ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{
		User: user, Auth: auth, Timeout: 10 * time.Second,
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			ts.hostKey = k
			return nil
		},
	})
}

func (ts *testServer) login(t *testing.T) *ssh.Client {
	t.Helper()
	c, err := ts.dial(t, "root", ssh.PublicKeys(ts.key))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestExec(t *testing.T) {
	ts := startServer(t, "")
	c := ts.login(t)
	tests := []struct {
		cmd, stdin, want string
		status           int
	}{
		{cmd: "echo hi", want: "hi\n"},
		{cmd: "exit 3", status: 3},
		{cmd: "cat", stdin: "from stdin", want: "from stdin"},
		{cmd: "echo $HOME $USER $SHELL", want: "/root root /bin/sh\n"},
		{cmd: "echo oops >&2; exit 1", status: 1},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.Stdin = strings.NewReader(tt.stdin)
			out, err := s.Output(tt.cmd)
			status := 0
			var ee *ssh.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitStatus()
			} else if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want || status != tt.status {
				t.Errorf("got %q status %d, want %q status %d", out, status, tt.want, tt.status)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	ts := startServer(t, "")
	other, _ := newClientKey(t)
	answers := func(string, string, []string, []bool) ([]string, error) { return []string{"root"}, nil }
	tests := []struct {
		name string
		user string
		auth ssh.AuthMethod
	}{
		{"wrong key", "root", ssh.PublicKeys(other)},
		{"password", "root", ssh.Password("root")},
		{"keyboard-interactive", "root", ssh.KeyboardInteractive(answers)},
		{"other user", "admin", ssh.PublicKeys(ts.key)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ts.dial(t, tt.user, tt.auth)
			if err == nil {
				c.Close()
				t.Fatal("login accepted")
			}
			if !strings.Contains(err.Error(), "unable to authenticate") {
				t.Errorf("error %v, want an authentication failure", err)
			}
		})
	}
}

func TestNoAuthorizedKeys(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("# nothing\nnot a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		wantError  bool
	}{
		{"missing", filepath.Join(dir, "missing"), false},
		{"no valid key", garbage, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := runServe(t, Options{ListenAddr: "127.0.0.1:0", AuthorizedKeysPath: tt.path,
				KeyDir: filepath.Join(dir, "keys"), Logf: t.Logf})
			if st.Enabled || st.Listen != "" || (st.Error != "") != tt.wantError {
				t.Errorf("status %+v", st)
			}
			if _, err := os.Stat(filepath.Join(dir, "keys")); err == nil {
				t.Error("a host key was made for a server that does not run")
			}
		})
	}
}

func TestHostKeyPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "identity", "ssh")
	first := startServer(t, dir)
	first.login(t)
	second := startServer(t, dir)
	second.login(t)
	other := startServer(t, "")
	other.login(t)
	if !bytes.Equal(first.hostKey.Marshal(), second.hostKey.Marshal()) {
		t.Error("host key changed across restarts")
	}
	if bytes.Equal(first.hostKey.Marshal(), other.hostKey.Marshal()) {
		t.Error("two key directories share a host key")
	}
	want := "ED25519 " + ssh.FingerprintSHA256(first.hostKey)
	if len(first.status.HostKeys) != 1 || first.status.HostKeys[0] != want {
		t.Errorf("HostKeys %q, want [%q]", first.status.HostKeys, want)
	}
	checkMode(t, dir, 0o700|os.ModeDir)
	checkMode(t, filepath.Join(dir, hostKeyName), 0o600)
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
	}
}

func TestHostKeyCorrupt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, hostKeyName)
	if err := os.WriteFile(path, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logged []string
	signer, err := hostKey(dir, func(f string, a ...any) { logged = append(logged, f) })
	if err != nil || signer == nil {
		t.Fatalf("hostKey: %v", err)
	}
	if bad, err := os.ReadFile(path + ".bad"); err != nil || !bytes.Contains(bad, []byte("garbage")) {
		t.Errorf("corrupt key not moved aside: %v", err)
	}
	again, err := loadHostKey(path)
	if err != nil || !bytes.Equal(again.PublicKey().Marshal(), signer.PublicKey().Marshal()) {
		t.Errorf("new key not saved: %v", err)
	}
	if len(logged) == 0 {
		t.Error("corrupt key not logged")
	}
}

func TestHostKeyUnsaved(t *testing.T) {
	// A key directory that cannot be made (a file in the way): the server
	// still gets a key, and the error says it is not kept.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := hostKey(filepath.Join(file, "ssh"), t.Logf)
	if signer == nil || err == nil {
		t.Errorf("hostKey = %v, %v; want a key and an error", signer, err)
	}
}

func TestPTY(t *testing.T) {
	ts := startServer(t, "")
	c := ts.login(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("vt100", 40, 100, nil); err != nil {
		t.Fatal(err)
	}
	out, err := s.CombinedOutput("test -t 0 && echo tty; echo $TERM; stty size")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out); !strings.HasPrefix(got, "tty\r\nvt100\r\n40 100\r\n") {
		t.Errorf("output %q", got)
	}
}

func TestWindowChange(t *testing.T) {
	ts := startServer(t, "")
	c := ts.login(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Start("sleep 1; stty size"); err != nil {
		t.Fatal(err)
	}
	if err := s.WindowChange(50, 120); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "50 120\r\n" {
		t.Errorf("stty size after window-change: %q", got)
	}
}

func TestEnv(t *testing.T) {
	ts := startServer(t, "")
	c := ts.login(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Setenv("LC_ALL", "C.UTF-8"); err != nil {
		t.Errorf("LC_ALL refused: %v", err)
	}
	for _, name := range []string{"LD_PRELOAD", "PATH", "HOME"} {
		if err := s.Setenv(name, "/tmp/x"); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	out, err := s.Output("echo $LC_ALL $PATH")
	if err != nil {
		t.Fatal(err)
	}
	if want := "C.UTF-8 " + defaultPath + "\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestKillOnClose(t *testing.T) {
	tests := []struct {
		name  string
		pty   bool
		close func(*testServer, *ssh.Session)
	}{
		{"channel closed", false, func(_ *testServer, s *ssh.Session) { s.Close() }},
		{"pty channel closed", true, func(_ *testServer, s *ssh.Session) { s.Close() }},
		{"server stopped", false, func(ts *testServer, _ *ssh.Session) { ts.stop() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, "")
			s, pid := startSleep(t, ts.login(t), tt.pty)
			tt.close(ts, s)
			waitGone(t, pid)
		})
	}
}

// startSleep runs a long sleep and returns its pid.
func startSleep(t *testing.T, c *ssh.Client, pty bool) (*ssh.Session, int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if pty {
		if err := s.RequestPty("xterm", 24, 80, nil); err != nil {
			t.Fatal(err)
		}
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("echo $$; exec sleep 1000"); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 32)
	n, err := stdout.Read(line)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatal(err)
	}
	return s, pid
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still runs after the channel closed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSFTP(t *testing.T) {
	ts := startServer(t, "")
	c := ts.login(t)
	client, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	dir := t.TempDir()
	want := bytes.Repeat([]byte("rfs sftp\n"), 10000)
	f, err := client.Create(filepath.Join(dir, "up"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "up")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("upload: %d bytes, %v", len(got), err)
	}
	r, err := client.Open(filepath.Join(dir, "up"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("download: %d bytes, %v", len(got), err)
	}
}

func TestUnauthenticatedLimit(t *testing.T) {
	ts := startServer(t, "")
	// Linux routes all of 127/8 to lo: distinct source addresses.
	dial := func(src int) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src))}}
		c, err := d.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	first := dial(2)
	readBanner(t, first) // accepted and handshaking: it holds a slot
	for range maxUnauthPerSource - 1 {
		readBanner(t, dial(2))
	}
	refusedEOF(t, dial(2)) // over the share of 127.0.0.2
	for i := maxUnauthPerSource; i < maxUnauthenticated; i++ {
		readBanner(t, dial(3+i))
	}
	refusedEOF(t, dial(100)) // over the total
	first.Close()
	// The freed slot comes back once the server has seen the close.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(100)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := c.Read(make([]byte, 64))
		c.Close()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no slot freed after a connection closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func refusedEOF(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 64)); err != io.EOF {
		t.Errorf("connection over the limit: read %d, %v; want EOF", n, err)
	}
}

func readBanner(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "SSH-2.0-") {
		t.Fatalf("banner %q, %v", buf[:n], err)
	}
}

func TestShell(t *testing.T) {
	ts := startServer(t, "")
	c := ts.login(t)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out bytes.Buffer
	s.Stdout = &out
	s.Stdin = strings.NewReader("echo $0\nexit 4\n")
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 4 || out.String() != "-sh\n" {
		t.Errorf("login shell: %q, %v; want \"-sh\\n\" and status 4", out.String(), err)
	}
}

func TestJobPublishesStatus(t *testing.T) {
	dir := t.TempDir()
	key, _ := newClientKey(t)
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, ssh.MarshalAuthorizedKey(key.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &agent.Board{StatusPath: filepath.Join(dir, "agent.json")}
	j := &Job{Options{ListenAddr: "127.0.0.1:0", AuthorizedKeysPath: ak,
		KeyDir: filepath.Join(dir, "keys"), Persistent: true}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- agent.Run(ctx, b, []agent.Job{j}) }()
	var st agentconf.Status
	deadline := time.Now().Add(10 * time.Second)
	for !st.SSH.Enabled && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if data, err := os.ReadFile(b.StatusPath); err == nil {
			json.Unmarshal(data, &st)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("agent.Run: %v", err)
	}
	if j.Name() != "ssh" || !st.SSH.Enabled || !st.SSH.Persistent || len(st.SSH.HostKeys) != 1 ||
		!strings.HasPrefix(st.SSH.HostKeys[0], "ED25519 SHA256:") {
		t.Errorf("published %+v", st.SSH)
	}
}
