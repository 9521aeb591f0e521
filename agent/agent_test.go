package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rfsbuild/rfs/agentconf"
)

func TestBoardMergesIntoInitStatus(t *testing.T) {
	dir := t.TempDir()
	initStatus := filepath.Join(dir, "status.json")
	if err := os.WriteFile(initStatus, []byte(`{"version":"dev","upper":"data"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Board{StatusPath: filepath.Join(dir, "agent.json"), InitStatusPath: initStatus}
	b.Update(func(s *agentconf.Status) { s.Hostname = "box" })

	var st agentconf.Status
	readJSON(t, b.StatusPath, &st)
	if st.Hostname != "box" {
		t.Errorf("agent.json hostname = %q, want box", st.Hostname)
	}
	var merged struct {
		Version string           `json:"version"`
		Upper   string           `json:"upper"`
		Agent   agentconf.Status `json:"agent"`
	}
	readJSON(t, initStatus, &merged)
	if merged.Version != "dev" || merged.Upper != "data" || merged.Agent.Hostname != "box" {
		t.Errorf("status.json after merge = %+v, want the init's keys kept and agent.hostname box", merged)
	}
}

func TestBoardWithoutInitStatus(t *testing.T) {
	dir := t.TempDir()
	b := &Board{StatusPath: filepath.Join(dir, "agent.json"), InitStatusPath: filepath.Join(dir, "missing.json")}
	b.Update(func(s *agentconf.Status) { s.Hostname = "box" })
	if _, err := os.Stat(b.InitStatusPath); !os.IsNotExist(err) {
		t.Errorf("status.json created without an init: %v", err)
	}
}

type fakeJob struct {
	name string
	err  error
}

func (j fakeJob) Name() string { return j.name }
func (j fakeJob) Run(ctx context.Context, _ *Board) error {
	if j.err != nil {
		return j.err
	}
	<-ctx.Done()
	return nil
}

func TestRunStopsOthersOnFailure(t *testing.T) {
	boom := errors.New("boom")
	err := Run(context.Background(), &Board{}, []Job{fakeJob{name: "quiet"}, fakeJob{name: "bad", err: boom}})
	if !errors.Is(err, boom) || err.Error() != "bad: boom" {
		t.Errorf("Run = %v, want bad: boom", err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
