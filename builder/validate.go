package builder

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/apps"
	"github.com/rfsbuild/rfs/bootparam"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/uroot"
)

// Limits of the settings Validate checks.
const (
	MinDataSize = 16 * image.MiB // what the init needs for upper/, work/ and its bookkeeping
	// MaxDataSize bounds --data-size: the data partition's ext4 is made
	// with all its inode tables written (about 1/64 of its size) in a temp
	// file and copied into the image, so it stays small; the first boot
	// grows it to the end of the medium.
	MaxDataSize = 16 << 30
	// MaxImageSize bounds --size: what an MBR can address (GPT could hold
	// more, but no card or stick rfs writes to is larger).
	MaxImageSize = 2 << 40
	// CmdlineMax is the kernel's COMMAND_LINE_SIZE on arm64 and x86 (2048)
	// less its terminating NUL.
	CmdlineMax = 2047
	// PiFirmwareCmdline is what the Raspberry Pi firmware may prepend to
	// cmdline.txt (coherent_pool, snd_bcm2835.*, video=, MAC address:
	// about 300 bytes): Pi boards keep that much of CmdlineMax free.
	PiFirmwareCmdline = 512
	// ConfigTxtLineMax is the firmware's config.txt line length; it
	// ignores what is past it.
	ConfigTxtLineMax = 98
)

// where names a setting in messages: the flag or "rfs.yaml:LINE: key" the
// CLI recorded in Origin, else the rfs.yaml key.
func (c *Config) where(key string) string {
	if w := c.Origin[key]; w != "" {
		return w
	}
	return key
}

// Validate checks every setting before any work is done, so nothing typed
// by a user reaches a kernel command line, a mount option or a file of the
// image unchecked. Defaults must have been applied (Build does).
func (c *Config) Validate() error {
	if !slices.Contains(Userlands, c.Userland) {
		return fmt.Errorf("%s %q is not supported (supported: %s)", c.where("userland"), c.Userland, strings.Join(Userlands, ", "))
	}
	if c.Output == "" && c.Emit == "" {
		return errors.New("no output path")
	}
	if err := apps.Validate(c.Apps, c.Userland); err != nil {
		return fmt.Errorf("%s: %w", c.where("apps"), err)
	}
	if c.Userland == "u-root" {
		if _, err := uroot.Packages(c.URootCommands); err != nil {
			return fmt.Errorf("%s: %w", c.where("uroot_commands"), err)
		}
	}
	if err := c.validateSizes(); err != nil {
		return err
	}
	if err := c.validateDevice(); err != nil {
		return err
	}
	if err := c.validateSlots(); err != nil {
		return err
	}
	if err := ValidUpper(c.Upper); err != nil {
		return fmt.Errorf("%s %q: %w", c.where("upper"), c.Upper, err)
	}
	if c.Hostname != "" {
		if err := ValidHostname(c.Hostname); err != nil {
			return fmt.Errorf("%s %q: %w", c.where("hostname"), c.Hostname, err)
		}
	}
	if err := ValidPasswordHash(c.RootHash, c.Userland); err != nil {
		// The value is not echoed: it may be a password typed in plain.
		return fmt.Errorf("%s: %w", c.where("root_password_hash"), err)
	}
	if err := c.validateCmdline(); err != nil {
		return err
	}
	for i, line := range c.ConfigTxt {
		if err := ValidConfigTxtLine(line); err != nil {
			return fmt.Errorf("%s entry %d %q: %w", c.where("config_txt"), i+1, line, err)
		}
	}
	if c.Epoch < 0 || c.Epoch > math.MaxUint32 {
		return fmt.Errorf("%s %d: want seconds since 1970 from 0 to %d (squashfs stores 32 bits)", c.where("epoch"), c.Epoch, uint32(math.MaxUint32))
	}
	for _, v := range c.Volumes {
		if _, err := ParseVolume(v.Name + ":" + v.Path); err != nil {
			return fmt.Errorf("%s: %w", c.where("volumes"), err)
		}
	}
	for _, f := range c.Files {
		if strings.ContainsAny(f.Dest, "\x00\n") {
			return fmt.Errorf("%s %s: destination %q: control characters are not allowed", c.where("files"), f.Src, f.Dest)
		}
		if _, err := rootfs.Clean(f.Dest); err != nil {
			return fmt.Errorf("%s %s: destination: %w", c.where("files"), f.Src, err)
		}
		if !strings.HasPrefix(f.Dest, "/") {
			return fmt.Errorf("%s %s: destination %q: want an absolute path (e.g. DIR:/opt/app)", c.where("files"), f.Src, f.Dest)
		}
	}
	return nil
}

