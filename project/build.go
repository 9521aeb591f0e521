package project

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rfsbuild/rfs/boards"
	"github.com/rfsbuild/rfs/builder"
	"github.com/rfsbuild/rfs/image"
	"github.com/rfsbuild/rfs/infile"
	"github.com/rfsbuild/rfs/rootfs"
)

// BuildFlags are rfs build's flag values. Changed says which ones the
// user gave (by flag name, "data-size"): those override the project file.
type BuildFlags struct {
	Config, Board, Userland, Kernel, Owner, Hostname string
	Cmdline, Upper, Size, DataSize, Output, EFIStub  string
	Emit                                             string
	Files, Volumes, Layers                           []string
	// Network is --network (off or dhcp); SSHKeys the --ssh-key files.
	Network string
	SSHKeys []string
	// Slots is --slots; SlotSize --slot-size, UpdateKey --update-key
	// (a public key file), Version --version.
	Slots                        bool
	SlotSize, UpdateKey, Version string
	Login                        bool
	Epoch                        int64

	Changed func(flag string) bool
	// Getenv reads SOURCE_DATE_EPOCH; nil: os.Getenv.
	Getenv func(string) string
}

// resolver merges one project file and the flags.
type resolver struct {
	f      BuildFlags
	p      *File
	origin map[string]string
}

