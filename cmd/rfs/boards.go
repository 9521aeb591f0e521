package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/boards"
)

func newBoardsCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "boards",
		Short:   "List the boards rfs builds for",
		Example: "  rfs boards",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "BOARD\tARCH\tBOOT\tTABLE\tCONSOLE\tQEMU\tDESCRIPTION")
			for _, b := range boards.All() {
				def := ""
				if b.Name == boards.Default {
					def = " (default)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s%s\n", b.Name, b.Arch, b.Boot, b.Table, b.Console, qemuColumn(b), b.Description, def)
			}
			return w.Flush()
		},
	}
}

// qemuColumn is how rfs run boots the board's images: the default machine,
// then those --machine offers; "none" when QEMU has no model of the board.
func qemuColumn(b boards.Board) string {
	col := "none"
	if b.QEMU.Machine != "" {
		col = b.QEMU.Binary + " -M " + b.QEMU.Machine
	}
	var other []string
	for _, q := range b.OtherQEMU {
		other = append(other, q.Machine)
	}
	if len(other) > 0 {
		col += " (--machine " + strings.Join(other, ", ") + ")"
	}
	return col
}
