// Package project reads rfs.yaml, the project file that holds what the
// command-line flags of `rfs build` hold, so a build is one short command.
package project

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rfsbuild/rfs/apps"
	"github.com/rfsbuild/rfs/infile"
)

// DefaultFile is the project file `rfs build` reads when it exists.
const DefaultFile = "rfs.yaml"

// File is the project file. Every field is optional; flags override it.
// Paths in it are relative to the file's directory.
type File struct {
	Board    string   `yaml:"board"`
	Userland string   `yaml:"userland"`
	Kernel   string   `yaml:"kernel"`
	Files    []string `yaml:"files"`
	Owner    string   `yaml:"owner"`
	Hostname string   `yaml:"hostname"`
	Cmdline  string   `yaml:"cmdline"`
	Upper    string   `yaml:"upper"`
	Size     string   `yaml:"size"`
	DataSize string   `yaml:"data_size"`
	Volumes  []string `yaml:"volumes"`
	Output   string   `yaml:"output"`
	Login    *bool    `yaml:"login"`
	RootHash string   `yaml:"root_password_hash"`
	Epoch    *int64   `yaml:"epoch"`
	// ConfigTxt lines go at the end of a Raspberry Pi's config.txt.
	ConfigTxt []string `yaml:"config_txt"`
	// EFIStub is the EFI stub UEFI boards build their Unified Kernel Image on.
	EFIStub string `yaml:"efi_stub"`
	// Layers are squashfs files stacked above the root, bottom to top.
	Layers []string `yaml:"layers"`
	// URootCommands is the u-root command set (userland: u-root).
	URootCommands []string `yaml:"uroot_commands"`
	// Apps are Go programs built for the board and put in /usr/bin.
	Apps []apps.App `yaml:"apps"`
	// Network, Time and SSH configure the on-device agent; nil: defaults.
	Network *Network `yaml:"network"`
	// Version is the release version (default: the build epoch).
	Version string `yaml:"version"`
	// Update turns on A/B slots and holds the device's update settings.
	Update *Update `yaml:"update"`
	Time   *Time   `yaml:"time"`
	SSH    *SSH    `yaml:"ssh"`

	// Dir is the directory the file was read from.
	Dir string `yaml:"-"`
	// Path is the file's path as given, and Lines the line of each
	// top-level key in it: messages about a value name both.
	Path  string         `yaml:"-"`
	Lines map[string]int `yaml:"-"`
}

// Where names a key for messages: "rfs.yaml:7: data_size" (or just the
// key when the file was not read from disk).
func (f *File) Where(key string) string {
	line := f.Lines[key]
	switch {
	case f.Path != "" && line > 0:
		return fmt.Sprintf("%s:%d: %s", f.Path, line, key)
	case f.Path != "":
		return f.Path + ": " + key
	}
	return key
}

// Load reads and strictly parses a project file: unknown keys and wrong
// types are errors that name the line.
func Load(path string) (*File, error) {
	data, err := infile.ReadFile("project file", path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Dir, f.Path = dirOf(path), path
	return f, nil
}

// Parse parses project file content.
func Parse(data []byte) (*File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return &f, nil // an empty file is a valid project
		}
		return nil, cleanYAMLError(err)
	}
	f.Lines = keyLines(data)
	return &f, nil
}

// keyLines returns the line of each top-level key (the strict decode has
// already accepted the document).
func keyLines(data []byte) map[string]int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := doc.Content[0]
	lines := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		lines[m.Content[i].Value] = m.Content[i].Line
	}
	return lines
}

// cleanYAMLError turns yaml.v3's "field x not found in type project.File"
// into words a user understands.
func cleanYAMLError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var msgs []string
	for _, m := range te.Errors {
		if i := strings.Index(m, "field "); i >= 0 && strings.Contains(m, " not found in type") {
			name := strings.TrimSuffix(m[i+len("field "):], m[strings.Index(m, " not found in type"):])
			m = m[:i] + "unknown key " + strconv.Quote(name) + " (see `rfs init` for the keys)"
		}
		msgs = append(msgs, m)
	}
	return errors.New(strings.Join(msgs, "; "))
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		if i == 0 {
			return "/"
		}
		return p[:i]
	}
	return "."
}

