// Package quote makes names read from images and devices safe to print on
// a terminal: a file name, partition name or label is whatever bytes a
// card holds, and printed raw a newline forges a line of output and an
// escape sequence reaches the terminal.
package quote

import "strconv"

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
