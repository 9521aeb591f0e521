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
	"path/filepath"
	"strings"

	"github.com/rfsbuild/rfs"
	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/gotarget"
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
// the architecture and the go command's effective settings (Go version,
// instruction-set levels, experiments: package gotarget), and is
// reproducible (-trimpath, no build IDs), so the same rfs gives the same
// initramfs bytes. The settings that decide its instructions are pinned
// (gotarget.Env), so GOARM64=v8.2 in the environment cannot put an init
// that needs ARMv8.2 into the cache or an image.
func (b Builder) Init(ctx context.Context, arch string) (string, error) {
	gobin := b.GoBin
	if gobin == "" {
		gobin = "go"
	}
	version := b.Version
	if version == "" {
		version = rfs.Version()
	}
	env := buildEnv(arch)
	key, files, err := b.cacheKey(ctx, gobin, arch, version, env)
	if err != nil {
		return "", err
	}
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
		data, _ := fs.ReadFile(b.source(), p)
		dst := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", fmt.Errorf("build init: %w", err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return "", fmt.Errorf("build init: %w", err)
		}
	}
	bin := filepath.Join(work, "rfs-init.bin")
	ldflags := "-s -w -buildid= -X github.com/rfsbuild/rfs/overlay.Version=" + version
	cmd := subproc.Command(ctx, gobin, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, rfs.InitPackage)
	// go's work directory goes inside ours: removed with it even when an
	// interrupted go is killed before it cleans up.
	gotmp := filepath.Join(work, ".gotmp")
	if err := os.Mkdir(gotmp, 0o700); err != nil {
		return "", fmt.Errorf("build init: %w", err)
	}
	cmd.Dir, cmd.Env = work, append(env, "GOTMPDIR="+gotmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := subproc.Err(ctx, "build init", cmd.Run()); err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "", fmt.Errorf("build init for %s: %w\n%s", arch, err, strings.TrimSpace(stderr.String()))
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("build init: %w", err)
	}
	// Builds running at once (parallel tests, two rfs processes) each write
	// their own temp file; the last rename wins, harmlessly: they are
	// byte-identical.
	f, err := os.Open(bin)
	if err != nil {
		return "", fmt.Errorf("build init: %w", err)
	}
	defer f.Close()
	if err := atomicfile.WriteFrom(out, f, 0o755); err != nil {
		return "", fmt.Errorf("build init: cache: %w", err)
	}
	return out, nil
}

// buildEnv is the go command's environment for the init: the user's, with
// the target's settings pinned (the last value of a variable wins).
func buildEnv(arch string) []string {
	return append(os.Environ(), gotarget.Env(arch)...)
}

func (b Builder) source() fs.FS {
	if b.Source == nil {
		return rfs.InitSource
	}
	return b.Source
}

// cacheKey hashes what decides the init's bytes: arch, rfs version, the go
// command's effective settings under env, and the source. It also returns
// the source's file names.
func (b Builder) cacheKey(ctx context.Context, gobin, arch, version string, env []string) (string, []string, error) {
	settings, err := gotarget.Settings(ctx, gobin, os.TempDir(), env)
	if err != nil {
		return "", nil, fmt.Errorf("build init: the go command is needed to compile the init: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "arch=%s\nversion=%s\n%s", arch, version, settings)
	src := b.source()
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
		return "", nil, fmt.Errorf("build init: read source: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:24], files, nil
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
		atomicfile.WriteFile(path, buf.Bytes(), 0o644)
	}
	return buf.Bytes(), nil
}
