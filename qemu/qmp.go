package qemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"
)

// QMP (QEMU's machine protocol, one JSON object a line over a socket) is
// how rfs learns why QEMU stopped: with -no-reboot a guest reboot ends
// QEMU as a power-off does, and only the SHUTDOWN event's reason tells
// them apart ("guest-reset", "guest-shutdown"). The guest starts paused
// (-S) and runs once rfs listens, so no event is missed.

// qmpMsg is one line from QEMU: the greeting, a command's reply or an
// event.
type qmpMsg struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
	Data  struct {
		Guest  bool   `json:"guest"`
		Reason string `json:"reason"`
	} `json:"data"`
}

// maxQMPLine bounds a line from QEMU: its messages are small.
const maxQMPLine = 1 << 20

// parseQMP parses one line from QEMU.
func parseQMP(line []byte) (qmpMsg, error) {
	var m qmpMsg
	if err := json.Unmarshal(line, &m); err != nil {
		return qmpMsg{}, fmt.Errorf("QMP: %w", err)
	}
	return m, nil
}

// shutdownReason reads QEMU's lines until the end and returns the reason
// of the last SHUTDOWN event ("" when there was none).
func shutdownReason(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxQMPLine)
	reason := ""
	for sc.Scan() {
		m, err := parseQMP(sc.Bytes())
		if err != nil {
			return reason, err
		}
		if m.Event == "SHUTDOWN" {
			reason = m.Data.Reason
		}
	}
	return reason, sc.Err()
}

// qmpTimeout bounds QEMU's start up to its QMP socket, and the handshake.
const qmpTimeout = 60 * time.Second

// qmpSocket is where a QEMU whose files are in dir listens for QMP: in
// dir when the path fits a Unix socket address (108 bytes), else in a
// directory of its own under the system's (the second result removes
// it).
func qmpSocket(dir string) (string, func(), error) {
	p := filepath.Join(dir, "qmp.sock")
	if len(p) < 100 {
		os.Remove(p) // a previous boot's
		return p, func() { os.Remove(p) }, nil
	}
	d, err := os.MkdirTemp("", "rfs-qmp-")
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(d, "qmp.sock"), func() { os.RemoveAll(d) }, nil
}

// qmpWatch connects to the QMP socket of a QEMU just started (exited is
// closed when it is gone), starts its paused guest and returns a channel
// that yields the reason of its SHUTDOWN event once QEMU closes the
// connection.
func qmpWatch(path string, exited <-chan struct{}) (<-chan string, error) {
	conn, err := qmpDial(path, exited)
	if err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	conn.SetDeadline(time.Now().Add(qmpTimeout))
	if err := qmpStart(conn, r); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	ch := make(chan string, 1)
	go func() {
		defer conn.Close()
		reason, _ := shutdownReason(r)
		ch <- reason
	}()
	return ch, nil
}

// qmpDial connects to QEMU's socket as soon as QEMU has made it.
func qmpDial(path string, exited <-chan struct{}) (net.Conn, error) {
	deadline := time.Now().Add(qmpTimeout)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			return conn, nil
		}
		select {
		case <-exited:
			return nil, errors.New("QEMU exited before its QMP socket was up")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("QMP socket %s: %w", path, err)
		}
	}
}

// qmpStart does the handshake (greeting, capabilities) and lets the
// paused guest run.
func qmpStart(w io.Writer, r *bufio.Reader) error {
	greeting, err := qmpRead(r)
	if err != nil {
		return err
	}
	if greeting.QMP == nil {
		return errors.New("QMP: no greeting")
	}
	for _, cmd := range []string{"qmp_capabilities", "cont"} {
		if _, err := fmt.Fprintf(w, "{\"execute\":%q}\n", cmd); err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		if err := qmpReply(r, cmd); err != nil {
			return err
		}
	}
	return nil
}

// qmpReply reads up to the reply to cmd (events before it are of no
// interest yet: the guest has not run).
func qmpReply(r *bufio.Reader, cmd string) error {
	for {
		m, err := qmpRead(r)
		switch {
		case err != nil:
			return fmt.Errorf("QMP %s: %w", cmd, err)
		case m.Error != nil:
			return fmt.Errorf("QMP %s: %s: %s", cmd, m.Error.Class, m.Error.Desc)
		case m.Return != nil:
			return nil
		}
	}
}

// qmpRead reads one line, bounded.
func qmpRead(r *bufio.Reader) (qmpMsg, error) {
	var line []byte
	for {
		chunk, more, err := r.ReadLine()
		if err != nil {
			return qmpMsg{}, err
		}
		line = append(line, chunk...)
		if len(line) > maxQMPLine {
			return qmpMsg{}, errors.New("QMP: line too long")
		}
		if !more {
			return parseQMP(line)
		}
	}
}
