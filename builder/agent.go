package builder

import (
	"context"
	"fmt"
	"os"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/agentsetup"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
)

// validateDevice checks the network, time and SSH settings (rfs.yaml's
// were checked with their lines already; this guards other callers).
func (c *Config) validateDevice() error {
	if c.Device == nil {
		return nil
	}
	return c.Device.Check()
}

// installAgent compiles the on-device agent for the board and installs it
// with its configuration when the device's network, time or SSH is on.
// It runs after the --files: their /etc/resolv.conf is kept.
func (c *Config) installAgent(ctx context.Context, t *rootfs.Tree) error {
	if c.Device == nil || !c.Device.Enabled() {
		return nil
	}
	path, err := c.Init.Agent(ctx, c.Board.Arch)
	if err != nil {
		return err
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read agent: %w", err)
	}
	hostname := c.Hostname
	if hostname == "" {
		hostname = "rfs" // the skeleton's default
	}
	notes, err := agentsetup.Install(t, *c.Device, hostname, bin, c.Userland)
	if err != nil {
		return err
	}
	c.logf("agent %s (%s): %s", agentconf.Binary, image.HumanSize(int64(len(bin))), c.Device.Summary())
	for _, n := range notes {
		c.warnf("%s", n)
	}
	return nil
}
