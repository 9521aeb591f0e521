package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/infile"
	"github.com/rfsbuild/rfs/modfetch"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/uki"
)

// kernelName is the kernel's file name on the boot partition; for UEFI
// boards, the Unified Kernel Image that holds it.
func (c *Config) kernelName() string {
	if c.Board.Pi != nil {
		return c.Board.Pi.KernelName
	}
	if c.Board.UEFI != nil {
		return c.Board.UEFI.BootFile
	}
	return image.KernelFile
}

// efiStub is the EFI stub's path for a UEFI board.
func (c *Config) efiStub() string {
	if c.EFIStub != "" {
		return c.EFIStub
	}
	return c.Board.UEFI.Stub
}

// ukiInputs digests what a UEFI board's UKI is made of besides the files
// that are on the ESP anyway: the kernel and the stub.
func (c *Config) ukiInputs(kernelPath string) ([32]byte, error) {
	in := rootfs.New(c.Epoch)
	kernel, err := c.hostFile(kernelPath)
	if err != nil {
		return [32]byte{}, fmt.Errorf("kernel: %w", err)
	}
	stub, err := c.hostFile(c.efiStub())
	if err != nil {
		return [32]byte{}, fmt.Errorf("EFI stub: %w (Debian/Ubuntu: apt-get install systemd-boot-efi; or set efi_stub: in rfs.yaml or --efi-stub)", err)
	}
	for name, src := range map[string]rootfs.Source{"/linux": kernel, "/stub": stub} {
		if err := in.Add(name, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: c.Epoch, Content: src}); err != nil {
			return [32]byte{}, err
		}
	}
	return in.Digest()
}

// unifiedKernelImage builds a UEFI board's boot file: the EFI stub with the
// lower's os-release, the command line, the kernel and the initramfs as
// sections. Firmware boots it from the ESP's removable-media path.
func (c *Config) unifiedKernelImage(kernelPath string, initrd []byte, cmdline string, lower *rootfs.Tree) ([]byte, error) {
	stubPath := c.efiStub()
	stub, err := infile.ReadFile("", stubPath)
	if err != nil {
		return nil, fmt.Errorf("EFI stub: %w", err)
	}
	if err := uki.CheckArch(stub, c.Board.Arch); err != nil {
		return nil, fmt.Errorf("EFI stub %s: %w", stubPath, err)
	}
	kernel, err := infile.ReadFile("", kernelPath)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	var osrel []byte
	if n := lower.Lookup("/etc/os-release"); n != nil && n.Type == rootfs.Regular {
		r, err := n.Content.Open()
		if err != nil {
			return nil, err
		}
		osrel, err = io.ReadAll(r)
		r.Close()
		if err != nil {
			return nil, err
		}
	}
	img, err := uki.Assemble(stub, uki.Parts{OSRel: osrel, Cmdline: []byte(cmdline), Linux: kernel, Initrd: initrd})
	if err != nil {
		return nil, fmt.Errorf("EFI stub %s: %w", stubPath, err)
	}
	return img, nil
}

// bootFiles lays out the boot partition but for cmdline.txt, rfs.json and
// a UEFI board's UKI, which depend on the partition ids (Artifacts.BootFor).
func (c *Config) bootFiles(ctx context.Context, kernelPath string, initrd []byte) ([]BootFile, error) {
	var boot []BootFile
	if c.Board.UEFI == nil {
		// (A UEFI board's kernel is inside the UKI.)
		kernel, err := c.hostFile(kernelPath)
		if err != nil {
			return nil, fmt.Errorf("kernel: %w", err)
		}
		boot = append(boot, BootFile{c.kernelName(), kernel})
	}
	boot = append(boot, BootFile{image.InitrdFile, rootfs.Bytes(initrd)})
	if c.Board.Pi == nil {
		return boot, nil
	}
	pi, err := c.piFiles(ctx, kernelPath)
	if err != nil {
		return nil, err
	}
	return append(boot, pi...), nil
}

