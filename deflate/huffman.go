package deflate

import (
	"math/bits"
	"slices"
)

// huffLengths sets lens[s] to the code length of each symbol s so that
// the total sum(freq[s]*lens[s]) is smallest with no length above limit
// (optimal length-limited codes, by package-merge). Symbols with zero
// frequency get length 0. If fewer than two symbols occur, the lengths of
// symbols 0 and 1 (or of the one symbol and another) are set to 1: every
// decoder accepts a complete two-code tree, not all accept less.
func huffLengths(freq []int, limit int, lens []uint8, sc *huffScratch) {
	clear(lens)
	leaves := sc.leaves[:0]
	for s, f := range freq {
		if f > 0 {
			leaves = append(leaves, leaf{w: f, sym: s})
		}
	}
	sc.leaves = leaves
	if len(leaves) < 2 {
		switch {
		case len(leaves) == 0:
			lens[0], lens[1] = 1, 1
		case leaves[0].sym == 0:
			lens[0], lens[1] = 1, 1
		default:
			lens[0], lens[leaves[0].sym] = 1, 1
		}
		return
	}
	slices.SortFunc(leaves, func(a, b leaf) int {
		if a.w != b.w {
			return a.w - b.w
		}
		return a.sym - b.sym
	})
	packageMerge(leaves, limit, lens, sc)
}

type leaf struct {
	w   int
	sym int
}

// huffScratch is reused between calls to keep huffLengths allocation-free.
type huffScratch struct {
	leaves []leaf
	lists  [][]item
	depth  []int
}

// item is a leaf or a package in package-merge.
type item struct {
	w    int
	leaf int // index into the sorted leaves, or -1 for a package
	// For a package, 2*(its index among the packages of its level + 1):
	// the length of the prefix of the level below that ends with it.
	prefix int
}

// packageMerge is Larmore and Hirschberg's package-merge. Level 0 is the
// sorted leaves; each higher level merges the leaves with the pairs
// ("packages") of the level below. Of the top level, the first 2n-2 items
// are taken, and the packages among them take a prefix of the level
// below, and so on down; a leaf's code length is the number of levels at
// which it is taken. Needs 2 <= n <= 2^limit.
func packageMerge(leaves []leaf, limit int, lens []uint8, sc *huffScratch) {
	n := len(leaves)
	if len(sc.lists) < limit {
		sc.lists = make([][]item, limit)
	}
	lists := sc.lists[:limit]
	lists[0] = lists[0][:0]
	for i, lf := range leaves {
		lists[0] = append(lists[0], item{w: lf.w, leaf: i})
	}
	for l := 1; l < limit; l++ {
		below := lists[l-1]
		pkgs := len(below) / 2
		out := lists[l][:0]
		li, pi := 0, 0
		for li < n || pi < pkgs {
			if pi < pkgs {
				pw := below[2*pi].w + below[2*pi+1].w
				if li >= n || pw < leaves[li].w {
					out = append(out, item{w: pw, leaf: -1, prefix: 2*pi + 2})
					pi++
					continue
				}
			}
			out = append(out, item{w: leaves[li].w, leaf: li})
			li++
		}
		lists[l] = out
	}
	if cap(sc.depth) < n {
		sc.depth = make([]int, n)
	}
	depth := sc.depth[:n]
	clear(depth)
	k := 2*n - 2
	for l := limit - 1; l >= 0 && k > 0; l-- {
		next := 0
		for _, it := range lists[l][:k] {
			if it.leaf >= 0 {
				depth[it.leaf]++
			} else {
				next = it.prefix
			}
		}
		k = next
	}
	for i, lf := range leaves {
		lens[lf.sym] = uint8(depth[i])
	}
}

// canonicalCodes sets codes[s] to the canonical Huffman code of each
// symbol (RFC 1951 3.2.2), bit-reversed so it can be written LSB first.
func canonicalCodes(lens []uint8, codes []uint16) {
	var count [16]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	var next [16]int
	code := 0
	for l := 1; l < 16; l++ {
		code = (code + count[l-1]) << 1
		next[l] = code
	}
	for s, l := range lens {
		if l == 0 {
			codes[s] = 0
			continue
		}
		codes[s] = bits.Reverse16(uint16(next[l])) >> (16 - l)
		next[l]++
	}
}
