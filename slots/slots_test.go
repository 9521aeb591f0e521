package slots

import (
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	base := New("1", "id1", nil, "ra", "rb")
	ready := base.Ready(B, SlotInfo{Version: "2"})
	armed := ready.Armed()
	tests := []struct {
		name   string
		s      State
		booted string
		want   Action
	}{
		{"no trial", base, A, Run},
		{"no trial, other slot", base, B, Run},
		{"ready, on committed", ready, A, Arm},
		{"armed, trial booted", armed, B, Trial},
		{"armed, back on committed", armed, A, Failed},
		{"ready, firmware booted trial anyway", ready, B, Trial},
	}
	for _, tt := range tests {
		if got := Decide(tt.s, tt.booted); got != tt.want {
			t.Errorf("%s: Decide = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLifecycle(t *testing.T) {
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	s := New("1", "id1", []Part{{Name: "root", Digest: "sha256:00", Size: 1}}, "ra", "rb")
	if _, err := s.Begin(A); err == nil {
		t.Fatal("Begin of the committed slot: no error")
	}
	w, err := s.Begin(B)
	if err != nil {
		t.Fatal(err)
	}
	if w.Slots[B].Root != "rb" {
		t.Fatalf("Begin lost the slot's root: %+v", w.Slots[B])
	}
	if w.Slots[B].State != Writing || w.Trial != "" || s.Slots[B].State != Empty {
		t.Fatalf("Begin: %+v (and the original must not change: %+v)", w, s)
	}
	r := w.Ready(B, SlotInfo{Version: "2", BuildID: "id2"})
	a := r.Armed()
	if a.Tries != 1 || a.Slots[B].State != Trying {
		t.Fatalf("Armed: %+v", a)
	}
	c := a.Commit(now)
	if c.Committed != B || c.Trial != "" || c.Slots[B].State != Good || c.Last.Outcome != Committed || c.Last.Version != "2" {
		t.Fatalf("Commit: %+v %+v", c, c.Last)
	}
	f := a.RollBack("health check failed", now)
	if f.Committed != A || f.Trial != "" || f.Slots[B].State != Bad || f.Last.Reason != "health check failed" {
		t.Fatalf("RollBack: %+v %+v", f, f.Last)
	}
	back, err := Parse(c.Marshal())
	if err != nil || back.Committed != B || back.Last.Time != "2026-12-02T00:00:00Z" {
		t.Fatalf("Parse(Marshal) = %+v, %v", back, err)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `{"committed":"c"}`, `{"committed":"a","trial":"a"}`,
		`{"committed":"a","trial":"x"}`, `{"committed":"a","tries":-1}`,
		`{"committed":"a","slots":{"c":{}}}`, `{"committed":"a"}` + strings.Repeat(" ", MaxStateFile),
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%.40q): no error", in)
		}
	}
	if _, err := ParseFirmware([]byte("c\n")); err == nil {
		t.Error("ParseFirmware(c): no error")
	}
	if s, err := ParseFirmware([]byte(" b\n")); err != nil || s != B {
		t.Errorf("ParseFirmware(b) = %q, %v", s, err)
	}
}

func TestCmdline(t *testing.T) {
	set := map[string]string{"rfs.root": "PARTUUID=new", "rfs.slot": "b", "rfs.data": "PARTUUID=d"}
	tests := []struct{ in, want string }{
		{"console=ttyAMA0 rfs.root=PARTUUID=old rfs.slot=a rfs.data=PARTUUID=x quiet",
			"console=ttyAMA0 rfs.root=PARTUUID=new rfs.slot=b rfs.data=PARTUUID=d quiet"},
		{"console=ttyS0 rfs.root=PARTUUID=old", "console=ttyS0 rfs.root=PARTUUID=new rfs.data=PARTUUID=d rfs.slot=b"},
		{`a="x y" rfs.root=/dev/vda2 rfs.root=/dev/vdb`, `a="x y" rfs.root=PARTUUID=new rfs.data=PARTUUID=d rfs.slot=b`},
	}
	for _, tt := range tests {
		got, err := Cmdline(tt.in, set)
		if err != nil || got != tt.want {
			t.Errorf("Cmdline(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := Cmdline("rfs.root=x rfs.layers=PARTUUID=y", set); err == nil {
		t.Error("a release with layers: no error")
	}
}

func TestConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"public_key":"k","reset_paths":["/etc/app.conf"],"health_seconds":5}`))
	if err != nil || c.HealthWait() != 5*time.Second {
		t.Fatalf("ParseConfig = %+v, %v", c, err)
	}
	for _, in := range []string{`{"reset_paths":["etc"]}`, `{"reset_paths":["/"]}`, `{"reset_paths":["/a/../b"]}`, `{"health_seconds":-1}`, `x`} {
		if _, err := ParseConfig([]byte(in)); err == nil {
			t.Errorf("ParseConfig(%s): no error", in)
		}
	}
	if (Config{}).HealthWait() != DefaultHealthSeconds*time.Second {
		t.Error("default health wait")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(New("1", "x", nil, "", "").Marshal())
	f.Add([]byte(`{"committed":"b","trial":"a","tries":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		_ = Decide(s, A)
		if _, err := Parse(s.Marshal()); err != nil {
			t.Fatalf("a parsed state does not parse again: %v", err)
		}
	})
}
