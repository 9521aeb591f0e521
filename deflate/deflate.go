// Package deflate is a DEFLATE (RFC 1951) encoder, with zlib (RFC 1950)
// framing, for compressing independent blocks of up to a few MiB as small
// as zlib's best levels do.
//
// It exists because the Go encoders that are fast enough are not as
// strong as C zlib at -9, which is what mksquashfs uses for squashfs's
// "gzip" compressor: github.com/klauspost/compress at level 9 searches
// 1024 candidates per position and never emits 3-byte matches, and the
// standard library's compress/flate also needs 4 bytes to match. On
// binaries and source code those short, near matches and longer searches
// are worth 2–4% of the output (see docs/benchmarks.md).
//
// The parse is zlib's lazy matching (deflate_slow) with zlib's per-level
// parameters, except shorter searches at levels 8 and 9 (measured: 0.1%
// larger output, 2.5–4× faster on Python sources). Candidates come from
// hash chains on 4 bytes, and 3-byte matches from a one-entry table on 3
// bytes, taken only within 4 KiB as zlib does; matches of up to 5 bytes
// are taken only when they are estimated cheaper than literals. Because a
// whole block is in memory there is no sliding window: every match may
// reach back the full 32 KiB. Blocks are Huffman coded with optimal
// length-limited codes and each is sent as stored, fixed or dynamic,
// whichever is smallest.
//
// With zlib's level-9 parameters the output was within 0.01% of C zlib
// -9's on every test input. Decoding is left to the standard library,
// klauspost/compress and the kernel.
//
// Output depends only on the input and the level.
package deflate

import (
	"encoding/binary"
	"fmt"
	"hash/adler32"
	"math"
	"math/bits"
)

const (
	minMatch = 3
	maxMatch = 258
	window   = 1 << 15 // farthest distance
	tooFar   = 4096    // 3-byte matches farther than this cost more than literals

	hash4Bits = 16
	hash3Bits = 14
	noPos     = -1
)

// params are zlib's configuration_table entries for its lazy levels (see
// levels for where they differ).
type params struct {
	good  int // at this previous match length, search a quarter of the chain
	lazy  int // do not search when the previous match is at least this long
	nice  int // stop searching at a match this long
	chain int // candidates searched per position
}

var levels = [10]params{
	1: {4, 4, 8, 4},   // zlib uses its greedy deflate_fast for 1–3; these are
	2: {4, 5, 16, 8},  // lazy parses with the same limits, a little
	3: {4, 6, 32, 32}, // smaller and slower than zlib's
	4: {4, 4, 16, 16},
	5: {8, 16, 32, 32},
	6: {8, 16, 128, 128},
	7: {8, 32, 128, 256},
	8: {16, 128, 258, 512},  // zlib: {32, 128, 258, 1024}
	9: {32, 258, 258, 1024}, // zlib: chain 4096, for 0.1% at 2.5–4× the time
}

// An Encoder compresses blocks. It keeps its tables between calls, so
// reuse one per goroutine; it is not safe for concurrent use.
type Encoder struct {
	level  int
	p      params
	head4  []int32
	head3  []int32
	prev   []int32 // prev[i]: previous position with the same 4-byte hash
	tokens []token
	bw     blockWriter
	// litCost[b]: estimated bits to send byte b as a literal, in 1/16 bit.
	litCost [256]int32
	piece   int // longest input parsed in one go (1 GiB; tests set less)
}

// NewEncoder returns an encoder for level 1 (fastest) to 9 (smallest).
func NewEncoder(level int) (*Encoder, error) {
	if level < 1 || level > 9 {
		return nil, fmt.Errorf("deflate: level %d out of range 1..9", level)
	}
	return &Encoder{
		level: level,
		p:     levels[level],
		head4: make([]int32, 1<<hash4Bits),
		head3: make([]int32, 1<<hash3Bits),
		piece: 1 << 30,
	}, nil
}

