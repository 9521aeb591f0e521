package builder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/rootfs"
	"github.com/rfsbuild/rfs/squashfs"
)

// writeLayer writes a squashfs holding /etc/NAME = content.
func writeLayer(t *testing.T, name, content, comp string) string {
	t.Helper()
	tree := rootfs.New(DefaultEpoch)
	if err := tree.Add("/etc/"+name, &rootfs.Node{Type: rootfs.Regular, Perm: 0o644, MTime: DefaultEpoch, Content: rootfs.Bytes(content)}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+".sqfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := squashfs.Write(f, tree, squashfs.Options{MTime: DefaultEpoch, Compressor: comp}); err != nil {
		t.Fatal(err)
	}
	return p
}

func readBoot(t *testing.T, img string) *image.Boot {
	t.Helper()
	d, err := image.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	bf, err := d.ReadBoot()
	if err != nil {
		t.Fatal(err)
	}
	return bf
}

// Two layers: a partition each, between root and data, named
// rfs-layer-N with GUIDs derived from the build ID; rfs.layers lists them
// bottom to top; their content is in the build ID and in rfs.json.
func TestBuildLayers(t *testing.T) {
	needTool(t, "sfdisk")
	l1, l2 := writeLayer(t, "one", "1", ""), writeLayer(t, "two", "2", "")
	c := config(t, "qemu-arm64")
	c.Layers = []string{l1, l2}
	res := build(t, c)

	out, err := exec.Command("sfdisk", "--json", res.Path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		PartitionTable struct {
			Partitions []struct {
				Node, Name, Type, UUID string
				Start, Size            int64
			}
		}
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	parts := table.PartitionTable.Partitions
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	if strings.Join(names, " ") != "rfs-boot rfs-root rfs-layer-1 rfs-layer-2 rfs-data" {
		t.Fatalf("partitions %q", names)
	}
	id1, id2 := DeriveGUID(res.BuildID, "layer-1"), DeriveGUID(res.BuildID, "layer-2")
	for i, want := range []string{id1, id2} {
		p := parts[2+i]
		if !strings.EqualFold(p.UUID, want) || !strings.EqualFold(p.Type, image.TypeLinuxData) {
			t.Errorf("layer %d: uuid %s type %s, want %s %s", i+1, p.UUID, p.Type, want, image.TypeLinuxData)
		}
		src, _ := os.ReadFile([]string{l1, l2}[i])
		f, _ := os.Open(res.Path)
		got := make([]byte, len(src))
		f.ReadAt(got, p.Start*512)
		f.Close()
		if !bytes.Equal(got, src) {
			t.Errorf("layer %d: partition does not hold the file's bytes", i+1)
		}
	}

	bf := readBoot(t, res.Path)
	want := "rfs.root=PARTUUID=" + DeriveGUID(res.BuildID, "root") + " rfs.layers=PARTUUID=" + id1 + ",PARTUUID=" + id2 + " rfs.data="
	if !strings.Contains(bf.Cmdline, want) {
		t.Errorf("cmdline %q lacks %q", bf.Cmdline, want)
	}
	if len(bf.Meta.Layers) != 2 || bf.Meta.Layers[0].File != l1 || bf.Meta.Layers[1].PARTUUID != id2 || len(bf.Meta.Layers[0].SHA256) != 64 {
		t.Errorf("rfs.json layers: %+v", bf.Meta.Layers)
	}

	// The layers' content is in the build ID; their order too.
	c2 := config(t, "qemu-arm64")
	c2.Layers = []string{l1, writeLayer(t, "two", "2 changed", "")}
	if r2 := build(t, c2); r2.BuildID == res.BuildID {
		t.Error("build ID did not change with a layer's content")
	}
	c3 := config(t, "qemu-arm64")
	c3.Layers = []string{l2, l1}
	if r3 := build(t, c3); r3.BuildID == res.BuildID {
		t.Error("build ID did not change with the layers' order")
	}
}

func TestBuildLayerErrors(t *testing.T) {
	notSq := filepath.Join(t.TempDir(), "layer.tar")
	os.WriteFile(notSq, []byte("this is not a squashfs at all"), 0o644)
	good := writeLayer(t, "one", "1", "")
	for _, tc := range []struct {
		board  string
		layers []string
		want   string
	}{
		{"qemu-arm64", []string{good, notSq}, "layer 2 (" + notSq + `): not a squashfs (magic "this", want "hsqs")`},
		{"qemu-arm64", []string{filepath.Join(t.TempDir(), "nope.sqfs")}, "no such file"},
		{"qemu-arm64", []string{writeLayer(t, "xz", "x", "xz")}, "compressed with xz: the qemu-arm64 kernel reads gzip squashfs only"},
	} {
		c := config(t, tc.board)
		c.Layers = tc.layers
		_, err := Build(t.Context(), c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: %v, want %q", tc.board, tc.layers, err, tc.want)
		}
		if _, serr := os.Stat(c.Output); serr == nil {
			t.Errorf("%s: image written despite the error", tc.board)
		}
	}
}

// One layer on a Pi: MBR p3 is the layer, the data partition moves to p4.
func TestBuildLayerPi(t *testing.T) {
	c := config(t, "rpi3")
	c.Layers = []string{writeLayer(t, "one", "1", "")}
	res := build(t, c)
	d, err := image.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var names []string
	for _, p := range d.Partitions {
		names = append(names, p.Name+"="+p.GUID)
	}
	bf := readBoot(t, res.Path)
	id := func(n int) string { return image.MBRPartUUID(d.DiskID, n) }
	if want := []string{"rfs-boot=" + id(1), "rfs-root=" + id(2), "rfs-layer-1=" + id(3), "rfs-data=" + id(4)}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("partitions %q, want %q", names, want)
	}
	if want := "rfs.root=PARTUUID=" + id(2) + " rfs.layers=PARTUUID=" + id(3) + " rfs.data=PARTUUID=" + id(4) + " "; !strings.Contains(bf.Cmdline, want) {
		t.Errorf("cmdline %q lacks %q", bf.Cmdline, want)
	}
	if bf.Meta.DataGUID != id(4) || len(bf.Meta.Layers) != 1 || bf.Meta.Layers[0].PARTUUID != id(3) {
		t.Errorf("rfs.json: %+v", bf.Meta)
	}
}

