package fat

import (
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	good := []string{"a", "config.txt", "BOOTX64.EFI", ".hidden", " leading", "a b", "größe", "日本",
		"+,;=[]", strings.Repeat("x", 255), strings.Repeat("日", 255), "🙂" + strings.Repeat("y", 253)}
	for _, n := range good {
		if err := checkName(n); err != nil {
			t.Errorf("checkName(%q) = %v, want ok", n, err)
		}
	}
	bad := []string{"", ".", "..", `a\b`, "a:b", "a*", "a?", `a"b`, "a<b", "a>b", "a|b", "a/b", "ctl\x01", "tab\t",
		"trailing.", "trailing ", "\xff\xfe", strings.Repeat("x", 256), "🙂" + strings.Repeat("y", 254)}
	for _, n := range bad {
		if err := checkName(n); err == nil {
			t.Errorf("checkName(%q) = nil, want an error", n)
		}
	}
}

func TestShortNames(t *testing.T) {
	// Each group is one directory; want is the short name (8+3, padded) and
	// whether a long name is stored.
	type want struct {
		short string
		lfn   bool
	}
	groups := []map[string]want{
		{
			"UPPER.TXT":           {"UPPER   TXT", false},
			"NOEXT":               {"NOEXT      ", false},
			"config.txt":          {"CONFIG  TXT", true},
			"Mixed.Txt":           {"MIXED   TXT", true},
			"bcm2711-rpi-4-b.dtb": {"BCM271~1DTB", true},
			"a.b.c.d":             {"ABC~1   D  ", true},
			".hidden":             {"HIDDEN~1   ", true},
			"with space.txt":      {"WITHSP~1TXT", true},
			"+plus,comma;x=[y]":   {"_PLUS_~1   ", true},
			"größe.txt":           {"GR__E~1 TXT", true},
			"vc4-kms-v3d.dtbo":    {"VC4-KM~1DTB", true},
			"NINECHARS":           {"NINECH~1   ", true},
			"ABC.TOOLONG":         {"ABC~1   TOO", true},
		},
		{
			// A literal tail name keeps it; generated ones go around it.
			"BCM271~1.DTB":        {"BCM271~1DTB", false},
			"bcm2711-rpi-4-b.dtb": {"BCM271~2DTB", true},
			"bcm2711-rpi-400.dtb": {"BCM271~3DTB", true},
		},
	}
	var many []string
	for i := range 12 {
		many = append(many, "collide-"+string(rune('a'+i))+"-same.txt")
	}
	for gi, g := range groups {
		tr := build(t, func() map[string][]byte {
			m := map[string][]byte{}
			for n := range g {
				m[n] = []byte("x")
			}
			return m
		}())
		p, err := makePlan(tr)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.dirs[0].entries {
			w := g[e.name]
			if string(e.short[:]) != w.short || e.lfn != w.lfn {
				t.Errorf("group %d: %q: short %q lfn %v, want %q %v", gi, e.name, e.short[:], e.lfn, w.short, w.lfn)
			}
		}
	}
	m := map[string][]byte{}
	for _, n := range many {
		m[n] = nil
	}
	p, err := makePlan(build(t, m))
	if err != nil {
		t.Fatal(err)
	}
	wantTails := []string{"COLLID~1TXT", "COLLID~2TXT", "COLLID~3TXT", "COLLID~4TXT", "COLLID~5TXT", "COLLID~6TXT",
		"COLLID~7TXT", "COLLID~8TXT", "COLLID~9TXT", "COLLI~10TXT", "COLLI~11TXT", "COLLI~12TXT"}
	for i, e := range p.dirs[0].entries {
		if string(e.short[:]) != wantTails[i] {
			t.Errorf("%q: short %q, want %q", e.name, e.short[:], wantTails[i])
		}
	}
}

func TestSlots(t *testing.T) {
	for name, want := range map[string]int{
		"UPPER.TXT": 1, "lower.txt": 2, strings.Repeat("a", 13): 2, strings.Repeat("a", 14): 3,
		strings.Repeat("a", 255): 21, "🙂": 2, // one surrogate pair = 2 units
	} {
		if got := slotsFor(name); got != want {
			t.Errorf("slotsFor(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestCheckLabel(t *testing.T) {
	for in, want := range map[string]string{"": "BOOT       ", "boot": "BOOT       ", "Rpi Boot": "RPI BOOT   ",
		"ELEVENCHARS": "ELEVENCHARS"} {
		got, err := checkLabel(in)
		if err != nil || string(got[:]) != want {
			t.Errorf("checkLabel(%q) = %q, %v; want %q", in, got[:], err, want)
		}
	}
	for _, in := range []string{"TWELVECHARSX", "a*b", "a.b", " lead", "größe"} {
		if _, err := checkLabel(in); err == nil {
			t.Errorf("checkLabel(%q) = nil error", in)
		}
	}
}
