package overlay

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rfsbuild/rfs/agentconf"
	"github.com/rfsbuild/rfs/datapart"
)

// servicesStarted marks that the supervisors run: u-root's init tries
// /bbin/uinit and /bin/uinit (the same file through /bin -> bbin) and runs
// uinit again whenever it exits.
const servicesStarted = RunDir + "/services.started"

// UInit is rfs-init started as u-root's uinit: start the services once,
// then become the shell u-root would have started, so the console behaves
// as without services.
func UInit(stdout, stderr io.Writer) int {
	if _, err := os.Stat(servicesStarted); err != nil {
		helperServices(stdout, stderr)
		os.WriteFile(servicesStarted, nil, 0o644)
	}
	for _, sh := range []string{"/bin/defaultsh", "/bin/sh"} {
		if _, err := os.Stat(sh); err == nil {
			err = syscall.Exec(sh, []string{sh}, os.Environ())
			fmt.Fprintf(stderr, "rfs: uinit: exec %s: %v\n", sh, err)
		}
	}
	return 1
}

// helperServices starts a detached supervisor for each line of
// ServicesFile.
func helperServices(stdout, stderr io.Writer) int {
	f, err := os.Open(datapart.ServicesFile)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "rfs: services: %v\n", err)
		return 1
	}
	progs, err := datapart.ReadServices(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "rfs: services: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "rfs: services: %v\n", err)
		return 1
	}
	status := 0
	for _, p := range progs {
		cmd := exec.Command(self, "supervise", p)
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(stderr, "rfs: service %s: %v\n", p, err)
			status = 1
			continue
		}
		cmd.Process.Release()
	}
	return status
}

// helperSupervise runs prog until SIGTERM or SIGINT (forwarded to it),
// restarting it with back-off; its output goes to the console and to
// agentconf.LogDir/NAME.log.
func helperSupervise(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || !strings.HasPrefix(args[0], "/") {
		fmt.Fprintln(stderr, "usage: rfs-init supervise /absolute/program")
		return 2
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	return newSupervisor(args[0], agentconf.LogDir, stdout, stderr, sigs).run()
}
