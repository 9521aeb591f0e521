package release

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/updatesig"
)

// testRelease makes a well-formed one-part release: manifest and config
// bytes; edit changes the manifest after the config descriptor is set.
func testRelease(t testing.TB, sign ed25519.PrivateKey, edit func(*Manifest, *Config)) (manifest, config []byte) {
	part := []byte("kernel bytes")
	cfg := Config{Board: "qemu-arm64", Arch: "arm64", Version: "1767225600", BuildID: "b",
		Parts: []Part{{Name: "kernel", Role: RoleKernel, MediaType: MediaKernel, Digest: Digest(part), Size: int64(len(part))}}}
	m := Manifest{SchemaVersion: 2, MediaType: OCIManifest, ArtifactType: ArtifactType,
		Annotations: map[string]string{AnnotationBoard: "qemu-arm64", AnnotationVersion: "1767225600", AnnotationBuildID: "b"},
		Layers:      []Descriptor{{MediaType: MediaKernel, Digest: Digest(part), Size: int64(len(part))}}}
	if edit != nil {
		edit(&m, &cfg)
	}
	config = cfg.Marshal()
	m.Config = Descriptor{MediaType: ConfigMediaType, Digest: Digest(config), Size: int64(len(config))}
	if sign != nil {
		sig, err := updatesig.Sign(sign, config)
		if err != nil {
			t.Fatal(err)
		}
		m.Annotations[AnnotationSignature] = sig.String()
	}
	if edit != nil {
		edit(&m, &cfg) // again: edits of the config descriptor win
	}
	manifest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return manifest, config
}

func TestDecodeRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Manifest, *Config)
		want string
	}{
		{"valid", nil, ""},
		{"index", func(m *Manifest, _ *Config) { m.MediaType = OCIIndex }, "image index"},
		{"docker list", func(m *Manifest, _ *Config) { m.MediaType = DockerManifestList }, "image index"},
		{"artifact type", func(m *Manifest, _ *Config) { m.ArtifactType = "application/vnd.other" }, "not an rfs release"},
		{"config media type", func(m *Manifest, _ *Config) { m.Config.MediaType = "application/json" }, "config media type"},
		{"huge config", func(m *Manifest, _ *Config) { m.Config.Size = MaxConfig + 1 }, "more than the"},
		{"config size", func(m *Manifest, _ *Config) { m.Config.Size-- }, "the manifest says"},
		{"config digest", func(m *Manifest, _ *Config) { m.Config.Digest = Digest(nil) }, "the manifest says"},
		{"config digest form", func(m *Manifest, _ *Config) { m.Config.Digest = "sha256:../../x" }, "not sha256:HEX"},
		{"layer size", func(m *Manifest, _ *Config) { m.Layers[0].Size++ }, "part kernel"},
		{"extra layer", func(m *Manifest, _ *Config) { m.Layers = append(m.Layers[:1], m.Layers[0]) }, "1 parts, the manifest 2 layers"},
		{"wrong role media", func(_ *Manifest, c *Config) { c.Parts[0].MediaType = MediaSquashfs }, "want \"application/vnd.rfs.part.kernel\""},
		{"bad part name", func(_ *Manifest, c *Config) { c.Parts[0].Name = "../x" }, "part name"},
		{"no board", func(_ *Manifest, c *Config) { c.Board = "" }, "no board"},
		{"board annotation", func(m *Manifest, _ *Config) { m.Annotations[AnnotationBoard] = "rpi4" }, "annotation"},
		{"schema", func(m *Manifest, _ *Config) { m.SchemaVersion = 1 }, "schemaVersion"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, cfg := testRelease(t, nil, c.edit)
			b, err := Decode("test", m, cfg)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if b.Digest != Digest(m) || b.Config.Board != "qemu-arm64" || b.Signature != "" {
					t.Errorf("bundle %+v", b)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want one saying %q", err, c.want)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
		err  bool
	}{
		{"1767225600", "1767225600", 0, false},
		{"1767225601", "1767225600", 1, false},
		{"999999999", "1767225600", -1, false},
		{"1.4", "1.4.0", 0, false},
		{"1.10", "1.9", 1, false},
		{"v1.2", "1.3", -1, false},
		{"01.2", "1.2", 0, false},
		{"vV1", "1", 0, true},
		{"2.0-rc1", "2.0", -1, false},
		{"2.0-rc2", "2.0-rc1", 1, false},
		{"2.0+b7", "2.0+b1", 0, false},
		{"99999999999999999999999999", "99999999999999999999999998", 1, false},
		{"1.4", "1767225600", -1, false},
		{"", "1", 0, true},
		{"1..2", "1", 0, true},
		{"1.x", "1", 0, true},
		{"1-", "1", 0, true},
		{"1", "latest", 0, true},
		{strings.Repeat("1", 129), "1", 0, true},
	} {
		got, err := CompareVersions(c.a, c.b)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d, error %v", c.a, c.b, got, err, c.want, c.err)
		}
		if err == nil {
			if rev, _ := CompareVersions(c.b, c.a); rev != -got {
				t.Errorf("CompareVersions(%q, %q) = %d, not the opposite of %d", c.b, c.a, rev, got)
			}
		}
	}
}

