// Package uroot builds a u-root userland for a target architecture: one
// busybox-mode Go binary (github.com/u-root/gobusybox, the builder u-root's
// own mkuimage uses) holding the chosen u-root commands, and installs it
// into a tree as /bbin/bb with a symlink per command.
//
// Layout in the lower layer:
//
//	/bbin/bb            the busybox-mode binary (dispatches on argv[0])
//	/bbin/<cmd>         -> bb, one per command
//	/bbin/sh            -> gosh; /bin/defaultsh and /bin/sh resolve to it
//	/bin, /sbin         -> bbin (so /sbin/init is u-root's init)
//	/usr/bin            a real directory: apps, rfs-init
//
// The rfs init execs /sbin/init = u-root's init, which mounts what is
// missing (errors for what the rfs init already mounted are only logged),
// then runs /bbin/uinit if there is one, then the shell, /bin/defaultsh.
package uroot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/u-root/gobusybox/src/pkg/bb"
	"github.com/u-root/gobusybox/src/pkg/golang"

	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/gotarget"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/subproc"
)

// Pinned versions: the u-root commands and the gobusybox builder (the one
// rfs links, from go.mod) are part of the cache key.
const (
	Module          = "github.com/u-root/u-root"
	Version         = "v0.16.0"
	GobusyboxModule = "github.com/u-root/gobusybox/src"
	GobusyboxVer    = "v0.0.0-20250101170133-2e884e4509c7"
)

// BuildTags are the Go build tags of the u-root binary. goshsmall gives
// gosh a plain line reader (the console tty's line discipline edits the
// line): its default editor, bubbline, draws a TUI that hangs on a serial
// console (seen on qemu-arm64's ttyAMA0: a prompt, then no input read).
var BuildTags = []string{"goshsmall"}

// Required commands are always built in: the init the rfs init hands over
// to, and the shell it starts.
var Required = []string{"init", "gosh"}

// DefaultCommands is the command set when the project names none: u-root's
// cmds/core minus the network daemons and hardware pokers (sshd, scp,
// dhclient, msr, pci, ...), which a user can still ask for.
var DefaultCommands = []string{
	"base64", "basename", "cat", "chmod", "chroot", "cmp", "comm", "cp", "cpio",
	"date", "dd", "df", "dirname", "dmesg", "du", "echo", "false", "find", "free",
	"gosh", "grep", "gzip", "head", "hexdump", "hostname", "id", "init", "insmod",
	"ip", "kill", "ln", "losetup", "ls", "lsmod", "mkdir", "mkfifo", "mknod", "mktemp",
	"more", "mount", "mv", "netcat", "pidof", "ping", "poweroff", "printenv", "ps",
	"pwd", "readlink", "realpath", "rm", "rmmod", "seq", "shutdown", "sleep", "sort",
	"strings", "stty", "switch_root", "sync", "tail", "tar", "tee", "time", "timeout",
	"touch", "tr", "true", "truncate", "umount", "uname", "uniq", "uptime", "wc",
	"wget", "which", "xargs", "yes",
}

var nameRE = regexp.MustCompile(`^(core/|exp/)?[a-z0-9_][a-z0-9_.-]*$`)

// fullRE is a full import path of a command (checked for ".." too).
var fullRE = regexp.MustCompile(`^[a-z0-9_./-]+$`)

