package builder

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/pathcheck"
)

// checkPaths refuses an output that would destroy an input or be swallowed
// by the next build (package pathcheck), before any work is done.
func (c *Config) checkPaths() error {
	inputs := []pathcheck.Path{{Flag: "project file", Path: c.ProjectFile}, {Flag: "--efi-stub", Path: c.EFIStub}}
	if c.Kernel != "" {
		k := c.Kernel
		if st, err := os.Stat(k); err == nil && st.IsDir() {
			k = filepath.Join(k, "vmlinuz")
		}
		inputs = append(inputs, pathcheck.Path{Flag: "--kernel", Path: k})
	}
	for _, l := range c.Layers {
		inputs = append(inputs, pathcheck.Path{Flag: "--layer", Path: l})
	}
	for _, f := range c.Files {
		inputs = append(inputs, pathcheck.Path{Flag: "--files", Path: f.Src})
	}
	// An app's package directory is not swallowed by the build (only its
	// Go files are read), so only those files are inputs: an output named
	// like one would overwrite the source.
	for _, a := range c.Apps {
		if !a.Local() {
			continue
		}
		dir := a.Path
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(c.AppsDir, dir)
		}
		srcs, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, s := range srcs {
			inputs = append(inputs, pathcheck.Path{Flag: "app source", Path: s})
		}
	}
	outputs := []pathcheck.Path{{Flag: "-o", Path: c.Output}}
	if err := pathcheck.Check(outputs, inputs); err != nil {
		return err
	}
	if c.Emit == "" {
		return nil
	}
	if err := pathcheck.CheckDir(pathcheck.Path{Flag: "--emit", Path: c.Emit}, outputs, inputs); err != nil {
		return err
	}
	if err := atomicfile.CheckDir(c.Emit, isEmitDir); err != nil {
		return fmt.Errorf("--emit %w", err)
	}
	return nil
}
