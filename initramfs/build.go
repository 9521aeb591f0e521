// Package initramfs compiles the rfs init for a target architecture and packs
// it, with a rescue shell, into a gzip-compressed newc cpio archive. The same
// Builder compiles rfs's other on-device program, the agent.
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

// Builder compiles rfs's on-device programs (the init, the agent) for a
// target. Its zero value builds rfs's embedded source with "go" from PATH
// and caches binaries in the user cache dir.
type Builder struct {
	GoBin    string // default "go"
	CacheDir string // default $XDG_CACHE_HOME/rfs
	Source   fs.FS  // the init's source; default rfs.InitSource
	// AgentSource is the agent's source; default rfs.AgentSource.
	AgentSource fs.FS
	Version     string // recorded in status.json; default rfs.Version()
}

// Program is a command rfs compiles for the target from source embedded
// in rfs: a copy of the module (go.mod, go.sum and the packages it needs).
type Program struct {
	// Name is the binary's name; its cache directory is Name without
	// "rfs-" (init, agent).
	Name    string
	Source  fs.FS
	Package string // "./cmd/rfs-init", relative to the module root
	// VersionVar is the string variable set to the rfs version with -X;
	// empty: none.
	VersionVar string
}

// Init returns the path of a static rfs-init binary for arch (GOARCH),
// compiling it on first use (Build).
func (b Builder) Init(ctx context.Context, arch string) (string, error) {
	return b.Build(ctx, arch, b.initProgram())
}

// Agent returns the path of a static rfs-agent binary for arch, compiling
// it on first use (Build).
func (b Builder) Agent(ctx context.Context, arch string) (string, error) {
	return b.Build(ctx, arch, b.agentProgram())
}

func (b Builder) initProgram() Program {
	src := b.Source
	if src == nil {
		src = rfs.InitSource
	}
	return Program{Name: "rfs-init", Source: src, Package: rfs.InitPackage,
		VersionVar: "github.com/rfsbuild/rfs/overlay.Version"}
}

func (b Builder) agentProgram() Program {
	src := b.AgentSource
	if src == nil {
		src = rfs.AgentSource
	}
	return Program{Name: "rfs-agent", Source: src, Package: rfs.AgentPackage}
}

// Build returns the path of p compiled for arch. The binary is cached by
// the hash of its source (go.sum included: the third-party modules it
// names are part of the source), the architecture and the go command's
// effective settings (Go version, instruction-set levels, experiments:
// package gotarget), and is reproducible (-trimpath, no build IDs), so the
// same rfs gives the same bytes. The settings that decide its
// instructions are pinned (gotarget.Env), so GOARM64=v8.2 in the
// environment cannot put a program that needs ARMv8.2 into the cache or
// an image. Third-party modules come from the module cache, else
// GOPROXY (-mod=mod: the embedded go.sum checks them), so a build with
// GOPROXY=off works once they are cached.
func (b Builder) Build(ctx context.Context, arch string, p Program) (string, error) {
	gobin := b.GoBin
	if gobin == "" {
		gobin = "go"
	}
	version := b.Version
	if version == "" {
		version = rfs.Version()
	}
	what := "build " + p.Name
	env := buildEnv(arch)
	key, files, err := b.cacheKey(ctx, gobin, arch, version, env, p)
	if err != nil {
		return "", err
	}
	cache, err := b.cacheDir()
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	out := filepath.Join(cache, strings.TrimPrefix(p.Name, "rfs-"), key, p.Name+"-"+arch)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	work, err := os.MkdirTemp("", p.Name+"-src-")
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer os.RemoveAll(work)
	if err := writeSource(work, p.Source, files); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	bin, err := b.compile(ctx, gobin, work, arch, version, env, p)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	// Builds running at once (parallel tests, two rfs processes) each write
	// their own temp file; the last rename wins, harmlessly: they are
	// byte-identical.
	f, err := os.Open(bin)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	if err := atomicfile.WriteFrom(out, f, 0o755); err != nil {
		return "", fmt.Errorf("%s: cache: %w", what, err)
	}
	return out, nil
}

// writeSource copies the embedded files into the work directory.
func writeSource(work string, src fs.FS, files []string) error {
	for _, p := range files {
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(work, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// compile runs go build in work and returns the binary's path there.
func (b Builder) compile(ctx context.Context, gobin, work, arch, version string, env []string, p Program) (string, error) {
	bin := filepath.Join(work, p.Name+".bin")
	ldflags := "-s -w -buildid="
	if p.VersionVar != "" {
		ldflags += " -X " + p.VersionVar + "=" + version
	}
	cmd := subproc.Command(ctx, gobin, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, p.Package)
	// go's work directory goes inside ours: removed with it even when an
	// interrupted go is killed before it cleans up.
	gotmp := filepath.Join(work, ".gotmp")
	if err := os.Mkdir(gotmp, 0o700); err != nil {
		return "", fmt.Errorf("build %s: %w", p.Name, err)
	}
	cmd.Dir, cmd.Env = work, append(env, "GOTMPDIR="+gotmp)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := subproc.Err(ctx, "build "+p.Name, cmd.Run()); err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "", fmt.Errorf("build %s for %s: %w\n%s", p.Name, arch, err, strings.TrimSpace(stderr.String()))
	}
	return bin, nil
}

// buildEnv is the go command's environment for the init: the user's, with
// the target's settings pinned (the last value of a variable wins).
func buildEnv(arch string) []string {
	return append(os.Environ(), gotarget.Env(arch)...)
}

// cacheKey hashes what decides p's bytes: arch, rfs version, the go
// command's effective settings under env, the package and the source. It
// also returns the source's file names.
func (b Builder) cacheKey(ctx context.Context, gobin, arch, version string, env []string, p Program) (string, []string, error) {
	settings, err := gotarget.Settings(ctx, gobin, os.TempDir(), env)
	if err != nil {
		return "", nil, fmt.Errorf("build %s: the go command is needed to compile it: %w", p.Name, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "arch=%s\nversion=%s\n%s", arch, version, settings)
	if p.Name != "rfs-init" {
		// Only for other programs, so the init keeps its cache key.
		fmt.Fprintf(h, "program=%s %s %s\n", p.Name, p.Package, p.VersionVar)
	}
	src := p.Source
	var files []string
	err = fs.WalkDir(src, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(src, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
		files = append(files, name)
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("build %s: read source: %w", p.Name, err)
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
