package deflate

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	kzlib "github.com/klauspost/compress/zlib"
)

// inputs are the kinds of data squashfs blocks hold, each generated from a
// seed so failures reproduce.
func inputs(t testing.TB) map[string][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 200_000)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	// Text-like: words from a small vocabulary, so there are matches of
	// every length and distance.
	words := []string{"the", "squashfs", "overlay", " ", "\n", "func", "return", "err", "nil", "{", "}", "if", "=", ":=", "0x3f", "deflate", "rfs"}
	var text bytes.Buffer
	for text.Len() < 300_000 {
		text.WriteString(words[r.IntN(len(words))])
	}
	// Binary-like: small integers with structure, as in machine code.
	bin := make([]byte, 150_000)
	for i := range bin {
		switch r.IntN(4) {
		case 0:
			bin[i] = byte(r.IntN(8))
		case 1:
			bin[i] = 0
		case 2:
			bin[i] = bin[max(0, i-4-r.IntN(64))]
		default:
			bin[i] = byte(r.Uint32())
		}
	}
	runs := bytes.Repeat([]byte("a"), 100_000)
	period := bytes.Repeat([]byte("abcdefgh12345"), 20_000)
	m := map[string][]byte{
		"empty":   nil,
		"one":     {42},
		"two":     {1, 1},
		"three":   {7, 7, 7},
		"four":    {7, 7, 7, 7},
		"random":  random,
		"text":    text.Bytes(),
		"binary":  bin,
		"zeros":   make([]byte, 131072),
		"runs":    runs,
		"period":  period,
		"mixed":   append(append(append([]byte{}, text.Bytes()[:50_000]...), random[:70_000]...), bin[:60_000]...),
		"far":     append(append(append([]byte{}, random[:40_000]...), make([]byte, 10)...), random[:40_000]...),
		"onebyte": bytes.Repeat([]byte{0xff}, 65537),
	}
	// Real files when available: this package's sources and the test
	// binary itself (machine code).
	if exe, err := os.Executable(); err == nil {
		if b, err := os.ReadFile(exe); err == nil && len(b) > 0 {
			m["exe"] = b[:min(len(b), 1<<20)]
		}
	}
	srcs, _ := filepath.Glob("*.go")
	var src []byte
	for _, f := range srcs {
		b, _ := os.ReadFile(f)
		src = append(src, b...)
	}
	m["source"] = src
	return m
}

func inflateZlib(t testing.TB, z []byte) []byte {
	t.Helper()
	r, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatalf("zlib header: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for name, in := range inputs(t) {
		for _, level := range []int{1, 4, 6, 9} {
			t.Run(fmt.Sprintf("%s/%d", name, level), func(t *testing.T) {
				e, err := NewEncoder(level)
				if err != nil {
					t.Fatal(err)
				}
				z := e.AppendZlib(nil, in)
				if got := inflateZlib(t, z); !bytes.Equal(got, in) {
					t.Fatalf("round trip differs: %d bytes in, %d out", len(in), len(got))
				}
				// Raw DEFLATE too, appended after existing bytes.
				d := e.AppendDeflate([]byte("prefix"), in)
				if !bytes.HasPrefix(d, []byte("prefix")) {
					t.Fatal("AppendDeflate overwrote dst")
				}
				got, err := io.ReadAll(flate.NewReader(bytes.NewReader(d[6:])))
				if err != nil || !bytes.Equal(got, in) {
					t.Fatalf("raw round trip: err %v, equal %v", err, bytes.Equal(got, in))
				}
			})
		}
	}
}

// TestSizes checks the encoder against klauspost/compress at level 9 —
// the encoder it replaces — on text, source and machine code, where
// zlib-style parsing must win (on some synthetic data klauspost, which
// never sends 3-byte matches, is smaller, as it is than C zlib), and
// that incompressible data does not expand beyond stored blocks' overhead.
func TestSizes(t *testing.T) {
	e, _ := NewEncoder(9)
	in := inputs(t)
	for _, name := range []string{"text", "source", "exe"} {
		data, ok := in[name]
		if !ok {
			continue
		}
		var kb bytes.Buffer
		kw, _ := kzlib.NewWriterLevel(&kb, 9)
		kw.Write(data)
		kw.Close()
		ours := len(e.AppendZlib(nil, data))
		t.Logf("%s: %d bytes → ours %d, klauspost -9 %d (%.3f)", name, len(data), ours, kb.Len(), float64(ours)/float64(kb.Len()))
		if ours > kb.Len() {
			t.Errorf("%s: %d bytes, larger than klauspost's %d", name, ours, kb.Len())
		}
	}
	r := in["random"]
	// Each block of incompressible data goes out stored: 5 bytes of
	// header per block, plus zlib's 6.
	if got, limit := len(e.AppendZlib(nil, r)), len(r)+(len(r)/symbolsPerBlock+1)*5+6; got > limit {
		t.Errorf("random: %d bytes from %d, more than stored blocks' %d", got, len(r), limit)
	}
}