// Packages resolves a command list: "ls" is cmds/core/ls, "exp/ed" is
// cmds/exp/ed, a full import path under github.com/u-root/u-root/cmds/ is
// taken as is. Required commands are added; the result is sorted and
// deduplicated, so it is a stable cache key.
func Packages(cmds []string) ([]string, error) {
	if len(cmds) == 0 {
		cmds = DefaultCommands
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range append(slices.Clone(cmds), Required...) {
		c = strings.TrimSpace(c)
		var p string
		switch {
		case strings.HasPrefix(c, Module+"/cmds/") && fullRE.MatchString(c) && !strings.Contains(c, ".."):
			p = c
		case nameRE.MatchString(c):
			if !strings.Contains(c, "/") {
				c = "core/" + c
			}
			p = Module + "/cmds/" + c
		default:
			return nil, fmt.Errorf("u-root command %q: want a name from u-root's cmds/core (ls), exp/NAME (exp/ed), or an import path under %s/cmds/", c, Module)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	slices.Sort(out)
	// Two packages with one base name would collide in /bbin.
	names := map[string]string{}
	for _, p := range out {
		n := filepath.Base(p)
		if q, ok := names[n]; ok {
			return nil, fmt.Errorf("u-root commands %s and %s have the same name %q", q, p, n)
		}
		names[n] = p
	}
	return out, nil
}

// Builder builds u-root busybox binaries. Its zero value uses "go" from
// PATH and caches binaries in the user cache dir.
type Builder struct {
	GoBin    string // default "go"
	CacheDir string // default $XDG_CACHE_HOME/rfs
	Log      func(format string, args ...any)
}

// Build returns the path of a u-root busybox binary for arch (GOARCH) with
// the given commands (see Packages), compiling it on first use. It is
// cached by u-root and gobusybox version, the go command's effective
// settings (Go version, instruction-set levels: package gotarget, which
// also pins them), arch and command set, and is reproducible (-trimpath,
// stripped, no build ID).
func (b Builder) Build(ctx context.Context, arch string, cmds []string) (string, error) {
	pkgs, err := Packages(cmds)
	if err != nil {
		return "", err
	}
	gobin := b.GoBin
	if gobin == "" {
		gobin = "go"
	}
	// The settings that decide the binary's instructions are pinned, like
	// the init's, and the cache key holds the go command's effective values.
	pinned := gotarget.Env(arch)
	settings, err := gotarget.Settings(ctx, gobin, os.TempDir(), append(os.Environ(), pinned...))
	if err != nil {
		return "", fmt.Errorf("build u-root: the go command is needed: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "uroot-v2\n%s@%s\n%s@%s\n%sarch=%s\ntags=%s\n", Module, Version, GobusyboxModule, GobusyboxVer, settings, arch, strings.Join(BuildTags, ","))
	for _, p := range pkgs {
		fmt.Fprintln(h, p)
	}
	key := hex.EncodeToString(h.Sum(nil))[:24]
	cache := b.CacheDir
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("build u-root: no cache directory: %w", err)
		}
		cache = filepath.Join(dir, "rfs")
	}
	out := filepath.Join(cache, "uroot", key, "bb-"+arch)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	start := time.Now()

	// A throwaway module that requires the pinned u-root: the commands and
	// their dependencies resolve through the module proxy and go.sum.
	work, err := os.MkdirTemp("", "rfs-uroot-")
	if err != nil {
		return "", fmt.Errorf("build u-root: %w", err)
	}
	defer os.RemoveAll(work)
	mod := "module rfs.local/uroot\n\ngo 1.24\n\nrequire " + Module + " " + Version + "\n"
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(mod), 0o644); err != nil {
		return "", fmt.Errorf("build u-root: %w", err)
	}
	env := append(os.Environ(), pinned...)
	dl := subproc.Command(ctx, gobin, "mod", "download", Module+"@"+Version)
	dl.Dir, dl.Env = work, env
	if o, err := dl.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("build u-root: %w", ctx.Err())
		}
		return "", fmt.Errorf("build u-root: go mod download %s@%s: %w\n%s", Module, Version, err, o)
	}
	// go/packages resolves the imports with -mod=mod, which fills go.sum.
	genv := golang.Default(golang.WithGOARCH(arch), golang.WithGOOS("linux"), golang.WithWorkingDir(work), golang.WithGO111MODULE("on"), golang.WithMod(golang.ModOnly), golang.WithBuildTag(BuildTags...))
	genv.CgoEnabled = false
	tmp := filepath.Join(work, "bb")
	var logBuf bytes.Buffer
	opts := &bb.Opts{
		Env:          genv,
		GenSrcDir:    filepath.Join(work, "gen"),
		CommandPaths: pkgs,
		BinaryPath:   tmp,
		GoBuildOpts:  &golang.BuildOpts{ExtraArgs: []string{"-buildvcs=false"}},
	}
	// gobusybox sets GOOS, GOARCH and CGO_ENABLED itself; the rest of the
	// pinned settings reach its go commands through the environment.
	vars := map[string]string{}
	for _, kv := range pinned {
		k, v, _ := strings.Cut(kv, "=")
		if k != "GOOS" && k != "GOARCH" {
			vars[k] = v
		}
	}
	err = withEnv(vars, func() error {
		return bb.BuildBusybox(log.New(&logBuf, "", 0), opts)
	})
	if err != nil {
		return "", fmt.Errorf("build u-root %s for %s: %w\n%s", Version, arch, err, tail(logBuf.String(), 4000))
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("build u-root: %w", err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return "", fmt.Errorf("build u-root: %w", err)
	}
	defer f.Close()
	if err := atomicfile.WriteFrom(out, f, 0o755); err != nil {
		return "", fmt.Errorf("build u-root: cache: %w", err)
	}
	if b.Log != nil {
		b.Log("built u-root %s for %s (%d commands) in %s", Version, arch, len(pkgs), time.Since(start).Round(100*time.Millisecond))
	}
	return out, nil
}

// withEnv runs f with environment variables set, restoring them after.
// gobusybox passes os.Environ() to the go command it runs. Builds are
// serialised, since the environment is process-wide.
func withEnv(vars map[string]string, f func() error) error {
	envMu <- struct{}{}
	defer func() { <-envMu }()
	old := map[string]*string{}
	for k, v := range vars {
		if o, ok := os.LookupEnv(k); ok {
			old[k] = &o
		} else {
			old[k] = nil
		}
		os.Setenv(k, v)
	}
	defer func() {
		for k, o := range old {
			if o == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *o)
			}
		}
	}()
	return f()
}

