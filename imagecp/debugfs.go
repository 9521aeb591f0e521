package imagecp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/image/ext4"
	"github.com/rfsbuild/rfs/reset"
	"github.com/rfsbuild/rfs/subproc"
)

// script is a debugfs command file. Names are double-quoted, a quote
// doubled (debugfs's parser, ss_parse); a name with a newline cannot be
// written and is refused before (checkName).
type script struct{ b strings.Builder }

// q quotes a name or path for debugfs.
func q(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (s *script) add(words ...string) {
	s.b.WriteString(strings.Join(words, " "))
	s.b.WriteByte('\n')
}

// setAttrs sets an inode's mode (type bits included), owner and mtime.
func (s *script) setAttrs(p string, mode uint32, uid, gid uint32, mtime int64) {
	s.add("sif", q(p), "mode", "0"+strconv.FormatUint(uint64(mode), 8))
	s.add("sif", q(p), "uid", strconv.FormatUint(uint64(uid), 10))
	s.add("sif", q(p), "gid", strconv.FormatUint(uint64(gid), 10))
	s.add("sif", q(p), "mtime", "@"+strconv.FormatInt(mtime, 10))
}

// checkName refuses names debugfs's command lines cannot carry.
func checkName(p string) error {
	if strings.ContainsAny(p, "\n\r\x00") {
		return fmt.Errorf("%q: a name with a newline cannot be copied into an image", p)
	}
	return nil
}

// fsSpec names the ext4 at byte off of path for e2fsprogs (unix_io's
// "?offset=" suffix), so an image or a card is used without a loop device.
func fsSpec(path string, off int64) string {
	return path + "?offset=" + strconv.FormatInt(off, 10)
}

// tool finds an e2fsprogs program or says how to install it.
func tool(name string) (string, error) {
	if p, ok := ext4.FindTool(name); ok {
		return p, nil
	}
	return "", fmt.Errorf("%s not found: rfs cp writes the data partition's ext4 with e2fsprogs (Debian/Ubuntu: apt-get install e2fsprogs; macOS: brew install e2fsprogs)", name)
}

// runDebugfs runs s with debugfs -w on the ext4 at spec. debugfs exits 0
// whatever its commands do, so every line on its standard error but the
// version banner is a failure.
func runDebugfs(ctx context.Context, spec string, s *script) error {
	bin, err := tool("debugfs")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "rfs-cp-*.debugfs")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(s.b.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd := subproc.Command(ctx, bin, "-w", "-f", f.Name(), spec)
	cmd.Stderr = &stderr
	if err := subproc.Err(ctx, "debugfs", cmd.Run()); err != nil {
		return fmt.Errorf("debugfs: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var problems []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "debugfs ") {
			problems = append(problems, l)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("debugfs -w on %s failed (the partition may be half written: e2fsck -f it, or copy again): %s", spec, strings.Join(problems, "; "))
	}
	return nil
}

// recoverJournal replays the journal of the data partition with e2fsck
// -p, which is what the kernel would do at mount: debugfs writes the
// filesystem as it is on disk, and a later replay would overwrite what it
// wrote. e2fsprogs cannot replay a journal through "?offset=" (it reopens
// the device without it), so e2fsck runs on the partition's own node on a
// card, and on a copy of the partition for an image, whose changed blocks
// are written back.
func recoverJournal(ctx context.Context, t *reset.Target) error {
	if node := t.PartitionNode(t.Data); node != "" {
		return e2fsckPreen(ctx, node)
	}
	tmp, err := os.CreateTemp("", "rfs-cp-data-*.ext4")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	f, err := os.OpenFile(t.Path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	part := io.NewSectionReader(f, t.Data.Start, t.Data.Size)
	if err := tmp.Truncate(t.Data.Size); err != nil {
		return err
	}
	if err := copyChanged(ctx, tmp, part, t.Data.Size); err != nil {
		return fmt.Errorf("copy the data partition: %w", err)
	}
	if err := e2fsckPreen(ctx, tmp.Name()); err != nil {
		return err
	}
	return copyChanged(ctx, offsetWriter{f, t.Data.Start}, io.NewSectionReader(tmp, 0, t.Data.Size), t.Data.Size)
}

// copyChunk is the unit copyChanged compares.
const copyChunk = 1 << 20

// copyChanged writes to w the chunks of r (size bytes) that differ from
// what w holds; w reads as zeros where it was never written (a new sparse
// file), so zero chunks are not written to a copy.
func copyChanged(ctx context.Context, w interface {
	io.WriterAt
	io.ReaderAt
}, r io.ReaderAt, size int64) error {
	a, b := make([]byte, copyChunk), make([]byte, copyChunk)
	for off := int64(0); off < size; off += copyChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(copyChunk, size-off))
		if _, err := r.ReadAt(a[:n], off); err != nil {
			return err
		}
		m, err := w.ReadAt(b[:n], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		clear(b[m:n])
		if !bytes.Equal(a[:n], b[:n]) {
			if _, err := w.WriteAt(a[:n], off); err != nil {
				return err
			}
		}
	}
	return nil
}

// offsetWriter is a file seen from byte off on.
type offsetWriter struct {
	f   *os.File
	off int64
}

func (o offsetWriter) ReadAt(p []byte, off int64) (int, error)  { return o.f.ReadAt(p, o.off+off) }
func (o offsetWriter) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, o.off+off) }

// e2fsckPreen runs e2fsck -p on the ext4 at spec: the journal replayed,
// what a preen fixes fixed; exit status 1 and 2 mean "corrected".
func e2fsckPreen(ctx context.Context, spec string) error {
	bin, err := tool("e2fsck")
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd := subproc.Command(ctx, bin, "-p", spec)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = subproc.Err(ctx, "e2fsck", cmd.Run())
	var ee interface{ ExitCode() int }
	if errors.As(err, &ee) && ee.ExitCode() > 0 && ee.ExitCode() < 4 {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("e2fsck -p on the data partition (journal recovery): %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
