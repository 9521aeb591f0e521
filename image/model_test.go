package image_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/imagetest"
)

// roles returns "number:role" for every partition of img, in table order.
func roles(img *image.Image) string {
	var s []string
	for _, p := range img.Parts {
		s = append(s, strings.Join([]string{itoa(p.Index), p.RoleName()}, ":"))
	}
	return strings.Join(s, " ")
}

func itoa(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }

// Readers follow the layout, where the old guess (GPT names, MBR
// positions: boot, root, layers, data last) would pick other partitions.
func TestImageRolesFromLayout(t *testing.T) {
	boot, root, data := imagetest.Part{Role: image.RoleBoot}, imagetest.Part{Role: image.RoleRoot}, imagetest.Part{Role: image.RoleData}
	layer := func(n int, logical bool) imagetest.Part {
		return imagetest.Part{Role: image.RoleLayer, Layer: n, Logical: logical}
	}
	tests := []struct {
		name  string
		spec  imagetest.Spec
		want  string
		names map[int]string // MBR: names from the layout, not positions
	}{
		{"gpt: data before root, layers top first, misleading names", imagetest.Spec{Table: "gpt", Parts: []imagetest.Part{
			boot, {Role: image.RoleData, Name: "rfs-root"}, {Role: image.RoleRoot, Name: "rfs-data"},
			{Role: image.RoleLayer, Layer: 2, Name: "rfs-layer-1"}, {Role: image.RoleLayer, Layer: 1, Name: "rfs-layer-2"},
		}}, "01:boot 02:data 03:root 04:layer 2 05:layer 1", nil},
		{"mbr: layers as logical 5 and 6, data at 3", imagetest.Spec{Table: "mbr", Parts: []imagetest.Part{
			boot, root, data, layer(1, true), layer(2, true),
		}}, "01:boot 02:root 03:data 05:layer 1 06:layer 2", map[int]string{3: "rfs-data", 5: "rfs-layer-1", 6: "rfs-layer-2"}},
		{"mbr: a partition the layout does not name", imagetest.Spec{Table: "mbr", Parts: []imagetest.Part{
			boot, root, data, {Name: "other"},
		}}, "01:boot 02:root 03:data 04:-", map[int]string{4: ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := imagetest.Write(t, tt.spec)
			img, err := image.OpenImage(path)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if img.Inferred || img.MetaErr != nil {
				t.Errorf("inferred %v, rfs.json %v", img.Inferred, img.MetaErr)
			}
			if got := roles(img); got != tt.want {
				t.Errorf("roles %q, want %q", got, tt.want)
			}
			for _, p := range img.Parts {
				if want, ok := tt.names[p.Index]; ok && p.Name != want {
					t.Errorf("partition %d named %q, want %q", p.Index, p.Name, want)
				}
			}
			lowers, err := img.Lowers()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range lowers {
				got = append(got, p.RoleName())
			}
			if want := "root layer 1 layer 2"; strings.Contains(tt.want, "layer") && strings.Join(got, " ") != want {
				t.Errorf("lowers %q, want %q", got, want)
			}
			if d, ok := img.Data(); !ok || d.FS != "ext4" || d.Policy != image.SizeFit {
				t.Errorf("data %+v %v", d, ok)
			}
		})
	}
}

