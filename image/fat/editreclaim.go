package fat

import "fmt"

// badCluster marks a cluster the medium cannot hold: never freed.
const badCluster = 0x0FFFFFF7

// Reclaim frees the clusters the FAT marks as used that no file or
// directory reaches: what a power cut in the middle of a write leaves
// (fsck.fat calls them lost chains; a device has no fsck.fat, and lost
// clusters would fill its boot partition one cut at a time). It returns
// the bytes freed. A tree it cannot walk (a loop, a link out of range)
// is an error and nothing is freed. Freeing only unreachable clusters is
// safe at any point: a cut during it leaves some of them lost still.
func (fs *Editor) Reclaim() (int64, error) {
	var freed int64
	err := fs.op(func() error {
		used := make([]bool, fs.nClusters+2)
		if err := fs.markTree(used); err != nil {
			return fmt.Errorf("reclaim lost clusters: %w", err)
		}
		var lost []uint32
		for c := uint32(2); c < fs.nClusters+2; c++ {
			if v := fs.get(c); v != 0 && v != badCluster && !used[c] {
				lost = append(lost, c)
			}
		}
		if len(lost) == 0 {
			return nil
		}
		if err := fs.begin(); err != nil {
			return err
		}
		for _, c := range lost {
			fs.set(c, 0)
		}
		freed = int64(len(lost)) * fs.clusterSz
		return nil
	})
	return freed, err
}

// markTree marks every cluster of the root directory and what it holds.
func (fs *Editor) markTree(used []bool) error {
	root, err := fs.readDir(fs.rootClus, "/")
	if err != nil {
		return err
	}
	mark := func(cs []uint32) {
		for _, c := range cs {
			used[c] = true
		}
	}
	mark(root.chain)
	seen := map[uint32]bool{}
	for _, e := range root.ents {
		var cs []uint32
		switch {
		case e.name == "." || e.name == "..":
			continue
		case e.isDir():
			cs, err = fs.treeChains(e.cluster, "/"+e.name, 0, seen)
		case e.cluster != 0:
			cs, err = fs.chain(e.cluster)
		}
		if err != nil {
			return fmt.Errorf("/%s: %w", e.name, err)
		}
		mark(cs)
	}
	return nil
}
