// Package gotarget fixes the go command's settings for binaries built for a
// board, so the user's environment cannot change the instructions they
// contain: GOARM64=v8.2 or GOAMD64=v3 in a shell (or `go env -w`) would
// otherwise build an init that dies with SIGILL on a Cortex-A72 or an older
// PC, and rfs caches what it builds. Every target build gets Env's values,
// and caches key on Settings, the values the go command actually uses.
package gotarget

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// Baseline is the instruction-set level every supported board of an
// architecture runs: ARMv8.0 (Cortex-A53 in a Pi 3, A72 in a Pi 4), x86-64
// v1 (any 64-bit PC). The other architectures' settings are pinned to Go's
// defaults so that no setting leaks in, whatever the board.
var Baseline = []string{
	"GOARM64=v8.0", "GOAMD64=v1", "GOARM=7", "GO386=sse2", "GOMIPS=hardfloat",
	"GOMIPS64=hardfloat", "GOPPC64=power8", "GORISCV64=rva20u64",
}

// Env returns the settings of a reproducible, static build of rfs's own
// programs (the init, the u-root userland) for linux/arch: Baseline plus no
// cgo, no experiments, no FIPS module snapshot, no user GOFLAGS, no
// workspace. Append it after os.Environ(): the last value of a key wins.
//
// GOEXPERIMENT is "," (an empty list): an empty variable would let the go
// command's config file (`go env -w GOEXPERIMENT=...`) apply.
func Env(arch string) []string {
	return append(slices.Clone(Baseline),
		"GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0", "GOEXPERIMENT=,",
		"GOFIPS140=off", "GOFLAGS=-mod=mod", "GOWORK=off")
}

// keys are the settings that decide what a build produces, beyond the
// source: reported by Settings.
var keys = []string{
	"GOVERSION", "GOOS", "GOARCH", "CGO_ENABLED", "GOEXPERIMENT", "GOFIPS140", "GOFLAGS",
	"GOARM64", "GOAMD64", "GOARM", "GO386", "GOMIPS", "GOMIPS64", "GOPPC64", "GORISCV64",
}

// Settings returns the values the go command (gobin, run in dir with env)
// will build with, one KEY=VALUE per line, for a cache key. It asks the go
// command rather than reading env because the go command also reads its
// own config file (`go env -w`), where an empty variable does not override
// a value, and GOTOOLCHAIN may pick another Go version.
func Settings(ctx context.Context, gobin, dir string, env []string) (string, error) {
	cmd := exec.CommandContext(ctx, gobin, append([]string{"env", "-json"}, keys...)...)
	cmd.Dir, cmd.Env = dir, env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, m[k])
	}
	return b.String(), nil
}
