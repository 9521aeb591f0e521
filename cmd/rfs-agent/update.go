package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	// Mozilla's CA roots, used when the image has no system roots (rfs
	// images ship none): HTTPS registries (ghcr.io, Docker Hub) verify.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agent/regclient"
	"github.com/rfsbuild/rfs/install"
	"github.com/rfsbuild/rfs/install/imagetarget"
	"github.com/rfsbuild/rfs/release"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/updatesig"
)

// Device paths of an update.
const (
	updateLock     = "/run/rfs/update.lock"
	updateProgress = "/run/rfs/update-progress" // the last progress line, for rfs-init status
	dataDir        = "/run/rfs/data"
	osRelease      = "/etc/os-release"
)

const updateUsage = `usage: rfs-init update [--force] [--no-reboot] REF

Installs the release at REF into the inactive A/B slot and reboots into it
for a trial boot; the trial commits it once healthy, else the device
returns to the running release. REF is a registry reference
(registry.example.com/fleet/app:v2, HTTPS) or http://HOST[:PORT]/REPO:TAG
for a registry on the LAN. The release must be signed with the image's
update key, for this board and arch, and not older than the running one
(--force allows older).
`

// updateMain is `rfs-agent update` (`rfs-init update` runs it).
func updateMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("update", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { io.WriteString(stderr, updateUsage) }
	force := fs.Bool("force", false, "install a release older than the running one")
	noReboot := fs.Bool("no-reboot", false, "install and leave the trial for the next boot")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		io.WriteString(stderr, updateUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	log := progressLog(stdout)
	if err := runUpdate(ctx, fs.Arg(0), *force, *noReboot, log); err != nil {
		fmt.Fprintf(stderr, "rfs: update: %v (nothing changed on the running slot)\n", err)
		writeProgress("failed: " + err.Error())
		return 1
	}
	return 0
}

func runUpdate(ctx context.Context, ref string, force, noReboot bool, log io.Writer) error {
	unlock, err := lockUpdate()
	if err != nil {
		return err
	}
	defer unlock()
	pub, _, err := updateKey()
	if err != nil {
		return err
	}
	st, err := readBootStatus()
	if err != nil {
		return err
	}
	dev, closeBoot, err := openDevice(st, log)
	if err != nil {
		return err
	}
	defer closeBoot()
	client := regclient.New(regclient.Options{})
	fmt.Fprintf(log, "rfs: update: resolving %s\n", ref)
	b, err := client.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	rel, err := verifyRelease(b, pub, dev, force)
	if err != nil {
		return err
	}
	fetch := func(ctx context.Context, p install.Part, dst string, progress func(done, total int64)) error {
		return client.FetchBlob(ctx, ref, p.Digest, p.Size, dst, progress)
	}
	slot, err := dev.Install(ctx, rel, fetch)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "rfs: update: version %s written to slot %s and verified\n", rel.Version, slot)
	if noReboot {
		fmt.Fprintf(log, "rfs: update: the next boot tries slot %s\n", slot)
		return nil
	}
	if err := dev.Arm(); err != nil {
		return err
	}
	fmt.Fprintf(log, "rfs: update: rebooting into slot %s for a trial boot\n", slot)
	closeBoot()
	unix.Sync()
	return unix.Kill(1, unix.SIGTERM)
}

// verifyRelease checks the release (signature, board, arch, version) and
// turns it into what the installer writes.
func verifyRelease(b *release.Bundle, pub ed25519.PublicKey, dev *install.Device, force bool) (install.Release, error) {
	s, err := dev.State()
	if err != nil {
		return install.Release{}, err
	}
	board, err := osReleaseValue("VARIANT_ID")
	if err != nil {
		return install.Release{}, err
	}
	current := s.Slots[s.Committed].Version
	if err := release.Verify(b, pub, board, runtime.GOARCH, current, force); err != nil {
		return install.Release{}, err
	}
	rel := install.Release{Version: b.Config.Version, BuildID: b.Config.BuildID, Config: b.RawConfig}
	for _, p := range b.Config.Parts {
		rel.Parts = append(rel.Parts, install.Part{Name: p.Name, Role: p.Role, Digest: p.Digest, Size: p.Size})
	}
	return rel, nil
}

// updateKey reads the image's update key from /etc/rfs/update.json.
func updateKey() (ed25519.PublicKey, slots.Config, error) {
	data, err := os.ReadFile(slots.ConfigFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, slots.Config{}, errors.New("this image has no update key (build it with update: {public_key: FILE} in rfs.yaml)")
	}
	if err != nil {
		return nil, slots.Config{}, err
	}
	cfg, err := slots.ParseConfig(data)
	if err != nil {
		return nil, cfg, err
	}
	pub, err := updatesig.ParsePublicKey([]byte(cfg.PublicKey))
	if err != nil {
		return nil, cfg, fmt.Errorf("%s: public_key: %w", slots.ConfigFile, err)
	}
	return pub, cfg, nil
}

