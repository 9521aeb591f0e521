package sshd

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openSSH runs the machine's OpenSSH clients against a test server, with
// no user configuration, agent or known_hosts, never prompting.
type openSSH struct {
	ts   *testServer
	key  string // the private key file
	port string
}

func newOpenSSH(t *testing.T) *openSSH {
	t.Helper()
	for _, prog := range []string{"ssh", "scp"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("OpenSSH client %s not installed", prog)
		}
	}
	ts := startServer(t, "")
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, ts.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	return &openSSH{ts: ts, key: key, port: port}
}

func (o *openSSH) opts() []string {
	return []string{"-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "PasswordAuthentication=no", "-o", "BatchMode=yes",
		"-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR",
		"-i", o.key}
}

func (o *openSSH) run(t *testing.T, prog string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (o *openSSH) ssh(t *testing.T, extra ...string) (string, error) {
	args := append(o.opts(), "-p", o.port)
	return o.run(t, "ssh", append(args, extra...)...)
}

func TestOpenSSHCommand(t *testing.T) {
	o := newOpenSSH(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("device file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := o.ssh(t, "root@127.0.0.1", "cat "+file)
	if err != nil || out != "device file\n" {
		t.Errorf("ssh cat: %q, %v", out, err)
	}
	_, err = o.ssh(t, "root@127.0.0.1", "exit 7")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("ssh 'exit 7': %v, want exit status 7", err)
	}
}

func TestOpenSSHPTY(t *testing.T) {
	o := newOpenSSH(t)
	out, err := o.ssh(t, "-tt", "root@127.0.0.1", "tty; echo $TERM")
	if err != nil || !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("ssh -tt tty: %q, %v", out, err)
	}
}

func TestOpenSSHSCP(t *testing.T) {
	o := newOpenSSH(t)
	local, remote := t.TempDir(), t.TempDir()
	want := bytes.Repeat([]byte("scp over sftp\n"), 50000)
	if err := os.WriteFile(filepath.Join(local, "up"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	scp := func(from, to string) {
		t.Helper()
		args := append(o.opts(), "-P", o.port, from, to)
		if out, err := o.run(t, "scp", args...); err != nil {
			t.Fatalf("scp %s %s: %v\n%s", from, to, err, out)
		}
	}
	scp(filepath.Join(local, "up"), "root@127.0.0.1:"+filepath.Join(remote, "up"))
	if got, err := os.ReadFile(filepath.Join(remote, "up")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("upload: %d bytes, %v", len(got), err)
	}
	scp("root@127.0.0.1:"+filepath.Join(remote, "up"), filepath.Join(local, "down"))
	if got, err := os.ReadFile(filepath.Join(local, "down")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("download: %d bytes, %v", len(got), err)
	}
}

func TestOpenSSHRefused(t *testing.T) {
	o := newOpenSSH(t)
	tests := []struct {
		name string
		args []string
	}{
		{"password", []string{"-o", "PreferredAuthentications=password", "root@127.0.0.1", "true"}},
		{"keyboard-interactive", []string{"-o", "PreferredAuthentications=keyboard-interactive", "root@127.0.0.1", "true"}},
		{"other user", []string{"admin@127.0.0.1", "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := o.ssh(t, tt.args...)
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 255 || !strings.Contains(out, "Permission denied") {
				t.Errorf("ssh %s: %v\n%s", tt.args, err, out)
			}
		})
	}
}

func TestOpenSSHLoginShell(t *testing.T) {
	o := newOpenSSH(t)
	args := append(o.opts(), "-tt", "-p", o.port, "root@127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Stdin = strings.NewReader("echo shell:$0; exit 5\n")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 || !strings.Contains(string(out), "shell:-sh") {
		t.Errorf("ssh -tt login shell: %v\n%s", err, out)
	}
}