// piFiles are a Raspberry Pi's firmware, device trees, overlays and
// config.txt.
func (c *Config) piFiles(ctx context.Context, kernelPath string) ([]BootFile, error) {
	pi := c.Board.Pi
	var out []BootFile
	fwDir, err := c.download(ctx, boards.FirmwareRPiModule)
	if err != nil {
		return nil, err
	}
	for _, name := range pi.Firmware {
		src, err := c.hostFile(filepath.Join(fwDir, name))
		if err != nil {
			return nil, fmt.Errorf("firmware: %w", err)
		}
		out = append(out, BootFile{name, src})
	}
	// Device trees and overlays come with the kernel: from the directory of
	// a kernel the user brings when it has them, else from the pinned one.
	dtbDir := filepath.Dir(kernelPath)
	if _, err := os.Stat(filepath.Join(dtbDir, pi.DTBs[0])); err != nil {
		if dtbDir, err = c.download(ctx, c.Board.Kernel.Module); err != nil {
			return nil, err
		}
	}
	for _, name := range pi.DTBs {
		src, err := c.hostFile(filepath.Join(dtbDir, name))
		if err != nil {
			return nil, fmt.Errorf("device tree: %w", err)
		}
		out = append(out, BootFile{name, src})
	}
	overlays, err := os.ReadDir(filepath.Join(dtbDir, "overlays"))
	if err != nil {
		return nil, fmt.Errorf("device tree overlays: %w", err)
	}
	for _, e := range overlays {
		if !e.Type().IsRegular() {
			continue
		}
		src, err := c.hostFile(filepath.Join(dtbDir, "overlays", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, BootFile{"overlays/" + e.Name(), src})
	}
	return append(out, BootFile{"config.txt", rootfs.Bytes(c.configTxt())}), nil
}

// configTxt is the Raspberry Pi firmware's configuration. Model sections
// ([pi3], [pi4], [pi5]) hold what differs per model; [all] the rest, then
// the project's own lines.
func (c *Config) configTxt() string {
	pi := c.Board.Pi
	var b strings.Builder
	fmt.Fprintf(&b, "# Raspberry Pi firmware configuration, written by rfs for board %s.\n", c.Board.Name)
	b.WriteString("# See https://www.raspberrypi.com/documentation/computers/config_txt.html\n")
	b.WriteString("[all]\narm_64bit=1\n")
	fmt.Fprintf(&b, "kernel=%s\n", pi.KernelName)
	fmt.Fprintf(&b, "initramfs %s followkernel\n", image.InitrdFile)
	b.WriteString("enable_uart=1\n")
	if len(pi.Models) > 1 {
		for _, m := range pi.Models {
			fmt.Fprintf(&b, "[%s]\n# %s\n", m, piModelNotes[m])
		}
		b.WriteString("[all]\n")
	}
	for _, line := range c.ConfigTxt {
		b.WriteString(line + "\n")
	}
	return b.String()
}

var piModelNotes = map[string]string{
	"pi3": "Pi 3/3+/Zero 2 W: firmware bootcode.bin, start.elf, fixup.dat; device trees bcm2710-*",
	"pi4": "Pi 4/400/CM4: firmware start4.elf, fixup4.dat; device trees bcm2711-*",
	"pi5": "Pi 5/500/CM5: firmware in EEPROM; device trees bcm2712-*",
}

// hostFile is a file of the build host as tree content. Files inside a
// pinned module's directory are named by the module's verified hash, so
// digests need not read them.
func (c *Config) hostFile(path string) (rootfs.HostFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return rootfs.HostFile{}, err
	}
	if !st.Mode().IsRegular() {
		return rootfs.HostFile{}, fmt.Errorf("%s is not a regular file", path)
	}
	hf := rootfs.HostFile{Path: path, Len: st.Size()}
	for dir, m := range c.modules {
		if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
			hf.ID = m.String() + " " + m.Sum + " " + filepath.ToSlash(rel)
		}
	}
	return hf, nil
}

// download fetches a pinned module and remembers its directory (see hostFile).
func (c *Config) download(ctx context.Context, m modfetch.Module) (string, error) {
	dir, err := c.Fetcher.Download(ctx, m)
	if err != nil {
		return "", err
	}
	if c.modules == nil {
		c.modules = map[string]modfetch.Module{}
	}
	c.modules[dir] = m
	return dir, nil
}
