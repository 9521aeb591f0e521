package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/image/fat"
	"github.com/rfsbuild/rfs/release"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/squashfs/sqsb"
)

// Release is a release read from an image: its config and each part's
// bytes. Close it to close the image.
type Release struct {
	Config Config
	blobs  []blob // as Config.Parts
	img    *image.Image
}

// blob opens a part's bytes.
type blob struct {
	open func() (io.ReadCloser, error)
}

// Close closes the image the release was read from.
func (r *Release) Close() error { return r.img.Close() }

// ReadImage reads the release held by the rfs image at path: kernel (the
// file rfs.json's kernel_file names: on a UEFI PC the UKI) and initramfs
// from the boot partition, the boot partition's other files as one tar
// ("boot-files": firmware, DTBs, overlays, config.txt, cmdline.txt and
// rfs.json on a Pi; cmdline.txt and rfs.json elsewhere), the root squashfs and each
// layer squashfs (the bytes the squashfs uses, not the partition's
// padding). version "" means the build epoch (the root squashfs's mtime,
// which rfs build sets to it) in decimal seconds.
//
// Of an image with A/B slots it reads the committed slot (slot.txt): its
// kernel and initramfs from slot-X/, the slot directory's other files
// but release.json as the boot files (cmdline.txt), and the slot's root;
// version "" is then the version its release.json records.
func ReadImage(path, version string) (*Release, error) {
	img, err := image.OpenImage(path)
	if err != nil {
		return nil, err
	}
	r := &Release{img: img}
	if err := r.read(version); err != nil {
		img.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func (r *Release) read(version string) error {
	boot, err := r.img.ReadBoot()
	if err != nil {
		return err
	}
	root, err := r.img.Root()
	if err != nil {
		return err
	}
	rootPart, rootBlob, sb, err := r.squashfs("root", RoleRoot, root)
	if err != nil {
		return err
	}
	if version == "" {
		if version, err = r.slotVersion(); err != nil {
			return err
		}
	}
	if version == "" {
		version = strconv.FormatUint(uint64(sb.MTime), 10)
	}
	r.Config = Config{
		Board: boot.Meta.Board, Arch: boot.Meta.Arch, Version: version, BuildID: boot.Meta.BuildID,
		Created: time.Unix(int64(sb.MTime), 0).UTC().Format(time.RFC3339),
	}
	tarball, err := r.bootFiles(boot, int64(sb.MTime))
	if err != nil {
		return err
	}
	// Manifest order: what boots first, then the lowers bottom to top.
	r.addBytes("kernel", RoleKernel, boot.Kernel)
	r.addBytes("initramfs", RoleInitramfs, boot.Initrd)
	r.addBytes("boot-files", RoleBootFiles, tarball)
	r.add(rootPart, rootBlob)
	for _, l := range r.img.Layers() {
		p, b, _, err := r.squashfs(fmt.Sprintf("layer-%d", l.Layer), RoleLayer, l)
		if err != nil {
			return err
		}
		r.add(p, b)
	}
	return nil
}

func (r *Release) add(p Part, b blob) {
	r.Config.Parts = append(r.Config.Parts, p)
	r.blobs = append(r.blobs, b)
}

// addBytes adds a part held in memory.
func (r *Release) addBytes(name, role string, data []byte) {
	sum := sha256.Sum256(data)
	r.add(Part{Name: name, Role: role, MediaType: release.RoleMediaType(role), Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))},
		blob{open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }})
}

// squashfs makes a part of the squashfs in partition p: as many bytes as
// its superblock says it uses (checked against the partition), hashed
// once here and read again when pushed.
func (r *Release) squashfs(name, role string, p image.Part) (Part, blob, *sqsb.Superblock, error) {
	sec := r.img.Section(p.Placed)
	head := make([]byte, sqsb.Size)
	if _, err := sec.ReadAt(head, 0); err != nil {
		return Part{}, blob{}, nil, fmt.Errorf("%s partition: read squashfs superblock: %w", p.Name, err)
	}
	sb, err := sqsb.Parse(head)
	if err != nil {
		return Part{}, blob{}, nil, fmt.Errorf("%s partition: %w", p.Name, err)
	}
	if sb.BytesUsed < sqsb.Size || sb.BytesUsed > uint64(p.Size) {
		return Part{}, blob{}, nil, fmt.Errorf("%s partition: squashfs says it uses %d bytes of a %d-byte partition", p.Name, sb.BytesUsed, p.Size)
	}
	used := int64(sb.BytesUsed)
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(sec, 0, used)); err != nil {
		return Part{}, blob{}, nil, fmt.Errorf("%s partition: %w", p.Name, err)
	}
	part := Part{Name: name, Role: role, MediaType: MediaSquashfs, Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: used}
	open := func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(sec, 0, used)), nil }
	return part, blob{open: open}, sb, nil
}

// bootFiles tars the boot partition's files other than the kernel and
// the initramfs (parts of their own), sorted by path, with fixed owner,
// mode and time (the build epoch): the same partition gives the same tar.
func (r *Release) bootFiles(boot *image.Boot, epoch int64) ([]byte, error) {
	p, err := r.img.Boot()
	if err != nil {
		return nil, err
	}
	fsys, err := fat.Open(r.img.Section(p.Placed), p.Size)
	if err != nil {
		return nil, fmt.Errorf("%s partition: %w", p.Name, err)
	}
	files, err := fsys.Files()
	if err != nil {
		return nil, fmt.Errorf("%s partition: %w", p.Name, err)
	}
	kernel := boot.Meta.KernelFile
	if kernel == "" {
		kernel = image.KernelFile
	}
	dir, err := r.slotDir()
	if err != nil {
		return nil, err
	}
	files = slices.DeleteFunc(files, func(f fat.File) bool {
		name, ok := cutPrefixFold(f.Path, dir)
		return !ok || strings.EqualFold(name, kernel) || strings.EqualFold(name, image.InitrdFile) ||
			dir != "" && strings.EqualFold(name, slots.ReleaseFile)
	})
	slices.SortFunc(files, func(a, b fat.File) int { return strings.Compare(a.Path, b.Path) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		data, err := fsys.ReadFile(f.Path, p.Size)
		if err != nil {
			return nil, fmt.Errorf("%s partition: %w", p.Name, err)
		}
		name, _ := cutPrefixFold(f.Path, dir)
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(epoch, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("boot files: %s: %w", f.Path, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("boot files: %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("boot files: %w", err)
	}
	return buf.Bytes(), nil
}

// slotDir is the committed slot's directory on the boot partition
// ("slot-a/"), or "" for an image without slots.
func (r *Release) slotDir() (string, error) {
	if !r.img.Slotted() {
		return "", nil
	}
	s, err := r.img.CommittedSlot()
	if err != nil {
		return "", err
	}
	return slots.Dir(s), nil
}

// slotVersion is the version the committed slot's release.json records
// ("" without slots).
func (r *Release) slotVersion() (string, error) {
	dir, err := r.slotDir()
	if err != nil || dir == "" {
		return "", err
	}
	p, err := r.img.Boot()
	if err != nil {
		return "", err
	}
	b, err := r.img.ReadFileMax(p.Placed, dir+slots.ReleaseFile, MaxConfig)
	if err != nil {
		return "", err
	}
	var rel struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &rel); err != nil {
		return "", fmt.Errorf("%s%s: %w", dir, slots.ReleaseFile, err)
	}
	return rel.Version, nil
}

// cutPrefixFold is strings.CutPrefix, ignoring case as FAT names do.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}
