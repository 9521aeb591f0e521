package regclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

const (
	maxChallenge = 4 << 10
	maxTokenBody = 64 << 10
)

// get GETs url in r's repository: anonymously or with the cached
// credentials first, and once more after answering a 401's challenge.
// The caller checks the status of what is returned.
func (c *Client) get(ctx context.Context, r Ref, url string, hdr http.Header) (*http.Response, error) {
	for try := 0; ; try++ {
		h := hdr.Clone()
		if h == nil {
			h = http.Header{}
		}
		if a := c.cached(r); a != "" {
			h.Set("Authorization", a)
		}
		resp, err := c.send(ctx, url, h)
		if err != nil || resp.StatusCode != http.StatusUnauthorized || try > 0 {
			return resp, err
		}
		challenges := resp.Header.Values("WWW-Authenticate")
		drain(resp)
		if err := c.authorize(ctx, r, challenges); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Registry, err)
		}
	}
}

func cacheKey(r Ref) string { return r.Registry + " " + r.Repo }

func (c *Client) cached(r Ref) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[cacheKey(r)]
}

func (c *Client) cache(r Ref, auth string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens[cacheKey(r)] = auth
}

// authorize answers a 401: a Bearer challenge with a token from the
// realm it names, a Basic one with r's login.
func (c *Client) authorize(ctx context.Context, r Ref, challenges []string) error {
	login, haveLogin := c.opts.Logins[r.Registry]
	var basic bool
	for _, ch := range challenges {
		scheme, params, err := parseChallenge(ch)
		if err != nil {
			return err
		}
		switch strings.ToLower(scheme) {
		case "bearer":
			tok, err := c.fetchToken(ctx, r, params, login, haveLogin)
			if err != nil {
				return err
			}
			c.cache(r, "Bearer "+tok)
			return nil
		case "basic":
			basic = true
		}
	}
	switch {
	case basic && haveLogin:
		c.cache(r, "Basic "+base64.StdEncoding.EncodeToString([]byte(login.Username+":"+login.Password)))
		return nil
	case basic:
		return fmt.Errorf("unauthorized: the registry wants a user name and password (Basic), and none is configured for it")
	}
	return fmt.Errorf("unauthorized, and no Bearer or Basic challenge to answer (WWW-Authenticate %q)", clean(strings.Join(challenges, ", ")))
}

// fetchToken gets a bearer token from the challenge's realm, for its
// service and scope (default: pull r's repository), with login if any.
func (c *Client) fetchToken(ctx context.Context, r Ref, params map[string]string, login Login, haveLogin bool) (string, error) {
	realm, err := url.Parse(params["realm"])
	switch {
	case err != nil || realm.Host == "" || (realm.Scheme != "https" && realm.Scheme != "http"):
		return "", fmt.Errorf("bearer challenge: realm %q is not an http(s) URL", clean(params["realm"]))
	case realm.Scheme == "http" && r.Scheme == "https":
		return "", fmt.Errorf("bearer challenge: token service %s is plain http for an https registry: refused", realm.Redacted())
	}
	q := realm.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	scope := params["scope"]
	if scope == "" {
		scope = "repository:" + r.Repo + ":pull"
	}
	q.Set("scope", scope)
	realm.RawQuery = q.Encode()
	hdr := http.Header{}
	if haveLogin {
		hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(login.Username+":"+login.Password)))
	}
	resp, err := c.send(ctx, realm.String(), hdr)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token: %w", statusError(resp))
	}
	defer resp.Body.Close()
	return readToken(resp.Body)
}

// readToken reads a token service's answer (bounded).
func readToken(body io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxTokenBody+1))
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if len(b) > maxTokenBody {
		return "", fmt.Errorf("token: answer of more than %d bytes", maxTokenBody)
	}
	var t struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	tok := t.Token
	if tok == "" {
		tok = t.AccessToken
	}
	if tok == "" || strings.IndexFunc(tok, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0 {
		return "", fmt.Errorf("token: the token service sent no usable token")
	}
	return tok, nil
}

// parseChallenge reads a WWW-Authenticate value: SCHEME k=v, k="v", ...
func parseChallenge(s string) (string, map[string]string, error) {
	if len(s) > maxChallenge {
		return "", nil, fmt.Errorf("WWW-Authenticate of %d bytes: at most %d", len(s), maxChallenge)
	}
	scheme, rest, _ := strings.Cut(strings.TrimSpace(s), " ")
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			return "", nil, fmt.Errorf("WWW-Authenticate %q: want key=value pairs", clean(s))
		}
		val, after, err := challengeValue(after)
		if err != nil {
			return "", nil, fmt.Errorf("WWW-Authenticate %q: %w", clean(s), err)
		}
		params[strings.ToLower(strings.TrimSpace(key))] = val
		rest = strings.TrimLeft(strings.TrimSpace(after), ",")
		rest = strings.TrimSpace(rest)
	}
	return scheme, params, nil
}

// challengeValue reads a token or a quoted string (with \ escapes) and
// returns it and what follows.
func challengeValue(s string) (string, string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, `"`) {
		v, rest, _ := strings.Cut(s, ",")
		return strings.TrimSpace(v), rest, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i++; i == len(s) {
				return "", "", fmt.Errorf("unterminated quoted string")
			}
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", fmt.Errorf("unterminated quoted string")
}
