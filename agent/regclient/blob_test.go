package regclient

import (
	"net/http"
	"net/url"
	"testing"
)

func TestCheckContentRange(t *testing.T) {
	for _, c := range []struct {
		cr          string
		start, size int64
		ok          bool
	}{
		{"bytes 100-999/1000", 100, 1000, true},
		{"bytes 100-999/*", 100, 1000, true},
		{"bytes 0-999/1000", 100, 1000, false},
		{"bytes 100-998/1000", 100, 1000, false},
		{"bytes 100-999/1001", 100, 1000, false},
		{"bytes 100-999", 100, 1000, false},
		{"items 100-999/1000", 100, 1000, false},
		{"", 100, 1000, false},
		{"bytes -1-999/1000", 100, 1000, false},
	} {
		if err := checkContentRange(c.cr, c.start, c.size); (err == nil) != c.ok {
			t.Errorf("checkContentRange(%q, %d, %d) = %v", c.cr, c.start, c.size, err)
		}
	}
}

func FuzzCheckContentRange(f *testing.F) {
	f.Add("bytes 100-999/1000", int64(100), int64(1000))
	f.Fuzz(func(t *testing.T, cr string, start, size int64) {
		// Only a range inside the blob may be accepted.
		if checkContentRange(cr, start, size) == nil && (start < 0 || start > size-1) {
			t.Fatalf("accepted %q for start %d of %d", cr, start, size)
		}
	})
}

func TestCheckRedirect(t *testing.T) {
	req := func(u string) *http.Request {
		p, _ := url.Parse(u)
		return &http.Request{URL: p, Header: http.Header{"Authorization": {"Bearer x"}}}
	}
	for _, c := range []struct {
		from, to string
		ok, auth bool
	}{
		{"https://reg.io/v2/x/blobs/d", "https://reg.io/other", true, true},
		{"https://reg.io/v2/x/blobs/d", "https://storage.example/obj", true, false},
		{"http://127.0.0.1:5000/v2/x/blobs/d", "http://127.0.0.1:6000/obj", true, false},
		{"https://reg.io/v2/x/blobs/d", "http://storage.example/obj", false, false},
		{"https://reg.io/v2/x/blobs/d", "ftp://storage.example/obj", false, false},
	} {
		r := req(c.to)
		err := checkRedirect(r, []*http.Request{req(c.from)})
		if (err == nil) != c.ok || (c.ok && (r.Header.Get("Authorization") != "") != c.auth) {
			t.Errorf("%s → %s: %v, Authorization %q", c.from, c.to, err, r.Header.Get("Authorization"))
		}
	}
}
