package image

import (
	"encoding/binary"
	"errors"
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
	Table      string // "gpt" or "mbr"
	DiskID     uint32 // MBR disk signature
	Partitions []Placed
}

// mbrName is rfs's name of MBR partition i (1-4) of n: MBR partitions
// have no names of their own. Boot, root, then layers, and the data
// partition last.
func mbrName(i, n int) string {
	switch {
	case i == 1:
		return BootPartition
	case i == 2:
		return RootPartition
	case i == n && n >= 3:
		return DataPartition
	}
	return LayerPartition(i - 2)
}

func (d *Disk) readMBR() error {
	var sector [512]byte
	if _, err := d.f.ReadAt(sector[:], 0); err != nil {
		return err
	}
	if sector[510] != 0x55 || sector[511] != 0xaa {
		return errors.New("no MBR signature")
	}
	d.Table = "mbr"
	d.DiskID = binary.LittleEndian.Uint32(sector[440:])
	for i := 0; i < 4; i++ {
		e := sector[446+16*i : 446+16*(i+1)]
		typ := e[4]
		if typ == 0 || typ == 0xee {
			if typ == 0xee {
				return errors.New("protective MBR of a damaged GPT")
			}
			continue
		}
		start := int64(binary.LittleEndian.Uint32(e[8:])) * 512
		size := int64(binary.LittleEndian.Uint32(e[12:])) * 512
		d.Partitions = append(d.Partitions, Placed{
			Partition: Partition{GUID: MBRPartUUID(d.DiskID, i+1), MBRType: typ, Bootable: e[0] == 0x80, Size: size},
			Index:     i + 1,
			Start:     start,
		})
	}
	for i := range d.Partitions {
		d.Partitions[i].Name = mbrName(d.Partitions[i].Index, d.Partitions[len(d.Partitions)-1].Index)
	}
	if len(d.Partitions) == 0 {
		return errors.New("empty MBR")
	}
	return nil
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
