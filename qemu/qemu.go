// Package qemu starts QEMU for a board and drives its serial console: the
// interactive `rfs run` and the scripted boots of the end-to-end tests.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/hostos"
)

// Config is one QEMU invocation.
type Config struct {
	QEMU    boards.QEMU
	Arch    string // GOARCH of the guest
	Kernel  string // path of the kernel image
	Initrd  string // path of the initramfs
	DTB     string // path of a device tree, if the machine needs one
	Append  string // kernel command line
	Disk    string // disk image path
	Persist bool   // write guest changes to Disk (default: a throw-away snapshot)
	// OtherDisks are attached ahead of Disk, always as snapshots: tests use
	// them to prove the init finds its own root among other disks.
	OtherDisks []string
	KVM        bool // use KVM instead of TCG

	// UEFI boards: the firmware's code, mapped read-only, and a private,
	// writable copy of its variable store. Kernel is then empty: the
	// firmware boots the disk's ESP.
	FirmwareCode string
	FirmwareVars string
	// UKI is a UEFI image's Unified Kernel Image, extracted to a file, and
	// ImageCmdline the command line inside it. When Append asks for more,
	// the UKI is handed to the firmware's kernel loader (QEMU -kernel) with
	// Append as its load options, which systemd's stub takes as the command
	// line when Secure Boot is off.
	UKI          string
	ImageCmdline string

	// Mounts are host directories shared over virtio-9p (AddMounts).
	Mounts []HostDir

	// Net is the guest's network; the zero value is NetRestricted with no
	// forwards.
	Net Network
	// Firmware, for an image with A/B slots (ForImage sets it), picks the
	// slot at every power-up, and makes a guest reboot a new boot in
	// Start and Interactive. nil: the image has no slots.
	Firmware *Firmware
	// qmp is the QMP socket through which rfs learns why QEMU stopped (a
	// reboot or a power-off); the guest then starts paused, and runs once
	// rfs listens.
	qmp string
	// usbOn: ForImage turned on the USB controller that DTB keeps off
	// (usbNodes), so a USB NIC works.
	usbOn bool
}

// Args returns QEMU's command line (without the binary).
func (c Config) Args() []string {
	q := c.QEMU
	args := []string{"-machine", q.Machine, "-m", q.Memory, "-nographic", "-no-reboot"}
	if q.CPU != "" {
		args = append(args, "-cpu", q.CPU)
	}
	if q.SerialPort > 0 {
		for i := 0; i < q.SerialPort; i++ {
			args = append(args, "-serial", "null")
		}
		args = append(args, "-serial", "mon:stdio")
	} else if c.qmp != "" {
		// -nographic muxes the monitor (Ctrl-A X) onto the console only
		// when no other monitor is given, and QMP is one.
		args = append(args, "-serial", "mon:stdio")
	}
	if c.KVM {
		args = append(args, "-accel", "kvm")
	} else {
		args = append(args, "-accel", "tcg")
	}
	if c.FirmwareCode != "" {
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+driveValue(c.FirmwareCode),
			"-drive", "if=pflash,format=raw,file="+driveValue(c.FirmwareVars))
	}
	kernel, initrd, appendC := c.Kernel, c.Initrd, c.Append
	if c.FirmwareCode != "" && c.Kernel == "" {
		// The firmware boots the disk, whose UKI has its own command line
		// and initramfs; only a changed command line needs the UKI by hand.
		initrd, appendC = "", ""
		if c.UKI != "" && strings.TrimSpace(c.Append) != strings.TrimSpace(c.ImageCmdline) {
			kernel, appendC = c.UKI, c.Append
		}
	}
	if kernel != "" {
		args = append(args, "-kernel", kernel)
		if initrd != "" {
			args = append(args, "-initrd", initrd)
		}
		if c.DTB != "" {
			args = append(args, "-dtb", c.DTB)
		}
		if appendC != "" {
			args = append(args, "-append", appendC)
		}
	}
	for _, d := range c.OtherDisks {
		args = append(args, "-drive", "file="+driveValue(d)+",format=raw,if="+q.Disk+",snapshot=on")
	}
	if c.Disk != "" {
		drive := "file=" + driveValue(c.Disk) + ",format=raw,if=" + q.Disk
		if !c.Persist {
			drive += ",snapshot=on"
		}
		args = append(args, "-drive", drive)
	}
	args = append(args, c.mountArgs()...)
	args = append(args, c.netArgs()...)
	if c.qmp != "" {
		args = append(args, "-qmp", "unix:"+driveValue(c.qmp)+",server=on,wait=off", "-S")
	}
	return append(args, q.Extra...)
}

