package sshd

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/pkg/sftp"
)

const (
	passwdFile  = "/etc/passwd"
	defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// outputGrace is how long output may still flow after the program
	// exits, when a background child holds its stdout or the pty.
	outputGrace = 2 * time.Second
)

// signals are the names RFC 4254 6.10 lets a client send.
var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL,
	"QUIT": syscall.SIGQUIT, "TERM": syscall.SIGTERM,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2,
}

// rootAccount is root's shell and home from /etc/passwd, falling back to
// /bin/sh and /root (a u-root image may have no passwd file).
func rootAccount(passwd string) (shell, home string) {
	shell, home = "/bin/sh", "/root"
	f, err := os.Open(passwd)
	if err != nil {
		return shell, home
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) != 7 || fields[0] != "root" {
			continue
		}
		if fi, err := os.Stat(fields[6]); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			shell = fields[6]
		}
		if filepath.IsAbs(fields[5]) {
			home = fields[5]
		}
		break
	}
	return shell, home
}

// command builds the program for exec (login false: `SHELL -c CMD`) or
// shell (login true: a login shell).
func (ss *session) command(line string, login bool) *exec.Cmd {
	shell, home := rootAccount(passwdFile)
	if ss.srv.o.Shell != "" {
		shell = ss.srv.o.Shell
	}
	// argv[0] is the full path: u-root's multi-call binary finds its
	// command by following the symlink argv[0] names.
	cmd := &exec.Cmd{Path: shell, Args: []string{shell, "-c", line}}
	if login {
		cmd.Args = loginArgs(shell)
	}
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		home = "/"
	}
	cmd.Dir = home
	cmd.Env = append([]string{
		"HOME=" + home, "USER=root", "LOGNAME=root", "SHELL=" + shell,
		"PATH=" + defaultPath, "SSH_CONNECTION=" + sshConnection(ss.conn),
	}, ss.env...)
	if ss.pty != nil && ss.pty.Term != "" {
		cmd.Env = append(cmd.Env, "TERM="+ss.pty.Term)
	}
	return cmd
}

// loginArgs is the argv of a login shell: argv[0] "-NAME", as login(1)
// does (busybox strips the dash to find its applet). u-root's gosh has no
// login mode and its multi-call binary (bb) would not find "-sh": it gets
// its path only.
func loginArgs(shell string) []string {
	if target, err := filepath.EvalSymlinks(shell); err == nil && filepath.Base(target) == "bb" {
		return []string{shell}
	}
	return []string{"-" + filepath.Base(shell)}
}

// start runs exec or shell, with or without the requested pty.
func (ss *session) start(line string, login bool) bool {
	cmd := ss.command(line, login)
	var err error
	if ss.pty != nil {
		err = ss.startPTY(cmd)
	} else {
		err = ss.startPipes(cmd)
	}
	if err != nil {
		ss.srv.o.Logf("session: start %s: %v", cmd.Path, err)
		return false
	}
	return true
}

// startPipes runs cmd with its stdin, stdout and stderr on the channel,
// in its own process group so closing the channel kills what it started.
func (ss *session) startPipes(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = ss.ch, ss.ch.Stderr()
	cmd.WaitDelay = outputGrace
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ss.run = ss.newRunning(cmd, nil)
	// The client's EOF becomes the program's: close its stdin.
	go func() {
		io.Copy(stdin, ss.ch)
		stdin.Close()
	}()
	go func() {
		defer close(ss.done)
		cmd.Wait() // the exit status is in ProcessState
		ss.run.exit()
		ss.sendExit(exitOf(cmd))
	}()
	return nil
}

// startPTY runs cmd on a new pty (its controlling terminal, in a new
// session) sized as the client asked.
func (ss *session) startPTY(cmd *exec.Cmd) error {
	ptmx, err := pty.StartWithSize(cmd, winsize(ss.pty.Cols, ss.pty.Rows, ss.pty.Width, ss.pty.Height))
	if err != nil {
		return err
	}
	ss.run = ss.newRunning(cmd, ptmx)
	go io.Copy(ptmx, ss.ch)
	output := make(chan struct{})
	go func() {
		defer close(output)
		io.Copy(ss.ch, ptmx) // ends with EIO once no one holds the tty
	}()
	go func() {
		defer close(ss.done)
		cmd.Wait() // the exit status is in ProcessState
		ss.run.exit()
		select {
		case <-output:
		case <-time.After(outputGrace):
		}
		ptmx.Close()
		ss.sendExit(exitOf(cmd))
	}()
	return nil
}

func (ss *session) newRunning(cmd *exec.Cmd, ptmx *os.File) *running {
	pid := cmd.Process.Pid
	r := &running{
		// The program leads its process group (Setpgid, or Setsid for a pty).
		killf:   func() { syscall.Kill(-pid, syscall.SIGKILL) },
		signalf: func(name string) bool { sig, ok := signals[name]; return ok && cmd.Process.Signal(sig) == nil },
	}
	if ptmx != nil {
		r.resizef = func(cols, rows, w, h uint32) bool {
			return pty.Setsize(ptmx, winsize(cols, rows, w, h)) == nil
		}
	}
	return r
}

func winsize(cols, rows, w, h uint32) *pty.Winsize {
	c := func(v uint32) uint16 { return uint16(min(v, 0xffff)) }
	return &pty.Winsize{Cols: c(cols), Rows: c(rows), X: c(w), Y: c(h)}
}

// exitOf is the program's exit code, or the signal that ended it.
func exitOf(cmd *exec.Cmd) (int, string) {
	ps := cmd.ProcessState
	if ps == nil {
		return 255, ""
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		for name, sig := range signals {
			if sig == ws.Signal() {
				return 0, name
			}
		}
		return 128 + int(ws.Signal()), ""
	}
	return ps.ExitCode(), ""
}

// startSFTP serves the sftp subsystem on the channel, in root's home.
func (ss *session) startSFTP() bool {
	_, home := rootAccount(passwdFile)
	srv, err := sftp.NewServer(ss.ch, sftp.WithServerWorkingDirectory(home))
	if err != nil {
		ss.srv.o.Logf("sftp: %v", err)
		return false
	}
	ss.run = &running{killf: func() { srv.Close() }}
	go func() {
		defer close(ss.done)
		err := srv.Serve()
		ss.run.exit()
		code := 0
		if err != nil && !errors.Is(err, io.EOF) {
			code = 1
		}
		ss.sendExit(code, "")
	}()
	return true
}
