// Package agent is the on-device agent's core: it loads the build's
// configuration (agentconf.ConfigFile), runs the long-running jobs
// (network, time, SSH; later updates) side by side, and publishes their
// status (agentconf.StatusFile). It runs under the init's supervision
// (`rfs-init supervise`), which restarts it with back-off and keeps its log.
// On-device code: it imports nothing host-only.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/atomicfile"
)

// Job is one long-running duty. Run returns when ctx ends (nil) or when it
// cannot go on (an error the agent logs before it exits, so the supervisor
// restarts it).
type Job interface {
	Name() string
	Run(ctx context.Context, st *Board) error
}

// Board holds the status the jobs publish and writes it to StatusPath
// on every change, and into the "agent" key of InitStatusPath (the init's
// status.json) so one file tells the whole device's state.
type Board struct {
	StatusPath     string
	InitStatusPath string
	Log            io.Writer

	mu sync.Mutex
	st agentconf.Status
}

// Update changes the status under the board's lock and publishes it.
func (b *Board) Update(f func(*agentconf.Status)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.st)
	b.st.Updated = time.Now().UTC()
	if err := b.write(); err != nil {
		b.Logf("status: %v", err)
	}
}

// Logf prints one "rfs-agent: " line.
func (b *Board) Logf(format string, args ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, "rfs-agent: "+format+"\n", args...)
	}
}

func (b *Board) write() error {
	if b.StatusPath == "" {
		return nil
	}
	data, err := json.MarshalIndent(&b.st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(b.StatusPath), 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(b.StatusPath, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return mergeInto(b.InitStatusPath, "agent", data)
}

// mergeInto sets key in the JSON object at path to raw, keeping the rest.
// No file (no rfs init, a test): nothing to merge into.
func mergeInto(path, key string, raw json.RawMessage) error {
	if path == "" {
		return nil
	}
	old, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(old, &obj); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	obj[key] = raw
	data, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// Run runs the jobs until ctx ends or one fails; the first failure is
// returned after the others have stopped.
func Run(ctx context.Context, b *Board, jobs []Job) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(jobs))
	for _, j := range jobs {
		go func() {
			err := j.Run(ctx, b)
			if err != nil {
				err = fmt.Errorf("%s: %w", j.Name(), err)
			}
			errs <- err
		}()
	}
	var first error
	for range jobs {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}