// Starter is the commented project file `rfs init` writes.
const Starter = `# rfs project file. Every key is optional; command-line flags override it.
# Paths are relative to this file.

# Target board: see 'rfs boards'.
board: qemu-arm64

# Userland: busybox (static busybox 1.34.1 with a link for every applet), or
# u-root (u-root 0.16.0's Go commands in one binary, /bbin; shell: gosh).
userland: busybox
# u-root only: the commands (default: a core set with init and gosh, which
# are always included). Names from u-root's cmds/core, or exp/NAME.
# uroot_commands: [ls, cat, cp, mount, ps, kill, exp/ed]

# Your Go programs, built for the board (static, reproducible) into
# /usr/bin/NAME: a package in your module, relative to this file, or
# import/path@version. service: true starts it at boot and restarts it when
# it exits (busybox userland; output on the console).
# apps:
#   - path: ./cmd/hello
#     service: true
#   - path: example.com/tool/cmd/x@v1.2.3
#     name: x

# The device's network, clock and SSH server, run by the rfs agent (a
# supervised program rfs builds for the board; left out when network and
# time are off and no SSH key is given). Default: DHCP (and IPv6 SLAAC) on
# every wired interface, as it appears.
# network: off                 # loopback only
# network:
#   dhcp: true                 # on the interfaces not listed below
#   interfaces:
#     eth0:
#       address: 192.168.1.10/24
#       gateway: 192.168.1.1
#       dns: [192.168.1.1]
#     usb0: {dhcp: true}
# Clock: NTP from these servers (default: 0-2.pool.ntp.org), or off.
# time:
#   servers: [ntp.lan, "10.0.0.1:123"]
# SSH for root, public keys only; no key: no SSH server. Each entry is a
# public key file (relative to this file; several keys a file) or a key.
# ssh:
#   authorized_keys:
#     - keys/me.pub
#     - ssh-ed25519 AAAAC3Nza... me@laptop
#   port: 22

# Kernel: empty for the board's pinned kernel, or a kernel image file or a
# directory holding vmlinuz (bring your own).
# kernel: ./my-kernel/Image

# Directories merged into the root filesystem, in order. "DIR" lands at /,
# "DIR:/dest" at /dest. Modes and symlinks are kept; owned by root unless
# 'owner' says otherwise ("uid:gid", or "keep" for the owners on disk).
# files:
#   - rootfs-overlay
#   - app:/opt/app
# owner: "0:0"

hostname: rfs

# Extra kernel command line, appended after rfs's own parameters.
# cmdline: quiet

# Writable upper layer: data (the default: on the data partition, changes
# persist until a factory reset) or tmpfs (every boot starts clean: kiosks,
# classrooms), optionally sized: tmpfs:size=256M (default: half of RAM).
upper: data

# Volumes: directories kept on the data partition that survive a factory
# reset (rfs reset --all wipes them too). "/path" or "name:/path". A new
# volume starts with the image's content at that path.
# volumes:
#   - /var/lib/app
#   - wifi:/etc/wpa_supplicant

# Sizes are whole numbers of bytes with an optional K, M, G or T suffix
# (also KiB..TiB; powers of 1024): 4096, 512M, 2G.
# Size of the data partition (upper layer and volumes) in the image; the
# first boot grows it to fill the SD card or disk.
# data_size: 64M

# Console: a root shell by default; login: true asks for a login instead
# (root has no password unless root_password_hash holds a crypt(3) hash).
login: false
# root_password_hash: "$6$..."

# Raspberry Pi boards: extra config.txt lines (appended under [all]; write
# your own [pi4]-style sections if a line is for one model only).
# config_txt:
#   - dtoverlay=vc4-kms-v3d
#   - dtparam=audio=on

# UEFI boards (pc): the EFI stub the Unified Kernel Image is built on
# (default: systemd-boot-efi's, /usr/lib/systemd/boot/efi/linuxx64.efi.stub).
# efi_stub: ./linuxx64.efi.stub

# Lower layers: squashfs files (e.g. from 'rfs commit') stacked above the
# root, bottom to top; a partition each. Raspberry Pi boards: at most one.
# layers:
#   - layers/site.sqfs

# Release version: os-release's IMAGE_VERSION and the version of the
# update bundles made from the image (default: the build epoch in seconds).
# version: 1.0.0

# Field updates (qemu-arm64, qemu-amd64 for now): the image gets two A/B
# root slots and rolls back an update that does not come up healthy.
# update:
#   public_key: update.pub      # rfs keygen's NAME.pub: updates must be signed with NAME.key
#   ref: registry.lan/fleet/app:stable   # polled by the device (optional)
#   interval: 6h
#   reset_paths: [/etc/app.conf]         # upper copies dropped at the switch
#   health: {seconds: 30, command: "pidof app"}
#   slot_size: 256M             # each root slot (default: twice the root's files, at least 64M)

# Image size: empty for "just fit"; e.g. 1G leaves free space at the end.
# size: 1G

# Output image (default out/<board>.img).
# output: out/rfs.img

# Timestamp of every file, seconds since 1970 (default: SOURCE_DATE_EPOCH
# if set, else a fixed date), so equal inputs give byte-identical images.
# epoch: 1767225600
`