func (c *Config) validateSizes() error {
	if c.DataSize%image.MiB != 0 || c.DataSize < MinDataSize || c.DataSize > MaxDataSize {
		return fmt.Errorf("%s %s: want a whole number of MiB, at least 16 MiB and at most 16 GiB (the first boot grows the partition to the end of the medium)", c.where("data_size"), sizeText(c.DataSize))
	}
	if c.Size == 0 {
		return nil
	}
	if c.Size < 0 || c.Size%image.MiB != 0 || c.Size > MaxImageSize {
		return fmt.Errorf("%s %s: want a whole number of MiB, at most 2 TiB (or none: just fit)", c.where("size"), sizeText(c.Size))
	}
	// Boot and root need a few MiB more; the layout says how many once
	// they are known.
	if c.DataSize >= c.Size {
		return fmt.Errorf("%s %s: too small: not even the data partition fits (%s %s)", c.where("size"), sizeText(c.Size), c.where("data_size"), sizeText(c.DataSize))
	}
	return nil
}

// sizeText is a size for messages: bytes, and a readable form.
func sizeText(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d bytes (%s)", n, image.HumanSize(n))
}

// ValidUpper accepts the builder's upper forms: data, tmpfs and
// tmpfs:size=N, N as the init accepts it (bootparam.ValidTmpfsSize). The
// value goes into the kernel command line, so nothing else may.
func ValidUpper(s string) error {
	if s == bootparam.UpperData || s == bootparam.UpperTmpfs {
		return nil
	}
	if size, ok := strings.CutPrefix(s, bootparam.UpperTmpfs+":size="); ok && bootparam.ValidTmpfsSize(size) {
		return nil
	}
	return errors.New("want data, tmpfs or tmpfs:size=N (N: a number of bytes with an optional k, m or g suffix, e.g. 256M, or a percentage of RAM from 1% to 100%)")
}

// ValidHostname checks RFC 1123: labels of 1-63 letters, digits and
// hyphens, not starting or ending with a hyphen, dot-separated, 253
// characters at most. /etc/hostname and /etc/hosts hold it verbatim.
func ValidHostname(s string) error {
	if len(s) > 253 {
		return fmt.Errorf("%d characters: at most 253 (RFC 1123)", len(s))
	}
	for _, label := range strings.Split(s, ".") {
		switch {
		case label == "":
			return errors.New("empty label (a leading, trailing or double dot): want labels like kiosk or kiosk.lan (RFC 1123)")
		case len(label) > 63:
			return fmt.Errorf("label %.20q... is %d characters: at most 63 (RFC 1123)", label, len(label))
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("label %q starts or ends with a hyphen (RFC 1123)", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not allowed: want letters, digits, hyphens and dots (RFC 1123)", r)
			}
		}
	}
	return nil
}

