package main

import (
	"os"
	"path/filepath"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/infile"
)

// checkBuildInputs refuses a build input that is not a regular file (a
// FIFO would block the build in open(2) for ever; /dev/zero never ends),
// naming the flag, or the project file key it came from.
func checkBuildInputs(cfg *builder.Config, changed func(string) bool) error {
	name := func(flag, key string) string {
		if changed(flag) {
			return "--" + flag
		}
		return key + " (project file)"
	}
	if k := cfg.Kernel; k != "" {
		if st, err := os.Stat(k); err == nil && st.IsDir() {
			k = filepath.Join(k, "vmlinuz") // a directory holding vmlinuz
		}
		if err := notSpecial(name("kernel", "kernel"), k); err != nil {
			return err
		}
	}
	for _, l := range cfg.Layers {
		if err := notSpecial(name("layer", "layers"), l); err != nil {
			return err
		}
	}
	if cfg.EFIStub != "" {
		if err := notSpecial(name("efi-stub", "efi_stub"), cfg.EFIStub); err != nil {
			return err
		}
	}
	return nil
}

// notSpecial refuses a path that exists and is not a regular file; a
// missing file is left to the builder, which says more about it.
func notSpecial(what, path string) error {
	if err := infile.Check(what, path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
