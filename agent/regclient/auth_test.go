package regclient

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// tokenService hands out a bearer token: to anyone, or to user:pass only.
type tokenService struct {
	srv      *httptest.Server
	needUser bool
	calls    atomic.Int32
	scope    atomic.Value
}

func startTokenService(t *testing.T, needUser bool) *tokenService {
	ts := &tokenService{needUser: needUser}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.calls.Add(1)
		ts.scope.Store(r.URL.Query().Get("scope"))
		if u, p, ok := r.BasicAuth(); ts.needUser && (!ok || u != "user" || p != "pass") {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"bad login"}]}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"token":"good-token"}`)
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

// requireAuth makes tr answer 401 with challenge unless the request
// carries want.
func requireAuth(tr *testRegistry, challenge, want string) {
	tr.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == want {
			return false
		}
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		return true
	})
}

func TestBearerToken(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 1<<10)
	for _, c := range []struct {
		name     string
		needUser bool
		logins   map[string]Login
		want     string
	}{
		{"anonymous token", false, nil, ""},
		{"token with login", true, map[string]Login{tr.host: {"user", "pass"}}, ""},
		{"token, no login", true, nil, "bad login"},
		{"token, wrong login", true, map[string]Login{tr.host: {"user", "nope"}}, "bad login"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts := startTokenService(t, c.needUser)
			requireAuth(tr, fmt.Sprintf(`Bearer realm="%s/token",service="test",scope="repository:rfs/dev:pull"`, ts.srv.URL), "Bearer good-token")
			cl := testClient(Options{Logins: c.logins})
			dir := t.TempDir()
			err := fetchAll(t, cl, s, dir)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("err %v, want one saying %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkFiles(t, s, dir)
			if n := ts.calls.Load(); n != 1 {
				t.Errorf("%d token requests, want 1 (cached)", n)
			}
			if sc := ts.scope.Load(); sc != "repository:rfs/dev:pull" {
				t.Errorf("scope %q", sc)
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	tr := startRegistry(t)
	s := pushSynthetic(t, tr, "rfs/dev:v7", 1<<10)
	requireAuth(tr, `Basic realm="registry"`, "Basic dXNlcjpwYXNz") // user:pass
	if err := fetchAll(t, testClient(Options{Logins: map[string]Login{tr.host: {"user", "pass"}}}), s, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	err := fetchAll(t, testClient(Options{}), s, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "none is configured") {
		t.Errorf("no login: err %v", err)
	}
}

func TestBearerRealmRefused(t *testing.T) {
	r, _ := ParseRef("reg.example/x")
	c := testClient(Options{})
	for _, realm := range []string{"ftp://x/token", "http://x/token", "token"} {
		err := c.authorize(context.Background(), r, []string{`Bearer realm="` + realm + `"`})
		if err == nil {
			t.Errorf("realm %q accepted for an https registry", realm)
		}
	}
}

func TestParseChallenge(t *testing.T) {
	for _, c := range []struct {
		in, scheme, params string
		err                bool
	}{
		{`Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"`,
			"Bearer", "map[realm:https://auth.docker.io/token scope:repository:library/alpine:pull service:registry.docker.io]", false},
		{`Basic realm="Registry Realm"`, "Basic", "map[realm:Registry Realm]", false},
		{`Bearer realm=https://x/t, service=s`, "Bearer", "map[realm:https://x/t service:s]", false},
		{`Bearer realm="a\"b"`, "Bearer", `map[realm:a"b]`, false},
		{`Bearer realm="open`, "", "", true},
		{`Bearer realm`, "", "", true},
	} {
		scheme, params, err := parseChallenge(c.in)
		if (err != nil) != c.err || scheme != c.scheme || (err == nil && fmt.Sprint(params) != c.params) {
			t.Errorf("parseChallenge(%q) = %q, %v, %v; want %q, %s", c.in, scheme, params, err, c.scheme, c.params)
		}
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://a/t",service="s",scope="repository:x:pull"`)
	f.Add(`Basic realm="r\"`)
	f.Fuzz(func(t *testing.T, s string) { parseChallenge(s) })
}