// ResolveBuild merges the project file (f.Config, else ./rfs.yaml when it
// exists) and the flags (flags win) into a builder configuration,
// resolving project-relative paths. Each setting's origin (its flag, or
// its key and line in the file) goes into Config.Origin for messages.
func ResolveBuild(f BuildFlags) (*builder.Config, error) {
	if f.Changed == nil {
		f.Changed = func(string) bool { return false }
	}
	if f.Getenv == nil {
		f.Getenv = os.Getenv
	}
	p, projectFile, err := loadProject(f.Config)
	if err != nil {
		return nil, err
	}
	r := &resolver{f: f, p: p, origin: map[string]string{}}
	for flag, key := range map[string]string{"userland": "userland", "hostname": "hostname", "cmdline": "cmdline", "upper": "upper",
		"files": "files", "volume": "volumes", "epoch": "epoch", "root_password_hash": "root_password_hash", "config_txt": "config_txt",
		"apps": "apps", "uroot_commands": "uroot_commands"} {
		r.from(flag, key)
	}
	boardName := r.pick("board", f.Board, p.Board)
	if boardName == "" {
		boardName = boards.Default
	}
	board, err := boards.Lookup(boardName)
	if err != nil {
		return nil, err
	}
	cfg := &builder.Config{
		Board:     board,
		Userland:  r.pick("userland", f.Userland, p.Userland),
		Hostname:  r.pick("hostname", f.Hostname, p.Hostname),
		Cmdline:   r.pick("cmdline", f.Cmdline, p.Cmdline),
		Upper:     r.pick("upper", f.Upper, p.Upper),
		RootHash:  p.RootHash,
		ConfigTxt: p.ConfigTxt,
		Owner:     &rootfs.Owner{},
		Origin:    r.origin,
		Login:     f.Login,
	}
	cfg.ProjectFile = projectFile
	cfg.URootCommands, cfg.Apps, cfg.AppsDir = p.URootCommands, p.Apps, p.Dir
	if !f.Changed("login") && p.Login != nil {
		cfg.Login = *p.Login
	}
	r.paths(cfg)
	for _, step := range []func(*builder.Config) error{r.owner, r.size, r.volumes, r.dataSize, r.epoch, r.device, r.update} {
		if err := step(cfg); err != nil {
			return nil, err
		}
	}
	r.output(cfg)
	if err := r.checkInputs(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadProject reads the project file named, else ./rfs.yaml when it
// exists, else none (an empty file in the current directory).
func loadProject(name string) (*File, string, error) {
	if name != "" {
		p, err := Load(name)
		return p, name, err
	}
	if _, err := os.Stat(DefaultFile); err == nil {
		p, err := Load(DefaultFile)
		return p, DefaultFile, err
	}
	return &File{Dir: "."}, "", nil
}

// from records and returns where a setting comes from: its flag, or its
// key (and line) in the project file.
func (r *resolver) from(flag, key string) string {
	if r.f.Changed(flag) {
		r.origin[key] = "--" + flag
	} else {
		r.origin[key] = r.p.Where(key)
	}
	return r.origin[key]
}

func (r *resolver) pick(flag, flagVal, fileVal string) string {
	if r.f.Changed(flag) {
		return flagVal
	}
	return fileVal
}

// rel makes a project file path relative to the file's directory.
func (r *resolver) rel(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(r.p.Dir, path)
}

// paths takes the input paths: flags as given, the file's relative to it.
func (r *resolver) paths(cfg *builder.Config) {
	f, p := r.f, r.p
	cfg.Kernel = r.pick("kernel", f.Kernel, r.rel(p.Kernel))
	cfg.EFIStub = r.pick("efi-stub", f.EFIStub, r.rel(p.EFIStub))
	if f.Changed("layer") {
		cfg.Layers = f.Layers
	} else {
		for _, l := range p.Layers {
			cfg.Layers = append(cfg.Layers, r.rel(l))
		}
	}
	if f.Changed("files") {
		for _, s := range f.Files {
			cfg.Files = append(cfg.Files, builder.ParseFiles(s))
		}
	} else {
		for _, s := range p.Files {
			fs := builder.ParseFiles(s)
			fs.Src = r.rel(fs.Src)
			cfg.Files = append(cfg.Files, fs)
		}
	}
}

// owner reads owner: "uid:gid", "keep" (nil: the host's) or empty (0:0).
func (r *resolver) owner(cfg *builder.Config) error {
	switch owner := r.pick("owner", r.f.Owner, r.p.Owner); owner {
	case "":
	case "keep":
		cfg.Owner = nil
	default:
		u, g, ok := strings.Cut(owner, ":")
		uid, err1 := strconv.ParseUint(u, 10, 32)
		gid, err2 := strconv.ParseUint(g, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf(`owner %q: want "uid:gid" (numbers) or "keep"`, owner)
		}
		cfg.Owner = &rootfs.Owner{UID: uint32(uid), GID: uint32(gid)}
	}
	return nil
}

// parseSize reads a size setting, naming it in errors.
func (r *resolver) parseSize(flag, key, s string) (int64, error) {
	where := r.from(flag, key)
	n, err := image.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", where, s, err)
	}
	return n, nil
}

func (r *resolver) size(cfg *builder.Config) (err error) {
	if s := r.pick("size", r.f.Size, r.p.Size); s != "" {
		cfg.Size, err = r.parseSize("size", "size", s)
	}
	return err
}

func (r *resolver) dataSize(cfg *builder.Config) (err error) {
	if s := r.pick("data-size", r.f.DataSize, r.p.DataSize); s != "" {
		cfg.DataSize, err = r.parseSize("data-size", "data_size", s)
	}
	return err
}

func (r *resolver) volumes(cfg *builder.Config) error {
	vols := r.p.Volumes
	if r.f.Changed("volume") {
		vols = r.f.Volumes
	}
	for _, v := range vols {
		vol, err := builder.ParseVolume(v)
		if err != nil {
			return err
		}
		cfg.Volumes = append(cfg.Volumes, vol)
	}
	return nil
}

// epoch: --epoch, epoch:, SOURCE_DATE_EPOCH, or builder.DefaultEpoch.
func (r *resolver) epoch(cfg *builder.Config) error {
	var err error
	switch env := r.f.Getenv("SOURCE_DATE_EPOCH"); {
	case r.f.Changed("epoch"):
		cfg.Epoch = r.f.Epoch
	case r.p.Epoch != nil:
		cfg.Epoch = *r.p.Epoch
	case env != "":
		if cfg.Epoch, err = builder.ParseEpoch(env); err != nil {
			return err
		}
		r.origin["epoch"] = "SOURCE_DATE_EPOCH"
	default:
		cfg.Epoch = builder.DefaultEpoch
	}
	return nil
}

// output: -o, else none with --emit, else output:, else out/BOARD.img.
func (r *resolver) output(cfg *builder.Config) {
	cfg.Emit = r.f.Emit
	switch {
	case r.f.Changed("output"):
		cfg.Output = r.f.Output
	case r.f.Emit != "":
		// --emit alone writes only the directory.
	case r.p.Output != "":
		cfg.Output = r.rel(r.p.Output)
	default:
		cfg.Output = filepath.Join("out", cfg.Board.Name+".img")
	}
}

// checkInputs refuses a build input that is not a regular file (a FIFO
// would block the build in open(2) for ever; /dev/zero never ends),
// naming the flag, or the project file key it came from.
func (r *resolver) checkInputs(cfg *builder.Config) error {
	name := func(flag, key string) string {
		if r.f.Changed(flag) {
			return "--" + flag
		}
		return key + " (project file)"
	}
	if k := cfg.Kernel; k != "" {
		if st, err := os.Stat(k); err == nil && st.IsDir() {
			k = filepath.Join(k, "vmlinuz") // a directory holding vmlinuz
		}
		if err := notSpecial(name("kernel", "kernel"), k); err != nil {
			return err
		}
	}
	for _, l := range cfg.Layers {
		if err := notSpecial(name("layer", "layers"), l); err != nil {
			return err
		}
	}
	if cfg.EFIStub != "" {
		if err := notSpecial(name("efi-stub", "efi_stub"), cfg.EFIStub); err != nil {
			return err
		}
	}
	return nil
}

// notSpecial refuses a path that exists and is not a regular file; a
// missing file is left to the builder, which says more about it.
func notSpecial(what, path string) error {
	if err := infile.Check(what, path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
