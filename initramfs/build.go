// Package initramfs compiles the rfs init for a target architecture and packs
// it, with a rescue shell, into a gzip-compressed newc cpio archive.
package initramfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rfsbuild/rfs"

	"github.com/rfsbuild/rfs/subproc"
)

// Builder compiles the init. Its zero value builds rfs's embedded init
// source with "go" from PATH and caches binaries in the user cache dir.
type Builder struct {
	GoBin    string // default "go"
	CacheDir string // default $XDG_CACHE_HOME/rfs
	Source   fs.FS  // default rfs.InitSource
	Version  string // recorded in status.json; default rfs.Version()
}

// Init returns the path of a static rfs-init binary for arch (GOARCH),
// compiling it on first use. The binary is cached by the hash of its source,
// the architecture and the Go version, and is reproducible (-trimpath, no
// build IDs), so the same rfs gives the same initramfs bytes.
func (b Builder) Init(ctx context.Context, arch string) (string, error) {
	gobin := b.GoBin
	if gobin == "" {
		gobin = "go"
	}
	src := b.Source
	if src == nil {
		src = rfs.InitSource
	}
	version := b.Version
	if version == "" {
		version = rfs.Version()
	}
	goVersion, err := toolchainVersion(ctx, gobin)
	if err != nil {
		return "", fmt.Errorf("build init: the go command is needed to compile the init: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "arch=%s\ngo=%s\nversion=%s\n", arch, bytes.TrimSpace(goVersion), version)
	var files []string
	err = fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", p, len(data))
		h.Write(data)
		files = append(files, p)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("build init: read source: %w", err)
	}
	key := hex.EncodeToString(h.Sum(nil))[:24]

	cache, err := b.cacheDir()
	if err != nil {
		return "", fmt.Errorf("build init: %w", err)
	}
	out := filepath.Join(cache, "init", key, "rfs-init-"+arch)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}

	work, err := os.MkdirTemp("", "rfs-init-src-")
	if err != nil {
		return "", fmt.Errorf("build init: %w", err)
	}
	defer os.RemoveAll(work)
	for _, p := range files {
		data, _ := fs.ReadFile(src, p)
		dst := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", fmt.Errorf("build init: %w", err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", fmt.Errorf("build init: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("build init: %w", err)
	}
	// Builds running at once (parallel tests, two rfs processes) each get
	// their own temp name; the rename makes the last one win, harmlessly:
	// they are byte-identical.
	tmp := fmt.Sprintf("%s.tmp-%d-%d", out, os.Getpid(), time.Now().UnixNano())
	ldflags := "-s -w -buildid= -X github.com/rfsbuild/rfs/overlay.Version=" + version
	cmd := subproc.Command(ctx, gobin, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", tmp, rfs.InitPackage)
	cmd.Dir = work
	// go's work directory goes inside ours: removed with it even when an
	// interrupted go is killed before it cleans up.
	gotmp := filepath.Join(work, ".gotmp")
	if err := os.Mkdir(gotmp, 0o700); err != nil {
		return "", fmt.Errorf("build init: %w", err)
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=-mod=mod", "GOWORK=off", "GOTMPDIR="+gotmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := subproc.Err(ctx, "build init", cmd.Run()); err != nil {
		os.Remove(tmp)
		if ctx.Err() != nil {
			return "", err
		}
		return "", fmt.Errorf("build init for %s: %w\n%s", arch, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("build init: %w", err)
	}
	return out, nil
}

func (b Builder) cacheDir() (string, error) {
	if b.CacheDir != "" {
		return b.CacheDir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: %w", err)
	}
	return filepath.Join(dir, "rfs"), nil
}

// Pack returns the gzip-compressed cpio of c, from the cache when the same
// contents were packed before: maximum compression costs a few hundred
// milliseconds a build, and the initramfs rarely changes.
func (b Builder) Pack(c Contents) ([]byte, error) {
	h := sha256.New()
	fmt.Fprintf(h, "initramfs-v1\nmtime=%d\ninit=%d\n", c.MTime, len(c.Init))
	h.Write(c.Init)
	h.Write(c.Busybox)
	key := hex.EncodeToString(h.Sum(nil))[:32]
	cache, err := b.cacheDir()
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	path := filepath.Join(cache, "initramfs", key+".cpio.gz")
	if data, err := os.ReadFile(path); err == nil {
		return data, nil
	}
	t, err := c.Tree()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := Write(&buf, t); err != nil {
		return nil, err
	}
	// The cache is an optimisation: failing to fill it is not an error.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		tmp := fmt.Sprintf("%s.tmp-%d-%d", path, os.Getpid(), time.Now().UnixNano())
		if os.WriteFile(tmp, buf.Bytes(), 0o644) == nil {
			os.Rename(tmp, path)
		}
	}
	return buf.Bytes(), nil
}

// toolchainVersion names the Go toolchain that would build the init, for the
// cache key: from GOROOT's VERSION file next to the go binary when there is
// one (no process to start), else from `go env GOVERSION`.
func toolchainVersion(ctx context.Context, gobin string) ([]byte, error) {
	if p, err := exec.LookPath(gobin); err == nil && os.Getenv("GOTOOLCHAIN") == "" {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if v, err := os.ReadFile(filepath.Join(filepath.Dir(real), "..", "VERSION")); err == nil {
				if line, _, _ := bytes.Cut(v, []byte("\n")); bytes.HasPrefix(line, []byte("go")) {
					return line, nil
				}
			}
		}
	}
	out, err := subproc.Command(ctx, gobin, "env", "GOVERSION").Output()
	return out, subproc.Err(ctx, "go env", err)
}
