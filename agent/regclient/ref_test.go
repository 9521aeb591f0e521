package regclient

import (
	"regexp"
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, c := range []struct {
		in, want string // want: scheme registry host repo tag digest, or "error: ..."
	}{
		{"ghcr.io/me/gw:1.4", "https ghcr.io ghcr.io me/gw 1.4 -"},
		{"ghcr.io/me/gw", "https ghcr.io ghcr.io me/gw latest -"},
		{"ghcr.io/me/gw@" + d, "https ghcr.io ghcr.io me/gw - " + d},
		{"ghcr.io/me/gw:v2@" + d, "https ghcr.io ghcr.io me/gw v2 " + d},
		{"https://ghcr.io/me/gw:1", "https ghcr.io ghcr.io me/gw 1 -"},
		{"http://10.0.0.5:5000/rfs/gw:v7", "http 10.0.0.5:5000 10.0.0.5:5000 rfs/gw v7 -"},
		{"http://localhost/rfs", "http localhost localhost rfs latest -"},
		{"localhost:5000/a/b/c:t", "https localhost:5000 localhost:5000 a/b/c t -"},
		{"[::1]:5000/x", "https [::1]:5000 [::1]:5000 x latest -"},
		{"Registry.Example.COM/x", "https registry.example.com registry.example.com x latest -"},
		{"docker.io/alpine", "https docker.io registry-1.docker.io library/alpine latest -"},
		{"index.docker.io/me/app:1", "https docker.io registry-1.docker.io me/app 1 -"},
		{"alpine:3", "https docker.io registry-1.docker.io library/alpine 3 -"},
		{"me/app", "https docker.io registry-1.docker.io me/app latest -"},
		{"reg.io/a_b/c__d/e-f/g.h", "https reg.io reg.io a_b/c__d/e-f/g.h latest -"},
		{"", "error: repository"},
		{"http://host", "error: HOST[:PORT]/REPOSITORY"},
		{"http://me/app", "error: HOST[:PORT]/REPOSITORY"},
		{"ghcr.io/Me/gw", "error: component \"Me\""},
		{"ghcr.io/me//gw", "error: component \"\""},
		{"ghcr.io/me/gw:", "error: tag"},
		{"ghcr.io/me/gw:-x", "error: tag"},
		{"ghcr.io/me/gw@sha256:abc", "error: digest"},
		{"ghcr.io/me/gw@md5:" + strings.Repeat("a", 32), "error: digest"},
		{"host:99999/x", "error: port"},
		{"ho_st:5000/x", "error: registry"},
		{"ftp://host/x", "error: registry"},
		{"ghcr.io/me/gw:1?x=y", "error: tag"},
		{"ghcr.io/a/../b", "error: component"},
		{"ghcr.io/" + strings.Repeat("a", 256), "error: repository"},
		{strings.Repeat("a", 2000), "error: reference of"},
	} {
		r, err := ParseRef(c.in)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
			if want := strings.TrimPrefix(c.want, "error: "); !strings.HasPrefix(c.want, "error: ") || !strings.Contains(err.Error(), want) {
				t.Errorf("ParseRef(%q): %v, want %s", c.in, err, c.want)
			}
			continue
		}
		got = strings.Join([]string{r.Scheme, r.Registry, r.Host, r.Repo, or(r.Tag), or(r.Digest)}, " ")
		if got != c.want {
			t.Errorf("ParseRef(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// FuzzParseRef: no panic; what parses prints as a reference that parses
// to the same thing, and its URL paths hold no surprise.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"ghcr.io/me/gw:1.4", "http://127.0.0.1:5000/rfs/gw@sha256:" + strings.Repeat("0", 64), "alpine", "[::1]:1/x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			return
		}
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("%q parsed to %+v, printed %q, parsed again to %+v, %v", s, r, r.String(), again, err)
		}
		// A tag may hold dots ("0.."); only a whole "." or ".." segment
		// would move the request elsewhere.
		u := r.url("manifests", r.Reference())
		if strings.ContainsAny(u, "?#% \\") {
			t.Fatalf("%q: URL %q", s, u)
		}
		for _, seg := range strings.Split(u, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q: URL %q has a dot segment", s, u)
			}
		}
	})
}

// FuzzValidators: the hand-written checks are the regular expressions
// they stand for.
func FuzzValidators(f *testing.F) {
	hostRE := regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$`)
	componentRE := regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagRE := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	for _, s := range []string{"a.b-c:5000", "[::1]:80", "a__b", "a---b", "a._b", "v1.2_x", "-a", "a-", "x:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range []struct {
			name string
			fn   func(string) bool
			re   *regexp.Regexp
		}{{"validHost", validHost, hostRE}, {"validComponent", validComponent, componentRE}, {"validTag", validTag, tagRE}} {
			if c.fn(s) != c.re.MatchString(s) {
				t.Fatalf("%s(%q) = %v, the regexp says %v", c.name, s, c.fn(s), !c.fn(s))
			}
		}
	})
}
