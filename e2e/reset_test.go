package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/datapart"
	"github.com/rfsbuild/rfs/overlay"
	"github.com/rfsbuild/rfs/qemu"
	"github.com/rfsbuild/rfs/reset"
)

// mtypeFlag returns the reset flag as mtools reads it from the image's
// boot partition, "(none)" if there is none.
func mtypeFlag(t *testing.T, d *dataDisk) string {
	t.Helper()
	out, err := exec.Command("mtype", "-i", d.path+"@@"+strconv.FormatInt(d.boot.Start, 10), "::"+datapart.ResetFlagFile).Output()
	if err != nil {
		return "(none)"
	}
	return string(out)
}

// rfs reset on the host, on a qemu-arm64 image: the flag (default) is
// acted on and cleared by the next boot; --now (root) wipes before the
// boot. Volumes stay unless --all.
func TestResetCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU; skipped in -short mode")
	}
	if _, err := exec.LookPath("mtype"); err != nil {
		t.Skip("no mtools")
	}
	t.Parallel()
	d := volumeImage(t)
	files := []string{"/etc/x", "/var/lib/app/y"}
	vm := bootDisk(t, d, "", nil)
	waitShell(t, vm)
	run(t, vm, "echo x > /etc/x; echo y > /var/lib/app/y")
	shutdown(t, vm)

	// rfs reset IMAGE: the flag.
	res, err := reset.Flag(d.path, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Target.Boot.Start != d.boot.Start || res.Target.Data.Start != d.data.Start {
		t.Errorf("reset found boot %+v data %+v, want %+v %+v", res.Target.Boot, res.Target.Data, d.boot, d.data)
	}
	if got := mtypeFlag(t, d); got != "upper\n" {
		t.Fatalf("mtype after rfs reset: %q", got)
	}
	vm = bootDisk(t, d, "", nil)
	waitShell(t, vm)
	if !strings.Contains(vm.Output(), "rfs: factory reset (flag): upper (volumes kept)") {
		t.Errorf("no flag reset on the console:\n%s", tail(vm.Output(), 3000))
	}
	if got := look(t, vm, files...); got != "gone y" {
		t.Errorf("after the flag reset: /etc/x, y = %q", got)
	}
	run(t, vm, "echo x > /etc/x")
	shutdown(t, vm)
	if got := mtypeFlag(t, d); got != "(none)" {
		t.Errorf("the flag is still on the boot partition after the reset: %q", got)
	}
	fsckBoot(t, d)

	// rfs reset --now --all IMAGE (root).
	if os.Geteuid() != 0 {
		t.Log("not root: rfs reset --now not tested")
		return
	}
	now, err := reset.Now(context.Background(), d.path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rfs reset --now --all: %v (wipe %.1f ms) on %s", now.Took, now.Record.WipeMS, now.Device)
	vm = bootDisk(t, d, "", nil)
	waitShell(t, vm)
	if got := look(t, vm, append(files, "/var/lib/app/seed")...); got != "gone gone from-lower" {
		t.Errorf("after rfs reset --now --all: /etc/x, y, seed = %q", got)
	}
	if st := run(t, vm, "rfs-init status"); !strings.Contains(st, " by host (upper and volumes)") {
		t.Errorf("rfs-init status does not show the host reset:\n%s", st)
	}
	shutdown(t, vm)
	fsckData(t, d)
}

// fsckBoot: fsck.fat -n of the boot partition finds nothing to fix.
func fsckBoot(t *testing.T, d *dataDisk) {
	t.Helper()
	if _, err := exec.LookPath("fsck.fat"); err != nil {
		return
	}
	f, _ := os.Open(d.path)
	defer f.Close()
	cp := d.path + ".boot"
	defer os.Remove(cp)
	g, _ := os.Create(cp)
	buf := make([]byte, d.boot.Size)
	f.ReadAt(buf, d.boot.Start)
	g.Write(buf)
	g.Close()
	if out, err := exec.Command("fsck.fat", "-n", cp).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n of the boot partition: %v\n%s", err, out)
	}
}

// TestBenchDataMount measures the boot-time cost of the data partition
// (docs/benchmarks.md, "data partition"): the same qemu-arm64 image booted
// (a) with no data partition on the command line and a tmpfs upper,
// (b) rfs.upper=tmpfs (the data partition still mounted, for volumes),
// (c) the default data upper; the init's timings from status.json, median
// of RFS_E2E_BENCH boots each (interleaved). Only with RFS_E2E_BENCH=N.
func TestBenchDataMount(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RFS_E2E_BENCH"))
	if n <= 0 {
		t.Skip("set RFS_E2E_BENCH=N (boots per configuration) to run")
	}
	d := withDataPartition(t, buildImage(t, "qemu-arm64", nil), 0)
	configs := []struct{ name, drop, add string }{
		{"no data partition, tmpfs upper", "rfs.data= rfs.boot= rfs.upper=", "rfs.upper=tmpfs"},
		{"rfs.upper=tmpfs (data mounted for volumes)", "", "rfs.upper=tmpfs"},
		{"rfs.upper=data (default)", "", ""},
	}
	type sample struct{ total, data, dataMount, reset, grow, upper, overlay float64 }
	got := make([][]sample, len(configs))
	for i := 0; i <= n; i++ {
		for c, cfg := range configs {
			dir := t.TempDir()
			qc, _, err := qemu.ForImage(d.path, dir, true)
			if err != nil {
				t.Fatal(err)
			}
			var keep []string
			for _, f := range strings.Fields(qc.Append) {
				drop := false
				for _, p := range strings.Fields(cfg.drop) {
					drop = drop || strings.HasPrefix(f, p)
				}
				if !drop {
					keep = append(keep, f)
				}
			}
			qc.Append = strings.Join(append(keep, cfg.add), " ")
			vm, err := qemu.Start(context.Background(), qc, nil)
			if err != nil {
				t.Fatal(err)
			}
			waitShell(t, vm)
			var st overlay.Status
			if err := json.Unmarshal([]byte(run(t, vm, "cat /run/rfs/status.json")), &st); err != nil {
				t.Fatal(err)
			}
			shutdown(t, vm)
			if i == 0 {
				continue // warm-up (page cache, first-boot work)
			}
			tm := st.Timings
			got[c] = append(got[c], sample{tm.Total, tm.Data, tm.DataMount, tm.Reset, tm.Grow, tm.Upper, tm.Overlay})
		}
	}
	med := func(s []sample, f func(sample) float64) float64 {
		v := make([]float64, len(s))
		for i := range s {
			v[i] = f(s[i])
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	for c, cfg := range configs {
		s := got[c]
		t.Logf("BENCH %-45s total %6.1f ms  data %6.1f (find+mount %6.1f, reset check %5.1f, grow check %5.1f)  upper %5.1f  overlay %5.1f  (median of %d)", cfg.name,
			med(s, func(x sample) float64 { return x.total }), med(s, func(x sample) float64 { return x.data }),
			med(s, func(x sample) float64 { return x.dataMount }), med(s, func(x sample) float64 { return x.reset }),
			med(s, func(x sample) float64 { return x.grow }), med(s, func(x sample) float64 { return x.upper }),
			med(s, func(x sample) float64 { return x.overlay }), len(s))
	}
}
