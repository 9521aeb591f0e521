package main

import (
	"slices"
	"testing"

	"github.com/rfsbuild/rfs/agentconf"
)

func TestAgentJobs(t *testing.T) {
	for _, c := range []struct {
		cfg  agentconf.Config
		want []string
	}{
		{agentconf.Config{Network: agentconf.Network{DHCP: true}}, []string{"network", "clock", "ssh"}},
		{agentconf.Config{Network: agentconf.Network{Off: true}}, []string{"network", "clock", "ssh"}},
	} {
		var got []string
		for _, j := range agentJobs(&c.cfg) {
			got = append(got, j.Name())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v: jobs %v, want %v", c.cfg.Network, got, c.want)
		}
	}
}
