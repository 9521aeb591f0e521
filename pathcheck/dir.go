package pathcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CheckDir checks an output directory (rfs build --emit DIR), which is
// replaced as a whole: it must not be an input or lie inside an input
// directory, and no output file may lie inside it (replacing the
// directory would delete that file). Whether an existing directory may be
// replaced is the writer's question (atomicfile.WriteDir).
func CheckDir(dir Path, outputs, inputs []Path) error {
	if dir.Path == "" {
		return nil
	}
	where, err := resolve(dir.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	info, _ := os.Stat(where)
	for _, o := range outputs {
		if o.Path == "" {
			continue
		}
		ow, err := resolve(o.Path)
		if err != nil {
			return fmt.Errorf("%s: %w", o, err)
		}
		if ow == where || strings.HasPrefix(ow, where+string(filepath.Separator)) || info != nil && inside(ow, info) {
			return fmt.Errorf("output %s is inside the output directory %s: writing the directory would delete it; write it elsewhere", o, dir)
		}
	}
	for _, in := range inputs {
		if in.Path == "" {
			continue
		}
		st, err := os.Stat(in.Path)
		if err != nil {
			continue
		}
		if info != nil && os.SameFile(info, st) {
			return fmt.Errorf("output %s is the input %s: writing it would destroy the input; choose another directory", dir, in)
		}
		if st.IsDir() && inside(where, st) {
			return fmt.Errorf("output %s is inside the input directory %s: the next run would take it in as input; write it outside that directory", dir, in)
		}
	}
	return nil
}
