// Package bootparam is the kernel command line contract between the image
// builder and the init: SplitCmdline splits a line as the kernel does,
// ParseCmdline reads the rfs.* parameters (root, layers, upper mode, data
// and boot partitions, reset, shell, init, host directories to mount) into
// Params, never failing (problems are Warnings). The builder checks a
// user's --append with the same code the init boots with. The parameters are documented in
// package overlay's documentation. Standard library only.
package bootparam

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rfsbuild/rfs/ptable"
)

// Defaults for the kernel command line parameters.
const (
	DefaultInit      = "/sbin/init"
	DefaultRootWait  = 30 * time.Second
	DefaultTmpfsSize = "50%"
)

// RootKind says how a root device is identified.
type RootKind string

const (
	RootNone     RootKind = ""         // not given
	RootPARTUUID RootKind = "partuuid" // Value is a normalised PARTUUID (lower case)
	RootDevice   RootKind = "device"   // Value is a device path such as /dev/vda2
)

// RootSpec identifies a block device holding a layer.
type RootSpec struct {
	Kind  RootKind
	Value string
}

// String renders the spec the way it is written on the command line.
func (r RootSpec) String() string {
	switch r.Kind {
	case RootPARTUUID:
		return "PARTUUID=" + r.Value
	case RootDevice:
		return r.Value
	}
	return "(none)"
}

// Upper layer modes.
const (
	UpperTmpfs = "tmpfs"
	// UpperData keeps the upper on the data partition (rfs.data=).
	UpperData = "data"
)

// UpperSpec is the requested writable layer.
type UpperSpec struct {
	Mode string // UpperTmpfs or UpperData
	Size string // tmpfs size option, e.g. "50%" or "256M" (also used by a degraded data boot)
}

// Reset modes (rfs.reset).
const (
	ResetNone  = ""
	ResetUpper = "upper" // rfs.reset: wipe upper/ and work/
	ResetAll   = "all"   // rfs.reset=all: also wipe volumes/
)

// ShellMode says whether and when the rescue shell is started on purpose.
type ShellMode string

const (
	ShellNone   ShellMode = ""
	ShellBefore ShellMode = "before" // rfs.shell, rfs.shell=before
	ShellAfter  ShellMode = "after"  // rfs.shell=after
)

// Params is the parsed kernel command line. See the package documentation
// for the contract.
type Params struct {
	Root  RootSpec
	Upper UpperSpec
	Data  RootSpec // rfs.data: the ext4 data partition (upper, work, volumes)
	// Layers are the squashfs layers stacked above the root (rfs.layers),
	// bottom to top.
	Layers []RootSpec
	// LayersErr says why rfs.layers could not be parsed; the boot fails
	// then (a merged view without a layer would be wrong).
	LayersErr string
	BootPart  RootSpec // rfs.boot: the FAT boot partition (reset flag file)
	// Slot is the A/B slot this boot's kernel came from (rfs.slot=a|b);
	// "" on images without slots.
	Slot     string
	Reset    string   // ResetNone, ResetUpper or ResetAll (rfs.reset)
	Init     string   // absolute path in the new root
	InitArgs []string // arguments after "--" on the command line
	Shell    ShellMode
	RootWait time.Duration
	Debug    bool
	// Mounts are the host directories to mount (rfs.mount, repeatable),
	// in command line order.
	Mounts []HostMount
	// Warnings lists ignored or invalid parameters (one line each).
	Warnings []string
}

// SplitCmdline splits a kernel command line the way the kernel does:
// on whitespace, with double quotes grouping (the quotes are removed).
func SplitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// ParseCmdline parses the contents of /proc/cmdline. It never fails:
// problems become Warnings and defaults are used.
func ParseCmdline(cmdline string) Params {
	p := Params{
		Upper:    UpperSpec{Mode: UpperTmpfs, Size: DefaultTmpfsSize},
		Init:     DefaultInit,
		RootWait: DefaultRootWait,
	}
	warn := func(s string) { p.Warnings = append(p.Warnings, s) }
	var kernelRoot, rfsRoot string
	haveKernelRoot, haveRfsRoot := false, false
	words := SplitCmdline(cmdline)
	for i, w := range words {
		if w == "--" {
			p.InitArgs = append([]string(nil), words[i+1:]...)
			break
		}
		key, val, hasVal := strings.Cut(w, "=")
		if key == "root" && hasVal {
			kernelRoot, haveKernelRoot = val, true
			continue
		}
		if !strings.HasPrefix(key, "rfs.") {
			continue
		}
		switch key {
		case "rfs.root":
			rfsRoot, haveRfsRoot = val, true
		case "rfs.upper":
			u, data, err := parseUpper(val)
			if err != "" {
				warn(err)
			}
			p.Upper = u
			if data.Kind != RootNone {
				p.Data = data
			}
		case "rfs.data", "rfs.boot":
			r, err := ParseRootSpec(val)
			if err != "" {
				warn(key + "=" + val + ": " + err)
			} else if key == "rfs.data" {
				p.Data = r
			} else {
				p.BootPart = r
			}
		case "rfs.layers":
			p.Layers, p.LayersErr = parseLayers(val)
			if p.LayersErr != "" {
				warn(p.LayersErr)
			}
		case "rfs.reset":
			switch val {
			case "", "1", "yes", "upper":
				p.Reset = ResetUpper
			case "all":
				p.Reset = ResetAll
			case "0", "no", "off":
				p.Reset = ResetNone
			default:
				warn("rfs.reset=" + val + ": expected rfs.reset or rfs.reset=all, ignored")
			}
		case "rfs.init":
			if !hasVal || !strings.HasPrefix(val, "/") {
				warn("rfs.init=" + val + ": not an absolute path, using " + DefaultInit)
				p.Init = DefaultInit
			} else {
				p.Init = val
			}
		case "rfs.shell":
			switch val {
			case "", "before", "1", "yes":
				p.Shell = ShellBefore
			case "after":
				p.Shell = ShellAfter
			case "0", "no", "off":
				p.Shell = ShellNone
			default:
				warn("rfs.shell=" + val + ": expected before or after, using before")
				p.Shell = ShellBefore
			}
		case "rfs.rootwait":
			secs, err := strconv.ParseFloat(val, 64)
			if err != nil || secs < 0 || secs > 24*3600 || secs != secs {
				warn("rfs.rootwait=" + val + ": expected seconds, using 30")
				p.RootWait = DefaultRootWait
			} else {
				p.RootWait = time.Duration(secs * float64(time.Second))
			}
		case "rfs.slot":
			if val != "a" && val != "b" {
				warn("rfs.slot=" + val + ": expected a or b, ignored")
			} else {
				p.Slot = val
			}
		case "rfs.debug":
			p.Debug = val == "" || (val != "0" && val != "no" && val != "off")
		case "rfs.mount":
			m, err := ParseHostMount(val)
			if err == "" {
				err = checkDuplicateMount(p.Mounts, m)
			}
			if err != "" {
				warn("rfs.mount=" + val + ": " + err + ", ignored")
			} else {
				p.Mounts = append(p.Mounts, m)
			}
		default:
			warn("unknown parameter " + w + " ignored")
		}
	}
	switch {
	case haveRfsRoot:
		r, err := ParseRootSpec(rfsRoot)
		if err != "" {
			warn("rfs.root=" + rfsRoot + ": " + err)
		}
		p.Root = r
	case haveKernelRoot:
		r, err := ParseRootSpec(kernelRoot)
		if err != "" {
			warn("root=" + kernelRoot + ": " + err)
		}
		p.Root = r
	}
	return p
}

