//go:build linux

package main

// --profile lan|campus|wan: the launcher, `ssh -L` and `ssh HOST true` all reach the
// same sshd through one Toxiproxy proxy (toxiproxy-server, as e2e/faults runs it) with
// a latency and a bandwidth toxic on both directions, so the two paths share the link,
// its round trip and its capacity. The profile's figure is the round trip; each
// direction gets half of it (wan: 80 ms round trip = 40 ms each way, as issue 19
// measured it). Toxiproxy counts latency in whole milliseconds, so lan's 1 ms round
// trip is 1 ms client to server and none back.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/e2e"
	"github.com/tether-dev/tether/e2e/toxiapi"
	"github.com/tether-dev/tether/launcher"
)

// linkProfile is one emulated network between the laptop and the remote.
type linkProfile struct {
	Name  string `json:"name"`
	RTTms int    `json:"rtt_ms"`
	// UpMS and DownMS are the latency toxics (client to server, server to client).
	UpMS   int `json:"latency_up_ms"`
	DownMS int `json:"latency_down_ms"`
	// Mbit is the bandwidth toxic on each direction, in Mbit/s (0: none).
	Mbit int `json:"mbit_per_s"`
	// BulkMiB is the download and upload size used (parallel: 6 × a quarter of it).
	BulkMiB int64 `json:"bulk_mib"`
	// CryptoMBs is AES-128-GCM sealing 32 KiB packets on one core, MB/s.
	CryptoMBs float64 `json:"crypto_mb_per_s"`
	// WindowBytes is an SSH channel's receive window (x/crypto and OpenSSH alike).
	WindowBytes int `json:"window_bytes"`
}

// sshWindow is the channel window both stacks grant: x/crypto's channelWindowSize
// (64 × 32 KiB, ssh/channel.go) and OpenSSH's CHAN_TCP_WINDOW_DEFAULT and
// CHAN_SES_WINDOW_DEFAULT (64 × 32 KiB, channels.h). A channel carries at most one
// window per round trip.
const sshWindow = 2 << 20

// linkProfiles: round trip, bandwidth each way, and the default bulk size, picked so
// one transfer lasts a few seconds at the link's rate and a profile runs in minutes
// (--size changes it).
var linkProfiles = map[string]linkProfile{
	"lan":    {Name: "lan", RTTms: 1, Mbit: 1000, BulkMiB: 256},
	"campus": {Name: "campus", RTTms: 20, Mbit: 200, BulkMiB: 128},
	"wan":    {Name: "wan", RTTms: 80, Mbit: 100, BulkMiB: 64},
}

// profileItems are items only a profile runs by default (they need Jupyter and
// Chromium); --items may name them on loopback too.
var profileItems = []string{"jupyter"}

// profileDefaultItems are a profile's items: what a user on a distant link feels.
var profileDefaultItems = []string{"download", "upload", "parallel", "ws", "launch", "reconnect", "jupyter"}

// profileFlags are --profile and its knobs.
type profileFlags struct {
	name    string
	sizeMiB int64
	mbit    int
}

func (f *profileFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "profile", "", "lan, campus or wan: reach sshd through Toxiproxy with that round trip (1, 20, 80 ms) and bandwidth (1000, 200, 100 Mbit/s)")
	fs.Int64Var(&f.sizeMiB, "size", 0, "MiB of the download and upload on a --profile (default lan 256, campus 128, wan 64; --quick 16)")
	fs.IntVar(&f.mbit, "mbit", -1, "the profile's bandwidth each way in Mbit/s instead of its own (0: latency only)")
}

