package sshd

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfsbuild/rfs/atomicfile"
	"golang.org/x/crypto/ssh"
)

const (
	// maxAuthorizedKeys bounds the authorized_keys file we read.
	maxAuthorizedKeys = 1 << 20
	// maxHostKeyFile bounds a host key file (an ed25519 key is ~400 bytes).
	maxHostKeyFile = 64 << 10
	// hostKeyName is the host key's file in KeyDir, named as OpenSSH does.
	hostKeyName = "ssh_host_ed25519_key"
)

// harmlessOptions are authorized_keys options that restrict what this
// server never offers anyway (forwarding, ~/.ssh/rc). A key with any other
// option (command=, from=, cert-authority, ...) is skipped: ignoring such an
// option would grant more than its author meant.
var harmlessOptions = map[string]bool{
	"no-port-forwarding":  true,
	"no-agent-forwarding": true,
	"no-x11-forwarding":   true,
	"no-user-rc":          true,
}

// authorizedKeys is the set of keys allowed to log in, by wire encoding.
type authorizedKeys map[string]bool

// readAuthorizedKeys reads path. A missing file gives an empty set and no
// error: no file means no SSH server. Lines that do not parse, or carry
// options this server does not honour, are skipped and reported by logf.
func readAuthorizedKeys(path string, logf func(string, ...any)) (authorizedKeys, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return authorizedKeys{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAuthorizedKeys+1))
	if err != nil {
		return nil, fmt.Errorf("authorized keys %s: %w", path, err)
	}
	if len(data) > maxAuthorizedKeys {
		return nil, fmt.Errorf("authorized keys %s: larger than 1 MiB", path)
	}
	return parseAuthorizedKeys(data, path, logf), nil
}

// parseAuthorizedKeys parses the OpenSSH authorized_keys format line by
// line, so one bad line costs only that key.
func parseAuthorizedKeys(data []byte, name string, logf func(string, ...any)) authorizedKeys {
	keys := authorizedKeys{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxAuthorizedKeys)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, opts, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			logf("%s:%d: skipped: %v", name, n, err)
			continue
		}
		if bad := unsupportedOption(opts); bad != "" {
			logf("%s:%d: skipped: option %q is not supported", name, n, bad)
			continue
		}
		keys[string(key.Marshal())] = true
	}
	return keys
}

func unsupportedOption(opts []string) string {
	for _, o := range opts {
		if !harmlessOptions[strings.ToLower(o)] {
			return o
		}
	}
	return ""
}

// fingerprint is "TYPE SHA256:...", the form SSHStatus and the logs use.
func fingerprint(k ssh.PublicKey) string {
	t := strings.TrimPrefix(k.Type(), "ssh-")
	return strings.ToUpper(t) + " " + ssh.FingerprintSHA256(k)
}

// hostKey loads the ed25519 host key from dir, or makes and saves one.
// A key file that does not parse is moved aside (NAME.bad) and replaced.
// When the key cannot be saved the server still runs with the new key,
// and the error says so (the identity then changes at the next start).
func hostKey(dir string, logf func(string, ...any)) (ssh.Signer, error) {
	path := filepath.Join(dir, hostKeyName)
	signer, err := loadHostKey(path)
	if err == nil {
		return signer, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		logf("host key %s: %v; making a new one", path, err)
		if err := os.Rename(path, path+".bad"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			logf("host key: move aside: %v", err)
		}
	}
	pemBytes, signer, err := newHostKey()
	if err != nil {
		return nil, err
	}
	if err := saveHostKey(dir, path, pemBytes); err != nil {
		return signer, fmt.Errorf("host key not saved (a new one next start): %w", err)
	}
	logf("host key %s: made %s", path, fingerprint(signer.PublicKey()))
	return signer, nil
}

func loadHostKey(path string) (ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxHostKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxHostKeyFile {
		return nil, errors.New("larger than 64 KiB")
	}
	return ssh.ParsePrivateKey(data)
}

// newHostKey makes an ed25519 key and its OpenSSH PEM encoding.
func newHostKey() ([]byte, ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, fmt.Errorf("host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("host key: %w", err)
	}
	return pem.EncodeToMemory(block), signer, nil
}

func saveHostKey(dir, path string, pemBytes []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// MkdirAll leaves an existing directory's mode alone: tighten it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, pemBytes, 0o600)
}
