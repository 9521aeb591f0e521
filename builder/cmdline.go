package builder

import (
	"fmt"
	"slices"
	"strings"
)

// Cmdline is the kernel command line as a template: the board's consoles,
// rfs's partition parameters (whose ids each packager's layout gives),
// the upper, then the user's parameters.
type Cmdline struct {
	Consoles []string
	Upper    string
	Extra    string // the user's parameters, as given
	Layers   int    // how many rfs.layers ids
}

// Placeholders of Cmdline.Template, for layouts other than the image's.
const (
	RootPlaceholder = "@ROOT_PARTUUID@"
	DataPlaceholder = "@DATA_PARTUUID@"
	BootPlaceholder = "@BOOT_PARTUUID@"
)

// LayerPlaceholder is layer n's id in Cmdline.Template (1 = the lowest).
func LayerPlaceholder(n int) string { return fmt.Sprintf("@LAYER%d_PARTUUID@", n) }

// partIDs are the partitions the command line names.
type partIDs struct {
	root, data, boot string
	layers           []string
}

// cmdlineTemplate is the command line of c's board and settings.
func (c *Config) cmdlineTemplate() Cmdline {
	return Cmdline{
		Consoles: append(slices.Clone(c.Board.ExtraConsoles), c.Board.Console),
		Upper:    c.Upper, Extra: c.Cmdline, Layers: len(c.Layers),
	}
}

// kernelCmdline is the image's kernel command line for ids.
func (c *Config) kernelCmdline(ids partIDs) string {
	return c.cmdlineTemplate().Complete(ids)
}

// Complete is the command line with the partitions' ids. The user's part
// is copied as is: nothing in it is taken for a placeholder.
func (t Cmdline) Complete(ids partIDs) string {
	var cmdline []string
	for _, con := range t.Consoles {
		cmdline = append(cmdline, "console="+con)
	}
	cmdline = append(cmdline, "rfs.root=PARTUUID="+ids.root)
	if len(ids.layers) > 0 {
		l := make([]string, len(ids.layers))
		for i, id := range ids.layers {
			l[i] = "PARTUUID=" + id
		}
		cmdline = append(cmdline, "rfs.layers="+strings.Join(l, ","))
	}
	cmdline = append(cmdline, "rfs.data=PARTUUID="+ids.data, "rfs.boot=PARTUUID="+ids.boot, "rfs.upper="+t.Upper)
	cmdline = append(cmdline, strings.Fields(t.Extra)...)
	return strings.Join(cmdline, " ")
}

// Template is the command line with placeholders (@ROOT_PARTUUID@,
// @LAYER1_PARTUUID@, ..., @DATA_PARTUUID@, @BOOT_PARTUUID@) for the ids:
// for pipelines that lay the partitions out themselves.
func (t Cmdline) Template() string {
	ids := partIDs{root: RootPlaceholder, data: DataPlaceholder, boot: BootPlaceholder}
	for i := range t.Layers {
		ids.layers = append(ids.layers, LayerPlaceholder(i+1))
	}
	return t.Complete(ids)
}
