// Package apps cross-compiles the user's own Go programs for a board and
// installs them into the root tree, optionally as services the userland's
// init starts at boot and restarts when they exit.
//
// An app is either a package path in the user's module, relative to the
// project directory (./cmd/hello), or a remote package at a version
// (example.com/tool/cmd/x@v1.2.3). Both are built with CGO_ENABLED=0,
// -trimpath, -buildvcs=false and -ldflags '-s -w -buildid=', so equal
// sources give equal bytes, and installed as /usr/bin/NAME.
//
// The instruction-set levels are pinned to what every board of the arch
// runs (gotarget.Baseline: GOARM64=v8.0, GOAMD64=v1): a GOARM64=v8.2 left in
// the user's shell must not make a program that dies with SIGILL on a Pi 4.
// The rest of the user's go settings (GOFLAGS such as -tags, GOEXPERIMENT,
// GOPROXY) do reach the build: the programs are theirs. No rfs cache is
// involved (the Go build cache keys by all settings).
//
// Services: with busybox, an inittab line "::respawn:/usr/bin/NAME", so
// busybox init starts it after rcS with stdin/stdout/stderr on the console
// and starts it again whenever it exits. u-root's init restarts nothing:
// there the program goes into /etc/rfs/services and /bbin/uinit links to
// the rfs init, which (as u-root's uinit) starts a supervisor per service
// and then the shell.
package apps

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/gotarget"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/subproc"
)

// App is one program.
type App struct {
	// Path is "./rel/pkg" (relative to Dir), an absolute directory, or
	// "import/path@version".
	Path string `yaml:"path"`
	// Name is the installed name in /usr/bin; default: the package's last
	// path element ("." needs a name).
	Name string `yaml:"name"`
	// Service starts it at boot and restarts it when it exits.
	Service bool `yaml:"service"`
}

// BinDir is where apps are installed, whatever the userland.
const BinDir = "/usr/bin"

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// Local reports whether the app is built from a directory on the host.
func (a App) Local() bool {
	return a.Path == "." || a.Path == ".." || strings.HasPrefix(a.Path, "./") || strings.HasPrefix(a.Path, "../") || filepath.IsAbs(a.Path)
}

// BinName is the name the app is installed under.
func (a App) BinName() (string, error) {
	n := a.Name
	if n == "" {
		p := a.Path
		if !a.Local() {
			p, _, _ = strings.Cut(p, "@")
		}
		n = path.Base(filepath.ToSlash(filepath.Clean(p)))
		if !a.Local() && regexp.MustCompile(`^v[0-9]+$`).MatchString(n) {
			// example.com/x/v2 is the program x.
			n = path.Base(path.Dir(p))
		}
	}
	if !nameRE.MatchString(n) || n == "." || n == ".." {
		return "", fmt.Errorf("app %s: %q is not a usable program name (set name:)", a.Path, n)
	}
	return n, nil
}

// Check validates an app spec without building it.
func (a App) Check() error {
	if a.Path == "" {
		return fmt.Errorf("app without a path")
	}
	// The path becomes an argument of go get and go build: a leading
	// dash would be read as a flag, a control character is no path.
	if strings.HasPrefix(a.Path, "-") || strings.IndexFunc(a.Path, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fmt.Errorf("app %q: not a package path (want ./pkg or import/path@version)", a.Path)
	}
	if !a.Local() {
		p, v, ok := strings.Cut(a.Path, "@")
		if !ok || p == "" || v == "" || v == "latest" || strings.ContainsAny(a.Path, " \t\n") {
			return fmt.Errorf("app %s: want ./pkg (relative to the project), or import/path@version with a pinned version (not @latest)", a.Path)
		}
	}
	_, err := a.BinName()
	return err
}

// Builder compiles apps. Its zero value uses "go" from PATH.
type Builder struct {
	GoBin string // default "go"
	// Dir is what relative app paths are relative to (the project
	// directory); default ".".
	Dir string
	Log func(format string, args ...any)
}

// Build compiles a for arch (GOARCH) and returns the binary's bytes. The Go
// build cache makes a rebuild of unchanged sources fast.
func (b Builder) Build(ctx context.Context, arch string, a App) ([]byte, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	gobin := b.GoBin
	if gobin == "" {
		gobin = "go"
	}
	tmpDir, err := os.MkdirTemp("", "rfs-app-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmpDir)
	out := filepath.Join(tmpDir, "app.bin")
	// go's work directory goes inside ours: removed with it even when an
	// interrupted go is killed before it cleans up.
	gotmp := filepath.Join(tmpDir, "gotmp")
	if err := os.Mkdir(gotmp, 0o700); err != nil {
		return nil, err
	}
	env := append(os.Environ(), gotarget.Baseline...)
	env = append(env, "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOWORK=off", "GOTMPDIR="+gotmp)
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", out}
	var dir string
	if a.Local() {
		dir = a.Path
		if !filepath.IsAbs(dir) {
			base := b.Dir
			if base == "" {
				base = "."
			}
			dir = filepath.Join(base, dir)
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("app %s: %s is not a directory", a.Path, dir)
		}
		args = append(args, ".")
	} else {
		// A throwaway module that requires the app's module at the pinned
		// version; go.sum and the checksum database verify it.
		dir = filepath.Join(tmpDir, "mod")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module rfs.local/app\n"), 0o644); err != nil {
			return nil, err
		}
		get := subproc.Command(ctx, gobin, "get", a.Path)
		get.Dir, get.Env = dir, append(env, "GOFLAGS=-mod=mod")
		if o, err := get.CombinedOutput(); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("app %s: go get: %w", a.Path, ctx.Err())
			}
			return nil, fmt.Errorf("app %s: go get: %w\n%s", a.Path, err, bytes.TrimSpace(o))
		}
		pkg, _, _ := strings.Cut(a.Path, "@")
		args = append(args, pkg)
		env = append(env, "GOFLAGS=-mod=mod")
	}
	cmd := subproc.Command(ctx, gobin, args...)
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("app %s: build for %s: %w", a.Path, arch, ctx.Err())
		}
		return nil, fmt.Errorf("app %s: build for %s: %w\n%s", a.Path, arch, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return os.ReadFile(out)
}

