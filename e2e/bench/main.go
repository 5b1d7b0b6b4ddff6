//go:build linux

// Command bench compares tether with a hand-made OpenSSH `ssh -L` side by side on
// loopback: `just bench` (or `go run ./e2e/bench`). It starts a throwaway sshd, an app
// serving fixed-size bodies, uploads and WebSocket echo, a `tether launch` session of
// that app through the sshd and an `ssh -L` to the same app, then measures both paths
// in alternation over several rounds and prints medians, spreads and the ratio
// tether / ssh -L. It writes the figures as JSON to bench-results/. Timings are for
// people: it never fails on a number.
//
// With --openssh (the default) it also measures this build with --ssh openssh (the
// launcher speaking through OpenSSH's ssh and a ControlMaster of its own) and, as the
// reference for that transport alone, an ssh -L to that session's Unix socket (the
// same guarded server, so the two differ only in how the bytes reach it).
//
//	--quick          small sizes, few rounds (about a minute)
//	--items a,b      only these items (download, upload, parallel, small, newconn,
//	                 ws, launch, memory, reconnect)
//	--before BIN     also measure an older tether binary
//	--openssh=false  do not measure --ssh openssh
//	--relay=false    do not measure this build through a tether relay (launch --relay
//	                 to a tether host on this machine; relay.go)
//	--rounds N       rounds per item (default 7, quick 3)
//	--pprof DIR      set TETHER_PPROF=DIR for the launcher and the remote server
//	--profile NAME   lan, campus or wan: reach sshd through Toxiproxy with that
//	                 latency and bandwidth (wan.go); --size MiB, --mbit N adjust it
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/tether-dev/tether/e2e"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == e2e.BenchAppArg {
		if err := e2e.RunBenchApp(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "bench app: %v\n", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(os.Args[1:]))
}

type options struct {
	quick   bool
	items   []string
	before  string
	openssh bool
	relay   bool
	rounds  int
	out     string
	pprof   string
	prof    profileFlags // --profile and its knobs (wan.go)
}

var allItems = []string{"download", "upload", "parallel", "small", "newconn", "ws", "launch", "memory", "reconnect"}

func run(args []string) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o options
	var items string
	fs.BoolVar(&o.quick, "quick", false, "small sizes and few rounds")
	fs.StringVar(&items, "items", strings.Join(allItems, ","), "comma-separated items to run")
	fs.StringVar(&o.before, "before", "", "an older tether binary to measure too")
	fs.BoolVar(&o.openssh, "openssh", true, "also measure this build with --ssh openssh")
	fs.BoolVar(&o.relay, "relay", true, "also measure this build through a tether relay (launch --relay to tether host)")
	fs.IntVar(&o.rounds, "rounds", 0, "rounds per item (default 7, quick 3)")
	fs.StringVar(&o.out, "out", "bench-results", "directory for the JSON results")
	fs.StringVar(&o.pprof, "pprof", "", "directory for CPU profiles (TETHER_PPROF) of the launcher and the server")
	o.prof.add(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if code := o.prof.apply(fs, &o, &items); code != 0 {
		return code
	}
	for _, it := range strings.Split(items, ",") {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		found := false
		for _, a := range append(allItems, profileItems...) {
			found = found || a == it
		}
		if !found {
			fmt.Fprintf(os.Stderr, "bench: unknown item %q: pick from %s\n", it, strings.Join(append(allItems, profileItems...), ","))
			return 2
		}
		o.items = append(o.items, it)
	}
	if o.rounds <= 0 {
		o.rounds = 7
		if o.quick {
			o.rounds = 3
		}
	}
	for _, p := range [][2]string{{"sshd", "openssh-server"}, {"ssh", "openssh-client"}, {"ssh-keygen", "openssh-client"}} {
		if _, err := e2e.FindProgram(p[0]); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s not found: install it with `apt-get install -y %s`\n", p[0], p[1])
			return 1
		}
	}
	if o.before != "" {
		abs, err := filepath.Abs(o.before)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: --before %s: %v\n", o.before, err)
			return 2
		}
		o.before = abs
	}
	if o.pprof != "" {
		abs, err := filepath.Abs(o.pprof)
		if err == nil {
			err = os.MkdirAll(abs, 0o755)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: --pprof %s: %v\n", o.pprof, err)
			return 2
		}
		o.pprof = abs
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{o: o, ctx: ctx}
	err := b.setup()
	if err == nil {
		err = b.measure()
	}
	b.teardown()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

// bench is one run: the servers, the paths and the results.
type bench struct {
	o       options
	ctx     context.Context
	dir     string
	root    string // the module root
	self    string // this executable, which is also the app
	tether  string // this tree's build
	sshd    *sshd
	paths   []*route
	sshL    *proc
	appPort int
	relay   *relayEnds // the relay path's relay and host
	rows    []*row
	byName  map[string]*row
	started time.Time
	prof    *profileRun // the Toxiproxy link and the Jupyter pages of --profile (wan.go)
}

// route is one way to the app: a tether launcher's local URL, or ssh -L's.
type route struct {
	name    string
	bin     string   // the tether binary (empty for ssh -L)
	extra   []string // more launch arguments (--ssh openssh)
	target  string   // ssh -L's remote end: "" for the app, else a socket path
	base    string   // http://127.0.0.1:PORT/BASE/
	auth    string   // the Authorization header value, if any
	session string   // the tether session id
	socket  string   // the tether session's socket on the remote
	proc    *proc    // the launcher or the ssh -L client
}

// proc is a child process in its own process group, stopped by its PID.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// interrupt sends SIGINT (a launcher's Ctrl-C) and waits, then stops the group.
func (p *proc) interrupt() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
	}
	e2e.StopGroup(p.cmd.Process.Pid, p.done)
}