// Check reports a missing QEMU binary, an impossible accelerator or
// network.
func (c Config) Check() error {
	if _, err := exec.LookPath(c.QEMU.Binary); err != nil {
		return fmt.Errorf("%s not found: install QEMU (%s)", c.QEMU.Binary, installHint(runtime.GOOS))
	}
	if err := checkMachine(c.QEMU); err != nil {
		return err
	}
	if err := c.CheckNet(); err != nil {
		return err
	}
	if c.KVM && runtime.GOOS != "linux" {
		return kvmNeedsLinux()
	}
	if c.KVM {
		if hostArch() != c.Arch {
			return fmt.Errorf("--kvm needs a %s host; this host is %s (TCG emulation works without --kvm)", c.Arch, hostArch())
		}
		if _, err := os.Stat("/dev/kvm"); err != nil {
			return fmt.Errorf("--kvm: /dev/kvm is not available: %w", err)
		}
	}
	return nil
}

// installHint says how to install QEMU on a host running goos.
func installHint(goos string) string {
	switch goos {
	case "darwin":
		return "macOS: brew install qemu"
	case "windows":
		return "Windows: the installer from qemu.org, its directory on PATH"
	}
	return "Debian/Ubuntu: apt-get install qemu-system-arm qemu-system-x86"
}

// kvmNeedsLinux is the refusal of --kvm on other hosts.
func kvmNeedsLinux() error {
	return hostos.NeedsLinux("rfs run --kvm", "KVM is Linux's /dev/kvm; without --kvm QEMU emulates the board (TCG), on any host")
}

// Command returns QEMU ready to run with Run: it is stopped when ctx is
// done, and killed when rfs dies, however it dies.
func (c Config) Command(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.QEMU.Binary, c.Args()...)
	prepare(cmd)
	return cmd
}

// Interactive runs QEMU with its console on the terminal's streams until
// it ends: for an image with A/B slots (c.Firmware), across the guest's
// reboots, each a new power-up, until the guest powers off, QEMU fails,
// the user quits (Ctrl-A X) or ctx is done.
func Interactive(ctx context.Context, c Config, stdin io.Reader, stdout, stderr io.Writer) error {
	if c.Firmware == nil {
		q := c.Command(ctx)
		q.Stdin, q.Stdout, q.Stderr = stdin, stdout, stderr
		return Run(q)
	}
	for n := 1; ; n++ {
		boot, _, err := c.Firmware.powerUp(c)
		if err != nil {
			return err
		}
		p, err := spawn(ctx, boot, terminal(stdin, stdout, stderr))
		if err != nil {
			return err
		}
		reason, err := p.finish()
		if ctx.Err() != nil {
			return err
		}
		if again, err := c.Firmware.afterBoot(reason, err, n); !again {
			return err
		}
	}
}

// VM is a running QEMU whose serial console is read and written by the
// caller. For an image with A/B slots (Config.Firmware) it is the whole
// run: a guest reboot starts a new QEMU on the slot the firmware picks,
// its console continuing the same stream.
type VM struct {
	mu     sync.Mutex
	proc   *process // the QEMU running; nil between boots and at the end
	out    []byte   // everything the console printed
	pos    int      // where the next Expect starts looking
	boots  []string // the slot of each boot (Firmware)
	closed bool     // Close was called: no further boot
	done   bool     // the run ended
	waitEr error    // why: QEMU's exit, or the firmware's error
	notify chan struct{}
}

// Start boots a VM. Console output is copied to log (if not nil) as it
// comes.
func Start(ctx context.Context, c Config, log io.Writer) (*VM, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	vm := &VM{notify: make(chan struct{}, 1)}
	p, err := vm.boot(ctx, c)
	if err != nil {
		return nil, err
	}
	go vm.follow(ctx, c, p, log)
	return vm, nil
}

// boot powers the machine up: the firmware's choice of slot, then QEMU.
func (vm *VM) boot(ctx context.Context, c Config) (*process, error) {
	slot := ""
	if fw := c.Firmware; fw != nil {
		var choice Choice
		var err error
		if c, choice, err = fw.powerUp(c); err != nil {
			return nil, err
		}
		slot = choice.Slot
	}
	p, err := spawn(ctx, c, pipes)
	if err != nil {
		return nil, err
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.proc = p
	if slot != "" {
		vm.boots = append(vm.boots, slot)
	}
	if vm.closed {
		p.kill()
	}
	return p, nil
}

// follow reads the console of each QEMU of the run to its end, and
// starts the next one after a guest reboot if the image has slots.
func (vm *VM) follow(ctx context.Context, c Config, p *process, log io.Writer) {
	for n := 1; ; n++ {
		vm.read(p.stdout, log)
		reason, err := p.finish()
		p.stdout.Close()
		p.stdin.Close()
		vm.mu.Lock()
		vm.proc = nil
		closed := vm.closed
		vm.mu.Unlock()
		if c.Firmware != nil && !closed && ctx.Err() == nil {
			var again bool
			if again, err = c.Firmware.afterBoot(reason, err, n); again {
				if p, err = vm.boot(ctx, c); err == nil {
					continue
				}
			}
		}
		vm.mu.Lock()
		vm.done, vm.waitEr = true, err
		vm.mu.Unlock()
		vm.wake()
		return
	}
}

// read copies one QEMU's console to the stream and log, to its end.
func (vm *VM) read(r io.Reader, log io.Writer) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if log != nil {
				log.Write(buf[:n])
			}
			vm.mu.Lock()
			vm.out = append(vm.out, buf[:n]...)
			vm.mu.Unlock()
			vm.wake()
		}
		if err != nil {
			return
		}
	}
}

