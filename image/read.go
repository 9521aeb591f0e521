package image

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/infile"
	"github.com/rfsbuild/rfs/ptable"
	"github.com/rfsbuild/rfs/quote"
)

// Disk is an image (or block device) opened for reading.
type Disk struct {
	f          diskFile
	size       int64
	Path       string // as given, for messages
	Table      string // "gpt" or "mbr"
	DiskID     uint32 // MBR disk signature
	Partitions []Placed
	// tableID is the table's disk id as rfs.json's layout records it: the
	// GPT disk GUID, or the MBR signature as 8 hex digits.
	tableID string
}

// diskFile is what a Disk reads: an image file or block device (or bytes,
// in the fuzz test).
type diskFile interface {
	io.ReaderAt
	io.Closer
}

// readMBR takes the partitions of an MBR table t, its logical partitions
// included (read by ptable's reader, the one the init uses). MBR
// partitions have no names: by their place on the disk they are boot,
// root, the layers, and the data partition last.
func (d *Disk) readMBR(t *ptable.Table) error {
	var sector [512]byte
	if _, err := d.f.ReadAt(sector[:], 0); err != nil {
		return err
	}
	d.Table = "mbr"
	d.DiskID = binary.LittleEndian.Uint32(sector[440:])
	for _, p := range t.Partitions {
		typ, err := strconv.ParseUint(strings.TrimPrefix(p.Type, "0x"), 16, 8)
		if err != nil {
			return fmt.Errorf("partition %d: type %q: %w", p.Number, p.Type, err)
		}
		if p.Extended() {
			continue // the container of the logical partitions
		}
		d.Partitions = append(d.Partitions, Placed{
			Partition: Partition{
				GUID: p.PARTUUID, MBRType: byte(typ), Size: p.Size,
				Bootable: p.Bootable,
				Logical:  p.Number > 4,
			},
			Index: p.Number,
			Start: p.Start,
		})
	}
	if len(d.Partitions) == 0 {
		return errors.New("empty MBR")
	}
	byStart := slices.Clone(d.Partitions)
	slices.SortFunc(byStart, func(a, b Placed) int { return cmp.Compare(a.Start, b.Start) })
	names := map[int]string{}
	for i, p := range byStart {
		switch {
		case i == 0:
			names[p.Index] = BootPartition
		case i == 1:
			names[p.Index] = RootPartition
		case i == len(byStart)-1 && i >= 2:
			names[p.Index] = DataPartition
		default:
			names[p.Index] = LayerPartition(i - 1)
		}
	}
	for i := range d.Partitions {
		d.Partitions[i].Name = names[d.Partitions[i].Index]
	}
	for i := range t.Partitions {
		t.Partitions[i].Name = names[t.Partitions[i].Number]
	}
	return nil
}

// readGPT takes the partitions of a GPT table t.
func (d *Disk) readGPT(t *ptable.Table) {
	d.Table = "gpt"
	for _, p := range t.Partitions {
		d.Partitions = append(d.Partitions, Placed{
			Partition: Partition{Name: p.Name, Type: p.Type, GUID: p.PARTUUID, Size: p.Size},
			Index:     p.Number,
			Start:     p.Start,
		})
	}
}

// Open reads the partition table of the image (or block device) at path
// with ptable's bounded reader, the one the init uses, and checks that
// every partition lies inside the image: a truncated image is an error
// here, before anything reads past its end.
func Open(path string) (*Disk, error) {
	f, err := infile.OpenDisk("image", path)
	if err != nil {
		return nil, err
	}
	d, err := open(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

func open(f *os.File, path string) (*Disk, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return readDisk(f, size, path, st.Mode()&os.ModeDevice != 0)
}

// readDisk reads the table of the disk r of size bytes (device: a block
// device, else an image file; for messages).
func readDisk(f diskFile, size int64, path string, device bool) (*Disk, error) {
	d := &Disk{f: f, size: size, Path: path}
	t, err := ptable.ReadTable(f, size, 512)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: no valid GPT or MBR partition table (%v)", path, ErrNotRFS, err)
	}
	d.tableID = t.DiskID
	if t.Kind == ptable.TableGPT {
		d.readGPT(t)
	} else if err := d.readMBR(t); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrNotRFS, err)
	}
	what := "image"
	if device {
		what = "device"
	}
	if err := t.Check(size, what); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// Close releases the image.
func (d *Disk) Close() error { return d.f.Close() }

// Size is the size of the image in bytes.
func (d *Disk) Size() int64 { return d.size }

// Partition returns the partition with the given GPT name.
func (d *Disk) Partition(name string) (Placed, error) {
	for _, p := range d.Partitions {
		if p.Name == name {
			return p, nil
		}
	}
	return Placed{}, fmt.Errorf("%w: no %q partition", ErrNotRFS, name)
}

// Section returns a reader over a partition's bytes.
func (d *Disk) Section(p Placed) *io.SectionReader {
	return io.NewSectionReader(d.f, p.Start, p.Size)
}

// ReadFile reads a file from the FAT filesystem of partition p, up to the
// partition's size. It uses rfs's own bounded FAT reader (image/fat's
// FS), which checks the boot sector and every cluster chain against the
// partition and shares no code with the FAT writer, so every `rfs run`
// also checks what the writer produced.
func (d *Disk) ReadFile(p Placed, name string) ([]byte, error) {
	return d.ReadFileMax(p, name, p.Size)
}

// ReadFileMax is ReadFile for a file that must not exceed limit bytes
// (rfs.json, cmdline.txt: small files a hostile image could make huge).
func (d *Disk) ReadFileMax(p Placed, name string, limit int64) ([]byte, error) {
	fs, err := fat.Open(d.Section(p), p.Size)
	if err != nil {
		return nil, fmt.Errorf("read FAT of %s partition: %w", quote.Name(p.Name), err)
	}
	data, err := fs.ReadFile(name, limit)
	if err != nil {
		return nil, fmt.Errorf("%s partition: %w", quote.Name(p.Name), err)
	}
	return data, nil
}
