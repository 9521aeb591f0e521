package sshd

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestParseAuthorizedKeys(t *testing.T) {
	k1, _ := newClientKey(t)
	k2, _ := newClientKey(t)
	line := func(k ssh.Signer) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.PublicKey()))) }
	tests := []struct {
		name string
		file string
		want []ssh.Signer
	}{
		{"empty", "", nil},
		{"comments and blanks", "# x\n\n   \n", nil},
		{"one key with comment", line(k1) + " me@host\n", []ssh.Signer{k1}},
		{"bad line costs only itself", "ssh-ed25519 AAAA!!\n" + line(k2) + "\n", []ssh.Signer{k2}},
		{"harmless options", "no-port-forwarding,no-agent-forwarding " + line(k1), []ssh.Signer{k1}},
		{"command= skipped", `command="/bin/true" ` + line(k1) + "\n" + line(k2), []ssh.Signer{k2}},
		{"from= skipped", `from="10.0.0.1" ` + line(k1), nil},
		{"CRLF and indent", "  " + line(k1) + "\r\n", []ssh.Signer{k1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseAuthorizedKeys([]byte(tt.file), "ak", t.Logf)
			if len(got) != len(tt.want) {
				t.Fatalf("%d keys, want %d", len(got), len(tt.want))
			}
			for _, k := range tt.want {
				if !got[string(k.PublicKey().Marshal())] {
					t.Errorf("key %s missing", ssh.FingerprintSHA256(k.PublicKey()))
				}
			}
		})
	}
}

func TestReadAuthorizedKeysBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, make([]byte, maxAuthorizedKeys+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readAuthorizedKeys(path, t.Logf); err == nil {
		t.Error("a file over 1 MiB was read")
	}
}

func TestRootAccount(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, passwd, shell, home string
	}{
		{"no file", "", "/bin/sh", "/root"},
		{"root's shell", "daemon:x:1:1::/:/bin/false\nroot:x:0:0:root:" + dir + ":/bin/true\n", "/bin/true", dir},
		{"missing shell", "root:x:0:0::/root:/no/such/shell\n", "/bin/sh", "/root"},
		{"short line", "root:x:0\n", "/bin/sh", "/root"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "passwd"+string(rune('a'+i)))
			if tt.passwd != "" {
				if err := os.WriteFile(path, []byte(tt.passwd), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			shell, home := rootAccount(path)
			if shell != tt.shell || home != tt.home {
				t.Errorf("got %s %s, want %s %s", shell, home, tt.shell, tt.home)
			}
		})
	}
}

func TestListenAddr(t *testing.T) {
	tests := []struct {
		o    Options
		want string
	}{
		{Options{}, ":22"},
		{Options{Port: 2222}, ":2222"},
		{Options{ListenAddr: "::1", Port: 2222}, "[::1]:2222"},
		{Options{ListenAddr: "127.0.0.1:0", Port: 2222}, "127.0.0.1:0"},
	}
	for _, tt := range tests {
		if got := tt.o.listenAddr(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.o, got, tt.want)
		}
	}
}

func TestLoginArgs(t *testing.T) {
	dir := t.TempDir()
	// u-root's layout: sh -> gosh -> bb, the multi-call binary.
	for _, l := range [][2]string{{"gosh", "bb"}, {"sh", "gosh"}} {
		if err := os.Symlink(l[1], filepath.Join(dir, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"bb", "busybox-sh"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		shell string
		want  []string
	}{
		{filepath.Join(dir, "sh"), []string{filepath.Join(dir, "sh")}},
		{filepath.Join(dir, "busybox-sh"), []string{"-busybox-sh"}},
		{"/no/such/shell", []string{"-shell"}},
	}
	for _, tt := range tests {
		if got := loginArgs(tt.shell); !slices.Equal(got, tt.want) {
			t.Errorf("loginArgs(%s) = %q, want %q", tt.shell, got, tt.want)
		}
	}
}

func TestGate(t *testing.T) {
	var g gate
	steps := []struct {
		src   string
		enter bool // false: leave
		want  bool
	}{
		{"a", true, true}, {"a", true, true}, {"a", true, true},
		{"a", true, false}, // a's share is used
		{"a", false, true},
		{"a", true, true},
		{"b", true, true}, {"c", true, true}, {"c", true, true}, {"c", true, true},
		{"d", true, true}, {"d", true, true}, {"d", true, true},
		{"e", true, false}, // ten in all
	}
	for i, st := range steps {
		if !st.enter {
			g.leave(st.src)
			continue
		}
		if got := g.enter(st.src); got != st.want {
			t.Errorf("step %d: enter(%s) = %v, want %v", i, st.src, got, st.want)
		}
	}
}

func TestRefusalLogLimit(t *testing.T) {
	var r refusals
	var lines []string
	logf := func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }
	for i := range maxRefusalLogs + 5 {
		r.log(logf, "refused %d", i)
	}
	if len(lines) != maxRefusalLogs {
		t.Fatalf("%d lines in a minute, want %d", len(lines), maxRefusalLogs)
	}
	r.start = r.start.Add(-time.Minute) // a minute later
	r.log(logf, "refused again")
	if want := []string{"5 more refusals not logged", "refused again"}; !slices.Equal(lines[maxRefusalLogs:], want) {
		t.Errorf("after a minute: %q, want %q", lines[maxRefusalLogs:], want)
	}
}
