package qemu

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// fdtNode is a device tree node for makeFDT.
type fdtNode struct {
	name  string
	props [][2]string // name, value (a NUL is appended)
	kids  []fdtNode
}

// makeFDT encodes root as a device tree blob (version 17).
func makeFDT(root fdtNode) []byte {
	var st, strs bytes.Buffer
	names := map[string]int{}
	u32 := func(v uint32) { binary.Write(&st, binary.BigEndian, v) }
	pad := func() {
		for st.Len()%4 != 0 {
			st.WriteByte(0)
		}
	}
	var node func(n fdtNode)
	node = func(n fdtNode) {
		u32(fdtBeginNode)
		st.WriteString(n.name + "\x00")
		pad()
		for _, p := range n.props {
			off, ok := names[p[0]]
			if !ok {
				off = strs.Len()
				names[p[0]] = off
				strs.WriteString(p[0] + "\x00")
			}
			u32(fdtProp)
			u32(uint32(len(p[1]) + 1))
			u32(uint32(off))
			st.WriteString(p[1] + "\x00")
			pad()
		}
		for _, k := range n.kids {
			node(k)
		}
		u32(fdtEndNode)
	}
	node(root)
	u32(fdtEnd)
	hdr := make([]byte, 40)
	be := binary.BigEndian
	structOff := 40 + 16 // an empty memory reservation map
	be.PutUint32(hdr, fdtMagic)
	be.PutUint32(hdr[4:], uint32(structOff+st.Len()+strs.Len()))
	be.PutUint32(hdr[8:], uint32(structOff))
	be.PutUint32(hdr[12:], uint32(structOff+st.Len()))
	be.PutUint32(hdr[16:], 40)
	be.PutUint32(hdr[20:], 17)
	be.PutUint32(hdr[24:], 16)
	be.PutUint32(hdr[32:], uint32(strs.Len()))
	be.PutUint32(hdr[36:], uint32(st.Len()))
	out := append(hdr, make([]byte, 16)...)
	out = append(out, st.Bytes()...)
	return append(out, strs.Bytes()...)
}

// piTree is the shape of the Pi 4's: dwc2 under /soc, disabled.
func piTree(status string) []byte {
	usb := fdtNode{name: "usb@7e980000", props: [][2]string{{"compatible", "brcm,bcm2708-usb"}}}
	if status != "" {
		usb.props = append(usb.props, [2]string{"status", status})
	}
	return makeFDT(fdtNode{props: [][2]string{{"model", "Raspberry Pi 4"}}, kids: []fdtNode{
		{name: "soc", kids: []fdtNode{{name: "serial@7e201000", props: [][2]string{{"status", "disabled"}}}, usb}},
		{name: "usb@7e980000", props: [][2]string{{"status", "disabled"}}}, // same name, other parent
	}})
}

func TestEnableNode(t *testing.T) {
	for _, tc := range []struct {
		name, status, path string
		err                string // part of the error; empty: none
		want               string // the blob then holds this status
	}{
		{"disabled", "disabled", "/soc/usb@7e980000", "", "okay\x00\x00\x00\x00\x00"},
		{"okay", "okay", "/soc/usb@7e980000", "", "okay\x00"},
		{"no status", "", "/soc/usb@7e980000", "", ""},
		{"missing", "disabled", "/soc/usb@0", "has no node /soc/usb@0", ""},
		{"too short", "no", "/soc/usb@7e980000", "too short", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dtb := piTree(tc.status)
			before := append([]byte(nil), dtb...)
			err := enableNode(dtb, tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("enableNode = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(dtb) != len(before) {
				t.Fatal("the blob changed size")
			}
			// Only the one status changed: the other nodes keep theirs.
			if n := bytes.Count(dtb, []byte("disabled")); n != 2 {
				t.Errorf("%d disabled statuses left, want 2", n)
			}
			if tc.want != "" && (!bytes.Contains(dtb, []byte(tc.want)) || bytes.Count(dtb, []byte("okay")) != 1) {
				t.Errorf("status not rewritten to %q", tc.want)
			}
		})
	}
}

// TestEnableNodeHostile: cut or corrupted blobs are errors, never panics.
func TestEnableNodeHostile(t *testing.T) {
	good := piTree("disabled")
	for n := 0; n < len(good); n++ {
		enableNode(append([]byte(nil), good[:n]...), "/soc/usb@7e980000")
	}
	for i := 0; i < len(good); i++ {
		for _, v := range []byte{0x00, 0x01, 0x03, 0x7f, 0xff} {
			b := append([]byte(nil), good...)
			b[i] = v
			enableNode(b, "/soc/usb@7e980000")
		}
	}
	if err := enableNode([]byte("not a tree"), "/"); err == nil {
		t.Error("a non-tree was accepted")
	}
}

// FuzzEnableNode: a device tree from an image never panics the reader,
// nor changes the blob's size.
func FuzzEnableNode(f *testing.F) {
	f.Add(piTree("disabled"), "/soc/usb@7e980000")
	f.Add(piTree(""), "/")
	f.Fuzz(func(t *testing.T, dtb []byte, path string) {
		n := len(dtb)
		enableNode(dtb, path)
		if len(dtb) != n {
			t.Fatal("size changed")
		}
	})
}
