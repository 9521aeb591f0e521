package qemu

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Flattened device tree (devicetree.org spec, "DTB format") tokens.
const (
	fdtMagic     = 0xd00dfeed
	fdtBeginNode = 1
	fdtEndNode   = 2
	fdtProp      = 3
	fdtNop       = 4
	fdtEnd       = 9
	fdtMaxDepth  = 64 // deeper is no device tree a kernel ships
)

// enableNode sets the status of the node at path (e.g. /soc/usb@7e980000)
// in the device tree blob dtb to "okay", in place: the new value is padded
// with NULs to the old one's length (the kernel compares the string), so
// no offset in the blob moves. A node without status is enabled already.
// The blob comes from an image: every offset is checked.
func enableNode(dtb []byte, path string) error {
	if len(dtb) < 40 || binary.BigEndian.Uint32(dtb) != fdtMagic {
		return errors.New("not a device tree blob")
	}
	be := binary.BigEndian
	structOff, strOff := be.Uint32(dtb[8:]), be.Uint32(dtb[12:])
	strSize, structSize := be.Uint32(dtb[32:]), be.Uint32(dtb[36:])
	if uint64(structOff)+uint64(structSize) > uint64(len(dtb)) || uint64(strOff)+uint64(strSize) > uint64(len(dtb)) {
		return errors.New("device tree blocks beyond the blob")
	}
	w := fdtWalker{b: dtb[:structOff+structSize], p: int(structOff), strs: dtb[strOff : strOff+strSize]}
	return w.enable(path)
}

// fdtWalker reads the structure block b from p; strs is the strings block.
type fdtWalker struct {
	b    []byte
	p    int
	strs []byte
}

// enable walks the tokens to the node at path and rewrites its status.
func (w *fdtWalker) enable(path string) error {
	var stack []string
	for {
		tok, err := w.u32()
		if err != nil {
			return err
		}
		switch tok {
		case fdtBeginNode:
			name, err := w.cstring()
			if err != nil {
				return err
			}
			if len(stack) == fdtMaxDepth {
				return errors.New("device tree nested too deep")
			}
			stack = append(stack, name)
		case fdtEndNode:
			if len(stack) == 0 {
				return errors.New("device tree: unbalanced node end")
			}
			if nodePath(stack) == path {
				return nil // found, no status: enabled
			}
			stack = stack[:len(stack)-1]
		case fdtProp:
			name, val, err := w.prop()
			if err != nil {
				return err
			}
			if name == "status" && nodePath(stack) == path {
				return setOkay(val)
			}
		case fdtNop:
		case fdtEnd:
			return fmt.Errorf("device tree has no node %s", path)
		default:
			return fmt.Errorf("device tree: bad token %#x", tok)
		}
	}
}

// nodePath is the path of the node named by stack (its root's name empty).
func nodePath(stack []string) string {
	if len(stack) <= 1 {
		return "/"
	}
	return strings.Join(stack, "/")
}

// setOkay overwrites a status value with "okay", NUL-padded.
func setOkay(val []byte) error {
	if s := string(bytes.TrimRight(val, "\x00")); s == "okay" || s == "ok" {
		return nil
	}
	if len(val) < len("okay")+1 {
		return fmt.Errorf("device tree: status %q too short to rewrite", val)
	}
	copy(val, "okay")
	clear(val[len("okay"):])
	return nil
}

func (w *fdtWalker) u32() (uint32, error) {
	if w.p < 0 || w.p+4 > len(w.b) {
		return 0, errors.New("device tree truncated")
	}
	v := binary.BigEndian.Uint32(w.b[w.p:])
	w.p += 4
	return v, nil
}

// cstring reads a node name and skips its padding to 4 bytes.
func (w *fdtWalker) cstring() (string, error) {
	i := bytes.IndexByte(w.b[w.p:], 0)
	if i < 0 {
		return "", errors.New("device tree: unterminated node name")
	}
	s := string(w.b[w.p : w.p+i])
	w.p = (w.p + i + 1 + 3) &^ 3
	return s, nil
}

// prop reads a property: its name from the strings block, its value as a
// slice of the blob (writes go to the blob).
func (w *fdtWalker) prop() (string, []byte, error) {
	n, err := w.u32()
	if err != nil {
		return "", nil, err
	}
	nameOff, err := w.u32()
	if err != nil {
		return "", nil, err
	}
	if uint64(w.p)+uint64(n) > uint64(len(w.b)) || uint64(nameOff) >= uint64(len(w.strs)) {
		return "", nil, errors.New("device tree property beyond the blob")
	}
	end := bytes.IndexByte(w.strs[nameOff:], 0)
	if end < 0 {
		return "", nil, errors.New("device tree: unterminated property name")
	}
	val := w.b[w.p : w.p+int(n)]
	w.p = (w.p + int(n) + 3) &^ 3
	return string(w.strs[nameOff : int(nameOff)+end]), val, nil
}
