package quote

import "testing"

func TestName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/etc/passwd", "/etc/passwd"},
		{"/a b/ü.txt", "/a b/ü.txt"},
		{"", ""},
		{"/evil\nD /etc/shadow", `"/evil\nD /etc/shadow"`},
		{"/x\x1b[2Jy", `"/x\x1b[2Jy"`},
		{"/tab\there", `"/tab\there"`},
		{`/q"uote`, `"/q\"uote"`},
		{`/back\slash`, `"/back\\slash"`},
		{"/bad\xffutf8", `"/bad\xffutf8"`},
		{"/rtl\u202etxt.exe", `"/rtl\u202etxt.exe"`},
		{"/del\x7f", `"/del\x7f"`},
		{"/c1\u009b", `"/c1\u009b"`},
	} {
		if got := Name(c.in); got != c.want {
			t.Errorf("Name(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}