// apply checks the profile flags and sets a profile's defaults: its items, 3 rounds,
// no --ssh openssh column, unless given.
func (f *profileFlags) apply(fs *flag.FlagSet, o *options, items *string) int {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if f.name == "" {
		if set["size"] || set["mbit"] {
			fmt.Fprintln(os.Stderr, "bench: --size and --mbit go with --profile lan|campus|wan")
			return 2
		}
		return 0
	}
	if _, ok := linkProfiles[f.name]; !ok {
		fmt.Fprintf(os.Stderr, "bench: unknown --profile %q: pick lan, campus or wan\n", f.name)
		return 2
	}
	if f.sizeMiB < 0 || (set["size"] && f.sizeMiB == 0) || (set["mbit"] && f.mbit < 0) {
		fmt.Fprintln(os.Stderr, "bench: --size is a positive number of MiB and --mbit a number of Mbit/s (0: no limit)")
		return 2
	}
	if !set["items"] {
		*items = strings.Join(profileDefaultItems, ",")
	}
	if !set["openssh"] {
		o.openssh = false
	}
	if !set["rounds"] {
		o.rounds = 3
	}
	if set["relay"] && o.relay {
		fmt.Fprintln(os.Stderr, "bench: --relay goes without --profile: the relay path does not go through the profile's proxy")
		return 2
	}
	o.relay = false // tether host is its own SSH server, not behind the proxy's sshd
	return 0
}

// profileRun is the state of --profile and of the jupyter item.
type profileRun struct {
	link  *linkProfile // nil on loopback
	api   string       // toxiproxy-server's HTTP API
	proxy string       // the proxy's name
	toxi  *proc

	pages    map[string]*pageRoute // by path name; nil value: not measured
	jupyter  *proc                 // the Jupyter started by hand for ssh -L
	jupPort  int
	jupToken string
	browser  context.Context
	stopBr   []context.CancelFunc
}

// onProfile: the run goes through Toxiproxy.
func (b *bench) onProfile() bool { return b.prof != nil && b.prof.link != nil }

// startProfile starts Toxiproxy with the profile's toxics between the clients and sshd
// and points the ssh_config (so every launcher, ssh -L and ssh true) at it.
func (b *bench) startProfile() error {
	b.prof = &profileRun{pages: map[string]*pageRoute{}}
	f := b.o.prof
	if f.name == "" {
		return nil
	}
	l := linkProfiles[f.name]
	l.UpMS, l.DownMS = (l.RTTms+1)/2, l.RTTms/2
	if f.mbit >= 0 {
		l.Mbit = f.mbit
	}
	l.BulkMiB = b.profileBulkSize() >> 20
	l.WindowBytes = sshWindow
	l.CryptoMBs = cryptoRate()
	b.prof.link = &l
	bin, err := e2e.FindProgram("toxiproxy-server")
	if err != nil {
		return fmt.Errorf("--profile needs toxiproxy-server: install it with `GOBIN=/usr/local/bin go install github.com/Shopify/toxiproxy/v2/cmd/server@%s && mv /usr/local/bin/server /usr/local/bin/toxiproxy-server` (bash .ci/run does)", e2e.ToxiproxyVersion)
	}
	for attempt := 0; attempt < 5 && b.prof.toxi == nil; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		logf, err := os.Create(filepath.Join(b.dir, "toxiproxy.log"))
		if err != nil {
			return err
		}
		cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", strconv.Itoa(port))
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LOG_LEVEL=warn"}
		p, err := startProc(cmd)
		logf.Close()
		if err != nil {
			return err
		}
		b.prof.api = fmt.Sprintf("http://127.0.0.1:%d", port)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !p.exited(); time.Sleep(20 * time.Millisecond) {
			if b.prof.call("GET", "/version", nil, nil) == nil {
				b.prof.toxi = p
				break
			}
		}
		if b.prof.toxi == nil {
			e2e.StopGroup(p.cmd.Process.Pid, p.done)
		}
	}
	if b.prof.toxi == nil {
		log, _ := os.ReadFile(filepath.Join(b.dir, "toxiproxy.log"))
		return fmt.Errorf("toxiproxy-server did not start: %s", lastLines(string(log), 5))
	}
	b.prof.proxy = "sshd"
	var got struct {
		Listen string `json:"listen"`
	}
	if err := b.prof.call("POST", "/proxies", map[string]any{"name": b.prof.proxy, "listen": "127.0.0.1:0", "upstream": b.sshd.addr(), "enabled": true}, &got); err != nil {
		return err
	}
	_, ps, _ := strings.Cut(got.Listen, ":")
	port, err := strconv.Atoi(ps)
	if err != nil {
		return fmt.Errorf("toxiproxy listens on %q", got.Listen)
	}
	for _, d := range []struct {
		stream string
		ms     int
	}{{"upstream", l.UpMS}, {"downstream", l.DownMS}} {
		if d.ms > 0 {
			if err := b.prof.toxic("latency-"+d.stream, "latency", d.stream, map[string]any{"latency": d.ms, "jitter": 0}); err != nil {
				return err
			}
		}
		if l.Mbit > 0 { // the toxic's rate is in KB/s (1000 bytes)
			if err := b.prof.toxic("bandwidth-"+d.stream, "bandwidth", d.stream, map[string]any{"rate": l.Mbit * 125}); err != nil {
				return err
			}
		}
	}
	if err := b.sshd.through(port); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: profile %s: sshd %s reached through Toxiproxy on 127.0.0.1:%d (%s)\n", l.Name, b.sshd.addr(), port, l.describe())
	return nil
}

