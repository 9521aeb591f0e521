package bootparam

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitCmdline(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc\n", []string{"a", "b", "c"}},
		{`rfs.init="/bin/my init" x`, []string{"rfs.init=/bin/my init", "x"}},
		{`a="" b`, []string{"a=", "b"}},
	} {
		if got := SplitCmdline(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitCmdline(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	const guid = "6f3b1c8e-2a4d-4c1b-9e55-0a1b2c3d4e5f"
	def := func(f func(*Params)) Params {
		p := Params{Upper: UpperSpec{Mode: UpperTmpfs, Size: "50%"}, Init: "/sbin/init", RootWait: 30 * time.Second}
		if f != nil {
			f(&p)
		}
		return p
	}
	for _, tc := range []struct {
		name     string
		cmdline  string
		want     Params
		warnings []string // substrings, one per expected warning
	}{
		{"empty", "", def(nil), nil},
		{"gpt partuuid", "console=ttyS0 rfs.root=PARTUUID=" + guid + " quiet",
			def(func(p *Params) { p.Root = RootSpec{RootPARTUUID, guid} }), nil},
		{"gpt partuuid upper case", "rfs.root=partuuid=" + strings.ToUpper(guid),
			def(func(p *Params) { p.Root = RootSpec{RootPARTUUID, guid} }), nil},
		{"mbr partuuid", "rfs.root=PARTUUID=1A2B3C4D-02",
			def(func(p *Params) { p.Root = RootSpec{RootPARTUUID, "1a2b3c4d-02"} }), nil},
		{"device path", "rfs.root=/dev/mmcblk0p2",
			def(func(p *Params) { p.Root = RootSpec{RootDevice, "/dev/mmcblk0p2"} }), nil},
		{"kernel root fallback", "root=PARTUUID=" + guid,
			def(func(p *Params) { p.Root = RootSpec{RootPARTUUID, guid} }), nil},
		{"rfs.root wins over root", "rfs.root=/dev/vda2 root=/dev/sda1",
			def(func(p *Params) { p.Root = RootSpec{RootDevice, "/dev/vda2"} }), nil},
		{"bad partuuid", "rfs.root=PARTUUID=1234", def(nil), []string{"invalid PARTUUID"}},
		{"bad mbr partition 00", "rfs.root=PARTUUID=1a2b3c4d-00", def(nil), []string{"invalid PARTUUID"}},
		{"bad root", "rfs.root=LABEL=root", def(nil), []string{"expected PARTUUID"}},
		{"last wins", "rfs.root=/dev/vda1 rfs.root=/dev/vda2",
			def(func(p *Params) { p.Root = RootSpec{RootDevice, "/dev/vda2"} }), nil},
		{"upper tmpfs", "rfs.upper=tmpfs", def(nil), nil},
		{"upper size M", "rfs.upper=tmpfs:size=256M", def(func(p *Params) { p.Upper.Size = "256M" }), nil},
		{"upper size %", "rfs.upper=tmpfs:size=25%", def(func(p *Params) { p.Upper.Size = "25%" }), nil},
		{"upper bad size", "rfs.upper=tmpfs:size=lots", def(nil), []string{"expected tmpfs:size=N"}},
		{"upper 0%", "rfs.upper=tmpfs:size=0%", def(nil), []string{"expected tmpfs:size=N"}},
		{"upper data", "rfs.upper=data rfs.data=PARTUUID=" + guid + " rfs.boot=/dev/vda1",
			def(func(p *Params) {
				p.Upper.Mode = UpperData
				p.Data = RootSpec{RootPARTUUID, guid}
				p.BootPart = RootSpec{RootDevice, "/dev/vda1"}
			}), nil},
		{"upper data with partuuid", "rfs.upper=data:PARTUUID=" + guid,
			def(func(p *Params) { p.Upper.Mode = UpperData; p.Data = RootSpec{RootPARTUUID, guid} }), nil},
		{"upper data then tmpfs (last wins)", "rfs.upper=data rfs.upper=tmpfs:size=1G",
			def(func(p *Params) { p.Upper.Size = "1G" }), nil},
		{"upper data bad device", "rfs.upper=data:LABEL=x", def(func(p *Params) { p.Upper.Mode = UpperData }), []string{"expected PARTUUID"}},
		{"bad data", "rfs.data=LABEL=x", def(nil), []string{"rfs.data=LABEL=x: expected PARTUUID"}},
		{"layers", "rfs.layers=PARTUUID=" + strings.ToUpper(guid) + ",PARTUUID=1a2b3c4d-03,/dev/vda4",
			def(func(p *Params) {
				p.Layers = []RootSpec{{RootPARTUUID, guid}, {RootPARTUUID, "1a2b3c4d-03"}, {RootDevice, "/dev/vda4"}}
			}), nil},
		{"one layer", "rfs.layers=PARTUUID=" + guid, def(func(p *Params) { p.Layers = []RootSpec{{RootPARTUUID, guid}} }), nil},
		{"layers empty (last wins)", "rfs.layers=PARTUUID=" + guid + " rfs.layers=", def(nil), nil},
		{"layers bad", "rfs.layers=PARTUUID=" + guid + ",LABEL=x",
			def(func(p *Params) {
				p.LayersErr = `rfs.layers=PARTUUID=` + guid + `,LABEL=x: layer 2 "LABEL=x": expected PARTUUID=<id> or /dev/NAME`
			}), []string{`layer 2 "LABEL=x": expected PARTUUID`}},
		{"layers empty entry", "rfs.layers=PARTUUID=" + guid + ",",
			def(func(p *Params) {
				p.LayersErr = `rfs.layers=PARTUUID=` + guid + `,: layer 2 "": expected PARTUUID=<id> or /dev/NAME`
			}), []string{`layer 2 ""`}},
		{"reset", "rfs.reset", def(func(p *Params) { p.Reset = ResetUpper }), nil},
		{"reset all", "rfs.reset=all", def(func(p *Params) { p.Reset = ResetAll }), nil},
		{"reset off (last wins)", "rfs.reset=all rfs.reset=0", def(nil), nil},
		{"reset bogus", "rfs.reset=everything", def(nil), []string{"expected rfs.reset or rfs.reset=all"}},
		{"upper unknown", "rfs.upper=zram", def(nil), []string{"unknown mode"}},
		// Hand-edited command lines must not reach tmpfs's mount options.
		{"upper size with mount option", "rfs.upper=tmpfs:size=1M,mode=777", def(nil), []string{"expected tmpfs:size=N"}},
		{"upper quoted options", `rfs.upper="tmpfs:size=1M nr_inodes=1"`, def(nil), []string{"expected tmpfs:size=N"}},
		{"upper other option", "rfs.upper=tmpfs:mode=777", def(nil), []string{"expected tmpfs:size=N"}},
		{"upper two colons", "rfs.upper=tmpfs:size=1M:x", def(nil), []string{"expected tmpfs:size=N"}},
		{"upper size overflow", "rfs.upper=tmpfs:size=18446744073709551615G", def(nil), []string{"expected tmpfs:size=N"}},
		{"upper percent overflow", "rfs.upper=tmpfs:size=100000000000000000000%", def(nil), []string{"expected tmpfs:size=N"}},
		{"upper empty after colon", "rfs.upper=tmpfs:", def(nil), []string{"nothing after the colon"}},
		{"upper data empty after colon", "rfs.upper=data:", def(nil), []string{"nothing after the colon"}},
		{"upper data climbing path", "rfs.upper=data:/dev/../etc/shadow", def(func(p *Params) { p.Upper.Mode = UpperData }), []string{"expected PARTUUID"}},
		{"upper injected params split", "rfs.upper=tmpfs:size=1M rfs.shell init=/bin/sh",
			def(func(p *Params) { p.Upper.Size = "1M"; p.Shell = ShellBefore }), nil},
		{"init", "rfs.init=/bin/sh", def(func(p *Params) { p.Init = "/bin/sh" }), nil},
		{"init quoted", `rfs.init="/opt/my init"`, def(func(p *Params) { p.Init = "/opt/my init" }), nil},
		{"init relative", "rfs.init=bin/sh", def(nil), []string{"not an absolute path"}},
		{"init args", "rfs.root=/dev/vda2 -- single foo=bar",
			def(func(p *Params) {
				p.Root = RootSpec{RootDevice, "/dev/vda2"}
				p.InitArgs = []string{"single", "foo=bar"}
			}), nil},
		{"shell", "rfs.shell", def(func(p *Params) { p.Shell = ShellBefore }), nil},
		{"shell before", "rfs.shell=before", def(func(p *Params) { p.Shell = ShellBefore }), nil},
		{"shell after", "rfs.shell=after", def(func(p *Params) { p.Shell = ShellAfter }), nil},
		{"shell bogus", "rfs.shell=maybe", def(func(p *Params) { p.Shell = ShellBefore }), []string{"expected before or after"}},
		{"rootwait", "rfs.rootwait=5", def(func(p *Params) { p.RootWait = 5 * time.Second }), nil},
		{"rootwait 0", "rfs.rootwait=0", def(func(p *Params) { p.RootWait = 0 }), nil},
		{"rootwait decimal", "rfs.rootwait=0.5", def(func(p *Params) { p.RootWait = 500 * time.Millisecond }), nil},
		{"rootwait bad", "rfs.rootwait=soon", def(nil), []string{"expected seconds"}},
		{"rootwait negative", "rfs.rootwait=-1", def(nil), []string{"expected seconds"}},
		{"rootwait NaN", "rfs.rootwait=NaN", def(nil), []string{"expected seconds"}},
		{"debug", "rfs.debug", def(func(p *Params) { p.Debug = true }), nil},
		{"debug=0", "rfs.debug=0", def(nil), nil},
		{"unknown rfs param", "rfs.frobnicate=1 rfs.root=/dev/vda2",
			def(func(p *Params) { p.Root = RootSpec{RootDevice, "/dev/vda2"} }), []string{"unknown parameter rfs.frobnicate=1"}},
		{"mounts", `rfs.mount=rfs0:/srv/src "rfs.mount=rfs1:/mnt/my dir:ro" rfs.mount=x:/opt:rw`,
			def(func(p *Params) {
				p.Mounts = []HostMount{{"rfs0", "/srv/src", false}, {"rfs1", "/mnt/my dir", true}, {"x", "/opt", false}}
			}), nil},
		{"mount same path twice", "rfs.mount=a:/srv rfs.mount=b:/srv",
			def(func(p *Params) { p.Mounts = []HostMount{{"a", "/srv", false}} }), []string{"already mounted on /srv"}},
		{"mount same tag twice", "rfs.mount=a:/srv rfs.mount=a:/opt",
			def(func(p *Params) { p.Mounts = []HostMount{{"a", "/srv", false}} }), []string{"tag a is already used"}},
		{"mount bad", "rfs.mount=a:/run/rfs rfs.mount=a:srv rfs.mount=/srv rfs.mount=a:/srv:rx rfs.mount=a,b:/srv",
			def(nil), []string{"under /run", "must be absolute", "expected TAG:/path", "expected :ro or :rw", "only letters"}},
		{"other params ignored", "init=/foo rfsroot=x quiet splash", def(nil), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ParseCmdline(tc.cmdline)
			warnings := got.Warnings
			got.Warnings = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseCmdline(%q)\n got %+v\nwant %+v", tc.cmdline, got, tc.want)
			}
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings = %q, want %d matching %q", warnings, len(tc.warnings), tc.warnings)
			}
			for i, w := range tc.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}

func TestValidTmpfsSize(t *testing.T) {
	for s, want := range map[string]bool{
		"50%": true, "100%": true, "101%": false, "0%": false, "%": false, "-5%": false, "+5%": false,
		"256M": true, "256m": true, "1G": true, "4096": true, "16k": true, "0": false, "M": false,
		"": false, "1.5G": false, "12T": false, "1 G": false,
		"17179869183G": true, "17179869184G": false, "18446744073709551615": true, "18446744073709551616": false,
		"1M,mode=777": false, "1M ": false, "0x10": false, "1e3": false,
	} {
		if got := ValidTmpfsSize(s); got != want {
			t.Errorf("ValidTmpfsSize(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseHostMount(t *testing.T) {
	for _, tc := range []struct {
		in, problem string
		want        HostMount
	}{
		{"rfs0:/srv", "", HostMount{"rfs0", "/srv", false}},
		{"rfs0:/srv:ro", "", HostMount{"rfs0", "/srv", true}},
		{"rfs0:/srv:rw", "", HostMount{"rfs0", "/srv", false}},
		{"rfs0:/a/b c", "", HostMount{"rfs0", "/a/b c", false}},
		{"", "expected TAG:/path", HostMount{}},
		{":/srv", "1 to 31", HostMount{}},
		{"0123456789012345678901234567890123:/srv", "1 to 31", HostMount{}},
		{"t:/", "cannot be mounted on /", HostMount{}},
		{"t:/srv/", "must be clean", HostMount{}},
		{"t:/srv/../etc", "must be clean", HostMount{}},
		{"t:srv", "must be absolute", HostMount{}},
		{"t:/srv:ro:x", "expected :ro or :rw", HostMount{}},
		{"t:/proc", "under /proc", HostMount{}},
		{"t:/dev/shm", "under /dev", HostMount{}},
		{"t:/sys/x", "under /sys", HostMount{}},
		{"t:/run", "under /run", HostMount{}},
		{"t:/tmp/x", "under /tmp", HostMount{}},
		{"t:/tmpx", "", HostMount{"t", "/tmpx", false}},
		{"t:/a\x01", "control character", HostMount{}},
		{"t:/a\tb", "control character", HostMount{}},
		{"t:/a\"b", "double quote", HostMount{}},
	} {
		got, problem := ParseHostMount(tc.in)
		if problem == "" && tc.problem != "" || !strings.Contains(problem, tc.problem) {
			t.Errorf("ParseHostMount(%q) problem %q, want %q", tc.in, problem, tc.problem)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseHostMount(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if problem == "" {
			if back, _ := ParseHostMount(got.String()); back != got {
				t.Errorf("ParseHostMount(%q.String()) = %+v", tc.in, back)
			}
		}
	}
}