var envMu = make(chan struct{}, 1)

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Layout.
const (
	BinDir = "/bbin"
	Binary = BinDir + "/bb"
	Shell  = "gosh"
)

// Install adds the u-root binary at hostPath to t: /bbin/bb, a link per
// command, /bbin/sh and /bbin/defaultsh -> gosh, and /bin and /sbin as
// links to bbin. Existing entries at command paths are kept (user files
// win). It returns the command names.
func Install(t *rootfs.Tree, hostPath string, cmds []string) ([]string, error) {
	pkgs, err := Packages(cmds)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(hostPath)
	if err != nil {
		return nil, fmt.Errorf("read u-root: %w", err)
	}
	bin, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("read u-root: %w", err)
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		return nil, errors.New("u-root binary is not an ELF file")
	}
	if err := t.MkdirAll(BinDir, 0o755); err != nil {
		return nil, err
	}
	for _, l := range []struct{ path, target string }{{"/bin", "bbin"}, {"/sbin", "bbin"}} {
		if err := t.Add(l.path, &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, Target: l.target, MTime: t.MTime}); err != nil {
			return nil, fmt.Errorf("install u-root: %w", err)
		}
	}
	if err := t.Add(Binary, &rootfs.Node{Type: rootfs.Regular, Perm: 0o755, MTime: t.MTime, Content: rootfs.Bytes(bin)}); err != nil {
		return nil, fmt.Errorf("install u-root: %w", err)
	}
	var names []string
	links := map[string]string{"sh": Shell, "defaultsh": Shell}
	for _, p := range pkgs {
		n := filepath.Base(p)
		names = append(names, n)
		links[n] = "bb"
	}
	for _, n := range slices.Sorted(maps.Keys(links)) {
		p := BinDir + "/" + n
		if t.Lookup(p) != nil {
			continue
		}
		if err := t.Add(p, &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, Target: links[n], MTime: t.MTime}); err != nil {
			return nil, fmt.Errorf("install u-root command %s: %w", n, err)
		}
	}
	return names, nil
}
