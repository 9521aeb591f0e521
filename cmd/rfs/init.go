package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

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
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(path, flags, 0o644)
			if os.IsExist(err) {
				return fmt.Errorf("%s already exists (use --force to overwrite)", path)
			}
			if err != nil {
				return err
			}
			if _, err := f.WriteString(project.Starter); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s; edit it, then run: rfs build\n", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}
