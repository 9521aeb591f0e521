package badinput

import "testing"

// rfs keygen never overwrites a key: an existing NAME.key or NAME.pub, of
// any type, is refused before anything is written, and a NAME in a
// missing directory is named as such. The runner checks that the scratch
// directory is unchanged and no temp file is left.
func TestKeygen(t *testing.T) {
	const exists = "exists; choose another -o or remove it"
	secret := func(t tester, dir string) { writeFile(t, dir, "rfs-update.key", "the old key\n") }
	runCases(t, []badCase{
		{name: "key exists", args: []string{"keygen"}, setup: secret, want: []string{"rfs-update.key " + exists}},
		{name: "pub exists", args: []string{"keygen"}, setup: func(t tester, dir string) { writeFile(t, dir, "rfs-update.pub", "old\n") },
			want: []string{"rfs-update.pub " + exists}},
		{name: "-o key exists", args: []string{"keygen", "-o", "keys/prod"}, setup: func(t tester, dir string) { writeFile(t, dir, "keys/prod.key", "k\n") },
			want: []string{"keys/prod.key " + exists}},
		{name: "key is a dangling symlink", args: []string{"keygen", "-o", "k"}, setup: symlink("gone", "k.key"),
			want: []string{"k.key " + exists}},
		{name: "key is a symlink to a file", args: []string{"keygen"},
			setup: func(t tester, dir string) {
				writeFile(t, dir, "real.key", "k\n")
				symlink("real.key", "rfs-update.key")(t, dir)
			},
			want: []string{"rfs-update.key " + exists}},
		{name: "pub is a fifo", args: []string{"keygen"}, setup: mkfifo("rfs-update.pub"), want: []string{"rfs-update.pub " + exists}},
		{name: "pub is a directory", args: []string{"keygen", "-o", "x"}, setup: mkdir("x.pub"), want: []string{"x.pub " + exists}},
		{name: "-o into a missing directory", args: []string{"keygen", "-o", "missing/prod"},
			want: []string{"-o missing/prod: directory missing does not exist"}},
		{name: "-o into a missing absolute directory", args: []string{"keygen", "-o", "{dir}/a/b/prod"},
			want: []string{"directory {dir}/a/b does not exist"}},
		{name: "-o through a file", args: []string{"keygen", "-o", "f/prod"}, setup: func(t tester, dir string) { writeFile(t, dir, "f", "x") },
			want: []string{"f is not a directory"}},
		{name: "-o with .key", args: []string{"keygen", "-o", "prod.key"}, want: []string{"-o prod.key: give NAME without .key/.pub"}},
		{name: "-o a directory", args: []string{"keygen", "-o", "keys/"}, setup: mkdir("keys"), want: []string{"give a file NAME"}},
		{name: "-o empty", args: []string{"keygen", "-o", ""}, want: []string{"empty NAME"}},
	})
}
