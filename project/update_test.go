package project

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/updatesig"
)

func TestResolveUpdate(t *testing.T) {
	dir := t.TempDir()
	_, pub, _ := updatesig.Generate()
	pem, _ := updatesig.MarshalPublicKey(pub)
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	os.WriteFile(filepath.Join(dir, "keys", "u.pub"), append([]byte("\n"), pem...), 0o644)
	full := "version: 2.1.0\nupdate:\n  public_key: keys/u.pub\n  ref: 127.0.0.1:5000/app:stable\n  interval: 1h\n" +
		"  reset_paths: [/etc/app.conf, /var/lib/app/cache]\n  health: {seconds: 45, command: pidof app}\n  slot_size: 128M\n"
	want := slots.Config{PublicKey: string(pem), Ref: "127.0.0.1:5000/app:stable", IntervalSeconds: 3600,
		ResetPaths: []string{"/etc/app.conf", "/var/lib/app/cache"}, HealthSeconds: 45, HealthCommand: "pidof app"}
	tests := []struct {
		name    string
		yaml    string
		flags   BuildFlags
		changed []string
		check   func(t *testing.T, c *builder.Config)
	}{
		{name: "no update: no slots", yaml: "board: qemu-arm64\n", check: func(t *testing.T, c *builder.Config) {
			if c.Update != nil || c.Version != "" {
				t.Errorf("update %+v, version %q", c.Update, c.Version)
			}
		}},
		{name: "update: in full", yaml: full, check: func(t *testing.T, c *builder.Config) {
			if c.Update == nil || c.Version != "2.1.0" || c.Update.SlotSize != 128<<20 || !sameConfig(c.Update.Config, want) {
				t.Errorf("update %+v, version %q", c.Update, c.Version)
			}
		}},
		{name: "--slots alone", flags: BuildFlags{Slots: true}, changed: []string{"slots"}, check: func(t *testing.T, c *builder.Config) {
			if c.Update == nil || c.Update.Config.PublicKey != "" || c.Update.SlotSize != 0 {
				t.Errorf("update %+v", c.Update)
			}
		}},
		{name: "--slots=false wins", yaml: full, changed: []string{"slots"}, check: func(t *testing.T, c *builder.Config) {
			if c.Update != nil {
				t.Errorf("update %+v", c.Update)
			}
		}},
		{name: "flags win", yaml: full, flags: BuildFlags{SlotSize: "64M", Version: "3", UpdateKey: filepath.Join(dir, "keys", "u.pub")},
			changed: []string{"slot-size", "version", "update-key"}, check: func(t *testing.T, c *builder.Config) {
				if c.Update == nil || c.Update.SlotSize != 64<<20 || c.Version != "3" || c.Update.Config.PublicKey != string(pem) || c.Origin["slot_size"] != "--slot-size" {
					t.Errorf("update %+v, version %q, origin %q", c.Update, c.Version, c.Origin["slot_size"])
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "rfs.yaml")
			os.WriteFile(p, []byte(tt.yaml), 0o644)
			f := tt.flags
			f.Config = p
			f.Changed = func(name string) bool { return slices.Contains(tt.changed, name) }
			c, err := ResolveBuild(f)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func sameConfig(a, b slots.Config) bool {
	return string(a.Marshal()) == string(b.Marshal())
}
