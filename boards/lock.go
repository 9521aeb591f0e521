package boards

import "github.com/rfsbuild/rfs/modfetch"

// The one place where the versions of everything a default build downloads
// are pinned. Sums are go.sum hashes ("h1:"), checked after every download,
// so a build is reproducible and tamper-evident. To update: pick the new
// pseudo-version, run `go mod download -json MODULE@VERSION` and copy Sum.
var (
	BusyboxModule = modfetch.Module{
		Path:    "github.com/gokrazy/serial-busybox",
		Version: "v0.0.0-20250119153030-ac58ba7574e7", // busybox 1.34.1, static
		Sum:     "h1:gurTGc4sL7Ik+IKZ29rhGgHNZQTXPtEXLw+aM9E+/HE=",
	}
	KernelARM64Module = modfetch.Module{
		Path:    "github.com/gokrazy/kernel.arm64",
		Version: "v0.0.0-20260705071517-37841c4d6ff1", // Linux 7.1.3, generic arm64
		Sum:     "h1:MYq3OcTlEz46i/DZxG3c6ePjE6Te/024cPW2VHTBVAs=",
	}
	KernelAMD64Module = modfetch.Module{
		Path:    "github.com/gokrazy/kernel.amd64",
		Version: "v0.0.0-20260705070735-de680abf072b", // Linux 7.1.2, EFI stub
		Sum:     "h1:H9m4mwDqTyQG0AKVviBQp09T3OrY1X3tHNyrJCbqJfY=",
	}
)

// BusyboxPath is where the static busybox for a GOARCH sits in BusyboxModule.
func BusyboxPath(arch string) string {
	return "third_party/busybox-1.34.1/busybox." + arch
}

var (
	KernelRPiModule = modfetch.Module{
		Path:    "github.com/gokrazy/kernel.rpi",
		Version: "v0.0.0-20251127164438-9778ec0261de", // Linux 6.12.47-v8, Pi 3/4/5 DTBs and overlays
		Sum:     "h1:RSLWj1Ska9s4cl+n/bC5LY4s8vLr+tZoO2vMm/wGP64=",
	}
	FirmwareRPiModule = modfetch.Module{
		Path:    "github.com/gokrazy/firmware",
		Version: "v0.0.0-20260522070551-527ce0ed43cf", // Raspberry Pi boot firmware (bootcode.bin, start*.elf, fixup*.dat)
		Sum:     "h1:WRmvIwhtcWJfHnrfpfXWPh3Xq6Lztn0y5l3li+NjaYw=",
	}
)
