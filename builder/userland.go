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

// installUserland puts the userland (busybox's applets, or a u-root
// busybox-mode binary) and then the apps into the lower tree; it returns a
// word for the log.
func (c *Config) installUserland(ctx context.Context, t *rootfs.Tree, bbPath string) (string, error) {
	// App mistakes fail before a u-root compile.
	if err := apps.Validate(c.Apps, c.Userland); err != nil {
		return "", err
	}
	var desc string
	switch c.Userland {
	case "busybox":
		applets, err := busybox.Install(t, bbPath)
		if err != nil {
			return "", err
		}
		desc = fmt.Sprintf("busybox (%d applets)", len(applets))
	case "u-root":
		b := uroot.Builder{Log: c.logf}
		bin, err := b.Build(ctx, c.Board.Arch, c.URootCommands)
		if err != nil {
			return "", err
		}
		names, err := uroot.Install(t, bin, c.URootCommands)
		if err != nil {
			return "", err
		}
		desc = fmt.Sprintf("u-root %s (%d commands)", uroot.Version, len(names))
	default:
		return "", fmt.Errorf("userland %q is not supported (supported: busybox, u-root)", c.Userland)
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