func TestAccept(t *testing.T) {
	cfg := Config{Board: "rpi4", Arch: "arm64", Version: "1.4"}
	for _, c := range []struct {
		name, board, arch, current string
		force                      bool
		want                       error
		msg                        string
	}{
		{"newer", "rpi4", "arm64", "1.3", false, nil, ""},
		{"same", "rpi4", "arm64", "1.4", false, nil, ""},
		{"no current", "rpi4", "arm64", "", false, nil, ""},
		{"board", "qemu-arm64", "arm64", "1.3", true, ErrWrongBoard, "release is for board rpi4, this device is qemu-arm64"},
		{"arch", "rpi4", "arm", "1.3", true, ErrWrongArch, "release is for arch arm64, this device is arm"},
		{"older", "rpi4", "arm64", "1.5", false, ErrOlder, "release version 1.4 is older than this device's 1.5"},
		{"older forced", "rpi4", "arm64", "1.5", true, nil, ""},
		{"unordered", "rpi4", "arm64", "gold", false, ErrUnordered, "force"},
		{"unordered forced", "rpi4", "arm64", "gold", true, nil, ""},
	} {
		err := cfg.Accept(c.board, c.arch, c.current, c.force)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Accept = %v, want %v", c.name, err, c.want)
		} else if err != nil && !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %q does not say %q", c.name, err, c.msg)
		}
	}
}

func TestVerify(t *testing.T) {
	priv, pub, err := updatesig.Generate()
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := updatesig.Generate()
	if err != nil {
		t.Fatal(err)
	}
	decode := func(key ed25519.PrivateKey) *Bundle {
		m, c := testRelease(t, key, nil)
		b, err := Decode("test", m, c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signed := decode(priv)
	tampered := *signed
	tampered.RawConfig = append([]byte(nil), signed.RawConfig...)
	tampered.RawConfig[len(tampered.RawConfig)-2] ^= 1
	garbled := *signed
	garbled.Signature = signed.Signature[:40]
	for _, c := range []struct {
		name    string
		b       *Bundle
		board   string
		current string
		want    error
	}{
		{"good", signed, "qemu-arm64", "1", nil},
		{"unsigned", decode(nil), "qemu-arm64", "1", ErrUnsigned},
		{"other key", decode(other), "qemu-arm64", "1", updatesig.ErrOtherKey},
		{"tampered", &tampered, "qemu-arm64", "1", updatesig.ErrBadSignature},
		{"garbled", &garbled, "qemu-arm64", "1", updatesig.ErrMalformed},
		{"board", signed, "rpi4", "1", ErrWrongBoard},
		{"older", signed, "qemu-arm64", "1767225601", ErrOlder},
	} {
		err := Verify(c.b, pub, c.board, "arm64", c.current, false)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzDecode: no input makes Decode panic, and what it accepts is
// self-consistent.
func FuzzDecode(f *testing.F) {
	m, c := testRelease(f, nil, nil)
	f.Add(m, c)
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}`), []byte(`{}`))
	f.Add([]byte(`{"layers":[{"size":-1}]}`), []byte(`{"parts":[{"name":"x"}]}`))
	f.Fuzz(func(t *testing.T, manifest, config []byte) {
		b, err := Decode("fuzz", manifest, config)
		if err != nil {
			return
		}
		if b.Config.Check() != nil || len(b.Config.Parts) == 0 {
			t.Fatalf("accepted a bad config %+v", b.Config)
		}
		for _, p := range b.Config.Parts {
			if !ValidDigest(p.Digest) || p.Size < 0 {
				t.Fatalf("accepted part %+v", p)
			}
		}
	})
}

// FuzzCompareVersions: no panic; the order is antisymmetric.
func FuzzCompareVersions(f *testing.F) {
	for _, s := range [][2]string{{"1.4", "1.4.0"}, {"v2.0-rc1", "2.0"}, {"1767225600", "1.4+x"}, {"", "-"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, err1 := CompareVersions(a, b)
		ba, err2 := CompareVersions(b, a)
		if (err1 == nil) != (err2 == nil) || ab != -ba {
			t.Fatalf("%q vs %q: %d %v, reversed %d %v", a, b, ab, err1, ba, err2)
		}
	})
}

// FuzzValidators: the hand-written checks are the regular expressions
// they stand for.
func FuzzValidators(f *testing.F) {
	partRE := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	digestRE := regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	f.Add("layer-1")
	f.Add("sha256:" + strings.Repeat("0a", 32))
	f.Add("-x")
	f.Fuzz(func(t *testing.T, s string) {
		if validPartName(s) != partRE.MatchString(s) {
			t.Fatalf("validPartName(%q) = %v", s, validPartName(s))
		}
		if ValidDigest(s) != digestRE.MatchString(s) {
			t.Fatalf("ValidDigest(%q) = %v", s, ValidDigest(s))
		}
	})
}
