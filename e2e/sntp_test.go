package e2e

import (
	"encoding/binary"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// sntpServer is a minimal SNTP server (RFC 4330) for tests: it answers
// every client request with the time its clock says, as a stratum 1
// server. Bind it only to a loopback or inside a private network
// namespace (inPrivateNet).
type sntpServer struct {
	conn   *net.UDPConn
	now    func() time.Time
	served atomic.Int64
}

// startSNTP serves SNTP on the UDP address addr (e.g. "127.0.0.1:123",
// or "127.0.0.1:0" for any port) until the test ends. now is the time it
// tells; nil is the host's clock.
func startSNTP(t *testing.T, addr string, now func() time.Time) *sntpServer {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatalf("SNTP server on %s: %v", addr, err)
	}
	if now == nil {
		now = time.Now
	}
	s := &sntpServer{conn: conn, now: now}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// Addr is the address the server listens on.
func (s *sntpServer) Addr() *net.UDPAddr { return s.conn.LocalAddr().(*net.UDPAddr) }

// Served is how many requests the server has answered (or is answering).
func (s *sntpServer) Served() int64 { return s.served.Load() }

// serve answers requests until the connection is closed. Anything that is
// not a client request of at least the 48-byte header is ignored.
func (s *sntpServer) serve() {
	buf := make([]byte, 512)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		reply, ok := sntpReply(buf[:n], s.now())
		if !ok {
			continue
		}
		// Counted first: a client that has its answer sees the count.
		s.served.Add(1)
		s.conn.WriteToUDP(reply, from)
	}
}

// ntpEpochOffset is the seconds from NTP's epoch (1900) to Unix's (1970).
const ntpEpochOffset = 2208988800

// sntpReply is the server's answer to req at time now: version as asked
// (3 or 4), mode 4 (server), stratum 1, req's transmit time as the
// originate time (clients match replies by it). ok is false for what is
// not a client request.
func sntpReply(req []byte, now time.Time) (reply []byte, ok bool) {
	if len(req) < 48 || req[0]&7 != 3 {
		return nil, false
	}
	vn := req[0] >> 3 & 7
	if vn < 3 || vn > 4 {
		vn = 4
	}
	r := make([]byte, 48)
	r[0] = vn<<3 | 4                            // LI 0: no leap second, clock in sync
	r[1] = 1                                    // stratum 1: a reference clock
	r[2] = req[2]                               // poll as asked
	r[3] = 0xec                                 // precision 2^-20 s
	binary.BigEndian.PutUint32(r[8:], 1<<16>>6) // root dispersion 1/64 s
	copy(r[12:16], "LOCL")
	ts := ntpTime(now)
	binary.BigEndian.PutUint64(r[16:], ts) // reference
	copy(r[24:32], req[40:48])             // originate: the client's transmit
	binary.BigEndian.PutUint64(r[32:], ts) // receive
	binary.BigEndian.PutUint64(r[40:], ts) // transmit
	return r, true
}

// ntpTime is t as a 64-bit NTP timestamp: seconds since 1900 (era 0 wraps
// in 2036, as the format does) and a binary fraction.
func ntpTime(t time.Time) uint64 {
	sec := uint64(t.Unix()+ntpEpochOffset) & 0xffffffff
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

// TestSNTPServer: the server tells its time to a client, matched by the
// originate time, and ignores what is not a client request.
func TestSNTPServer(t *testing.T) {
	when := time.Date(2031, 7, 8, 9, 10, 11, 500_000_000, time.UTC)
	s := startSNTP(t, "127.0.0.1:0", func() time.Time { return when })
	c, err := net.DialUDP("udp", nil, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Not requests: too short, and a server-mode packet. No answer.
	c.Write([]byte{0x23, 0, 0})
	bad := make([]byte, 48)
	bad[0] = 4<<3 | 4
	c.Write(bad)
	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // LI 0, version 4, mode 3 (client)
	binary.BigEndian.PutUint64(req[40:], 0x0123456789abcdef)
	c.Write(req)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := make([]byte, 100)
	n, err := c.Read(r)
	if err != nil || n != 48 {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if r[0] != 4<<3|4 || r[1] != 1 {
		t.Errorf("header %#x stratum %d, want version 4 mode 4 stratum 1", r[0], r[1])
	}
	if got := binary.BigEndian.Uint64(r[24:]); got != 0x0123456789abcdef {
		t.Errorf("originate %#x is not the request's transmit", got)
	}
	tx := binary.BigEndian.Uint64(r[40:])
	got := time.Unix(int64(tx>>32)-ntpEpochOffset, int64((tx&0xffffffff)*1e9>>32)).UTC()
	if d := got.Sub(when); d < -time.Microsecond || d > time.Microsecond {
		t.Errorf("transmit time %s, want %s", got, when)
	}
	if s.Served() != 1 {
		t.Errorf("served %d requests, want 1", s.Served())
	}
}