func readBootStatus() (slots.Status, error) {
	var st slots.Status
	data, err := os.ReadFile(slots.StatusFile)
	if err != nil {
		return st, fmt.Errorf("no A/B slot status (%s): %w; this image has no slots, or was not booted by rfs-init", slots.StatusFile, err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s: %w", slots.StatusFile, err)
	}
	if st.BootDevice == "" || !slots.Valid(st.Booted) {
		return st, fmt.Errorf("%s names no boot partition or booted slot", slots.StatusFile)
	}
	return st, nil
}

// openDevice opens the boot partition for the installer. It is not
// mounted: image/fat's Editor writes it in an order that survives a power
// cut at any write (the kernel's vfat does not promise that, and a FAT it
// left half-written turns read-only at the next update).
func openDevice(st slots.Status, log io.Writer) (*install.Device, func(), error) {
	f, err := os.OpenFile(st.BootDevice, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("the boot partition: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("the boot partition %s: %w", st.BootDevice, err)
	}
	closeBoot := func() { f.Sync(); f.Close() }
	cmdline, _ := os.ReadFile("/proc/cmdline")
	stage := filepath.Join(dataDir, "update")
	if _, err := os.Stat(dataDir); err != nil {
		stage = "/run/rfs/update-stage" // no data partition: RAM
	}
	target := &deviceTarget{
		ImageTarget: &imagetarget.ImageTarget{File: f, Boot: imagetarget.Region{Start: 0, Size: size}},
		roots:       install.DirTarget{Roots: st.Roots},
	}
	kernel := "vmlinuz"
	if _, err := target.ReadFile(slots.Dir(st.Booted)+"kernel8.img", 64<<20); err == nil {
		kernel = "kernel8.img"
	}
	return &install.Device{
		Target: target, Booted: st.Booted,
		StageDir: stage, Free: install.StatfsFree, Cmdline: strings.TrimSpace(string(cmdline)),
		KernelName: kernel, Log: log,
	}, closeBoot, nil
}

// deviceTarget is the device's boot partition, edited through its block
// device, and the slots' root partitions.
type deviceTarget struct {
	*imagetarget.ImageTarget
	roots install.DirTarget
}

func (t *deviceTarget) Root(slot string) (install.Partition, error) { return t.roots.Root(slot) }

func osReleaseValue(key string) (string, error) {
	f, err := os.Open(osRelease)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", fmt.Errorf("%s has no %s", osRelease, key)
}

// lockUpdate keeps two updates from running at once.
func lockUpdate() (func(), error) {
	f, err := os.OpenFile(updateLock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, errors.New("another update is running")
	}
	return func() { f.Close() }, nil
}

// progressLog copies each line to w and keeps the last in updateProgress.
func progressLog(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		if line := strings.TrimSpace(string(p)); line != "" {
			writeProgress(strings.TrimPrefix(line, "rfs: update: "))
		}
		return w.Write(p)
	})
}

func writeProgress(line string) {
	os.WriteFile(updateProgress, []byte(time.Now().UTC().Format(time.RFC3339)+" "+line+"\n"), 0o644)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// pollJob checks update: {ref} every interval and installs a newer
// release; one that was rolled back is not tried again.
type pollJob struct {
	ref      string
	interval time.Duration
}

func (j *pollJob) Name() string { return "update" }

func (j *pollJob) Run(ctx context.Context, b *agent.Board) error {
	b.Logf("update: polling %s every %s", j.ref, j.interval)
	first := time.After(time.Minute) // let the network come up first
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-first:
		case <-time.After(j.interval):
		}
		first = nil
		if err := j.poll(ctx, b); err != nil {
			b.Logf("update: %v", err)
		}
	}
}

// poll installs the release at the ref when it is newer than the running
// one and not the one a trial just rolled back.
func (j *pollJob) poll(ctx context.Context, b *agent.Board) error {
	st, err := readBootStatus()
	if err != nil {
		return err
	}
	if st.Trial != "" || st.Booted != st.Committed {
		return nil // a trial is under way
	}
	b2, err := regclient.New(regclient.Options{}).Resolve(ctx, j.ref)
	if err != nil {
		return err
	}
	v := b2.Config.Version
	if last := st.Last; last != nil && last.Outcome == slots.RolledBack && last.Version == v {
		return nil
	}
	if c, err := release.CompareVersions(v, st.Version); err != nil || c <= 0 {
		return err
	}
	b.Logf("update: version %s is available (running %s): installing", v, st.Version)
	return runUpdate(ctx, j.ref, false, false, progressLog(os.Stdout))
}

// updatePoller is the polling job when the image names an update ref.
func updatePoller() agent.Job {
	data, err := os.ReadFile(slots.ConfigFile)
	if err != nil {
		return nil
	}
	cfg, err := slots.ParseConfig(data)
	if err != nil || cfg.Ref == "" {
		return nil
	}
	every := time.Duration(cfg.IntervalSeconds) * time.Second
	if every <= 0 {
		every = 6 * time.Hour
	}
	return &pollJob{ref: cfg.Ref, interval: every}
}