// Several layers on a Pi: logical partitions 5, 6, 7 in an extended
// partition at slot 3, the data partition primary 4 and last on the disk
// (so the first boot can still grow it), as sfdisk and rfs read them.
func TestBuildLayersPiLogical(t *testing.T) {
	needTool(t, "sfdisk")
	c := config(t, "rpi4")
	c.Layers = []string{writeLayer(t, "one", "1", ""), writeLayer(t, "two", "2", ""), writeLayer(t, "three", "3", "")}
	res := build(t, c)
	d, err := image.Open(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	id := func(n int) string { return image.MBRPartUUID(d.DiskID, n) }
	var names []string
	for _, p := range d.Partitions {
		names = append(names, fmt.Sprintf("%d:%s=%s", p.Index, p.Name, p.GUID))
	}
	want := []string{"1:rfs-boot=" + id(1), "2:rfs-root=" + id(2), "4:rfs-data=" + id(4), "5:rfs-layer-1=" + id(5), "6:rfs-layer-2=" + id(6), "7:rfs-layer-3=" + id(7)}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("partitions %q, want %q", names, want)
	}
	bf := readBoot(t, res.Path)
	if want := "rfs.layers=PARTUUID=" + id(5) + ",PARTUUID=" + id(6) + ",PARTUUID=" + id(7) + " rfs.data=PARTUUID=" + id(4) + " "; !strings.Contains(bf.Cmdline, want) {
		t.Errorf("cmdline %q lacks %q", bf.Cmdline, want)
	}
	// Each layer's bytes are where the table says, and sfdisk agrees.
	for i, name := range []string{"one", "two", "three"} {
		p, err := d.Partition(image.LayerPartition(i + 1))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(c.Layers[i])
		got := make([]byte, len(want))
		if _, err := d.Section(p).ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
			t.Errorf("layer %s: partition content differs from the file (%v)", name, err)
		}
	}
	out, err := exec.Command("sfdisk", "--json", res.Path).Output()
	if err != nil {
		t.Fatalf("sfdisk: %v", err)
	}
	var table struct {
		PartitionTable struct {
			Partitions []struct {
				Node  string `json:"node"`
				Start int64  `json:"start"`
				Size  int64  `json:"size"`
				Type  string `json:"type"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &table); err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int64{}
	for _, p := range table.PartitionTable.Partitions {
		got[p.Node[len(p.Node)-1:]+":"+p.Type] = [2]int64{p.Start * 512, p.Size * 512}
	}
	for _, p := range d.Partitions {
		key := fmt.Sprintf("%d:%x", p.Index, p.MBRType)
		if g, ok := got[key]; !ok || g != [2]int64{p.Start, p.Size} {
			t.Errorf("sfdisk: partition %s at %v, rfs reads %d+%d (sfdisk: %s)", key, g, p.Start, p.Size, out)
		}
	}
	if _, ok := got["3:f"]; !ok {
		t.Errorf("no extended partition at slot 3: %s", out)
	}
}
