//go:build unix

package batch

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-dev/tether/e2e"
)

// TestSlurmClusterSurfaces is issue 11's item 7 (a) and (c), on a real Slurm cluster
// behind a real sshd: sbatch options tether owns are refused however sbatch's
// getopt_long would read them (prefixes, bundles) and never reach sbatch; SBATCH_*
// variables in the login environment do not move the job's output, rename it, make it
// an array or make sbatch wait; and junk connections to the node's server from the
// cluster network do not grow the job's output file or the session's logs.
func TestSlurmClusterSurfaces(t *testing.T) {
	s := e2e.StartSlurm(t, e2e.SlurmOptions{})
	site := e2e.SlurmSiteOn(t, s, "hpc-login", nil)
	e2e.Binary(t)

	allJobs := func(t *testing.T) []string {
		t.Helper()
		out, _, err := s.Run("squeue", "-h", "-t", "all", "-o", "%i %j %T")
		if err != nil {
			t.Fatalf("squeue: %v", err)
		}
		return strings.Fields(out)
	}

	t.Run("options tether owns never reach sbatch", func(t *testing.T) {
		// Where the job's output would land, outside the session's 0700 directory (a short
		// path: the error quotes at most 64 bytes of the word).
		leak, err := os.MkdirTemp("", "leak")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(leak) })
		out := filepath.Join(leak, "x")
		cases := []struct{ slurm, word, as string }{
			{"--out=" + out, "--out=" + out, "--output"},
			{"--job=x", "--job=x", "--job-name"},
			{"--arr=0-3", "--arr=0-3", "--array"},
			{"-p debug -vo" + out, "-vo" + out, "--output"},
			{"-Qa0-3", "-Qa0-3", "--array"},
			{"-t 10 --err " + out, "--err", "--error"},
		}
		before := allJobs(t)

		// The login node's side, as the launcher runs it over SSH (an older launcher
		// would not have judged the words): refused before sbatch runs.
		for _, c := range cases {
			words, err := splitWords(c.slurm)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"batch", "submit", "--scheduler=slurm"}
			for _, w := range words {
				args = append(args, "--option="+w)
			}
			cmd := exec.Command(e2e.Binary(t), append(args, "--serve=--")...)
			cmd.Env = append(s.Environ(), "HOME="+t.TempDir())
			stdin, _ := cmd.StdinPipe() // held open: a launcher still waiting
			var stdout, stderr e2e.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			p := e2e.Start(t, cmd)
			err, ok := p.Wait(60 * time.Second)
			stdin.Close()
			if !ok {
				t.Fatalf("batch submit --slurm %q did not finish", c.slurm)
			}
			want := fmt.Sprintf("tether: --slurm option %s (sbatch reads it as %s) is tether's own: ", c.word, c.as)
			if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 2 || !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("batch submit with %q: %v, stdout %q, stderr %q; want exit 2 and one line starting %q", c.slurm, err, stdout.String(), stderr.String(), want)
			}
		}

		// The launcher: a usage error (exit 2) before it even connects.
		for _, c := range cases {
			_, errOut, code := e2e.RunTether(t, site.Args("launch", "--slurm", c.slurm, "--no-browser")...)
			want := fmt.Sprintf("tether: --slurm option %s (sbatch reads it as %s) is tether's own: ", c.word, c.as)
			if code != 2 || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("launch --slurm %q: exit %d, stderr %q; want exit 2 and one line starting %q", c.slurm, code, errOut, want)
			}
		}

		if after := allJobs(t); len(after) != len(before) {
			t.Errorf("sbatch got a job: the queue was %q, now %q", before, after)
		}
		if entries, _ := os.ReadDir(leak); len(entries) > 0 {
			t.Errorf("a job wrote outside its session directory: %v", entries)
		}
		if list := site.Sessions(t); len(list) > 0 {
			t.Errorf("sessions left: %v", list)
		}
	})

	t.Run("SBATCH_ variables in the login environment", func(t *testing.T) {
		leak := t.TempDir()
		envSite := e2e.SlurmSiteOn(t, s, "hpc-login-env", map[string]string{
			"SBATCH_OUTPUT":    filepath.Join(leak, "output"),
			"SBATCH_ERROR":     filepath.Join(leak, "error"),
			"SBATCH_JOB_NAME":  "renamed",
			"SBATCH_ARRAY_INX": "0-1",
			"SBATCH_WAIT":      "1",
			"SBATCH_INPUT":     filepath.Join(leak, "input"),
		})
		os.WriteFile(filepath.Join(leak, "input"), []byte("not for the job\n"), 0o600)
		l := envSite.Launch(t, "-t 10", "--no-browser")
		sess := l.Line.Session
		j, ok := envSite.JobNamed(t, sess.ID)
		if !ok || j.State != "RUNNING" {
			t.Fatalf("no running job named tether-%s: %+v", sess.ID, j)
		}
		if jobs := envSite.ActiveJobs(t); len(jobs) != 1 || jobs[0] != j.ID+" tether-"+sess.ID+" RUNNING" {
			t.Errorf("the queue holds %q; want the session's one job (not an array, not renamed)", jobs)
		}
		if status, body, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort), "Authorization", "token "+sess.Token); status != 200 || !strings.Contains(body, sess.ID) {
			t.Errorf("the app: %d %.100q", status, body)
		}
		b, err := os.ReadFile(filepath.Join(envSite.SessionDir(sess.ID), "job.out"))
		if err != nil || !strings.Contains(string(b), "ready on "+s.Node) {
			t.Errorf("the job's output file in the session directory: %v %q; want the server's ready line", err, b)
		}
		if entries, _ := os.ReadDir(leak); len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("the job wrote outside its session directory: %v", names)
		}
		if _, errOut, code := e2e.RunTether(t, envSite.Args("stop", sess.ID)...); code != 0 {
			t.Errorf("stop: exit %d: %s", code, errOut)
		}
		l.Interrupt(t)
		if jobs := envSite.ActiveJobs(t); len(jobs) != 0 {
			t.Errorf("jobs left: %v", jobs)
		}
	})

	t.Run("junk connections to the node's server", func(t *testing.T) {
		l := site.Launch(t, "-t 10", "--no-browser")
		sess := l.Line.Session
		var line struct {
			Session struct {
				Addr string `json:"addr"`
			} `json:"session"`
		}
		json.Unmarshal([]byte(l.Stdout.String()), &line)
		addr := line.Session.Addr
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("the record's addr %q: %v", addr, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Skipf("the node's server listens on %s, not on loopback: this test sends junk only to loopback", addr)
		}
		dir := site.SessionDir(sess.ID)
		jobOut, srvLog := filepath.Join(dir, "job.out"), filepath.Join(dir, "server.log")
		size := func(p string) int64 {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%v", err)
			}
			return fi.Size()
		}
		lines := func(p string) int {
			b, _ := os.ReadFile(p)
			return strings.Count(string(b), "\n")
		}
		outBefore, outLines, logLines := size(jobOut), lines(jobOut), lines(srvLog)

		// A few seconds of junk from loopback, as any user on the cluster network could:
		// raw bytes, plain HTTP to the TLS port, TLS clients that reject the server's
		// certificate, connect-and-close.
		var conns atomic.Int64
		stop := time.Now().Add(3 * time.Second)
		kinds := []func(){
			func() {
				if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
					c.Write([]byte("\x16\x03junk\r\n\r\n"))
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					io.Copy(io.Discard, c)
					c.Close()
				}
			},
			func() {
				c := &http.Client{Timeout: 2 * time.Second}
				if resp, err := c.Get("http://" + addr + "/"); err == nil {
					resp.Body.Close()
				}
			},
			func() {
				d := &net.Dialer{Timeout: 2 * time.Second}
				if c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: s.Node}); err == nil {
					c.Close()
				}
			},
			func() {
				if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
					c.Close()
				}
			},
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; time.Now().Before(stop) && n < 100_000; n++ {
					kinds[(i+n)%len(kinds)]()
					conns.Add(1)
				}
			}()
		}
		wg.Wait()
		time.Sleep(time.Second) // the server logs a failure once its connection's goroutine sees it

		n := conns.Load()
		outGrew, outNew, logNew := size(jobOut)-outBefore, lines(jobOut)-outLines, lines(srvLog)-logLines
		t.Logf("%d junk connections in 3 s (%.0f/s): the job's output file grew %d bytes (%d lines), server.log %d lines",
			n, float64(n)/3, outGrew, outNew, logNew)
		if n < 100 {
			t.Fatalf("only %d junk connections were made", n)
		}
		if outNew > 0 {
			b, _ := os.ReadFile(jobOut)
			t.Errorf("the job's output file grew %d lines (%d bytes) from %d junk connections; want none. It ends:\n%s", outNew, outGrew, n, e2e.LastLines(string(b), 5))
		}
		if logNew > 3 {
			b, _ := os.ReadFile(srvLog)
			t.Errorf("server.log grew %d lines from %d junk connections; want at most 3. It ends:\n%s", logNew, n, e2e.LastLines(string(b), 5))
		}
		if size(jobOut) > 1<<20+4096 || size(srvLog) > 8<<20 {
			t.Errorf("over their caps: job.out %d bytes (1 MiB), server.log %d bytes (8 MiB)", size(jobOut), size(srvLog))
		}
		// The session still works, for its owner.
		if status, body, _ := e2e.Fetch(t, fmt.Sprintf("http://127.0.0.1:%d/", l.Line.LocalPort), "Authorization", "token "+sess.Token); status != 200 || !strings.Contains(body, sess.ID) {
			t.Errorf("after the junk: %d %.100q", status, body)
		}
		if _, errOut, code := e2e.RunTether(t, site.Args("stop", sess.ID)...); code != 0 {
			t.Errorf("stop: exit %d: %s", code, errOut)
		}
		l.Interrupt(t)
	})
}

// splitWords splits a --slurm string on blanks (the cases here need no quoting).
func splitWords(s string) ([]string, error) {
	if strings.ContainsAny(s, `'"\`) {
		return nil, fmt.Errorf("%q needs quoting", s)
	}
	return strings.Fields(s), nil
}
