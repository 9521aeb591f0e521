// Package modfetch brings pinned Go modules (kernels, firmware, busybox) into
// the Go module cache through the go command, so the module proxy serves them,
// GOMODCACHE caches them, and their content hash is checked against the value
// pinned in rfs itself.
package modfetch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"

	"github.com/rfsbuild/rfs/subproc"
)

// Module is a pinned module version and its go.sum hash ("h1:...").
type Module struct {
	Path    string
	Version string
	Sum     string
}

func (m Module) String() string { return m.Path + "@" + m.Version }

// Fetcher downloads modules. Its zero value uses "go" from PATH.
type Fetcher struct {
	GoBin string   // go command; default "go"
	Env   []string // extra environment (e.g. GOFLAGS=-mod=mod, GOPROXY=off in tests)
}

type downloadResult struct {
	Path, Version, Dir, Sum, Error string
}

// Download makes m available and returns its directory in the module cache.
// The directory is read-only: copy files before changing them.
func (f Fetcher) Download(ctx context.Context, m Module) (string, error) {
	if dir, ok := f.cached(m); ok {
		return dir, nil
	}
	gobin := f.GoBin
	if gobin == "" {
		gobin = "go"
	}
	if _, err := exec.LookPath(gobin); err != nil {
		return "", fmt.Errorf("fetch %s: the go command is needed to fetch kernels and busybox through the module proxy: %w", m, err)
	}
	cmd := subproc.Command(ctx, gobin, "mod", "download", "-json", m.String())
	// Run outside any module so the user's go.mod (or rfs's) plays no part.
	cmd.Dir = "/"
	cmd.Env = append(cmd.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	cmd.Env = append(cmd.Env, f.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return "", fmt.Errorf("fetch %s: %w", m, ctx.Err())
	}
	var res downloadResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		if runErr != nil {
			return "", fmt.Errorf("fetch %s: %w: %s", m, runErr, strings.TrimSpace(stderr.String()))
		}
		return "", fmt.Errorf("fetch %s: parse go mod download output: %w", m, err)
	}
	if res.Error != "" {
		return "", fmt.Errorf("fetch %s: %s (is the module proxy reachable? set GOPROXY, or run once with network to fill the module cache)", m, res.Error)
	}
	if runErr != nil {
		return "", fmt.Errorf("fetch %s: %w: %s", m, runErr, strings.TrimSpace(stderr.String()))
	}
	if m.Sum != "" && res.Sum != m.Sum {
		return "", fmt.Errorf("fetch %s: content hash %s does not match the pinned %s", m, res.Sum, m.Sum)
	}
	if res.Dir == "" {
		return "", errors.New("fetch " + m.String() + ": go mod download printed no directory")
	}
	return res.Dir, nil
}

// cached finds m already extracted in the module cache, without running the
// go command (~20 ms each): the directory must exist and the .ziphash the go
// command wrote after verifying the download must equal the pinned sum.
// Anything unusual (a GOMODCACHE set only through `go env -w`, no pinned
// sum, extra environment) falls back to the go command.
func (f Fetcher) cached(m Module) (string, bool) {
	if m.Sum == "" || len(f.Env) > 0 || os.Getenv("GOFLAGS") != "" {
		return "", false
	}
	root := os.Getenv("GOMODCACHE")
	if root == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", false
			}
			gopath = filepath.Join(home, "go")
		}
		root = filepath.Join(filepath.SplitList(gopath)[0], "pkg", "mod")
	}
	escPath, err1 := module.EscapePath(m.Path)
	escVer, err2 := module.EscapeVersion(m.Version)
	if err1 != nil || err2 != nil {
		return "", false
	}
	zh, err := os.ReadFile(filepath.Join(root, "cache", "download", escPath, "@v", escVer+".ziphash"))
	if err != nil || strings.TrimSpace(string(zh)) != m.Sum {
		return "", false
	}
	dir := filepath.Join(root, escPath+"@"+escVer)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", false
	}
	return dir, true
}
