package regclient

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/release"
)

// Ref is a parsed reference to a release in a registry.
type Ref struct {
	// Scheme is "https", or "http" for a reference written http://...
	// (a LAN or test registry).
	Scheme string
	// Registry is the registry as named ("docker.io" for Docker Hub):
	// what Options.Logins is keyed by.
	Registry string
	// Host is where its API is: Registry, but registry-1.docker.io for
	// docker.io.
	Host string
	// Repo is the repository, library/NAME for a one-component Docker Hub
	// repository.
	Repo string
	// Tag is the tag ("latest" when neither tag nor digest is given).
	Tag string
	// Digest, sha256:HEX, pins the manifest; it wins over Tag.
	Digest string
}

const (
	dockerHub    = "docker.io"
	dockerHubAPI = "registry-1.docker.io"
	maxRef       = 1024
	maxRepo      = 255
)

// ParseRef reads HOST[:PORT]/REPO[:TAG][@sha256:HEX] (HTTPS) or
// http://HOST[:PORT]/REPO[:TAG][@sha256:HEX] (plain HTTP), with Docker's
// rules: no tag and no digest means :latest; a first component without
// a dot or colon that is not localhost is a Docker Hub repository
// (alpine, me/app), and docker.io/NAME is docker.io/library/NAME.
func ParseRef(s string) (Ref, error) {
	if len(s) > maxRef {
		return Ref{}, fmt.Errorf("reference of %d bytes: at most %d", len(s), maxRef)
	}
	r := Ref{Scheme: "https"}
	rest := s
	if after, ok := strings.CutPrefix(s, "http://"); ok {
		r.Scheme, rest = "http", after
	} else if after, ok := strings.CutPrefix(s, "https://"); ok {
		rest = after
	}
	if err := r.parse(rest, r.Scheme != "https" || rest != s); err != nil {
		return Ref{}, fmt.Errorf("reference %q: %w", s, err)
	}
	return r, nil
}

// parse reads what follows the scheme; hostRequired when one was given.
func (r *Ref) parse(s string, hostRequired bool) error {
	name, digest, hasDigest := strings.Cut(s, "@")
	if hasDigest {
		if !release.ValidDigest(digest) {
			return fmt.Errorf("digest %q: want sha256: and 64 lowercase hex digits", digest)
		}
		r.Digest = digest
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		if r.Tag = name[i+1:]; !validTag(r.Tag) {
			return fmt.Errorf("tag %q: want letters, digits, _ . - (at most 128, not starting with . or -)", r.Tag)
		}
		name = name[:i]
	} else if !hasDigest {
		r.Tag = "latest"
	}
	host, repo, ok := strings.Cut(name, "/")
	if !ok || !(strings.ContainsAny(host, ".:[") || host == "localhost") {
		if hostRequired {
			return fmt.Errorf("want HOST[:PORT]/REPOSITORY after the scheme")
		}
		host, repo = dockerHub, name
	}
	return r.setName(host, repo)
}

func (r *Ref) setName(host, repo string) error {
	if !validHost(host) {
		return fmt.Errorf("registry %q is not a host name or address with an optional :port", host)
	}
	if i := strings.LastIndexByte(host, ':'); i > strings.LastIndexByte(host, ']') {
		if port, err := strconv.Atoi(host[i+1:]); err != nil || port < 1 || port > 65535 {
			return fmt.Errorf("registry %q: port out of range", host)
		}
	}
	host = strings.ToLower(host)
	if host == "index.docker.io" {
		host = dockerHub
	}
	r.Registry, r.Host = host, host
	if host == dockerHub {
		r.Host = dockerHubAPI
		if !strings.Contains(repo, "/") {
			repo = "library/" + repo
		}
	}
	if repo == "" || len(repo) > maxRepo {
		return fmt.Errorf("repository %q: want 1 to %d bytes", repo, maxRepo)
	}
	for c := range strings.SplitSeq(repo, "/") {
		if !validComponent(c) {
			return fmt.Errorf("repository %q: component %q: want lowercase letters and digits, separated by . _ __ or -", repo, c)
		}
	}
	r.Repo = repo
	return nil
}

// Reference is what the manifest is asked for by: the digest if given,
// else the tag.
func (r Ref) Reference() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// String is the reference in ParseRef's syntax (http:// only for plain
// HTTP).
func (r Ref) String() string {
	s := r.Registry + "/" + r.Repo
	if r.Scheme == "http" {
		s = "http://" + s
	}
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// url is the address of an API path under the repository.
func (r Ref) url(kind, ref string) string {
	return r.Scheme + "://" + r.Host + "/v2/" + r.Repo + "/" + kind + "/" + ref
}

// The validators below stand for regular expressions (see
// FuzzValidators), hand-written so the device binary goes without
// package regexp.

const (
	lowerDigits = "abcdefghijklmnopqrstuvwxyz0123456789"
	alnum       = lowerDigits + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// validTag: ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ (Docker's tag).
func validTag(s string) bool {
	return len(s) >= 1 && len(s) <= 128 && s[0] != '.' && s[0] != '-' && strings.Trim(s, alnum+"_.-") == ""
}

// validComponent: ^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$ (Docker's
// path component): alphanumeric runs joined by ".", "_", "__" or dashes.
func validComponent(s string) bool {
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && strings.IndexByte(lowerDigits, s[j]) >= 0 {
			j++
		}
		if j == i {
			return false // a run is missing: at the start, the end, or between separators
		}
		if j == len(s) {
			return true
		}
		k := j
		for k < len(s) && strings.IndexByte(lowerDigits, s[k]) < 0 {
			k++
		}
		if sep := s[j:k]; sep != "." && sep != "_" && sep != "__" && strings.Trim(sep, "-") != "" {
			return false
		}
		i = k
	}
	return false
}

// validHost: a DNS name (labels of letters, digits and inner dashes) or
// an IPv6 address in brackets, then an optional :PORT of 1 to 5 digits:
// ^(?:LABEL(?:\.LABEL)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$.
func validHost(s string) bool {
	name, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 && i > strings.LastIndexByte(s, ']') {
		name, port = s[:i], s[i+1:]
		if len(port) < 1 || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
	}
	if inner, ok := strings.CutPrefix(name, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		return ok && inner != "" && strings.Trim(inner, "0123456789abcdefABCDEF:.") == ""
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' || strings.Trim(label, alnum+"-") != "" {
			return false
		}
	}
	return true
}
