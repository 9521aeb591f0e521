package jbd2

import (
	"encoding/binary"
	"fmt"
)

// pass is one of the kernel's three recovery passes.
type pass int

const (
	passScan   pass = iota // find the end of the valid log
	passRevoke             // collect the revoke records
	passReplay             // map every block not revoked to its copy
)

func (p pass) String() string { return [...]string{"scan", "revoke", "replay"}[p] }

// tidGT and tidGEQ compare transaction IDs that may wrap, as the kernel does.
func tidGT(x, y uint32) bool  { return int32(x-y) > 0 }
func tidGEQ(x, y uint32) bool { return int32(x-y) >= 0 }

// recovery carries what one pass learns to the next.
type recovery struct {
	j        *Journal
	end      uint32 // the first transaction not to replay (set by the scan)
	endKnown bool
	failed   bool // a commit block's checksum failed: the kernel refuses to mount
	failID   uint32
	// tagged holds every block a descriptor in the log names: revoke
	// records for other blocks change nothing, and keeping only these
	// bounds the revoke table by the journal's size.
	tagged  map[uint64]struct{}
	revoked map[uint64]uint32 // block -> the newest transaction revoking it
	out     *Replay
}

// Replay runs the three passes of recovery and returns where the newest
// committed copy of each logged block is.
func (j *Journal) Replay() (*Replay, error) {
	out := &Replay{Blocks: map[uint64]Copy{}, FirstTID: j.sequence, EndTID: j.sequence}
	if !j.NeedsReplay() {
		return out, nil
	}
	rc := &recovery{j: j, tagged: map[uint64]struct{}{}, revoked: map[uint64]uint32{}, out: out}
	for _, p := range []pass{passScan, passRevoke, passReplay} {
		if err := rc.pass(p); err != nil {
			return nil, err
		}
		if p == passScan && rc.failed {
			return nil, fmt.Errorf("transaction %d: commit block checksum mismatch: the transaction is corrupt", rc.failID)
		}
	}
	out.EndTID = rc.end
	return out, nil
}

// walk is the state of one pass over the log (the locals of the kernel's
// do_one_pass).
type walk struct {
	rc         *recovery
	p          pass
	next       uint32 // the transaction expected next
	pos        uint64 // the next log block
	walked     uint64 // log blocks walked: bounded by the journal's length
	crcSum     uint32 // checksum v1 of the transaction so far
	needTime   bool   // a descriptor or revoke checksum failed: the commit time decides
	lastCommit uint64 // the previous commit's time
	buf, obuf  []byte
}

func (rc *recovery) pass(p pass) error {
	j := rc.j
	w := &walk{rc: rc, p: p, next: j.sequence, pos: uint64(j.start), crcSum: ^uint32(0),
		buf: make([]byte, j.bs), obuf: make([]byte, j.bs)}
	for p == passScan || !tidGEQ(w.next, rc.end) {
		stop, err := w.step()
		if err != nil {
			return err
		}
		if stop {
			break
		}
	}
	switch {
	case p == passScan:
		if !rc.endKnown {
			rc.end, rc.endKnown = w.next, true
		}
	case w.next != rc.end:
		return fmt.Errorf("the %s pass ended at transaction %d, the scan at %d", p, w.next, rc.end)
	}
	return nil
}

// take returns the next log block's position and moves past it, wrapping
// at the end of the journal; the walk may not go round the whole journal.
func (w *walk) take() (uint32, error) {
	j := w.rc.j
	w.walked++
	if w.walked > uint64(j.maxlen) {
		return 0, fmt.Errorf("transaction %d: the log runs on past the journal's %d blocks", w.next, j.maxlen)
	}
	n := w.pos
	if n >= uint64(j.maxlen) {
		return 0, fmt.Errorf("transaction %d: log block %d outside the journal's %d blocks", w.next, n, j.maxlen)
	}
	w.pos++
	if w.pos >= uint64(j.maxlen) {
		w.pos -= uint64(j.maxlen - j.first)
	}
	return uint32(n), nil
}