func (b *bench) setup() error {
	b.started = time.Now()
	b.byName = map[string]*row{}
	var err error
	if b.self, err = os.Executable(); err != nil {
		return err
	}
	b.root = moduleRoot()
	if b.dir, err = os.MkdirTemp("", "tether-bench-"); err != nil {
		return err
	}
	os.Chmod(b.dir, 0o755)
	fmt.Fprintf(os.Stderr, "bench: building tether…\n")
	b.tether = filepath.Join(b.dir, "tether")
	// Built like `just build` (a release binary), so the first launch uploads what users would.
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=v0.0.0-bench", "-o", b.tether, ".")
	build.Dir = b.root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	// The app is this executable; copy it where the remote (the same machine) may run it.
	app := filepath.Join(b.dir, "bench-app")
	if err := copyExecutable(b.self, app); err != nil {
		return err
	}
	b.self = app
	var env []string
	if b.o.pprof != "" {
		env = append(env, "TETHER_PPROF="+b.o.pprof)
	}
	if b.sshd, err = startSSHD(filepath.Join(b.dir, "sshd"), env); err != nil {
		return err
	}
	if err := b.startProfile(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: sshd on %s; launching the app through tether…\n", b.sshd.addr())
	t, err := b.launchPath(pathTether, b.tether)
	if err != nil {
		return err
	}
	b.paths = append(b.paths, t)
	if b.o.before != "" {
		bp, err := b.launchPath(pathBefore, b.o.before)
		if err != nil {
			return fmt.Errorf("--before: %w", err)
		}
		b.paths = append(b.paths, bp)
	}
	if b.o.openssh {
		fmt.Fprintf(os.Stderr, "bench: launching the app through tether --ssh openssh…\n")
		op, err := b.launchPath(pathOpenSSH, b.tether, "--ssh", "openssh")
		if err != nil {
			return fmt.Errorf("--ssh openssh: %w", err)
		}
		b.paths = append(b.paths, op)
	}
	if b.o.relay {
		fmt.Fprintf(os.Stderr, "bench: starting tether relay and tether host; launching the app through the relay…\n")
		if err := b.startRelay(); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		rp, err := b.launchPath(pathRelay, b.tether, "--relay", b.relay.url)
		if err != nil {
			return fmt.Errorf("--relay: %w", err)
		}
		b.paths = append(b.paths, rp)
	}
	port, err := os.ReadFile(filepath.Join(b.dir, "app-"+pathTether+".port"))
	if err != nil {
		return fmt.Errorf("the app did not write its port: %v", err)
	}
	fmt.Sscan(string(port), &b.appPort)
	s := &route{name: pathSSH}
	b.paths = append(b.paths, s)
	if err := b.startSSHL(s); err != nil {
		return err
	}
	for _, p := range b.paths {
		if p.name == pathOpenSSH {
			k := &route{name: pathSSHSock, target: p.socket, auth: p.auth}
			b.paths = append(b.paths, k)
			return b.startSSHL(k)
		}
	}
	return nil
}

func copyExecutable(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && gomod != "" && gomod != os.DevNull {
		return filepath.Dir(gomod)
	}
	wd, _ := os.Getwd()
	return wd
}

// launched is what `tether launch --json` said.
type launched struct {
	URL       string `json:"url"`
	LocalPort int    `json:"local_port"`
	Session   struct {
		ID      string `json:"id"`
		PID     int    `json:"pid"`
		Token   string `json:"token"`
		BaseURL string `json:"base_url"`
		Socket  string `json:"socket"`
	} `json:"session"`
}

// launch runs `BIN launch --json --no-browser --rm -- APP {port} PORTFILE` and waits
// for its JSON line (printed once the URL works); it returns the launcher and the time
// from start to that line.
func (b *bench) launch(bin, name string, extra ...string) (*proc, *launched, time.Duration, error) {
	target, targetEnv := b.target(extra)
	args := append(append(append([]string{"launch"}, target...), "--json", "--no-browser", "--rm"), extra...)
	args = append(args, "--", b.self, "app", "{port}", filepath.Join(b.dir, "app-"+name+".port"))
	return b.launchArgs(bin, name, args, targetEnv)
}

// launchArgs runs `BIN ARGS...` (a launch with --json) as launch does, with env added
// to the launcher's environment.
func (b *bench) launchArgs(bin, name string, args, targetEnv []string) (*proc, *launched, time.Duration, error) {
	home := filepath.Join(b.dir, "launcher-home-"+name)
	os.MkdirAll(home, 0o700)
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TETHER_BROWSER=true", "XDG_RUNTIME_DIR=" + b.runtimeDir()}, targetEnv...)
	if b.o.pprof != "" {
		cmd.Env = append(cmd.Env, "TETHER_PPROF="+b.o.pprof)
	}
	if v, ok := os.LookupEnv("TETHER_STRIPES"); ok { // forces striping, or turns it off
		cmd.Env = append(cmd.Env, "TETHER_STRIPES="+v)
	}
	logf, err := os.OpenFile(filepath.Join(b.dir, "launcher-"+name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, 0, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, 0, err
	}
	start := time.Now()
	p, err := startProc(cmd)
	if err != nil {
		return nil, nil, 0, err
	}
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		l, _ := br.ReadString('\n')
		lines <- l
		io.Copy(io.Discard, br)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(90 * time.Second):
	case <-b.ctx.Done():
	}
	elapsed := time.Since(start)
	var l launched
	if line == "" || json.Unmarshal([]byte(line), &l) != nil || l.LocalPort == 0 {
		p.interrupt()
		log, _ := os.ReadFile(logf.Name())
		return nil, nil, 0, fmt.Errorf("%s launch gave no JSON line; its stderr: %s", name, lastLines(string(log), 5))
	}
	return p, &l, elapsed, nil
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], " | ")
}

