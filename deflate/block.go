package deflate

import "encoding/binary"

const (
	numLitLen = 286 // literals, end of block, 29 length codes
	numDist   = 30
	numCL     = 19 // code length alphabet
	endBlock  = 256
)

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// The order code length code lengths are sent in (RFC 1951 3.2.7).
	clOrder = [numCL]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

// Lookup tables derived from the ones above, read-only after init.
var (
	lengthCode [256]uint8 // length-3 → length code index 0..28
	distCodeLo [256]uint8 // dist-1 < 256 → distance code
	distCodeHi [256]uint8 // (dist-1)>>7 for dist-1 >= 256 → distance code
	fixedLit   [288]uint8
	fixedLitC  [288]uint16
	fixedDist  [numDist]uint8
	fixedDistC [numDist]uint16
)

func init() {
	for c := range lengthBase {
		lo := int(lengthBase[c]) - minMatch
		hi := lo + 1<<lengthExtra[c]
		for l := lo; l < hi && l < 256; l++ {
			lengthCode[l] = uint8(c)
		}
	}
	lengthCode[255] = 28 // 258 has its own code
	for c := range distBase {
		lo := int(distBase[c]) - 1
		hi := lo + 1<<distExtra[c]
		for d := lo; d < hi; d++ {
			if d < 256 {
				distCodeLo[d] = uint8(c)
			} else {
				distCodeHi[d>>7] = uint8(c)
			}
		}
	}
	for s := range fixedLit {
		switch {
		case s < 144:
			fixedLit[s] = 8
		case s < 256:
			fixedLit[s] = 9
		case s < 280:
			fixedLit[s] = 7
		default:
			fixedLit[s] = 8
		}
	}
	canonicalCodes(fixedLit[:], fixedLitC[:])
	for s := range fixedDist {
		fixedDist[s] = 5
	}
	canonicalCodes(fixedDist[:], fixedDistC[:])
}

func distCode(d int) int {
	if d <= 256 {
		return int(distCodeLo[d-1])
	}
	return int(distCodeHi[(d-1)>>7])
}

// blockWriter chooses each block's encoding and writes it.
type blockWriter struct {
	out   []byte
	acc   uint64
	nbits uint

	litFreq  [numLitLen]int
	distFreq [numDist]int
	litLens  [numLitLen]uint8
	distLens [numDist]uint8
	litCodes [numLitLen]uint16
	distCode [numDist]uint16
	clFreq   [numCL]int
	clLens   [numCL]uint8
	clCodes  [numCL]uint16
	rle      []uint16 // code length symbols; extra bits value in the high byte
	allLens  []uint8
	sc       huffScratch
}

func (w *blockWriter) reset(dst []byte) {
	w.out, w.acc, w.nbits = dst, 0, 0
}

// bits appends the n low bits of v, LSB first; n <= 32.
func (w *blockWriter) bits(v uint32, n uint) {
	w.acc |= uint64(v) << w.nbits
	w.nbits += n
	if w.nbits >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		w.nbits -= 32
	}
}

// align pads to a byte boundary and moves every whole byte to out.
func (w *blockWriter) align() {
	w.nbits = (w.nbits + 7) &^ 7
	for w.nbits > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
	w.acc = 0
}

func (w *blockWriter) finish() []byte {
	w.align()
	return w.out
}