// crypt(3) hash shapes, by scheme. The alphabet of salts and hashes is
// crypt's base64: ./0-9A-Za-z.
var cryptSchemes = []struct {
	name    string
	re      *regexp.Regexp
	busybox bool // verified by the pinned busybox 1.34's login
}{
	{"MD5 ($1$)", regexp.MustCompile(`^\$1\$[./0-9A-Za-z]{1,8}\$[./0-9A-Za-z]{22}$`), true},
	{"SHA-256 ($5$)", regexp.MustCompile(`^\$5\$(rounds=[0-9]{1,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43}$`), true},
	{"SHA-512 ($6$)", regexp.MustCompile(`^\$6\$(rounds=[0-9]{1,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$`), true},
	{"yescrypt ($y$)", regexp.MustCompile(`^\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]*\$[./0-9A-Za-z]{43}$`), false},
	{"bcrypt ($2b$)", regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./0-9A-Za-z]{53}$`), false},
	{"scrypt ($7$)", regexp.MustCompile(`^\$7\$[./0-9A-Za-z]{11}[./0-9A-Za-z]*\$[./0-9A-Za-z]{43}$`), false},
}

const makeHash = "make one with: openssl passwd -6, or mkpasswd -m sha-512"

// ValidPasswordHash checks root's /etc/shadow field: empty (no password),
// "*" or "!" (locked), or a crypt(3) hash, optionally locked with a
// leading "!". With the busybox userland, only the schemes its login
// verifies: any other hash would lock root out as surely as a plain
// password would.
func ValidPasswordHash(s, userland string) error {
	if s == "" || s == "*" || s == "!" {
		return nil
	}
	h := strings.TrimPrefix(s, "!")
	for _, sc := range cryptSchemes {
		if !sc.re.MatchString(h) {
			continue
		}
		if !sc.busybox && userland == "busybox" {
			return fmt.Errorf("a %s hash: busybox 1.34's login cannot verify it, so root could never log in; %s", sc.name, makeHash)
		}
		return nil
	}
	if strings.HasPrefix(h, "$") {
		return fmt.Errorf("not a well-formed crypt(3) hash (unknown scheme, or a salt or hash of the wrong length or alphabet ./0-9A-Za-z); %s", makeHash)
	}
	return fmt.Errorf("not a crypt(3) hash (a plain password here would lock root out; \"*\" or \"!\" locks it on purpose); %s", makeHash)
}

// ValidConfigTxtLine checks one config_txt entry: one line of printable
// text the firmware reads whole, not one of the lines rfs's boot depends on.
func ValidConfigTxtLine(s string) error {
	if i := strings.IndexFunc(s, isControl); i >= 0 {
		return fmt.Errorf("control character %q at byte %d: one entry is one line (give several entries for several lines)", s[i], i)
	}
	if len(s) > ConfigTxtLineMax {
		return fmt.Errorf("%d characters: the firmware ignores what is past %d", len(s), ConfigTxtLineMax)
	}
	key, _, _ := strings.Cut(s, "=")
	if f := strings.Fields(key); len(f) > 0 {
		key = f[0]
	}
	switch key {
	case "kernel", "initramfs", "cmdline", "arm_64bit", "ramfsfile", "ramfsaddr", "os_prefix":
		return fmt.Errorf("%s is set by rfs (the image boots its own kernel, initramfs and cmdline.txt)", key)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// rfs.* parameters the builder writes itself: given again in cmdline, the
// last one would win at boot and point the init at other partitions than
// the image's (or disagree with rfs.json).
var builderParams = map[string]string{
	"rfs.root":   "the image's root partition",
	"rfs.data":   "the image's data partition",
	"rfs.boot":   "the image's boot partition",
	"rfs.layers": "the image's --layer partitions",
	"rfs.upper":  "upper: / --upper",
}

// validateCmdline checks the user's extra kernel parameters: no control
// characters, balanced quotes, no rfs.* parameter the builder sets, valid
// values for the others (as the init parses them), and the whole command
// line within the kernel's limit.
func (c *Config) validateCmdline() error {
	where := c.where("cmdline")
	if i := strings.IndexFunc(c.Cmdline, func(r rune) bool { return isControl(r) && r != '\t' }); i >= 0 {
		return fmt.Errorf("%s: control character %q at byte %d: the kernel command line is one line of text", where, c.Cmdline[i], i)
	}
	if strings.Count(c.Cmdline, `"`)%2 != 0 {
		return fmt.Errorf("%s %q: unbalanced double quote (the kernel would read the rest of the line as one value)", where, c.Cmdline)
	}
	for _, w := range bootparam.SplitCmdline(c.Cmdline) {
		if w == "--" {
			break // the init's arguments
		}
		key, _, _ := strings.Cut(w, "=")
		if what, ok := builderParams[key]; ok {
			return fmt.Errorf("%s: %s is set by rfs build (%s); it cannot be given again", where, key, what)
		}
		if key == "rfs.reset" {
			return fmt.Errorf("%s: rfs.reset would wipe the upper at every boot; reset once with rfs reset IMAGE (or rfs run --append rfs.reset)", where)
		}
		if strings.HasPrefix(key, "rfs.") {
			if p := bootparam.ParseCmdline(w); len(p.Warnings) > 0 {
				return fmt.Errorf("%s: %s", where, strings.Join(p.Warnings, "; "))
			}
		}
	}
	limit := CmdlineMax
	if c.Board.Pi != nil {
		limit -= PiFirmwareCmdline
	}
	if n := len(c.kernelCmdline(placeholderIDs(c))); n > limit {
		return fmt.Errorf("%s: the kernel command line would be %d bytes (rfs's own parameters plus yours), the limit is %d", where, n, limit)
	}
	return nil
}

// placeholderIDs are ids of the length the build will derive, for
// measuring the command line before the build ID is known.
func placeholderIDs(c *Config) partIDs {
	id := DeriveGUID("", "")
	if c.Board.Table == "mbr" {
		id = image.MBRPartUUID(0, 1)
	}
	ids := partIDs{root: id, data: id, boot: id}
	for range c.Layers {
		ids.layers = append(ids.layers, id)
	}
	return ids
}

// ParseEpoch reads SOURCE_DATE_EPOCH (reproducible-builds.org): a whole
// number of seconds since 1970, within what squashfs stores.
func ParseEpoch(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxUint32 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("SOURCE_DATE_EPOCH %q: want a whole number of seconds since 1970 from 0 to %d, e.g. $(git log -1 --format=%%ct); or unset it", s, uint32(math.MaxUint32))
	}
	return n, nil
}