// ParseRootSpec parses "PARTUUID=<id>" or "/dev/NAME". On error the
// returned spec is empty (Kind RootNone) and the message says why.
func ParseRootSpec(s string) (RootSpec, string) {
	if v, ok := cutPrefixFold(s, "PARTUUID="); ok {
		id, err := ptable.NormalizePARTUUID(v)
		if err != nil {
			return RootSpec{}, err.Error()
		}
		return RootSpec{Kind: RootPARTUUID, Value: id}, ""
	}
	if strings.HasPrefix(s, "/dev/") && len(s) > len("/dev/") && !strings.Contains(s, "..") {
		return RootSpec{Kind: RootDevice, Value: s}, ""
	}
	return RootSpec{}, "expected PARTUUID=<id> or /dev/NAME"
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// parseLayers parses the value of rfs.layers: specs separated by commas,
// bottom to top. Empty: no layers.
func parseLayers(v string) ([]RootSpec, string) {
	if v == "" {
		return nil, ""
	}
	var out []RootSpec
	for i, s := range strings.Split(v, ",") {
		r, err := ParseRootSpec(s)
		if err != "" {
			return nil, "rfs.layers=" + v + ": layer " + strconv.Itoa(i+1) + " " + strconv.Quote(s) + ": " + err
		}
		out = append(out, r)
	}
	return out, ""
}

// parseUpper parses the value of rfs.upper. It returns the spec to use,
// the data partition if given as data:PARTUUID=..., and a warning.
func parseUpper(v string) (u UpperSpec, data RootSpec, warning string) {
	u = UpperSpec{Mode: UpperTmpfs, Size: DefaultTmpfsSize}
	// The value ends in mount options (tmpfs size=): only the forms below
	// pass, anything else is a warning and the default.
	mode, opts, hasOpts := strings.Cut(v, ":")
	if hasOpts && opts == "" {
		return u, data, "rfs.upper=" + v + ": nothing after the colon, using tmpfs size=" + DefaultTmpfsSize
	}
	switch mode {
	case UpperTmpfs:
		if opts == "" {
			return u, data, ""
		}
		size, ok := strings.CutPrefix(opts, "size=")
		if !ok || !ValidTmpfsSize(size) {
			return u, data, "rfs.upper=" + v + ": expected tmpfs:size=N (N like 50% or 256M), using size=" + DefaultTmpfsSize
		}
		u.Size = size
		return u, data, ""
	case UpperData:
		u.Mode = UpperData
		if opts == "" {
			return u, data, ""
		}
		r, err := ParseRootSpec(opts)
		if err != "" {
			return u, data, "rfs.upper=" + v + ": " + err + " (the data partition is given with rfs.data=)"
		}
		return u, r, ""
	}
	return u, data, "rfs.upper=" + v + ": unknown mode, falling back to tmpfs"
}

// ValidTmpfsSize reports whether s is a tmpfs size= value: digits with an
// optional k/m/g suffix (either case) whose bytes fit in 64 bits, or 1-100
// followed by %. Nothing else: the value goes into mount options.
func ValidTmpfsSize(s string) bool {
	if s == "" {
		return false
	}
	if num, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(num)
		return err == nil && n > 0 && n <= 100 && num[0] != '+'
	}
	shift := 0
	switch s[len(s)-1] {
	case 'k', 'K':
		shift = 10
	case 'm', 'M':
		shift = 20
	case 'g', 'G':
		shift = 30
	}
	if shift > 0 {
		s = s[:len(s)-1]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n > 0 && n <= math.MaxUint64>>shift
}
