package badinput

import (
	"testing"

	"github.com/rfsbuild/rfs/updatesig"
)

// Update settings (update: in rfs.yaml, --slots, --slot-size,
// --update-key, --version) are checked before any work: the message names
// the flag, or the file, line and key.

// updateKeys writes rfs.yaml and a key pair, update.key and update.pub.
func updateKeys(lines ...string) func(t tester, dir string) {
	return func(t tester, dir string) {
		project(lines...)(t, dir)
		priv, pub, err := updatesig.Generate()
		if err != nil {
			t.Fatal(err)
		}
		k, _ := updatesig.MarshalPrivateKey(priv)
		p, _ := updatesig.MarshalPublicKey(pub)
		writeFile(t, dir, "update.key", string(k))
		writeFile(t, dir, "update.pub", string(p))
	}
}

func TestSettingsUpdate(t *testing.T) {
	runCases(t, []badCase{
		{name: "private key in rfs.yaml", args: yamlArgs, setup: updateKeys("update:", "  public_key: update.key"),
			want: []string{"{dir}/rfs.yaml:2: update.public_key: {dir}/update.key: this is a private key", "give the public key"}},
		{name: "private key flag", args: []string{"build", "-c", "{dir}/rfs.yaml", "--update-key", "{dir}/update.key"}, setup: updateKeys(),
			want: []string{"--update-key: {dir}/update.key: this is a private key"}},
		{name: "key file missing", args: yamlArgs, setup: project("update:", "  public_key: keys/none.pub"), want: []string{"{dir}/rfs.yaml:2: update.public_key: key file", "no such file"}},
		{name: "not a key", args: yamlArgs, setup: keyFiles([]string{"update:", "  public_key: x.pub"}, map[string]string{"x.pub": "ssh-ed25519 AAAA me\n"}),
			want: []string{"{dir}/rfs.yaml:2: update.public_key: {dir}/x.pub: not a PEM key file"}},
		{name: "unknown key", args: yamlArgs, setup: project("update:", "  pubkey: x.pub"), want: []string{"line 2: update: unknown key \"pubkey\"", "public_key"}},
		{name: "not a map", args: yamlArgs, setup: project("update: yes"), want: []string{"line 1: update: want a map"}},
		{name: "interval garbage", args: yamlArgs, setup: project("update:", "  ref: reg.lan/app:1", "  interval: often"), want: []string{`{dir}/rfs.yaml:3: update.interval "often": want a duration`}},
		{name: "interval fraction", args: yamlArgs, setup: project("update:", "  ref: reg.lan/app:1", "  interval: 1.5s"), want: []string{`update.interval "1.5s": want whole seconds`}},
		{name: "interval without ref", args: yamlArgs, setup: project("update:", "  interval: 1h"), want: []string{"{dir}/rfs.yaml:2: update.interval: polling needs update.ref"}},
		{name: "ref with space", args: yamlArgs, setup: project("update:", `  ref: "reg.lan/app:1 --insecure"`), want: []string{`{dir}/rfs.yaml:2: update.ref "reg.lan/app:1 --insecure"`, "without spaces"}},
		{name: "reset path relative", args: yamlArgs, setup: project("update:", "  reset_paths:", "    - /etc/ok", "    - etc/app.conf"), want: []string{`{dir}/rfs.yaml:4: update.reset_paths: reset path "etc/app.conf": want an absolute, clean path`}},
		{name: "reset path root", args: yamlArgs, setup: project("update:", "  reset_paths: [/]"), want: []string{"{dir}/rfs.yaml:2: update.reset_paths: reset path /", "rfs reset"}},
		{name: "health seconds", args: yamlArgs, setup: project("update:", "  health:", "    seconds: 7200"), want: []string{"{dir}/rfs.yaml:3: update.health.seconds 7200: want 1 to 3600"}},
		{name: "health seconds type", args: yamlArgs, setup: project("update:", "  health: {seconds: soon}"), want: []string{"line 2: update.health.seconds", "soon"}},
		{name: "health unknown key", args: yamlArgs, setup: project("update:", "  health: {timeout: 3}"), want: []string{"update.health: unknown key \"timeout\""}},
		{name: "health empty command", args: yamlArgs, setup: project("update:", "  health:", `    command: " "`), want: []string{"{dir}/rfs.yaml:3: update.health.command: want a shell command line"}},
		{name: "slot size garbage", args: yamlArgs, setup: project("update:", "  slot_size: big"), want: []string{`{dir}/rfs.yaml:2: update.slot_size "big"`, sizeForms}},
		{name: "slot size not MiB", args: []string{"build", "--slot-size", "1000000"}, want: []string{"--slot-size 1000000 bytes: want a whole number of MiB"}},
		{name: "slots on a Pi", args: []string{"build", "--board", "rpi4", "--slots"}, want: []string{"A/B slots on rpi4 are not supported yet (qemu-arm64, qemu-amd64)"}},
		{name: "slots on a Pi from rfs.yaml", args: yamlArgs, setup: project("board: rpi3", "update: {}"), want: []string{"A/B slots on rpi3 are not supported yet"}},
		{name: "slots with layers", args: []string{"build", "--slots", "--layer", "{dir}/x.sqfs"}, setup: func(t tester, dir string) { writeFile(t, dir, "x.sqfs", "x") },
			want: []string{"layers with A/B slots are not supported yet"}},
		{name: "version with space", args: []string{"build", "--slots", "--version", "1 2"}, want: []string{`--version "1 2": character ' '`}},
		{name: "version not orderable", args: []string{"build", "--slots", "--version", "abc"}, want: []string{`--version "abc": want numbers separated by dots`}},
		{name: "version in rfs.yaml", args: yamlArgs, setup: project("version: \"1.0/evil\"", "update: {}"), want: []string{`{dir}/rfs.yaml:1: version "1.0/evil": character '/'`}},
	})
}