func TestDeterministic(t *testing.T) {
	in := inputs(t)
	e1, _ := NewEncoder(9)
	e2, _ := NewEncoder(9)
	// e1 compresses everything in one order, e2 in another: state left
	// from earlier inputs must not change the output.
	names := []string{"text", "binary", "mixed", "zeros", "far"}
	a := map[string][]byte{}
	for _, n := range names {
		a[n] = e1.AppendZlib(nil, in[n])
	}
	for i := len(names) - 1; i >= 0; i-- {
		n := names[i]
		if b := e2.AppendZlib(nil, in[n]); !bytes.Equal(a[n], b) {
			t.Errorf("%s: output depends on earlier inputs", n)
		}
	}
}

// Inputs longer than a piece are parsed piece by piece (positions are
// int32); the stream must still be one valid stream.
func TestPieces(t *testing.T) {
	in := inputs(t)["mixed"]
	e, _ := NewEncoder(9)
	e.piece = 7000
	if got := inflateZlib(t, e.AppendZlib(nil, in)); !bytes.Equal(got, in) {
		t.Fatal("round trip in pieces differs")
	}
}

func TestLevels(t *testing.T) {
	for _, l := range []int{0, 10, -1} {
		if _, err := NewEncoder(l); err == nil {
			t.Errorf("level %d accepted", l)
		}
	}
}

func TestHuffLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var sc huffScratch
	for trial := 0; trial < 2000; trial++ {
		n := 2 + r.IntN(285)
		limit := 7 + r.IntN(9)
		if n > 1<<limit {
			n = 1 << limit
		}
		freq := make([]int, n)
		for i := range freq {
			switch r.IntN(4) {
			case 0:
				freq[i] = 0
			case 1: // Fibonacci-like weights force long codes
				freq[i] = 1 << r.IntN(20)
			default:
				freq[i] = r.IntN(1000)
			}
		}
		lens := make([]uint8, n)
		huffLengths(freq, limit, lens, &sc)
		// Kraft sum must be exactly 1 (complete code), lengths within
		// the limit, and used symbols must have a code.
		var kraft float64
		used := 0
		for s, l := range lens {
			if int(l) > limit {
				t.Fatalf("trial %d: length %d > limit %d", trial, l, limit)
			}
			if freq[s] > 0 && l == 0 {
				t.Fatalf("trial %d: used symbol %d has no code", trial, s)
			}
			if l > 0 {
				kraft += 1 / float64(uint(1)<<l)
				used++
			}
		}
		if used >= 2 && kraft != 1 {
			t.Fatalf("trial %d: Kraft sum %v, want 1", trial, kraft)
		}
		// Optimal: no cheaper complete code within the limit. Check
		// against unlimited Huffman when it fits the limit.
		if cost, ref := weighted(freq, lens), huffmanCost(freq); ref >= 0 && used >= 2 && cost != ref && maxHuffDepth(freq) <= limit {
			t.Fatalf("trial %d: cost %d, Huffman's %d", trial, cost, ref)
		}
	}
}

func weighted(freq []int, lens []uint8) int {
	c := 0
	for s, f := range freq {
		c += f * int(lens[s])
	}
	return c
}

// huffmanCost is the cost of an unlimited Huffman code, by the textbook
// algorithm (repeatedly merge the two lightest).
func huffmanCost(freq []int) int {
	var w []int
	for _, f := range freq {
		if f > 0 {
			w = append(w, f)
		}
	}
	if len(w) < 2 {
		return -1
	}
	cost := 0
	for len(w) > 1 {
		// Two smallest.
		i0, i1 := 0, 1
		if w[i1] < w[i0] {
			i0, i1 = i1, i0
		}
		for i := 2; i < len(w); i++ {
			if w[i] < w[i0] {
				i0, i1 = i, i0
			} else if w[i] < w[i1] {
				i1 = i
			}
		}
		s := w[i0] + w[i1]
		cost += s
		w[i0] = s
		w = append(w[:i1], w[i1+1:]...)
	}
	return cost
}