// rfs.json and the table disagree, or rfs.json cannot tell: an error
// naming both sides, never a guess.
func TestImageLayoutMismatch(t *testing.T) {
	base := []imagetest.Part{{Role: image.RoleBoot}, {Role: image.RoleRoot}, {Role: image.RoleData}}
	edit := func(f func(l *image.LayoutMeta)) func(*image.Meta) {
		return func(m *image.Meta) { f(m.Layout) }
	}
	tests := []struct {
		name string
		spec imagetest.Spec
		want []string
	}{
		{"PARTUUID the table lacks", imagetest.Spec{Table: "gpt", Parts: base, Edit: edit(func(l *image.LayoutMeta) {
			l.Partitions[2].PARTUUID = "99999999-0000-4000-8000-000000000099"
		})}, []string{"layout", "data partition is number 3 with PARTUUID 99999999-0000-4000-8000-000000000099", "partition 3 has PARTUUID " + imagetest.GUID(3)}},
		{"number the table lacks", imagetest.Spec{Table: "mbr", Parts: base, Edit: edit(func(l *image.LayoutMeta) {
			l.Partitions[2].Number = 6
		})}, []string{"data partition is number 6", "mbr table has no partition 6"}},
		{"other table", imagetest.Spec{Table: "gpt", Parts: base, Edit: edit(func(l *image.LayoutMeta) { l.Table = "mbr" })},
			[]string{`a mbr table, but the image has a gpt table`}},
		{"other disk", imagetest.Spec{Table: "mbr", Parts: base, Edit: edit(func(l *image.LayoutMeta) { l.DiskID = "deadbeef" })},
			[]string{"disk id deadbeef", "1234abcd"}},
		{"boot elsewhere", imagetest.Spec{Table: "gpt", Parts: base, Edit: edit(func(l *image.LayoutMeta) {
			l.Partitions[0].Number, l.Partitions[1].Number = 2, 1
			l.Partitions[0].PARTUUID, l.Partitions[1].PARTUUID = imagetest.GUID(2), imagetest.GUID(1)
		})}, []string{"boot partition is number 2, but rfs.json was read from partition 1"}},
		{"more partitions than the table", imagetest.Spec{Table: "gpt", Parts: base, Edit: edit(func(l *image.LayoutMeta) {
			l.Partitions = append(l.Partitions, image.PartMeta{Role: image.RoleLayer, Layer: 1, Number: 4, PARTUUID: imagetest.GUID(4)})
		})}, []string{"4 partitions, but the gpt table has 3"}},
		{"two rfs.json", imagetest.Spec{Table: "gpt", Parts: append([]imagetest.Part{{Role: image.RoleBoot, Name: "esp2"}}, base...)},
			[]string{"two partitions hold rfs.json", "partition 1 (esp2)", "partition 2 (rfs-boot)"}},
		{"hostile role", imagetest.Spec{Table: "gpt", Parts: base, Edit: edit(func(l *image.LayoutMeta) { l.Partitions[1].Role = "r\x1b[2J" })},
			[]string{`unknown role "r\x1b[2J"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := imagetest.Write(t, tt.spec)
			img, err := image.OpenImage(path)
			if err == nil {
				img.Close()
				t.Fatalf("no error; roles %s", roles(img))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\x1b") {
				t.Errorf("error %q: no path, or a raw escape", err)
			}
		})
	}
}

// Images from an rfs before the layout keep working: GPT names, MBR
// positions. So do images whose rfs.json cannot be read (the error is
// kept for the commands that need rfs.json).
func TestImageRolesInferred(t *testing.T) {
	parts := []imagetest.Part{{Role: image.RoleBoot}, {Role: image.RoleRoot}, {Role: image.RoleLayer, Layer: 1}, {Role: image.RoleData}}
	noLayout := func(m *image.Meta) { m.Layout = nil }
	for _, tt := range []struct {
		name    string
		spec    imagetest.Spec
		want    string
		metaErr string
	}{
		{"gpt", imagetest.Spec{Table: "gpt", Parts: parts, Edit: noLayout}, "01:boot 02:root 03:layer 1 04:data", ""},
		{"mbr", imagetest.Spec{Table: "mbr", Parts: parts, Edit: noLayout}, "01:boot 02:root 03:layer 1 04:data", ""},
		{"gpt without rfs.json", imagetest.Spec{Table: "gpt", Parts: append([]imagetest.Part{{Role: image.RoleBoot, NoMeta: true}}, parts[1:]...)},
			"01:boot 02:root 03:layer 1 04:data", "rfs-boot partition: rfs.json: no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path, _ := imagetest.Write(t, tt.spec)
			img, err := image.OpenImage(path)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if got := roles(img); !img.Inferred || got != tt.want {
				t.Errorf("inferred %v, roles %q, want %q", img.Inferred, got, tt.want)
			}
			if tt.metaErr == "" && img.MetaErr != nil || tt.metaErr != "" && (img.MetaErr == nil || !strings.Contains(img.MetaErr.Error(), tt.metaErr)) {
				t.Errorf("rfs.json: %v, want %q", img.MetaErr, tt.metaErr)
			}
			if tt.metaErr != "" && !errors.Is(img.MetaErr, image.ErrNotRFS) {
				t.Errorf("rfs.json: %v is not ErrNotRFS", img.MetaErr)
			}
		})
	}
}

func TestLayoutCheck(t *testing.T) {
	ok := func() image.LayoutMeta {
		return image.LayoutMeta{Table: "gpt", Partitions: []image.PartMeta{
			{Role: image.RoleBoot, Number: 1, PARTUUID: "a"}, {Role: image.RoleRoot, Number: 2, PARTUUID: "b"},
			{Role: image.RoleLayer, Layer: 1, Number: 3, PARTUUID: "c"}, {Role: image.RoleData, Number: 4, PARTUUID: "d"},
		}}
	}
	tests := []struct {
		name string
		edit func(l *image.LayoutMeta)
		want string
	}{
		{"valid", func(*image.LayoutMeta) {}, ""},
		{"table", func(l *image.LayoutMeta) { l.Table = "apm" }, "table apm"},
		{"no boot", func(l *image.LayoutMeta) { l.Partitions[0].Role = image.RoleData }, "0 boot partitions"},
		{"two roots", func(l *image.LayoutMeta) {
			l.Partitions[2] = image.PartMeta{Role: image.RoleRoot, Number: 3, PARTUUID: "c"}
		}, "2 root partitions"},
		{"layer gap", func(l *image.LayoutMeta) { l.Partitions[2].Layer = 2 }, "numbered 1 to 1: no layer 1"},
		{"layer beyond the partitions", func(l *image.LayoutMeta) { l.Partitions[2].Layer = 5 }, "layer 5 out of range"},
		{"layer 0", func(l *image.LayoutMeta) { l.Partitions[2].Layer = 0 }, "layer 0 out of range"},
		{"same number", func(l *image.LayoutMeta) { l.Partitions[3].Number = 1 }, "repeats"},
		{"same PARTUUID", func(l *image.LayoutMeta) { l.Partitions[3].PARTUUID = "A" }, "repeats"},
		{"number 0", func(l *image.LayoutMeta) { l.Partitions[3].Number = 0 }, "number 0 out of range"},
		{"number huge", func(l *image.LayoutMeta) { l.Partitions[3].Number = 1 << 40 }, "out of range"},
		{"no PARTUUID", func(l *image.LayoutMeta) { l.Partitions[3].PARTUUID = "" }, "no PARTUUID"},
		{"root with a layer", func(l *image.LayoutMeta) { l.Partitions[1].Layer = 1 }, "root partition has layer 1"},
		{"too many", func(l *image.LayoutMeta) { l.Partitions = make([]image.PartMeta, 129) }, "129 partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ok()
			tt.edit(&l)
			err := l.Check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check: %v, want %q", err, tt.want)
			}
		})
	}
}
