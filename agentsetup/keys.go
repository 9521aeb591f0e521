package agentsetup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/rfsbuild/rfs/infile"
)

// maxKeyFile bounds an authorized_keys file: a few hundred keys.
const maxKeyFile = 1 << 20

// keyTypePrefixes start the key of every public key line OpenSSH writes:
// an entry of ssh.authorized_keys with a word starting with one is a key
// (maybe after options), anything else a file name.
var keyTypePrefixes = []string{"ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-"}

// IsInlineKey reports whether an ssh.authorized_keys entry is a key
// ("ssh-ed25519 AAAA... me@laptop") rather than a file's path. A private
// key block counts as inline, so it is refused as such.
func IsInlineKey(entry string) bool {
	e := strings.TrimSpace(entry)
	for _, p := range keyTypePrefixes {
		if strings.HasPrefix(e, p) || strings.Contains(e, " "+p) {
			return true
		}
	}
	return strings.HasPrefix(e, "-----BEGIN")
}

// ParseKey checks one public key line and returns it normalized: "TYPE
// BASE64 COMMENT", the comment kept. Options (from=, command=, ...) are
// refused: the agent's SSH server does not apply them, and a key the user
// believes restricted must not log in unrestricted.
func ParseKey(line string) (string, error) {
	line = strings.TrimSpace(line)
	if isPrivate(line) {
		return "", fmt.Errorf("this is a private key; give the .pub file (the public key)")
	}
	if strings.ContainsAny(line, "\n\r") {
		return "", fmt.Errorf("one key per line")
	}
	pub, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "", fmt.Errorf("not an OpenSSH public key (want \"ssh-ed25519 AAAA... comment\"): %v", err)
	}
	if len(options) > 0 {
		return "", fmt.Errorf("key options (%s) are not supported: give the bare key", strings.Join(options, ","))
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return "", fmt.Errorf("one key per line")
	}
	out := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	if comment = strings.Map(printable, comment); comment != "" {
		out += " " + comment
	}
	return out, nil
}

// printable drops control characters from a key's comment, which ends up
// in a file and in messages.
func printable(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return -1
	}
	return r
}

func isPrivate(line string) bool {
	return strings.HasPrefix(line, "-----BEGIN") && strings.Contains(line, "PRIVATE KEY") ||
		strings.HasPrefix(line, "PuTTY-User-Key-File")
}

// ReadKeyFile reads an authorized_keys-style file: one public key per
// line, blank lines and # comments skipped. Errors name FILE:LINE.
func ReadKeyFile(path string) ([]string, error) {
	f, err := infile.Open("SSH key file", path)
	var special *infile.NotRegularError
	if err != nil && !errors.As(err, &special) {
		return nil, fmt.Errorf("SSH key file: %w", err)
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: larger than 1 MiB: not a public key file", path)
	}
	return ParseKeys(data, path)
}

// ParseKeys parses authorized_keys content from file name (for messages).
func ParseKeys(data []byte, name string) ([]string, error) {
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxKeyFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if isPrivate(line) {
			return nil, fmt.Errorf("%s:%d: %s is a private key; give the .pub file", name, n, name)
		}
		k, err := ParseKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no public key in it", name)
	}
	return keys, nil
}