// maxHuffDepth is the deepest leaf of an unlimited Huffman tree.
func maxHuffDepth(freq []int) int {
	type node struct{ w, d int }
	var ns []node
	for _, f := range freq {
		if f > 0 {
			ns = append(ns, node{f, 0})
		}
	}
	for len(ns) > 1 {
		i0, i1 := 0, 1
		if ns[i1].w < ns[i0].w {
			i0, i1 = i1, i0
		}
		for i := 2; i < len(ns); i++ {
			if ns[i].w < ns[i0].w {
				i0, i1 = i, i0
			} else if ns[i].w < ns[i1].w {
				i1 = i
			}
		}
		m := node{ns[i0].w + ns[i1].w, max(ns[i0].d, ns[i1].d) + 1}
		ns[i0] = m
		ns = append(ns[:i1], ns[i1+1:]...)
	}
	if len(ns) == 0 {
		return 0
	}
	return ns[0].d
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello hello hello"), uint8(9))
	f.Add(make([]byte, 1000), uint8(6))
	f.Fuzz(func(t *testing.T, in []byte, level uint8) {
		e, err := NewEncoder(1 + int(level)%9)
		if err != nil {
			t.Fatal(err)
		}
		if got := inflateZlib(t, e.AppendZlib(nil, in)); !bytes.Equal(got, in) {
			t.Fatal("round trip differs")
		}
	})
}

// encoders compress one block and return the compressed size: rfs's
// encoder and the one it replaced, both at level 9.
var encoders = []struct {
	name string
	make func() func(blk []byte) int
}{
	{"rfs", func() func([]byte) int {
		e, _ := NewEncoder(9)
		var out []byte
		return func(blk []byte) int {
			out = e.AppendZlib(out[:0], blk)
			return len(out)
		}
	}},
	{"klauspost", func() func([]byte) int {
		var buf bytes.Buffer
		w, _ := kzlib.NewWriterLevel(&buf, 9)
		return func(blk []byte) int {
			buf.Reset()
			w.Reset(&buf)
			w.Write(blk)
			w.Close()
			return buf.Len()
		}
	}},
}

// benchBlocks compresses blocks (total bytes) once per iteration and
// returns the compressed size.
func benchBlocks(b *testing.B, blocks [][]byte, total int, compress func([]byte) int) int {
	b.SetBytes(int64(total))
	size := 0
	for b.Loop() {
		size = 0
		for _, blk := range blocks {
			size += compress(blk)
		}
	}
	return size
}

func BenchmarkEncode(b *testing.B) {
	in := inputs(b)
	for _, name := range []string{"text", "binary", "exe", "source"} {
		data, ok := in[name]
		if !ok {
			continue
		}
		blocks := split(data, 128<<10) // squashfs's default block size
		for _, enc := range encoders {
			b.Run(name+"/"+enc.name, func(b *testing.B) {
				size := benchBlocks(b, blocks, len(data), enc.make())
				b.ReportMetric(float64(size)/float64(len(data)), "ratio")
			})
		}
	}
}

func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// BenchmarkCorpus compresses the files under $RFS_DEFLATE_CORPUS the way
// squashfs stores them (128 KiB blocks of each file, small files and tails
// concatenated into shared blocks) with this encoder and with klauspost's.
func BenchmarkCorpus(b *testing.B) {
	dir := os.Getenv("RFS_DEFLATE_CORPUS")
	if dir == "" {
		b.Skip("set RFS_DEFLATE_CORPUS to a directory")
	}
	var blocks [][]byte
	var frag []byte
	total := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		total += len(data)
		for len(data) >= 128<<10 {
			blocks = append(blocks, data[:128<<10])
			data = data[128<<10:]
		}
		if len(frag)+len(data) > 128<<10 {
			blocks = append(blocks, frag)
			frag = nil
		}
		frag = append(frag, data...)
		return nil
	})
	blocks = append(blocks, frag)
	for _, enc := range encoders {
		b.Run(enc.name, func(b *testing.B) {
			b.ReportMetric(float64(benchBlocks(b, blocks, total, enc.make())), "bytes")
		})
	}
}
