// Package rfs holds what the rest of the toolkit needs to know about rfs
// itself: its version and the source of the init, which rfs compiles for each
// target architecture — from a checkout and after `go install` alike.
package rfs

import (
	"embed"
	"runtime/debug"
)

// InitSource is the module's go.mod/go.sum and the packages the init is
// built from: cmd/rfs-init, overlay and the shared format packages it
// imports. Add a pattern here when the init imports a new package
// (TestInitDeps in embed_test.go fails until then).
//
//go:embed go.mod go.sum cmd/rfs-init/*.go overlay/*.go
//go:embed ptable/*.go bootparam/*.go datapart/*.go atomicfile/*.go agentconf/*.go
//go:embed ext4fs/ext4sb/*.go squashfs/sqsb/*.go slots/*.go
var InitSource embed.FS

// AgentSource is the module's go.mod/go.sum and the packages the on-device
// agent is built from: cmd/rfs-agent, agent and everything under it (a
// directory pattern, so a new agent/NAME package is embedded without
// touching this list; test files and testdata come along, harmlessly), and
// the shared packages it imports. Its third-party modules come from the Go
// module cache or proxy, checked against the embedded go.sum. Add a
// pattern here when the agent imports a new rfs package outside agent/
// (TestAgentDeps in embed_test.go fails until then).
//
//go:embed go.mod go.sum cmd/rfs-agent/*.go agent install/*.go
//go:embed agentconf/*.go atomicfile/*.go datapart/*.go
//go:embed slots/*.go bootparam/*.go ptable/*.go release/*.go updatesig/*.go
//go:embed install/imagetarget/*.go image/fat/*.go rootfs/*.go infile/*.go
var AgentSource embed.FS

// AgentPackage is the import path, relative to the module root, of the
// agent.
const AgentPackage = "./cmd/rfs-agent"

// InitPackage is the import path, relative to the module root, of the init.
const InitPackage = "./cmd/rfs-init"

// Version is the rfs version: the module version when installed with
// `go install`, else "dev".
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