// AppendZlib appends the zlib stream (header, one final DEFLATE stream,
// Adler-32) of src to dst.
func (e *Encoder) AppendZlib(dst, src []byte) []byte {
	// The header's FLEVEL as zlib writes it for this level.
	var flevel uint16
	switch {
	case e.level < 2:
		flevel = 0
	case e.level < 6:
		flevel = 1
	case e.level == 6:
		flevel = 2
	default:
		flevel = 3
	}
	h := uint16(0x78)<<8 | flevel<<6
	h += 31 - h%31
	dst = binary.BigEndian.AppendUint16(dst, h)
	dst = e.AppendDeflate(dst, src)
	return binary.BigEndian.AppendUint32(dst, adler32.Checksum(src))
}

// AppendDeflate appends the raw DEFLATE stream of src to dst.
func (e *Encoder) AppendDeflate(dst, src []byte) []byte {
	e.bw.reset(dst)
	// Positions are int32: parse inputs beyond 1 GiB in pieces (no match
	// crosses from one to the next).
	for len(src) > e.piece {
		e.parse(src[:e.piece], false)
		src = src[e.piece:]
	}
	e.parse(src, true)
	return e.bw.finish()
}

// A token is a literal byte or a match: for a match, bit 31 set, the
// length minus 3 in bits 0–7 and the distance minus 1 in bits 8–22.
type token uint32

const matchFlag = 1 << 31

func literal(b byte) token         { return token(b) }
func match(length, dist int) token { return matchFlag | token(dist-1)<<8 | token(length-minMatch) }

func (t token) isMatch() bool { return t&matchFlag != 0 }
func (t token) length() int   { return int(t&0xff) + minMatch }
func (t token) dist() int     { return int(t>>8&0x7fff) + 1 }

// symbolsPerBlock bounds the symbols in one DEFLATE block, like zlib's
// lit_bufsize at the default memLevel: often enough to adapt the codes
// to changing data, rarely enough that the code tables stay cheap.
const symbolsPerBlock = 1<<14 - 1

func hash4(u uint32) uint32 { return (u * 0x9E3779B1) >> (32 - hash4Bits) }
func hash3(u uint32) uint32 { return ((u << 8) * 0x9E3779B1) >> (32 - hash3Bits) }

// parse runs zlib's lazy evaluation over src and sends the blocks, the
// last one final if last.
func (e *Encoder) parse(src []byte, last bool) {
	n := len(src)
	for i := range e.head4 {
		e.head4[i] = noPos
	}
	for i := range e.head3 {
		e.head3[i] = noPos
	}
	if cap(e.prev) < n {
		e.prev = make([]int32, n)
	}
	prev := e.prev[:n]
	tokens := e.tokens[:0]
	blockStart := 0 // first byte of the pending block

	// insert adds position i to the tables and returns the previous
	// heads of its 4-byte chain and 3-byte slot.
	insert := func(i int) (h4, h3 int) {
		if i+4 > n {
			if i+3 <= n {
				u := uint32(src[i]) | uint32(src[i+1])<<8 | uint32(src[i+2])<<16
				k := hash3(u)
				h3 = int(e.head3[k])
				e.head3[k] = int32(i)
				return noPos, h3
			}
			return noPos, noPos
		}
		u := binary.LittleEndian.Uint32(src[i:])
		k4, k3 := hash4(u), hash3(u)
		h4 = int(e.head4[k4])
		prev[i] = int32(h4)
		e.head4[k4] = int32(i)
		h3 = int(e.head3[k3])
		e.head3[k3] = int32(i)
		return h4, h3
	}

	flush := func(end int, last bool) {
		e.bw.writeBlock(tokens, src[blockStart:end], last)
		tokens = tokens[:0]
		blockStart = end
	}
	emit := func(t token, end int) {
		tokens = append(tokens, t)
		if len(tokens) >= symbolsPerBlock {
			flush(end, false)
		}
	}

	e.estimateLiterals(src)
	p := e.p
	prevLen, prevDist := minMatch-1, 0
	pending := false // src[i-1] is not yet sent
	for i := 0; i < n; {
		h4, h3 := insert(i)
		curLen, curDist := minMatch-1, 0
		if prevLen < p.lazy {
			l, d := e.longest(src, i, h4, h3, prevLen)
			if l > prevLen {
				curLen, curDist = l, d
				if curLen == minMatch && curDist > tooFar || curLen <= shortMax && !e.worthIt(src[i:i+curLen], curDist) {
					curLen = minMatch - 1
				}
			}
		}
		switch {
		case prevLen >= minMatch && curLen <= prevLen:
			// The match found at i-1 is at least as good: send it and
			// skip the bytes it covers, adding them to the tables.
			end := i - 1 + prevLen
			for j := i + 1; j < end; j++ {
				insert(j)
			}
			emit(match(prevLen, prevDist), end)
			i = end
			prevLen, pending = minMatch-1, false
		case pending:
			emit(literal(src[i-1]), i)
			prevLen, prevDist = curLen, curDist
			i++
		default:
			pending = true
			prevLen, prevDist = curLen, curDist
			i++
		}
	}
	if pending {
		tokens = append(tokens, literal(src[n-1]))
	}
	flush(n, last)
	e.tokens = tokens
}