// Validate checks the list for a userland before anything is built:
// specs and duplicate names.
func Validate(list []App, userland string) error {
	seen := map[string]bool{}
	for _, a := range list {
		if err := a.Check(); err != nil {
			return err
		}
		name, _ := a.BinName()
		if seen[name] {
			return fmt.Errorf("two apps named %s (set name: on one)", name)
		}
		seen[name] = true

	}
	return nil
}

// Install builds every app and adds it to t as /usr/bin/NAME (replacing a
// userland link of that name). Services get an inittab respawn line when
// the userland is busybox; with u-root, the rfs init supervises them.
func (b Builder) Install(ctx context.Context, t *rootfs.Tree, arch, userland string, list []App) error {
	if err := Validate(list, userland); err != nil {
		return err
	}
	var services []string
	for _, a := range list {
		name, _ := a.BinName()
		bin, err := b.Build(ctx, arch, a)
		if err != nil {
			return err
		}
		p := BinDir + "/" + name
		if old := t.Lookup(p); old != nil && old.Type != rootfs.Regular {
			if err := t.Remove(p); err != nil {
				return err
			}
		}
		if err := t.Add(p, &rootfs.Node{Type: rootfs.Regular, Perm: 0o755, MTime: t.MTime, Content: rootfs.Bytes(bin)}); err != nil {
			return fmt.Errorf("app %s: %w", a.Path, err)
		}
		if b.Log != nil {
			b.Log("app %s -> %s (%d KiB)%s", a.Path, p, len(bin)/1024, map[bool]string{true: ", service"}[a.Service])
		}
		if a.Service {
			services = append(services, p)
		}
	}
	if userland == "busybox" {
		return AddServices(t, services)
	}
	return AddSupervisedServices(t, services)
}

// AddSupervisedServices is for userlands whose init restarts nothing
// (u-root): the programs go into the init's services list and u-root's
// /bbin/uinit becomes the rfs init's helper, which supervises them.
func AddSupervisedServices(t *rootfs.Tree, bins []string) error {
	return AddSupervised(t, "Apps with service: true (rfs.yaml): started by rfs-init (as u-root's\nuinit) and restarted whenever they exit.", bins)
}

// AddSupervised appends programs to the init's services list (after a
// "# " comment, one line or more), creating it and the /bbin/uinit link
// on first use: apps and the rfs agent share them.
func AddSupervised(t *rootfs.Tree, comment string, bins []string) error {
	if len(bins) == 0 {
		return nil
	}
	old, err := regularContent(t, datapart.ServicesFile)
	if err != nil {
		return fmt.Errorf("services: %w", err)
	}
	content := string(old) + commentLines(comment) + strings.Join(bins, "\n") + "\n"
	if err := t.Add(datapart.ServicesFile, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: t.MTime, Content: rootfs.Bytes(content)}); err != nil {
		return fmt.Errorf("services: %w", err)
	}
	if err := t.Add("/bbin/uinit", &rootfs.Node{Type: rootfs.Symlink, Perm: 0o777, MTime: t.MTime, Target: "/run/rfs/bin/rfs-init"}); err != nil {
		return fmt.Errorf("services: %w", err)
	}
	return nil
}

// regularContent returns the content of the regular file at p, nil when
// there is none.
func regularContent(t *rootfs.Tree, p string) ([]byte, error) {
	n := t.Lookup(p)
	if n == nil {
		return nil, nil
	}
	if n.Type != rootfs.Regular || n.Content == nil {
		return nil, fmt.Errorf("%s is a %s, not a file", p, n.Type)
	}
	r, err := n.Content.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return b, err
}

// commentLines makes "# " lines of a comment.
func commentLines(c string) string {
	return "# " + strings.ReplaceAll(c, "\n", "\n# ") + "\n"
}

// AddServices appends a busybox inittab respawn line per program to
// /etc/inittab: started after sysinit, output on the console, restarted
// when it exits.
func AddServices(t *rootfs.Tree, bins []string) error {
	return AddInittab(t, "Apps with service: true (rfs.yaml): restarted whenever they exit.", bins)
}

// AddInittab appends a "::respawn:COMMAND" line per command to busybox's
// /etc/inittab, after a "# " comment.
func AddInittab(t *rootfs.Tree, comment string, commands []string) error {
	if len(commands) == 0 {
		return nil
	}
	if n := t.Lookup("/etc/inittab"); n == nil || n.Type != rootfs.Regular || n.Content == nil {
		return fmt.Errorf("services: no /etc/inittab in the tree")
	}
	old, err := regularContent(t, "/etc/inittab")
	if err != nil {
		return fmt.Errorf("services: %w", err)
	}
	var buf bytes.Buffer
	buf.Write(old)
	buf.WriteString(commentLines(comment))
	for _, c := range commands {
		fmt.Fprintf(&buf, "::respawn:%s\n", c)
	}
	t.Lookup("/etc/inittab").Content = rootfs.Bytes(buf.Bytes())
	return nil
}