// Boots returns the slot of each boot so far, in order ("a", "b"); nil
// for an image without slots.
func (vm *VM) Boots() []string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return slices.Clone(vm.boots)
}

func (vm *VM) wake() {
	select {
	case vm.notify <- struct{}{}:
	default:
	}
}

// ErrTimeout is returned by Expect when the pattern did not appear in time.
var ErrTimeout = errors.New("timed out")

// Expect waits until re matches console output printed since the previous
// match and returns the matched text; later Expects start after it.
func (vm *VM) Expect(re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		vm.mu.Lock()
		loc := re.FindIndex(vm.out[vm.pos:])
		if loc != nil {
			m := string(vm.out[vm.pos+loc[0] : vm.pos+loc[1]])
			vm.pos += loc[1]
			vm.mu.Unlock()
			return m, nil
		}
		done, werr := vm.done, vm.waitEr
		vm.mu.Unlock()
		if done {
			return "", fmt.Errorf("waiting for %q: QEMU exited (%v)", re, werr)
		}
		select {
		case <-vm.notify:
		case <-deadline.C:
			return "", fmt.Errorf("waiting for %q: %w after %s", re, ErrTimeout, timeout)
		}
	}
}

// ExpectString waits for a literal string.
func (vm *VM) ExpectString(s string, timeout time.Duration) error {
	_, err := vm.Expect(regexp.MustCompile(regexp.QuoteMeta(s)), timeout)
	return err
}

// Run types a shell command on the console and returns its output, which
// the command is made to frame with unique markers so echo and prompt noise
// do not matter.
func (vm *VM) Run(command string, timeout time.Duration) (string, error) {
	vm.mu.Lock()
	n := len(vm.out)
	vm.mu.Unlock()
	tag := fmt.Sprintf("rfs%x", n)
	// The markers are built by printf so the echoed command line never
	// contains them literally.
	line := fmt.Sprintf("printf '%%s-begin\\n' %s; %s; printf '%%s-end:%%s\\n' %s $?\n", tag, command, tag)
	if err := vm.Send(line); err != nil {
		return "", err
	}
	re := regexp.MustCompile(`(?s)` + tag + `-begin\r?\n(.*?)` + tag + `-end:(\d+)`)
	m, err := vm.Expect(re, timeout)
	if err != nil {
		return "", fmt.Errorf("run %q: %w", command, err)
	}
	sub := re.FindStringSubmatch(m)
	out := string(bytes.ReplaceAll([]byte(sub[1]), []byte("\r\n"), []byte("\n")))
	if sub[2] != "0" {
		return out, fmt.Errorf("run %q: exit status %s: %s", command, sub[2], out)
	}
	return out, nil
}

// Send writes s to the serial console.
func (vm *VM) Send(s string) error {
	vm.mu.Lock()
	p := vm.proc
	vm.mu.Unlock()
	if p == nil {
		return errors.New("no QEMU running (the guest is between boots, or gone)")
	}
	_, err := io.WriteString(p.stdin, s)
	return err
}

// Output returns everything the console printed so far.
func (vm *VM) Output() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.out)
}

// Wait waits up to timeout for the run to end (the guest powered off,
// QEMU exited) and returns why it ended: nil for a power-off, QEMU's
// error, or the firmware's (a boot loop stopped); ErrTimeout if it goes
// on.
func (vm *VM) Wait(timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		vm.mu.Lock()
		done, err := vm.done, vm.waitEr
		vm.mu.Unlock()
		if done {
			return err
		}
		select {
		case <-vm.notify:
		case <-deadline.C:
			return fmt.Errorf("waiting for QEMU to exit: %w after %s", ErrTimeout, timeout)
		}
	}
}

// Close stops QEMU (the guest gets no shutdown: its disk is a snapshot or a
// test image), and the run, and waits for it.
func (vm *VM) Close() error {
	vm.mu.Lock()
	vm.closed = true
	if vm.proc != nil {
		vm.proc.kill()
	}
	vm.mu.Unlock()
	for {
		vm.mu.Lock()
		done := vm.done
		vm.mu.Unlock()
		if done {
			return nil
		}
		<-vm.notify
	}
}
