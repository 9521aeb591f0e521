package badinput

import "testing"

// TestRunMount: rfs run --mount's mistakes are refused before QEMU starts.
func TestRunMount(t *testing.T) {
	runCases(t, []badCase{
		{name: "mount missing host dir", args: []string{"run", "{image}", "--mount", "{dir}/nope:/srv"}, want: []string{`--mount "{dir}/nope:/srv"`, "no such file"}},
		{name: "mount a file", args: []string{"run", "{image}", "--mount", "{dir}/f:/srv"}, setup: func(t tester, dir string) { writeFile(t, dir, "f", "f") },
			want: []string{"is not a directory", "rfs cp"}},
		{name: "mount relative guest path", args: []string{"run", "{image}", "--mount", "{dir}:srv"}, want: []string{"must be absolute"}},
		{name: "mount no guest path", args: []string{"run", "{image}", "--mount", "{dir}"}, want: []string{"want HOSTDIR:/path"}},
		{name: "mount on /", args: []string{"run", "{image}", "--mount", "{dir}:/"}, want: []string{"cannot be mounted on /"}},
		{name: "mount on /run/rfs", args: []string{"run", "{image}", "--mount", "{dir}:/run/rfs"}, want: []string{"under /run"}},
		{name: "mount unclean path", args: []string{"run", "{image}", "--mount", "{dir}:/srv/../proc"}, want: []string{"must be clean"}},
		{name: "mount bad mode", args: []string{"run", "{image}", "--mount", "{dir}:/srv:rx"}, want: []string{`"rx" after the path: want :ro or :rw`}},
		{name: "mount twice on a path", args: []string{"run", "{image}", "--mount", "{dir}:/srv", "--mount", "{dir}:/srv:ro"}, want: []string{"two host directories on /srv"}},
	})
}

// TestCp: rfs cp's mistakes get messages naming them, and a refused copy
// into an image leaves it byte-identical (the runner checks inputs).
func TestCp(t *testing.T) {
	file := func(t tester, dir string) { writeFile(t, dir, "f", "f") }
	runCases(t, []badCase{
		{name: "cp no image side", args: []string{"cp", "{dir}/a", "{dir}/b"}, want: []string{"needs an IMAGE:/path on one side"}},
		{name: "cp both images", args: []string{"cp", "{image}:/etc/passwd", "{image}:/root/x"}, want: []string{"both SRC and DEST name an image"}},
		{name: "cp relative path in the image", args: []string{"cp", "{image}:etc/passwd", "{dir}/x"}, want: []string{"the path in the image must be absolute", "{image}:/etc/passwd"}},
		{name: "cp out missing", args: []string{"cp", "{image}:/nope", "{dir}"}, want: []string{"/nope: no such file or directory in the device's view"}},
		{name: "cp out a directory onto a file", args: []string{"cp", "{image}:/etc", "{dir}/f"}, setup: file, want: []string{"{dir}/f is a file", "cannot copy the directory /etc"}},
		{name: "cp out to a missing directory", args: []string{"cp", "{image}:/etc/passwd", "{dir}/no/x"}, want: []string{"{dir}/no does not exist"}},
		{name: "cp in a directory onto a file", args: []string{"cp", "{dir}/d", "{image}:/etc/passwd"}, setup: mkdir("d"), want: []string{"/etc/passwd is a file in the device's view", "cannot copy the directory"}},
		{name: "cp in missing source", args: []string{"cp", "{dir}/nope", "{image}:/root/"}, want: []string{"{dir}/nope", "no such file"}},
		{name: "cp in under /proc", args: []string{"cp", "{dir}/f", "{image}:/proc/x"}, setup: file, want: []string{"/proc/x is under /proc", "the device mounts over at boot"}},
		{name: "cp in missing parent", args: []string{"cp", "{dir}/f", "{image}:/nope/x"}, setup: file, want: []string{"/nope: no such file or directory in the device's view"}},
		{name: "cp in a socket", args: []string{"cp", "{dir}/sock", "{image}:/root/"}, setup: mksocket("sock"), want: []string{"cannot copy a socket"}},
	})
}
