package qemu

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/rfsbuild/rfs/boards"
)

func TestShutdownReason(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{"reboot", `{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}}, "capabilities": ["oob"]}}
{"return": {}}
{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"}
{"timestamp": {"seconds": 9, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-reset"}}
`, "guest-reset", ""},
		{"power-off", `{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}}` + "\n", "guest-shutdown", ""},
		{"ctrl-a x", `{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-ui"}}`, "host-ui", ""},
		{"last wins", `{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-panic"}}
{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}
`, "host-signal", ""},
		{"killed", `{"return": {}}` + "\n", "", ""},
		{"other events", `{"event": "STOP"}` + "\n" + `{"event": "RESET", "data": {"guest": true, "reason": "guest-reset"}}` + "\n", "", ""},
		{"garbage", "{\"event\": \"SHUTDOWN\", \"data\": {\"reason\": \"guest-reset\"}}\nnot json\n", "guest-reset", "QMP:"},
		{"huge line", `{"event": "` + strings.Repeat("x", maxQMPLine+1) + `"}`, "", "too long"},
	} {
		got, err := shutdownReason(strings.NewReader(tc.in))
		if got != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: shutdownReason = %q, %v; want %q, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// TestQMPStart: the handshake skips events before a command's reply,
// starts the guest, and stops on an error reply.
func TestQMPStart(t *testing.T) {
	in := `{"QMP": {"version": {}, "capabilities": []}}
{"return": {}}
{"event": "RESUME"}
{"return": {}}
`
	var sent bytes.Buffer
	if err := qmpStart(&sent, bufio.NewReader(strings.NewReader(in))); err != nil {
		t.Fatal(err)
	}
	if want := "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"cont\"}\n"; sent.String() != want {
		t.Errorf("sent %q, want %q", sent.String(), want)
	}
	for _, bad := range []struct{ in, err string }{
		{`{"return": {}}` + "\n", "no greeting"},
		{`{"QMP": {}}` + "\n" + `{"error": {"class": "CommandNotFound", "desc": "nope"}}` + "\n", "CommandNotFound: nope"},
		{`{"QMP": {}}` + "\n", "EOF"},
	} {
		if err := qmpStart(&sent, bufio.NewReader(strings.NewReader(bad.in))); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("qmpStart(%q) = %v, want %q", bad.in, err, bad.err)
		}
	}
}

// TestArgsQMP: a boot the firmware watches listens on QMP, starts paused,
// and keeps the monitor on the console (Ctrl-A X), which -nographic drops
// once another monitor is given.
func TestArgsQMP(t *testing.T) {
	b, _ := boards.Lookup("qemu-arm64")
	c := Config{QEMU: b.QEMU, Kernel: "/k", qmp: "/run,x/qmp.sock"}
	got := strings.Join(c.Args(), " ")
	for _, want := range []string{"-qmp unix:/run,,x/qmp.sock,server=on,wait=off -S", "-serial mon:stdio"} {
		if !strings.Contains(got, want) {
			t.Errorf("args %q lack %q", got, want)
		}
	}
	c.qmp = ""
	if got := strings.Join(c.Args(), " "); strings.Contains(got, "-qmp") || strings.Contains(got, "-S") || strings.Contains(got, "-serial") {
		t.Errorf("args without QMP: %q", got)
	}
}
