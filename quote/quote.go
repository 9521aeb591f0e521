// Package quote makes names read from images and devices safe to print on
// a terminal: a file name, partition name or label is whatever bytes a
// card holds, and printed raw a newline forges a line of output and an
// escape sequence reaches the terminal.
package quote

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Name returns s unchanged when every character of it is printable and it
// holds no quote or backslash; otherwise s in double quotes with C-style
// escapes (\n, \t, \x1b, \", \\, \u202e, \xff for invalid UTF-8), as git
// prints such paths. Distinct names stay distinct, and a quoted one cannot
// be mistaken for a plain one.
func Name(s string) string {
	q := strconv.Quote(s)
	if q[1:len(q)-1] == s {
		return s
	}
	return q
}

// Message makes an error message safe for a terminal: it may quote names
// from an image that a reader did not pass through Name, so every control
// character but newline and tab is escaped (\x1b, \r, \x00, and C1
// controls). Lines stay lines: messages carry multi-line tool output.
func Message(s string) string {
	var b []byte
	for i, r := range s {
		if r == '\n' || r == '\t' || !(r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0) {
			if b != nil {
				b = utf8.AppendRune(b, r)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+8), s[:i]...)
		}
		b = fmt.Appendf(b, `\x%02x`, r)
	}
	if b == nil {
		return s
	}
	return string(b)
}