func (l *linkProfile) describe() string {
	s := fmt.Sprintf("%d ms round trip: latency %d ms client→server, %d ms back", l.RTTms, l.UpMS, l.DownMS)
	if l.Mbit > 0 {
		return s + fmt.Sprintf("; %d Mbit/s each way", l.Mbit)
	}
	return s + "; no bandwidth limit"
}

func (r *profileRun) toxic(name, typ, stream string, attrs map[string]any) error {
	return r.call("POST", "/proxies/"+r.proxy+"/toxics",
		map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs}, nil)
}

// setEnabled turns the proxy off (closing its listener and every connection through
// it: both ends see the close) or on again on the same port.
func (r *profileRun) setEnabled(on bool) error {
	return r.call("POST", "/proxies/"+r.proxy, map[string]any{"enabled": on}, nil)
}

// call sends one request to Toxiproxy's HTTP API and decodes the answer into out.
func (r *profileRun) call(method, path string, body, out any) error {
	return toxiapi.Call(r.api, method, path, body, out)
}

// stopProfile stops Toxiproxy (after the launchers and sshd: their last words go
// through it).
func (b *bench) stopProfile() {
	if b.prof != nil && b.prof.toxi != nil {
		e2e.StopGroup(b.prof.toxi.cmd.Process.Pid, b.prof.toxi.done)
	}
}

// through rewrites the client config and known_hosts to reach sshd on port (the proxy).
func (s *sshd) through(port int) error {
	cfg, err := os.ReadFile(s.config)
	if err != nil {
		return err
	}
	old := fmt.Sprintf("  Port %d\n", s.port)
	if !bytes.Contains(cfg, []byte(old)) {
		return fmt.Errorf("%s has no %q", s.config, old)
	}
	cfg = bytes.Replace(cfg, []byte(old), []byte(fmt.Sprintf("  Port %d\n", port)), 1)
	kh, err := os.ReadFile(s.knownHosts)
	if err != nil {
		return err
	}
	kh = bytes.ReplaceAll(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d ", s.port)), []byte(fmt.Sprintf("[127.0.0.1]:%d ", port)))
	if err := os.WriteFile(s.knownHosts, kh, 0o600); err != nil {
		return err
	}
	return os.WriteFile(s.config, cfg, 0o600)
}

// profileBulkSize is the download and upload size on a profile (0 on loopback).
func (b *bench) profileBulkSize() int64 {
	f := b.o.prof
	switch {
	case f.name == "":
		return 0
	case f.sizeMiB > 0:
		return f.sizeMiB << 20
	case b.o.quick:
		return 16 << 20
	}
	return linkProfiles[f.name].BulkMiB << 20
}

// profileWS bounds the WebSocket item on a profile: round trips for about a second
// (at least 20), and a shorter stream.
func (b *bench) profileWS(trips, stream int) (int, int) {
	if !b.onProfile() {
		return trips, stream
	}
	return min(trips, max(20, 1000/b.prof.link.RTTms)), min(stream, 10000)
}

// cryptoRate is AES-128-GCM (tether's and the ssh -L's cipher) sealing 32 KiB packets
// on one core for 300 ms, MB/s: the crypto term of the per-connection ceiling.
func cryptoRate() float64 {
	block, _ := aes.NewCipher(make([]byte, 16))
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	buf := make([]byte, 32<<10)
	out := make([]byte, 0, len(buf)+gcm.Overhead())
	n := 0
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
		out = gcm.Seal(out[:0], nonce, buf, nil)
		n += len(buf)
	}
	return float64(n) / mb / time.Since(start).Seconds()
}