// longest returns the longest match for src[i:] longer than prevLen, from
// the 4-byte chain starting at h4 and the 3-byte candidate h3, or a
// length of 0 when there is none.
func (e *Encoder) longest(src []byte, i, h4, h3, prevLen int) (length, dist int) {
	p := e.p
	maxLen := min(maxMatch, len(src)-i)
	if maxLen <= prevLen || maxLen < minMatch {
		return 0, 0
	}
	nice := min(p.nice, maxLen)
	chain := p.chain
	if prevLen >= p.good {
		chain >>= 2
	}
	// Chain candidates must beat best, at least 3 (shorter ones come from
	// h3). Most candidates fail on the bytes that would make them longer
	// than best: compare the 4 bytes ending there first (zlib compares 2).
	best, bestDist := max(prevLen, minMatch), 0
	cur := src[i:]
	prev := e.prev
	limit := max(i-window, noPos) // also ends the chain at noPos
	if best < maxLen {
		end := binary.LittleEndian.Uint32(cur[best-3:])
		for c := h4; c > limit; c = int(prev[c]) {
			if binary.LittleEndian.Uint32(src[c+best-3:]) == end {
				if l := matchLen(src[c:], cur, maxLen); l > best {
					best, bestDist = l, i-c
					if l >= nice || l >= maxLen {
						break
					}
					end = binary.LittleEndian.Uint32(cur[best-3:])
				}
			}
			if chain--; chain == 0 {
				break
			}
		}
	}
	if bestDist != 0 {
		return best, bestDist
	}
	if prevLen < minMatch && h3 >= 0 && i-h3 <= tooFar {
		if l := matchLen(src[h3:], cur, maxLen); l >= minMatch {
			return l, i - h3
		}
	}
	return 0, 0
}

// matchLen is the length of the common prefix of a and b, at most max;
// len(a) >= len(b) >= max.
func matchLen(a, b []byte, max int) int {
	n := 0
	for n+8 <= max {
		x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:])
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < max && a[n] == b[n] {
		n++
	}
	return n
}

// Matches of up to shortMax bytes are sent only when they are estimated
// cheaper than literals: shortLenBits and shortDistBits (1/16 bits) are
// what a short match's length and distance codes cost before their extra
// bits. They are low (short matches are common, so their codes are
// short) and were tuned on busybox, a Python tree, 100k small text files
// and synthetic binary data: against always taking them (within 4 KiB
// for 3 bytes, zlib's rule), -2.5% on the small files, -6.7% on the
// binary, +0.25% on Python, ±0 on busybox.
const (
	shortMax      = 5
	shortLenBits  = 4 * 16
	shortDistBits = 3 * 16
)

// estimateLiterals sets litCost from the bytes' frequencies in src: about
// what a literal costs once Huffman-coded.
func (e *Encoder) estimateLiterals(src []byte) {
	var count [256]int
	for _, b := range src {
		count[b]++
	}
	n := float64(len(src))
	for b, c := range count {
		if c == 0 {
			e.litCost[b] = 16 * 16
			continue
		}
		e.litCost[b] = int32(16 * -math.Log2(float64(c)/n))
	}
}

// worthIt says whether a match of len(m) bytes at distance d is estimated
// cheaper than sending m as literals.
func (e *Encoder) worthIt(m []byte, d int) bool {
	var lits int32
	for _, b := range m {
		lits += e.litCost[b]
	}
	dc := distCode(d)
	cost := shortLenBits + shortDistBits + 16*int32(lengthExtra[lengthCode[len(m)-minMatch]]+distExtra[dc])
	return cost < lits
}
