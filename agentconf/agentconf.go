// Package agentconf is the contract between `rfs build` and the on-device
// agent (rfs-agent), and between the agent and the init's status helper:
// the configuration the build writes into the lower, where the agent keeps
// its files, and the status it publishes. Standard library only, so the
// host, the agent and the init all build it.
package agentconf

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Paths on the device.
const (
	// ConfigFile is written by rfs build into the lower; no file: no agent.
	ConfigFile = "/etc/rfs/agent.json"
	// AuthorizedKeysFile holds root's SSH public keys, one per line (the
	// OpenSSH authorized_keys format), written by rfs build. No file or
	// no key: no SSH server.
	AuthorizedKeysFile = "/etc/rfs/ssh/authorized_keys"
	// Binary is where the build installs the agent in the lower.
	Binary = "/usr/libexec/rfs/rfs-agent"
	// StatusFile is the agent's status, rewritten atomically on change.
	StatusFile = "/run/rfs/agent.json"
	// InitStatusFile is the init's status.json; the agent sets its "agent"
	// key to Status on every change.
	InitStatusFile = "/run/rfs/status.json"
	// LogDir holds the supervised programs' logs (NAME.log).
	LogDir = "/run/rfs/log"
	// ResolvConf is written by the agent; the lower's /etc/resolv.conf
	// is a symlink to it, so leases never land in the upper.
	ResolvConf = "/run/rfs/resolv.conf"
	// DataDir is where the init mounts the data partition; absent when
	// the device has no usable data partition.
	DataDir = "/run/rfs/data"
)

// Files on the data partition, outside the upper: a factory reset keeps
// them, `reset --all` wipes IdentityDir (package datapart moves it to the
// trash with the volumes).
const (
	// IdentityDir holds what makes a device itself: its SSH host keys.
	IdentityDir = "identity"
	// ClockFile holds the last known wall-clock time (RFC 3339, UTC), read
	// by the init early at boot so the clock never starts before it.
	ClockFile = "rfs-clock"
)

// Config is ConfigFile.
type Config struct {
	// Version of the format: 1.
	Version  int     `json:"version"`
	Hostname string  `json:"hostname,omitempty"`
	Network  Network `json:"network"`
	Time     Time    `json:"time"`
	SSH      SSH     `json:"ssh"`
}

// Network is the device's network setup.
type Network struct {
	// Off: the agent configures no interface (loopback only).
	Off bool `json:"off,omitempty"`
	// DHCP: DHCPv4 (and IPv6 SLAAC) on every wired interface not listed
	// in Interfaces, as it appears. The default.
	DHCP bool `json:"dhcp"`
	// Interfaces are per-interface settings by kernel name (eth0, usb0).
	Interfaces []Interface `json:"interfaces,omitempty"`
}

// Interface is one interface's static configuration, or its DHCP choice.
type Interface struct {
	Name string `json:"name"`
	// DHCP on this interface (Address empty) or static (Address set).
	DHCP bool `json:"dhcp,omitempty"`
	// Address is ADDR/PREFIX (IPv4 or IPv6).
	Address string   `json:"address,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	DNS     []string `json:"dns,omitempty"`
}

// Time is the clock's setup.
type Time struct {
	// Servers are NTP servers (host or host:port); empty: no NTP.
	Servers []string `json:"servers,omitempty"`
}

// DefaultNTPServers is the device default: the NTP pool.
var DefaultNTPServers = []string{"0.pool.ntp.org", "1.pool.ntp.org", "2.pool.ntp.org"}

// SSH is the SSH server's setup. The server runs only when
// AuthorizedKeysFile holds a key.
type SSH struct {
	// Port to listen on; 0: 22.
	Port int `json:"port,omitempty"`
}

// ParseConfig reads ConfigFile, at most 1 MiB.
func ParseConfig(r io.Reader) (*Config, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("%s: larger than 1 MiB", ConfigFile)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	if c.Version != 1 {
		return nil, fmt.Errorf("%s: version %d, want 1", ConfigFile, c.Version)
	}
	return &c, nil
}

// Status is StatusFile: what `rfs-init status` shows about the network,
// the clock and SSH.
type Status struct {
	Updated    time.Time     `json:"updated"`
	Hostname   string        `json:"hostname,omitempty"`
	Interfaces []IfaceStatus `json:"interfaces"`
	// DNS is what /etc/resolv.conf names.
	DNS   []string    `json:"dns,omitempty"`
	Clock ClockStatus `json:"clock"`
	SSH   SSHStatus   `json:"ssh"`
}

// IfaceStatus is one interface.
type IfaceStatus struct {
	Name string `json:"name"`
	MAC  string `json:"mac,omitempty"`
	// State: "up", "no-carrier", "down".
	State string `json:"state"`
	// Mode: "dhcp", "static", "unmanaged".
	Mode      string   `json:"mode"`
	Addresses []string `json:"addresses,omitempty"` // ADDR/PREFIX
	Gateway   string   `json:"gateway,omitempty"`
	DNS       []string `json:"dns,omitempty"`
	// Lease: the DHCP server and when the lease ends.
	DHCPServer  string    `json:"dhcp_server,omitempty"`
	LeaseExpiry time.Time `json:"lease_expiry,omitzero"`
	// Error is the last problem ("no DHCP offer; retrying in 8s").
	Error string `json:"error,omitempty"`
}

// ClockStatus is the wall clock.
type ClockStatus struct {
	Synchronized bool `json:"synchronized"`
	// Source of the current time: "ntp", "saved" (the data partition's
	// ClockFile), "build" (the image's build time), "kernel".
	Source   string    `json:"source"`
	Server   string    `json:"server,omitempty"`
	LastSync time.Time `json:"last_sync,omitzero"`
	// OffsetMS is the last correction applied, in milliseconds.
	OffsetMS float64 `json:"offset_ms,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// SSHStatus is the SSH server.
type SSHStatus struct {
	Enabled bool   `json:"enabled"`
	Listen  string `json:"listen,omitempty"`
	// HostKeys are "TYPE SHA256:..." fingerprints.
	HostKeys []string `json:"host_keys,omitempty"`
	// Persistent: the host keys live on the data partition (else in /run:
	// a new identity every boot).
	Persistent bool   `json:"persistent"`
	Error      string `json:"error,omitempty"`
}
