package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rfsbuild/rfs/atomicfile"
	"github.com/rfsbuild/rfs/project"
)

func newInitCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init [FILE]",
		Short: "Write a commented starter project file (rfs.yaml)",
		Example: `  rfs init              # writes ./rfs.yaml
  rfs init board.yaml   # another name; use it with rfs build --config board.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := project.DefaultFile
			if len(args) == 1 {
				path = args[0]
			}
			if _, err := os.Lstat(path); err == nil && !force {
				return fmt.Errorf("%s already exists (use --force to overwrite)", path)
			}
			// Through atomicfile: --force on a device node or directory is
			// refused, and an interrupted write leaves the old file.
			if err := atomicfile.WriteFile(path, []byte(project.Starter), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s; edit it, then run: rfs build\n", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}
