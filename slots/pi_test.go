package slots

import "testing"

func TestSetOSPrefix(t *testing.T) {
	for _, tc := range []struct{ name, in, slot, want string }{
		{"none", "kernel=kernel8.img\n", B, "kernel=kernel8.img\n[all]\nos_prefix=slot-b/\n"},
		{"no final newline", "kernel=kernel8.img", A, "kernel=kernel8.img\n[all]\nos_prefix=slot-a/\n"},
		{"empty", "", A, "[all]\nos_prefix=slot-a/\n"},
		{"replace", "a=1\n[all]\nos_prefix=slot-a/\nb=2\n", B, "a=1\n[all]\nos_prefix=slot-b/\nb=2\n"},
		{"replace every", "os_prefix=x/\n[pi4]\n  os_prefix=slot-a/\n", B, "os_prefix=slot-b/\n[pi4]\nos_prefix=slot-b/\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(SetOSPrefix([]byte(tc.in), tc.slot))
			if got != tc.want {
				t.Errorf("SetOSPrefix(%q, %s) = %q, want %q", tc.in, tc.slot, got, tc.want)
			}
			if p := OSPrefix([]byte(got)); p != Dir(tc.slot) || PrefixSlot(p) != tc.slot {
				t.Errorf("OSPrefix = %q", p)
			}
		})
	}
	if PrefixSlot("slot-c/") != "" || PrefixSlot("") != "" || OSPrefix([]byte("a=1\n")) != "" {
		t.Error("a prefix naming no slot")
	}
}

func TestParseFirmware(t *testing.T) {
	for _, tc := range []struct {
		firmware string
		ok       bool
	}{{"", true}, {FirmwareRPi, true}, {FirmwareRPiSwitch, true}, {"uefi", false}} {
		s := New("1", "x", nil, "r-02", "r-03")
		s.Firmware = tc.firmware
		if _, err := Parse(s.Marshal()); (err == nil) != tc.ok {
			t.Errorf("firmware %q: %v", tc.firmware, err)
		}
	}
}
