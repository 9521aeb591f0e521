package main

import (
	"fmt"
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
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s -M %s\t%s%s\n", b.Name, b.Arch, b.Boot, b.Table, b.Console, b.QEMU.Binary, b.QEMU.Machine, b.Description, def)
			}
			return w.Flush()
		},
	}
}
