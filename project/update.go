package project

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/slots"
	"github.com/rfsbuild/rfs/updatesig"
)

// Update is rfs.yaml's update: the device's field-update settings; its
// presence turns on A/B slots.
//
//	update:
//	  public_key: keys/update.pub   # rfs keygen's NAME.pub
//	  ref: registry.lan/fleet/app:stable
//	  interval: 1h
//	  reset_paths: [/etc/app.conf]
//	  health: {seconds: 60, command: "pidof app"}
//	  slot_size: 256M
type Update struct {
	PublicKey  string
	Ref        string
	Interval   string
	ResetPaths []string
	Health     *Health
	SlotSize   string
	// Lines holds each key's line; ResetLines each reset path's.
	Lines      map[string]int
	ResetLines []int
	Line       int
}

// Health is update.health: {seconds: N, command: "..."}.
type Health struct {
	Seconds int
	Command string
	Lines   map[string]int
}

// UnmarshalYAML reads the update: map.
func (u *Update) UnmarshalYAML(n *yaml.Node) error {
	u.Line, u.Lines = n.Line, map[string]int{}
	known := []string{"public_key", "ref", "interval", "reset_paths", "health", "slot_size"}
	return mapping(n, "update", known, func(k, v *yaml.Node) error {
		u.Lines[k.Value] = v.Line
		switch k.Value {
		case "public_key":
			return decode(v, "update.public_key", &u.PublicKey)
		case "ref":
			return decode(v, "update.ref", &u.Ref)
		case "interval":
			return decode(v, "update.interval", &u.Interval)
		case "slot_size":
			return decode(v, "update.slot_size", &u.SlotSize)
		case "health":
			u.Health = &Health{Lines: map[string]int{}}
			return mapping(v, "update.health", []string{"seconds", "command"}, func(k, v *yaml.Node) error {
				u.Health.Lines[k.Value] = v.Line
				if k.Value == "seconds" {
					return decode(v, "update.health.seconds", &u.Health.Seconds)
				}
				return decode(v, "update.health.command", &u.Health.Command)
			})
		}
		if err := decode(v, "update.reset_paths", &u.ResetPaths); err != nil {
			return err
		}
		for _, p := range v.Content {
			u.ResetLines = append(u.ResetLines, p.Line)
		}
		return nil
	})
}

// Bounds of update: settings.
const (
	maxHealthSeconds = 3600
	maxHealthCommand = 4096
	maxRef           = 512
	maxInterval      = 365 * 24 * time.Hour
)

// update resolves A/B slots and the update settings: on with --slots (or
// --update-key, --slot-size) or an update: section; --slots=false turns
// them off. version: (--version) is the release version.
func (r *resolver) update(cfg *builder.Config) error {
	cfg.Version = r.pick("version", r.f.Version, r.p.Version)
	r.from("version", "version")
	u := r.p.Update
	on := u != nil || r.f.Changed("update-key") || r.f.Changed("slot-size")
	if r.f.Changed("slots") {
		on = r.f.Slots
		r.origin["update"] = "--slots"
	}
	if !on {
		return nil
	}
	if u == nil {
		u = &Update{}
	}
	s := &builder.UpdateSettings{}
	for _, step := range []func(*Update, *builder.UpdateSettings) error{r.updateKey, r.updatePoll, r.updateReset, r.updateHealth, r.slotSize} {
		if err := step(u, s); err != nil {
			return err
		}
	}
	cfg.Update = s
	return nil
}

// updateKey reads the public key (--update-key, update.public_key) and
// stores it canonically; a private key is refused.
func (r *resolver) updateKey(u *Update, s *builder.UpdateSettings) error {
	where, path := r.at(u.Lines["public_key"], "update.public_key"), r.rel(u.PublicKey)
	if r.f.Changed("update-key") {
		where, path = "--update-key", r.f.UpdateKey
	}
	if path == "" {
		return nil
	}
	pub, err := updatesig.ReadPublicKeyFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	pem, err := updatesig.MarshalPublicKey(pub)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	s.Config.PublicKey = string(pem)
	return nil
}

// updatePoll checks ref and interval.
func (r *resolver) updatePoll(u *Update, s *builder.UpdateSettings) error {
	if u.Ref != "" {
		if len(u.Ref) > maxRef || strings.ContainsFunc(u.Ref, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
			return fmt.Errorf("%s %q: want a registry reference (registry/repo:tag) or http://HOST/REPO:TAG, without spaces, at most %d bytes", r.at(u.Lines["ref"], "update.ref"), u.Ref, maxRef)
		}
		s.Config.Ref = u.Ref
	}
	if u.Interval == "" {
		return nil
	}
	where := r.at(u.Lines["interval"], "update.interval")
	d, err := time.ParseDuration(u.Interval)
	switch {
	case err != nil:
		return fmt.Errorf("%s %q: want a duration such as 30m or 6h", where, u.Interval)
	case d < time.Second || d > maxInterval || d%time.Second != 0:
		return fmt.Errorf("%s %q: want whole seconds from 1s to %s", where, u.Interval, maxInterval)
	case u.Ref == "":
		return fmt.Errorf("%s: polling needs update.ref (what to poll)", where)
	}
	s.Config.IntervalSeconds = int(d / time.Second)
	return nil
}

// updateReset checks reset_paths.
func (r *resolver) updateReset(u *Update, s *builder.UpdateSettings) error {
	for i, p := range u.ResetPaths {
		if err := slots.CheckResetPath(p); err != nil {
			line := u.Lines["reset_paths"]
			if i < len(u.ResetLines) {
				line = u.ResetLines[i]
			}
			return fmt.Errorf("%s: %w", r.at(line, "update.reset_paths"), err)
		}
		s.Config.ResetPaths = append(s.Config.ResetPaths, p)
	}
	return nil
}

// updateHealth checks health: {seconds, command}.
func (r *resolver) updateHealth(u *Update, s *builder.UpdateSettings) error {
	h := u.Health
	if h == nil {
		return nil
	}
	if h.Seconds < 0 || h.Seconds > maxHealthSeconds || h.Lines["seconds"] > 0 && h.Seconds == 0 {
		return fmt.Errorf("%s %d: want 1 to %d", r.at(h.Lines["seconds"], "update.health.seconds"), h.Seconds, maxHealthSeconds)
	}
	if len(h.Command) > maxHealthCommand || strings.ContainsRune(h.Command, 0) || h.Lines["command"] > 0 && strings.TrimSpace(h.Command) == "" {
		return fmt.Errorf("%s: want a shell command line (at most %d bytes, no NUL)", r.at(h.Lines["command"], "update.health.command"), maxHealthCommand)
	}
	s.Config.HealthSeconds, s.Config.HealthCommand = h.Seconds, h.Command
	return nil
}

// slotSize reads --slot-size or update.slot_size (0: the default).
func (r *resolver) slotSize(u *Update, s *builder.UpdateSettings) error {
	v := r.pick("slot-size", r.f.SlotSize, u.SlotSize)
	if v == "" {
		return nil
	}
	where := r.at(u.Lines["slot_size"], "update.slot_size")
	if r.f.Changed("slot-size") {
		where = "--slot-size"
	}
	r.origin["slot_size"] = where
	n, err := image.ParseSize(v)
	if err != nil {
		return fmt.Errorf("%s %q: %w", where, v, err)
	}
	if n < image.MiB || n%image.MiB != 0 {
		return fmt.Errorf("%s %d bytes: want a whole number of MiB, at least 1M", where, n)
	}
	s.SlotSize = n
	return nil
}