// printProfile prints the link and the per-connection ceiling above the table.
func (b *bench) printProfile(w io.Writer) {
	if !b.onProfile() {
		return
	}
	l := b.prof.link
	rtt := float64(l.RTTms) / 1000
	win := float64(l.WindowBytes) / mb / rtt
	ceil := min(l.CryptoMBs, win)
	fmt.Fprintf(w, "profile %s: %s (Toxiproxy %s, latency and bandwidth toxics on both directions); bulk %d MiB\n",
		l.Name, l.describe(), e2e.ToxiproxyVersion, l.BulkMiB)
	if l.Mbit > 0 {
		fmt.Fprintf(w, "  link capacity: %.1f MB/s each way\n", float64(l.Mbit)/8)
	}
	fmt.Fprintf(w, "  per-connection ceiling = min(crypto, window / RTT) = min(%.0f MB/s AES-128-GCM on one core, 2 MiB / %d ms = %.1f MB/s) = %.1f MB/s\n",
		l.CryptoMBs, l.RTTms, win, ceil)
	fmt.Fprintf(w, "    (window 2 MiB for both: x/crypto's channelWindowSize, OpenSSH's CHAN_TCP_WINDOW_DEFAULT)\n")
	// tether carries a connection over N channels at this round trip (launcher/stripes.go).
	n := launcher.StripesFor(time.Duration(l.RTTms) * time.Millisecond)
	striped := min(l.CryptoMBs, float64(n)*win)
	if n > 1 {
		fmt.Fprintf(w, "  tether stripes a connection over %d channels here: ceiling min(crypto, %d × window / RTT) = %.1f MB/s; ssh -L keeps one channel\n",
			n, n, striped)
	}
	if l.Mbit > 0 {
		one, six := min(ceil, float64(l.Mbit)/8), min(6*ceil, float64(l.Mbit)/8)
		bound := "the window"
		if float64(l.Mbit)/8 < ceil {
			bound = "the link"
		}
		fmt.Fprintf(w, "  so one download can reach %.1f MB/s through ssh -L (%s is the limit), %.1f through tether; six parallel %.1f MB/s\n",
			one, bound, min(striped, float64(l.Mbit)/8), six)
	}
	fmt.Fprintln(w)
}

// reconnectCut: cut the proxy (every connection through it closes) and restore it at
// once; the time from the cut until each tether URL answers again. ssh -L does not
// reconnect (it exits): its figure is a fresh ssh -L started after the cut, until its
// first answer, what a user or autossh does at best.
func (b *bench) reconnectCut() error {
	m := metric{"reconnect after a cut", "s", false}
	var targets []*route
	for _, p := range b.paths {
		if !isSSH(p.name) {
			targets = append(targets, p)
		}
	}
	start := time.Now()
	if err := b.prof.setEnabled(false); err != nil {
		return err
	}
	if err := b.prof.setEnabled(true); err != nil {
		return err
	}
	if err := b.timeAnswers(targets, start, 5*time.Second, "the cut", m); err != nil {
		return err
	}
	for _, p := range b.paths {
		if !isSSH(p.name) {
			continue
		}
		select {
		case <-p.proc.done:
		case <-time.After(10 * time.Second):
			p.proc.interrupt() // it did not notice the cut: replace it all the same
		}
		t0 := time.Now()
		if err := b.startSSHL(p); err != nil {
			return err
		}
		b.record(m, p.name, time.Since(t0).Seconds())
	}
	time.Sleep(200 * time.Millisecond)
	return nil
}
