package jbd2

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReplay opens and replays mutated journals of 1 KiB blocks, then
// reads every block the replay maps: it must return, with or without an
// error, never panic, hang or allocate beyond the journal's size. Seeds:
// real journals the kernel left after a power cut (testdata/*.jnl.gz, the
// log trimmed to the blocks it uses, see TestCrashReplay in ext4fs) and
// synthetic ones of every layout.
func FuzzReplay(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.jnl.gz")
	for _, s := range seeds {
		b, err := readGzip(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, ft := range features {
		b := newBuilder(1024, 24, ft.compat, ft.incompat)
		b.pos = 14
		start := b.pos
		b.write(txn{blocks: []uint64{10, 11, 1<<33 + 1}, magic: map[uint64]bool{11: true}})
		b.write(txn{blocks: []uint64{11, 12}, revoke: []uint64{10}})
		b.write(txn{blocks: []uint64{13}, nocommit: true})
		f.Add(bytes.Clone(b.super(start, 100)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bs := 1024
		if len(b) >= 16 && binary.BigEndian.Uint32(b[0xc:]) == 4096 {
			bs = 4096
		}
		j, err := Open(bytes.NewReader(b), int64(len(b)), bs, 1<<34)
		if err != nil {
			return
		}
		rep, err := j.Replay()
		if err != nil {
			return
		}
		if len(rep.Blocks) > int(j.Len()) {
			t.Fatalf("%d blocks replayed from a journal of %d", len(rep.Blocks), j.Len())
		}
		p := make([]byte, bs)
		for _, c := range rep.Blocks {
			if err := j.ReadBlock(c.Block, p); err != nil {
				t.Fatalf("a mapped copy does not read: %v", err)
			}
		}
	})
}

func readGzip(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(z, 4<<20))
}

// TestKernelSeeds: the real journals (written by the kernel, trimmed)
// replay without error and map blocks.
func TestKernelSeeds(t *testing.T) {
	seeds, _ := filepath.Glob("testdata/*.jnl.gz")
	if len(seeds) == 0 {
		t.Skip("no testdata/*.jnl.gz")
	}
	for _, s := range seeds {
		b, err := readGzip(s)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := replayImage(b, 1024)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		t.Logf("%s: %d transactions, %d blocks, %d revoked", s, rep.EndTID-rep.FirstTID, len(rep.Blocks), rep.Revoked)
		if len(rep.Blocks) == 0 {
			t.Errorf("%s: nothing replayed", s)
		}
	}
}
