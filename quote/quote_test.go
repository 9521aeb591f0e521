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

func TestMessage(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain message", "plain message"},
		{"two\nlines\tand a tab", "two\nlines\tand a tab"},
		{"name \x1b[2J here", `name \x1b[2J here`},
		{"cr\rover", `cr\x0dover`},
		{"nul\x00", `nul\x00`},
		{"c1 \u009b", `c1 \x9b`},
		{"ümlaut ok", "ümlaut ok"},
	} {
		if got := Message(tt.in); got != tt.want {
			t.Errorf("Message(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
