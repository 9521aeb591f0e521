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

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/rfsbuild/rfs/infile"
	"github.com/rfsbuild/rfs/overlay"
)

// Disk is an image (or block device) opened for reading.
type Disk struct {
	f          *os.File
	size       int64
	Table      string // "gpt" or "mbr"
	DiskID     uint32 // MBR disk signature
	Partitions []Placed
}

// readMBR reads an MBR table, its logical partitions included (with
// overlay's reader, the one the init uses). MBR partitions have no names:
// by their place on the disk they are boot, root, the layers, and the
// data partition last.
func (d *Disk) readMBR() error {
	var sector [512]byte
	if _, err := d.f.ReadAt(sector[:], 0); err != nil {
		return err
	}
	t, err := overlay.ReadTable(d.f, d.size, 512)
	if err != nil {
		return err
	}
	if t.Kind != overlay.TableMBR {
		return errors.New("protective MBR of a damaged GPT")
	}
	d.Table = "mbr"
	d.DiskID = binary.LittleEndian.Uint32(sector[440:])
	for _, p := range t.Partitions {
		typ, err := strconv.ParseUint(strings.TrimPrefix(p.Type, "0x"), 16, 8)
		if err != nil {
			return fmt.Errorf("partition %d: type %q: %w", p.Number, p.Type, err)
		}
		if typ == 0x05 || typ == MBRTypeExtended || typ == 0x85 {
			continue // the container of the logical partitions
		}
		d.Partitions = append(d.Partitions, Placed{
			Partition: Partition{
				GUID: p.PARTUUID, MBRType: byte(typ), Size: p.Size,
				Bootable: p.Number <= 4 && sector[446+16*(p.Number-1)] == 0x80,
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
	return nil
}

// Open reads the partition table of the image at path.
func Open(path string) (*Disk, error) {
	f, err := infile.OpenDisk("image", path)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d := &Disk{f: f, size: size}
	table, err := gpt.Read(f, 512, 512)
	if err != nil {
		if err := d.readMBR(); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w: no valid GPT or MBR partition table", path, ErrNotRFS)
		}
		return d, nil
	}
	d.Table = "gpt"
	for i, p := range table.Partitions {
		if p.Type == gpt.Unused {
			continue
		}
		d.Partitions = append(d.Partitions, Placed{
			Partition: Partition{Name: p.Name, Type: strings.ToLower(string(p.Type)), GUID: strings.ToLower(p.GUID), Size: int64(p.Size)},
			Index:     i + 1,
			Start:     int64(p.Start) * 512,
		})
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

// ReadFile reads a file from the FAT filesystem of partition p. It uses
// go-diskfs's FAT reader, which is independent of rfs's FAT writer, so every
// `rfs run` also checks what the writer produced.
func (d *Disk) ReadFile(p Placed, name string) ([]byte, error) {
	fs, err := fat32.Read(file.New(d.f, true), p.Size, p.Start, 512)
	if err != nil {
		return nil, fmt.Errorf("read FAT of %s partition: %w", p.Name, err)
	}
	fh, err := fs.OpenFile("/"+strings.TrimPrefix(name, "/"), os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("%s partition: %s: %w", p.Name, name, err)
	}
	defer fh.Close()
	data, err := io.ReadAll(fh)
	if err != nil {
		return nil, fmt.Errorf("%s partition: read %s: %w", p.Name, name, err)
	}
	// go-diskfs v1.9.4 can return a file padded with zeros to a whole
	// number of sectors (seen: 924 bytes read as 1024): cut it to the
	// size in the directory entry.
	if st, ok := fh.(interface{ Stat() (os.FileInfo, error) }); ok {
		if info, err := st.Stat(); err == nil && info.Size() < int64(len(data)) {
			data = data[:info.Size()]
		}
	}
	return data, nil
}
