// Command rfs-agent is the on-device agent: it runs the device's network,
// clock and SSH server from the configuration rfs build wrote into the
// lower (/etc/rfs/agent.json). The init's supervisor starts it
// (`rfs-init supervise`) and restarts it with back-off; its log is
// /run/rfs/log/rfs-agent.log and the console. Built by rfs for the board
// like rfs-init, from the source embedded in rfs (rfs.AgentSource).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rfsbuild/rfs/agent"
	"github.com/rfsbuild/rfs/agent/clock"
	"github.com/rfsbuild/rfs/agent/netconf"
	"github.com/rfsbuild/rfs/agent/sshd"
	"github.com/rfsbuild/rfs/agentconf"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "update" {
		os.Exit(updateMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "rfs-agent: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	f, err := os.Open(agentconf.ConfigFile)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	cfg, err := agentconf.ParseConfig(f)
	f.Close()
	if err != nil {
		return err
	}
	board := &agent.Board{StatusPath: agentconf.StatusFile, InitStatusPath: agentconf.InitStatusFile, Log: os.Stderr}
	board.Update(func(s *agentconf.Status) { s.Hostname = cfg.Hostname })
	jobs := agentJobs(cfg)
	if j := updatePoller(); j != nil {
		jobs = append(jobs, j)
	}
	board.Logf("started (%d jobs)", len(jobs))
	err = agent.Run(ctx, board, jobs)
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

// agentJobs are the agent's duties for cfg, each configured with the device's
// own paths.
func agentJobs(cfg *agentconf.Config) []agent.Job {
	return []agent.Job{
		// Always: with network off it still brings loopback up.
		&netconf.Job{Config: *cfg},
		// Always: with no servers it still saves the clock for the next boot.
		&clock.Job{Servers: cfg.Time.Servers},
		// Listens only when authorized_keys holds a key.
		&sshd.Job{Options: sshd.Options{Port: cfg.SSH.Port}},
	}
}