// step reads the next block of the log and acts on it; stop: the valid
// log ends here.
func (w *walk) step() (stop bool, err error) {
	at, err := w.take()
	if err != nil {
		return false, err
	}
	if err := w.rc.j.ReadBlock(at, w.buf); err != nil {
		return false, fmt.Errorf("transaction %d: %w", w.next, err)
	}
	b := w.buf
	be := binary.BigEndian.Uint32
	if be(b) != Magic || be(b[8:]) != w.next {
		return true, nil // not a block of the expected transaction: the end
	}
	switch be(b[4:]) {
	case typeDescriptor:
		return false, w.descriptor(at, b)
	case typeCommit:
		return w.commit(b)
	case typeRevoke:
		return false, w.revoke(at, b)
	}
	return true, nil // unknown block type: the end, as for the kernel
}

// tag is one block tag of a descriptor block.
type tag struct {
	block uint64
	flags uint16
	off   int
}

// tags decodes a descriptor block's tags (the kernel's count_tags walk).
func (j *Journal) tags(b []byte) []tag {
	var out []tag
	for o := headerSize; o+j.tagBytes <= j.bs-j.tailBytes; {
		t := tag{block: uint64(binary.BigEndian.Uint32(b[o:])), flags: binary.BigEndian.Uint16(b[o+6:]), off: o}
		if j.has64() {
			t.block |= uint64(binary.BigEndian.Uint32(b[o+8:])) << 32
		}
		out = append(out, t)
		o += j.tagBytes
		if t.flags&flagSameUUID == 0 {
			o += 16
		}
		if t.flags&flagLastTag != 0 {
			break
		}
	}
	return out
}

// tailOK checks the checksum tail of a descriptor or revoke block (v2/v3).
func (j *Journal) tailOK(b []byte) bool {
	if !j.csum() {
		return true
	}
	t := len(b) - 4
	want := binary.BigEndian.Uint32(b[t:])
	c := crc32c(j.seed, b[:t])
	return crc32c(c, []byte{0, 0, 0, 0}) == want
}

// commitOK checks a commit block's checksum (v2/v3).
func (j *Journal) commitOK(b []byte) bool {
	if !j.csum() {
		return true
	}
	want := binary.BigEndian.Uint32(b[0x10:])
	c := crc32c(j.seed, b[:0x10])
	c = crc32c(c, []byte{0, 0, 0, 0})
	return crc32c(c, b[0x14:]) == want
}

// tagOK checks a logged block against its tag's checksum (v2/v3).
func (j *Journal) tagOK(desc []byte, t tag, seq uint32, b []byte) bool {
	if !j.csum() {
		return true
	}
	var s [4]byte
	binary.BigEndian.PutUint32(s[:], seq)
	c := crc32c(crc32c(j.seed, s[:]), b)
	if j.incompat&incompatCsumV3 != 0 {
		return binary.BigEndian.Uint32(desc[t.off+12:]) == c
	}
	return binary.BigEndian.Uint16(desc[t.off+4:]) == uint16(c)
}

// descriptor handles a descriptor block at log block at: the scan skips
// (or, with checksum v1, sums) the blocks it describes, the replay maps
// them.
func (w *walk) descriptor(at uint32, b []byte) error {
	j, rc := w.rc.j, w.rc
	if !j.tailOK(b) {
		// The scan may meet stale blocks of an older log: the commit
		// time decides (see commit).
		if w.p != passScan {
			return fmt.Errorf("transaction %d: descriptor block %d: checksum mismatch", w.next, at)
		}
		w.needTime = true
	}
	tags := j.tags(b)
	switch w.p {
	case passScan:
		for _, t := range tags {
			rc.tagged[t.block] = struct{}{}
		}
		if j.compat&compatChecksum == 0 || w.needTime || rc.endKnown {
			return w.skip(len(tags))
		}
		// Checksum v1: the commit block holds the crc32_be of the
		// transaction's descriptor and logged blocks.
		w.crcSum = crc32be(w.crcSum, b)
		for range tags {
			n, err := w.take()
			if err != nil {
				return err
			}
			if err := j.ReadBlock(n, w.obuf); err != nil {
				return fmt.Errorf("transaction %d: %w", w.next, err)
			}
			w.crcSum = crc32be(w.crcSum, w.obuf)
		}
		return nil
	case passRevoke:
		return w.skip(len(tags))
	}
	for _, t := range tags {
		n, err := w.take()
		if err != nil {
			return err
		}
		if r, ok := rc.revoked[t.block]; ok && !tidGT(w.next, r) {
			rc.out.Revoked++
			continue
		}
		if j.csum() {
			if err := j.ReadBlock(n, w.obuf); err != nil {
				return fmt.Errorf("transaction %d: %w", w.next, err)
			}
			if !j.tagOK(b, t, w.next, w.obuf) {
				return fmt.Errorf("transaction %d: journal block %d (a copy of filesystem block %d): checksum mismatch", w.next, n, t.block)
			}
		}
		if t.block >= j.fsBlocks {
			return fmt.Errorf("transaction %d: journal block %d: a copy of block %d, outside the filesystem's %d blocks", w.next, n, t.block, j.fsBlocks)
		}
		rc.out.Blocks[t.block] = Copy{Block: n, Escaped: t.flags&flagEscape != 0}
		rc.out.Replayed++
	}
	return nil
}

