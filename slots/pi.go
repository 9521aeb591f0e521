package slots

import (
	"bytes"
	"strings"
)

// Firmwares, State.Firmware: how the boot firmware picks a slot, hence
// what the init writes to arm, commit and roll back a trial.
const (
	// FirmwareDirect ("" in old records) is QEMU's direct-kernel boot:
	// `rfs run` reads slot.txt and the tryboot flag file.
	FirmwareDirect = ""
	// FirmwareRPi is a Raspberry Pi whose firmware has the tryboot flag
	// (Pi 4, 400, CM4, Pi 5): config.txt's os_prefix names the committed
	// slot, tryboot.txt's the other one, and a reboot with the argument
	// "0 tryboot" makes the firmware read tryboot.txt once.
	FirmwareRPi = "rpi"
	// FirmwareRPiSwitch is a Raspberry Pi whose firmware may lack the
	// tryboot flag (Pi 3, Zero 2 W; images that also serve them): a
	// trial is armed by pointing config.txt at the trial slot, and the
	// trial's init counts its boots and points config.txt back when the
	// trial fails or has booted MaxSwitchTries times without committing.
	FirmwareRPiSwitch = "rpi-switch"
)

// Files of the Raspberry Pi firmware at the boot partition's top.
const (
	// PiConfig is the firmware's configuration; its os_prefix names the
	// committed slot's directory.
	PiConfig = "config.txt"
	// PiTrybootConfig replaces config.txt at a tryboot boot; its
	// os_prefix names the other slot's directory.
	PiTrybootConfig = "tryboot.txt"
)

// MaxSwitchTries is how many boots a trial gets on FirmwareRPiSwitch
// before its init rolls it back (a trial kernel that panics reboots into
// the trial slot again: only its init can end the loop).
const MaxSwitchTries = 3

// IsPi says whether firmware is a Raspberry Pi's (config.txt picks the
// slot).
func IsPi(firmware string) bool {
	return firmware == FirmwareRPi || firmware == FirmwareRPiSwitch
}

// checkFirmware says whether a record names a known firmware.
func checkFirmware(f string) bool {
	return f == FirmwareDirect || IsPi(f)
}

// OSPrefixLine is config.txt's line that boots slot: the firmware
// prepends os_prefix to the kernel, initramfs, cmdline.txt, device tree
// and overlay names it loads (a directory prefix ends in /).
func OSPrefixLine(slot string) string { return "os_prefix=" + Dir(slot) }

// SetOSPrefix is the config.txt (or tryboot.txt) cfg made to boot slot:
// its os_prefix lines set to slot's directory, or one added in an [all]
// section at its end when it has none. Other lines are kept.
func SetOSPrefix(cfg []byte, slot string) []byte {
	lines := strings.SplitAfter(string(cfg), "\n")
	found := false
	var b bytes.Buffer
	for _, l := range lines {
		if isOSPrefix(l) {
			found = true
			b.WriteString(OSPrefixLine(slot) + "\n")
			continue
		}
		b.WriteString(l)
	}
	if !found {
		if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
			b.WriteByte('\n')
		}
		b.WriteString("[all]\n" + OSPrefixLine(slot) + "\n")
	}
	return b.Bytes()
}

// OSPrefix is the os_prefix cfg sets: the last one's value, as a later
// line overrides an earlier one ("" when none). Section filters are not
// evaluated: rfs writes os_prefix in [all] only.
func OSPrefix(cfg []byte) string {
	v := ""
	for _, l := range strings.Split(string(cfg), "\n") {
		if isOSPrefix(l) {
			_, v, _ = strings.Cut(strings.TrimSpace(l), "=")
		}
	}
	return v
}

// PrefixSlot is the slot an os_prefix names ("" for another prefix).
func PrefixSlot(prefix string) string {
	for _, s := range []string{A, B} {
		if prefix == Dir(s) {
			return s
		}
	}
	return ""
}

func isOSPrefix(line string) bool {
	return strings.HasPrefix(strings.TrimSpace(line), "os_prefix=")
}
