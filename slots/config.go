package slots

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/rfsbuild/rfs/bootparam"
)

// Config is the device's update settings, /etc/rfs/update.json in the
// lower (rfs.yaml's update:). The image carries the public key only.
type Config struct {
	// PublicKey is the update key's public half, PEM (rfs keygen's
	// NAME.pub): a release must be signed by its private half.
	PublicKey string `json:"public_key"`
	// Ref is where the agent polls for releases (a registry reference or
	// http://HOST/REPO:TAG); "" polls nothing.
	Ref string `json:"ref,omitempty"`
	// IntervalSeconds is the polling interval.
	IntervalSeconds int `json:"interval_seconds,omitempty"`
	// ResetPaths are paths whose copies in the upper are dropped when a
	// new release is switched to, so the release's version wins.
	ResetPaths []string `json:"reset_paths,omitempty"`
	// HealthSeconds is how long a trial boot must stay healthy before it
	// is committed.
	HealthSeconds int `json:"health_seconds,omitempty"`
	// HealthCommand, when set, must exit 0 at the end of that time (run
	// with /bin/sh -c in the new root).
	HealthCommand string `json:"health_command,omitempty"`
}

// DefaultHealthSeconds is how long a trial must stay healthy by default.
const DefaultHealthSeconds = 30

// HealthWait is how long a trial must stay healthy.
func (c Config) HealthWait() time.Duration {
	if c.HealthSeconds <= 0 {
		return DefaultHealthSeconds * time.Second
	}
	return time.Duration(c.HealthSeconds) * time.Second
}

// ParseConfig reads /etc/rfs/update.json.
func ParseConfig(b []byte) (Config, error) {
	if len(b) > MaxStateFile {
		return Config{}, fmt.Errorf("%s: %d bytes, more than %d", ConfigFile, len(b), MaxStateFile)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	for _, p := range c.ResetPaths {
		if err := CheckResetPath(p); err != nil {
			return Config{}, fmt.Errorf("%s: %w", ConfigFile, err)
		}
	}
	if c.HealthSeconds < 0 || c.HealthSeconds > 3600 || c.IntervalSeconds < 0 {
		return Config{}, fmt.Errorf("%s: health_seconds or interval_seconds out of range", ConfigFile)
	}
	return c, nil
}

// Marshal encodes c as indented JSON with a final newline.
func (c Config) Marshal() []byte {
	b, _ := json.MarshalIndent(c, "", "  ")
	return append(b, '\n')
}

// CheckResetPath says what is wrong with a reset_paths entry: it must be
// absolute and clean, and not / itself.
func CheckResetPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/") || path.Clean(p) != p:
		return fmt.Errorf("reset path %q: want an absolute, clean path such as /etc/app.conf", p)
	case p == "/":
		return fmt.Errorf("reset path /: that is the whole upper (use rfs reset)")
	}
	return nil
}

// Cmdline is a release's command line made to boot from a device's slot:
// the values of rfs.root, rfs.data, rfs.boot and rfs.slot are replaced by
// (or set to) set's, so a release built elsewhere (whose partition ids
// differ) boots this device's partitions. A release with layers is
// refused: a slot holds a root only.
func Cmdline(line string, set map[string]string) (string, error) {
	var out []string
	done := map[string]bool{}
	for _, tok := range bootparam.SplitCmdline(line) {
		key, _, _ := strings.Cut(tok, "=")
		if key == "rfs.layers" {
			return "", fmt.Errorf("the release stacks layers (rfs.layers): A/B slots hold a root only")
		}
		if v, ok := set[key]; ok {
			if !done[key] {
				out = append(out, key+"="+v)
				done[key] = true
			}
			continue
		}
		out = append(out, quoteParam(tok))
	}
	for _, key := range []string{"rfs.root", "rfs.data", "rfs.boot", "rfs.slot"} {
		if v, ok := set[key]; ok && !done[key] {
			out = append(out, key+"="+v)
		}
	}
	return strings.Join(out, " "), nil
}

// quoteParam writes a parameter back as the kernel reads it: a value
// with a space gets its double quotes back.
func quoteParam(tok string) string {
	if !strings.ContainsAny(tok, " \t") {
		return tok
	}
	if k, v, ok := strings.Cut(tok, "="); ok {
		return k + `="` + v + `"`
	}
	return `"` + tok + `"`
}