// skip moves past n logged blocks.
func (w *walk) skip(n int) error {
	for range n {
		if _, err := w.take(); err != nil {
			return err
		}
	}
	return nil
}

// commit handles a commit block: the scan checks its checksums (v1: the
// transaction's crc32_be, v2/v3: the block's crc32c) and decides, as the
// kernel does, between an interrupted commit (the log ends), a stale
// block of an older log (the log ends) and corruption (an error).
func (w *walk) commit(b []byte) (stop bool, err error) {
	j, rc := w.rc.j, w.rc
	commitTime := binary.BigEndian.Uint64(b[0x30:])
	if w.needTime {
		if commitTime >= w.lastCommit {
			return false, fmt.Errorf("transaction %d: descriptor or revoke block checksum mismatch", w.next)
		}
		return true, nil // likely a stale block of an older log
	}
	bad := false
	if w.p == passScan && j.compat&compatChecksum != 0 {
		if rc.endKnown {
			rc.failed, rc.failID = true, rc.end
			return false, nil
		}
		found, typ, size := binary.BigEndian.Uint32(b[0x10:]), b[0xc], b[0xd]
		if w.crcSum == found && typ == chksumCRC32 && size == 4 || typ == 0 && size == 0 && found == 0 {
			w.crcSum = ^uint32(0)
		} else {
			bad = true
		}
	}
	if w.p == passScan && !bad && !j.commitOK(b) {
		bad = true
	}
	if bad {
		if commitTime < w.lastCommit {
			return true, nil // stale
		}
		rc.end, rc.endKnown = w.next, true
		if j.incompat&incompatAsyncCommit == 0 {
			rc.failed, rc.failID = true, w.next
			return false, nil
		}
	}
	if w.p == passScan {
		w.lastCommit = commitTime
	}
	w.next++
	return false, nil
}

// revoke handles a revoke block: the revoke pass records, for the blocks
// the log holds copies of, the newest transaction that revokes them.
func (w *walk) revoke(at uint32, b []byte) error {
	j, rc := w.rc.j, w.rc
	if w.p == passScan && !j.tailOK(b) {
		w.needTime = true
	}
	if w.p != passRevoke {
		return nil
	}
	count := binary.BigEndian.Uint32(b[12:])
	if max := uint32(j.bs - j.tailBytes); count > max {
		return fmt.Errorf("transaction %d: revoke block %d: %d bytes of records, at most %d fit", w.next, at, count, max)
	}
	rl := uint32(4)
	if j.has64() {
		rl = 8
	}
	for off := uint32(16); off+rl <= count; off += rl {
		var blk uint64
		if rl == 4 {
			blk = uint64(binary.BigEndian.Uint32(b[off:]))
		} else {
			blk = binary.BigEndian.Uint64(b[off:])
		}
		if _, ok := rc.tagged[blk]; !ok {
			continue
		}
		if r, ok := rc.revoked[blk]; !ok || tidGT(w.next, r) {
			rc.revoked[blk] = w.next
		}
	}
	return nil
}
