package builder

import (
	"context"
	"fmt"

	"github.com/rfsbuild/rfs/apps"
	"github.com/rfsbuild/rfs/busybox"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/uroot"
)

// Userlands are the supported values of Config.Userland.
var Userlands = []string{"busybox", "u-root"}

// A Source puts a base userland into the lower tree, before the apps,
// --files and volumes go on top. Busybox and u-root are sources; an OCI
// image (its layers unpacked into the tree) fits the same shape.
type Source interface {
	// Install adds the userland to t and returns a word for the log
	// ("busybox (398 applets)").
	Install(ctx context.Context, t *rootfs.Tree) (string, error)
}

// busyboxSource is the pinned busybox with one link per applet.
type busyboxSource struct{ path string }

func (s busyboxSource) Install(_ context.Context, t *rootfs.Tree) (string, error) {
	applets, err := busybox.Install(t, s.path)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("busybox (%d applets)", len(applets)), nil
}

// urootSource is a u-root busybox-mode binary, compiled for arch.
type urootSource struct {
	arch     string
	commands []string
	log      func(format string, args ...any)
}

func (s urootSource) Install(ctx context.Context, t *rootfs.Tree) (string, error) {
	b := uroot.Builder{Log: s.log}
	bin, err := b.Build(ctx, s.arch, s.commands)
	if err != nil {
		return "", err
	}
	names, err := uroot.Install(t, bin, s.commands)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("u-root %s (%d commands)", uroot.Version, len(names)), nil
}

// source is the Source of c.Userland; bbPath is the pinned busybox.
func (c *Config) source(bbPath string) (Source, error) {
	switch c.Userland {
	case "busybox":
		return busyboxSource{bbPath}, nil
	case "u-root":
		return urootSource{arch: c.Board.Arch, commands: c.URootCommands, log: c.logf}, nil
	}
	return nil, fmt.Errorf("userland %q is not supported (supported: busybox, u-root)", c.Userland)
}

// installUserland puts the userland (from its Source) and then the apps
// into the lower tree; it returns a word for the log.
func (c *Config) installUserland(ctx context.Context, t *rootfs.Tree, bbPath string) (string, error) {
	// App mistakes fail before a u-root compile.
	if err := apps.Validate(c.Apps, c.Userland); err != nil {
		return "", err
	}
	src, err := c.source(bbPath)
	if err != nil {
		return "", err
	}
	desc, err := src.Install(ctx, t)
	if err != nil {
		return "", err
	}
	if len(c.Apps) > 0 {
		b := apps.Builder{Dir: c.AppsDir, Log: c.logf}
		if err := b.Install(ctx, t, c.Board.Arch, c.Userland, c.Apps); err != nil {
			return "", err
		}
		desc += fmt.Sprintf(" + %d apps", len(c.Apps))
	}
	return desc, nil
}