// writeBlock sends tokens, which encode raw, as one DEFLATE block (or
// several stored ones), in whichever of stored, fixed and dynamic Huffman
// form is smallest.
func (w *blockWriter) writeBlock(tokens []token, raw []byte, last bool) {
	clear(w.litFreq[:])
	clear(w.distFreq[:])
	extra := 0 // extra bits of lengths and distances, the same in both Huffman forms
	for _, t := range tokens {
		if !t.isMatch() {
			w.litFreq[t]++
			continue
		}
		lc := lengthCode[t.length()-minMatch]
		w.litFreq[257+int(lc)]++
		dc := distCode(t.dist())
		w.distFreq[dc]++
		extra += int(lengthExtra[lc]) + int(distExtra[dc])
	}
	w.litFreq[endBlock] = 1

	// Dynamic codes and the header that describes them.
	huffLengths(w.litFreq[:], 15, w.litLens[:], &w.sc)
	huffLengths(w.distFreq[:], 15, w.distLens[:], &w.sc)
	hlit := numLitLen
	for hlit > 257 && w.litLens[hlit-1] == 0 {
		hlit--
	}
	hdist := numDist
	for hdist > 1 && w.distLens[hdist-1] == 0 {
		hdist--
	}
	w.allLens = append(append(w.allLens[:0], w.litLens[:hlit]...), w.distLens[:hdist]...)
	w.encodeLengths(w.allLens)
	huffLengths(w.clFreq[:], 7, w.clLens[:], &w.sc)
	hclen := numCL
	for hclen > 4 && w.clLens[clOrder[hclen-1]] == 0 {
		hclen--
	}
	dynBits := 3 + 5 + 5 + 4 + 3*hclen + extra
	for s, f := range w.clFreq {
		dynBits += f * int(w.clLens[s])
	}
	dynBits += 2*w.clFreq[16] + 3*w.clFreq[17] + 7*w.clFreq[18]
	fixBits := 3 + extra
	for s, f := range w.litFreq {
		dynBits += f * int(w.litLens[s])
		fixBits += f * int(fixedLit[s])
	}
	for s, f := range w.distFreq {
		dynBits += f * int(w.distLens[s])
		fixBits += f * 5
	}
	storedBits := w.storedBits(len(raw))

	var final uint32
	if last {
		final = 1
	}
	switch {
	case storedBits <= fixBits && storedBits <= dynBits:
		w.writeStored(raw, last)
	case fixBits <= dynBits:
		w.bits(final|1<<1, 3)
		w.writeTokens(tokens, fixedLit[:], fixedLitC[:], fixedDist[:], fixedDistC[:])
	default:
		w.bits(final|2<<1, 3)
		w.bits(uint32(hlit-257), 5)
		w.bits(uint32(hdist-1), 5)
		w.bits(uint32(hclen-4), 4)
		for _, s := range clOrder[:hclen] {
			w.bits(uint32(w.clLens[s]), 3)
		}
		canonicalCodes(w.clLens[:], w.clCodes[:])
		for _, r := range w.rle {
			s := r & 0xff
			w.bits(uint32(w.clCodes[s]), uint(w.clLens[s]))
			switch s {
			case 16:
				w.bits(uint32(r>>8), 2)
			case 17:
				w.bits(uint32(r>>8), 3)
			case 18:
				w.bits(uint32(r>>8), 7)
			}
		}
		canonicalCodes(w.litLens[:], w.litCodes[:])
		canonicalCodes(w.distLens[:], w.distCode[:])
		w.writeTokens(tokens, w.litLens[:], w.litCodes[:], w.distLens[:], w.distCode[:])
	}
}

// storedBits is the size of raw sent as stored blocks from the current
// bit position.
func (w *blockWriter) storedBits(n int) int {
	pos := int(w.nbits)
	bitsUsed := 0
	for first := true; first || n > 0; first = false {
		k := min(n, 65535)
		h := 3 + (8-(pos+3)%8)%8 // header, then pad to a byte
		bitsUsed += h + 32 + 8*k
		pos = 0
		n -= k
	}
	return bitsUsed
}

func (w *blockWriter) writeStored(raw []byte, last bool) {
	for first := true; first || len(raw) > 0; first = false {
		k := min(len(raw), 65535)
		var final uint32
		if last && k == len(raw) {
			final = 1
		}
		w.bits(final, 3)
		w.align()
		w.out = binary.LittleEndian.AppendUint16(w.out, uint16(k))
		w.out = binary.LittleEndian.AppendUint16(w.out, ^uint16(k))
		w.out = append(w.out, raw[:k]...)
		raw = raw[k:]
	}
}

func (w *blockWriter) writeTokens(tokens []token, litLens []uint8, litCodes []uint16, distLens []uint8, distCodes []uint16) {
	for _, t := range tokens {
		if !t.isMatch() {
			w.bits(uint32(litCodes[t]), uint(litLens[t]))
			continue
		}
		l := t.length()
		lc := lengthCode[l-minMatch]
		s := 257 + int(lc)
		w.bits(uint32(litCodes[s])|uint32(l-int(lengthBase[lc]))<<litLens[s], uint(litLens[s])+uint(lengthExtra[lc]))
		d := t.dist()
		dc := distCode(d)
		w.bits(uint32(distCodes[dc])|uint32(d-int(distBase[dc]))<<distLens[dc], uint(distLens[dc])+uint(distExtra[dc]))
	}
	w.bits(uint32(litCodes[endBlock]), uint(litLens[endBlock]))
}

// encodeLengths run-length codes a sequence of code lengths with the code
// length alphabet (16: repeat the previous 3–6 times, 17: 3–10 zeros, 18:
// 11–138 zeros) into w.rle and counts the symbols in w.clFreq.
func (w *blockWriter) encodeLengths(lens []uint8) {
	clear(w.clFreq[:])
	w.rle = w.rle[:0]
	put := func(sym, extra int) {
		w.rle = append(w.rle, uint16(sym)|uint16(extra)<<8)
		w.clFreq[sym]++
	}
	for i := 0; i < len(lens); {
		v := lens[i]
		run := 1
		for i+run < len(lens) && lens[i+run] == v {
			run++
		}
		i += run
		if v == 0 {
			for run >= 11 {
				r := min(run, 138)
				put(18, r-11)
				run -= r
			}
			if run >= 3 {
				put(17, run-3)
				run = 0
			}
		} else {
			put(int(v), 0)
			run--
			for run >= 3 {
				r := min(run, 6)
				put(16, r-3)
				run -= r
			}
		}
		for ; run > 0; run-- {
			put(int(v), 0)
		}
	}
}
