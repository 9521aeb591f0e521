package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
	"github.com/rfsbuild/rfs/qemu"
	"github.com/rfsbuild/rfs/slots"
)

// TestRunNetworkFlags: --net, --forward and --ssh as rfs run reads them,
// and the QEMU options they become.
func TestRunNetworkFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		machine string
		args    []string
		want    []string // in QEMU's arguments, in order
		err     string   // part of the error; empty: none
		stderr  string   // part of what rfs says
	}{
		{"default", "virt", nil, []string{"-netdev user,id=rfsnet0,restrict=on -device virtio-net-pci,netdev=rfsnet0"}, "", ""},
		{"forwards", "virt", []string{"--forward", "8080:80", "--forward", "udp:5353:53"},
			[]string{"restrict=on,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:127.0.0.1:5353-:53 "}, "", ""},
		{"internet", "q35", []string{"--net", "internet", "--forward", "tcp:2222:22"},
			[]string{"-netdev user,id=rfsnet0,hostfwd=tcp:127.0.0.1:2222-:22 -device virtio-net-pci"}, "", ""},
		{"none", "virt", []string{"--net", "none"}, []string{"-nic none"}, "", ""},
		{"ssh", "virt", []string{"--ssh"}, []string{"restrict=on,hostfwd=tcp:127.0.0.1:"}, "", "rfs: ssh into the device with: ssh -p "},
		{"pi 3", "raspi3b", []string{"--ssh"}, []string{"-device usb-net,netdev=rfsnet0"}, "", "ssh -p "},
		{"pi 4 has no network", "raspi4b", nil, []string{"-nic none"}, "", "raspi4b machine has no network device"},
		{"pi 4 forward", "raspi4b", []string{"--forward", "80:80"}, nil, "has no network device", ""},
		{"bad mode", "virt", []string{"--net", "bridge"}, nil, `--net "bridge": want restricted`, ""},
		{"bad port", "virt", []string{"--forward", "8080:0"}, nil, `--forward "8080:0": guest port: 0 is not a port number (1-65535)`, ""},
		{"bad protocol", "virt", []string{"--forward", "icmp:1:1"}, nil, `protocol "icmp"`, ""},
		{"ssh without a network", "virt", []string{"--net", "none", "--ssh"}, nil, "--ssh needs a network", ""},
		{"forward without a network", "virt", []string{"--net", "none", "--forward", "1:1"}, nil, "not with --net none", ""},
		{"twice", "virt", []string{"--forward", "80:80", "--forward", "tcp:80:81"}, nil, "host port tcp 80 forwarded twice", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, f := runCommand()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.SetErr(&stderr)
			cfg := qemu.Config{QEMU: boards.QEMU{Machine: tc.machine, Memory: "1G"}}
			err := f.network(cmd, &cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			args := strings.Join(cfg.Args(), " ") + " "
			for _, w := range tc.want {
				if !strings.Contains(args, w) {
					t.Errorf("args %q lack %q", args, w)
				}
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("rfs said %q, want %q", stderr.String(), tc.stderr)
			}
		})
	}
}

// TestRunSSHPort: the port rfs run --ssh prints is the one QEMU forwards
// to the device's port 22, on 127.0.0.1 only.
func TestRunSSHPort(t *testing.T) {
	cmd, f := runCommand()
	if err := cmd.ParseFlags([]string{"--ssh", "--forward", "8080:80"}); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.SetErr(&stderr)
	cfg := qemu.Config{QEMU: boards.QEMU{Machine: "virt"}}
	if err := f.network(cmd, &cfg); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`ssh -p (\d+) -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no root@127\.0\.0\.1\n`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no ssh command in %q", stderr.String())
	}
	if args := strings.Join(cfg.Args(), " "); !strings.Contains(args, "hostfwd=tcp:127.0.0.1:"+m[1]+"-:22") {
		t.Errorf("args %q do not forward %s to 22", args, m[1])
	}
}

// TestRunDryRunNetwork: rfs run --dry-run prints QEMU's network options
// for a real image: its own MAC, the forwards.
func TestRunDryRunNetwork(t *testing.T) {
	img := filepath.Join(t.TempDir(), "a.img")
	if out, err := execute(t, "build", "--board", "qemu-arm64", "-o", img); err != nil {
		if strings.Contains(err.Error(), "proxy") {
			t.Skip(err)
		}
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := execute(t, "run", "--dry-run", "--forward", "udp:1234:123", img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeDryRunDir(out) })
	if !regexp.MustCompile(`-netdev user,id=rfsnet0,restrict=on,hostfwd=udp:127\.0\.0\.1:1234-:123 -device virtio-net-pci,netdev=rfsnet0,mac=52:54:00:[0-9a-f:]{8}\b`).MatchString(out) {
		t.Errorf("dry run:\n%s", out)
	}
}

// removeDryRunDir removes the directory a dry run kept, named in its output.
func removeDryRunDir(out string) {
	if m := regexp.MustCompile(`kept in (\S+): remove it`).FindStringSubmatch(out); m != nil && strings.Contains(m[1], "rfs-dry-run-") {
		os.RemoveAll(m[1])
	}
}

// TestRunDryRunSlots: on an image with A/B slots and a trial armed,
// --dry-run prints the command for the trial slot and leaves the tryboot
// flag in place.
func TestRunDryRunSlots(t *testing.T) {
	img, _ := imagetest.Write(t, imagetest.Spec{Table: "gpt", Parts: []imagetest.Part{{Role: image.RoleBoot}, {Role: image.RoleRoot}}})
	edit := map[string][]byte{slots.FirmwareFile: []byte("a\n"), slots.TrybootFile: {}}
	for _, s := range []string{"a", "b"} {
		edit[slots.Dir(s)+image.KernelFile] = []byte("kernel " + s)
		edit[slots.Dir(s)+image.InitrdFile] = []byte("initrd " + s)
		edit[slots.Dir(s)+image.CmdlineFile] = []byte("root=x rfs.slot=" + s)
	}
	imagetest.EditBoot(t, img, edit)
	out, err := execute(t, "run", "--dry-run", "--append", "rfs.shell", img)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { removeDryRunDir(out) })
	for _, want := range []string{"-append 'root=x rfs.slot=b rfs.shell'", "boots slot b (trial)", "file=/tmp/rfs-dry-run-"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if c, err := qemu.PeekSlot(img); err != nil || c != (qemu.Choice{Slot: "b", Trial: true}) {
		t.Errorf("after the dry run, the firmware would boot %+v (%v): the flag was consumed", c, err)
	}
}
