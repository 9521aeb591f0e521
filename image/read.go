package image

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// Disk is an image (or block device) opened for reading.
type Disk struct {
	f          *os.File
	size       int64
	Partitions []Placed
}

// Open reads the partition table of the image at path.
func Open(path string) (*Disk, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	table, err := gpt.Read(f, 512, 512)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w: no valid GPT (%v)", path, ErrNotRFS, err)
	}
	d := &Disk{f: f, size: size}
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
	return data, nil
}