// runtimeDir is the launchers' XDG_RUNTIME_DIR: where tether --ssh openssh keeps its
// ssh master's socket (private to this run).
func (b *bench) runtimeDir() string {
	d := filepath.Join(b.dir, "rt")
	os.MkdirAll(d, 0o700)
	return d
}

func (b *bench) launchPath(name, bin string, extra ...string) (*route, error) {
	p, l, _, err := b.launch(bin, name, extra...)
	if err != nil {
		return nil, err
	}
	base := l.Session.BaseURL
	if base == "" {
		base = "/"
	}
	return &route{name: name, bin: bin, extra: extra, proc: p, session: l.Session.ID, socket: l.Session.Socket, auth: "Bearer " + l.Session.Token,
		base: fmt.Sprintf("http://127.0.0.1:%d%s", l.LocalPort, base)}, nil
}

// startSSHL starts `ssh -L` to the app with tether's cipher and waits until it answers.
func (b *bench) startSSHL(s *route) error {
	lp, err := freePort()
	if err != nil {
		return err
	}
	target := fmt.Sprintf("127.0.0.1:%d", b.appPort)
	if s.target != "" {
		target = s.target
	}
	cmd := exec.Command("ssh", "-F", b.sshd.config, "-N", "-o", "ControlMaster=no", "-o", "ControlPath=none",
		"-o", "ExitOnForwardFailure=yes", "-o", "Ciphers=aes128-gcm@openssh.com",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", lp, target), b.sshd.alias)
	logf, err := os.OpenFile(filepath.Join(b.dir, "ssh-L.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := startProc(cmd)
	logf.Close()
	if err != nil {
		return err
	}
	s.proc, s.base = p, fmt.Sprintf("http://127.0.0.1:%d/", lp)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !p.exited(); time.Sleep(10 * time.Millisecond) {
		if resp, err := c.Do(s.request(b.ctx, "GET", "small", nil, 0)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
	}
	p.interrupt()
	return errors.New("ssh -L did not come up (see ssh-L.log)")
}

func (b *bench) teardown() {
	b.stopPages()
	for _, p := range b.paths {
		p.proc.interrupt()
	}
	b.stopRelay()
	if b.sshd != nil {
		// The sessions were started with --rm; stop any left behind all the same.
		cmd := exec.Command(b.tether, "stop", "-F", b.sshd.config, b.sshd.alias, "--all")
		cmd.Env = []string{"HOME=" + filepath.Join(b.dir, "launcher-home-"+pathTether), "PATH=" + os.Getenv("PATH")}
		if p, err := startProc(cmd); err == nil {
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				e2e.StopGroup(p.cmd.Process.Pid, p.done)
			}
		}
		// tether --ssh openssh's master (its ControlPersist would end it in minutes).
		socks, _ := filepath.Glob(filepath.Join(b.runtimeDir(), "tether", "c-*"))
		for _, sock := range socks {
			if !strings.HasSuffix(sock, ".lock") {
				exec.Command("ssh", "-F", b.sshd.config, "-o", "ControlPath="+sock, "-O", "exit", b.sshd.alias).Run()
			}
		}
		b.sshd.stop()
	}
	b.stopProfile()
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// record adds one value of a metric for a path.
func (b *bench) record(m metric, pathName string, v float64) {
	r := b.byName[m.Name]
	if r == nil {
		r = &row{metric: m, Values: map[string][]float64{}}
		b.byName[m.Name] = r
		b.rows = append(b.rows, r)
	}
	r.Values[pathName] = append(r.Values[pathName], v)
}

func (b *bench) measure() error {
	for _, it := range b.o.items {
		if b.ctx.Err() != nil {
			return b.ctx.Err()
		}
		fmt.Fprintf(os.Stderr, "bench: %s (%d rounds)…\n", it, b.o.rounds)
		for range b.o.rounds {
			if err := b.item(it); err != nil {
				return fmt.Errorf("%s: %w", it, err)
			}
		}
	}
	for _, r := range b.rows {
		r.summarize()
	}
	fmt.Println()
	var names []string
	for _, p := range b.paths {
		names = append(names, p.name)
	}
	b.printProfile(os.Stdout)
	printTable(os.Stdout, b.rows, names)
	return b.writeJSON()
}

func (b *bench) writeJSON() error {
	out := b.o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(b.root, out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	sshV, _ := exec.Command("ssh", "-V").CombinedOutput()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	doc := map[string]any{
		"date":     b.started.UTC().Format(time.RFC3339),
		"duration": time.Since(b.started).Round(time.Second).String(),
		"machine": map[string]any{"cpus": runtime.NumCPU(), "cpu": cpuModel(), "kernel": strings.TrimSpace(string(kernel)),
			"go": runtime.Version(), "openssh": strings.TrimSpace(string(sshV))},
		"options": map[string]any{"quick": b.o.quick, "rounds": b.o.rounds, "items": b.o.items, "before": b.o.before, "openssh": b.o.openssh},
		"results": b.rows,
	}
	if b.onProfile() {
		doc["profile"] = b.prof.link
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(out, "bench-"+b.started.UTC().Format("20060102-150405")+".json")
	if err := os.WriteFile(name, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\n%s, %d CPUs (%s), %s; rounds %d%s. JSON: %s\n", b.started.UTC().Format("2006-01-02 15:04 UTC"),
		runtime.NumCPU(), cpuModel(), strings.TrimSpace(string(sshV)), b.o.rounds, map[bool]string{true: ", quick"}[b.o.quick], name)
	return nil
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
