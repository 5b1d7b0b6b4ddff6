//go:build linux

package main

// The jupyter item: a real page in a real browser. Each path serves Jupyter Notebook
// (tether: `tether launch HOST jupyter`; ssh -L: jupyter-notebook started by hand with
// its token, and an `ssh -N -L` to it, through the same sshd and link). Each round, a
// fresh browser context of one headless Chromium (empty cache, no cookies) opens the
// URL a user opens (tether's printed URL; the URL Jupyter prints, /?token=…, from which
// Jupyter redirects to /tree itself: jupyterLogin) and is timed to the
// load event of the tree page; then it opens a notebook and is timed to the load event
// and to its new Python kernel being idle; then the notebook's session (and kernel) is
// deleted so the next round starts a kernel again.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tether-dev/tether/e2e"
)

// pageRoute is how one path reaches its Jupyter.
type pageRoute struct {
	login string // the first URL the user opens
	base  string // http://127.0.0.1:PORT/BASE/
	proc  *proc  // the launcher, or the ssh -L
}

const benchNotebook = "bench.ipynb"

// A one-cell notebook with the Python 3 kernel.
const benchNotebookJSON = `{"cells": [{"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": "print(6*7)"}],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}`

var errNoPage = errors.New("no Jupyter page on this path")

func (b *bench) jupyter(p *route) error {
	pr, err := b.pageFor(p)
	if errors.Is(err, errNoPage) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("jupyter: %w", err)
	}
	bctx, err := b.browser()
	if err != nil {
		return err
	}
	tab, cancelTab := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tab, 2*time.Minute)
	defer cancel()
	var nl netLog
	if err := nl.listen(ctx); err != nil {
		return fmt.Errorf("watching the tab's network: %w", err)
	}
	logFile := netLogFile(b.o.out, p.name)
	// The tab's renderer up first (untimed), so the first page does not pay for it.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		return fmt.Errorf("a new tab: %w", err)
	}
	nl.begin()
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(pr.login)); err != nil {
		return fmt.Errorf("opening %s: %w", pr.base, err)
	}
	tree := time.Since(start)
	treeCounts := nl.end(logFile, "tree")
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector("#notebook_list")`)); err != nil || !ok {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		return fmt.Errorf("the first page (%s) is not Jupyter's tree (err %v)", loc, err)
	}
	// The notebook, put in Jupyter's root through its API (untimed; the root is the
	// session's directory for tether, HOME for the Jupyter started by hand).
	put, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const x = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "";
		const r = await fetch("api/contents/`+benchNotebook+`", {method: "PUT", headers: {"Content-Type": "application/json", "X-XSRFToken": x},
			body: JSON.stringify({type: "notebook", format: "json", content: `+benchNotebookJSON+`})});
		return r.ok ? "" : r.status + " " + await r.text(); })()`, chromedp.EvalAwaitPromise))
	if err != nil || put != "" {
		return fmt.Errorf("putting %s into Jupyter: %q, %v", benchNotebook, put, err)
	}
	nl.begin()
	start = time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(pr.base+"notebooks/"+benchNotebook)); err != nil {
		return fmt.Errorf("opening the notebook: %w", err)
	}
	load := time.Since(start)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`typeof Jupyter !== "undefined" && !!Jupyter.notebook && !!Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected() && !!document.querySelector("#kernel_indicator_icon.kernel_idle_icon")`,
		chromedp.WithPollingInterval(5*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		state, _ := chromedp.Run(context.WithoutCancel(tab), chromedp.Evaluate[string](`JSON.stringify({icon: (document.querySelector("#kernel_indicator_icon") || {}).className,
			kernel: typeof Jupyter !== "undefined" && !!Jupyter.notebook && !!Jupyter.notebook.kernel, url: location.href})`))
		return fmt.Errorf("the notebook's kernel did not become idle (%s): %w", state, err)
	}
	idle := time.Since(start)
	nbCounts := nl.end(logFile, "notebook")
	// Delete the session, and so its kernel: the next round starts one again.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise(r => Jupyter.notebook.session.delete(() => r(true), () => r(false)))`, chromedp.EvalAwaitPromise)); err != nil {
		return fmt.Errorf("deleting the notebook's session: %w", err)
	}
	b.record(metric{"Jupyter tree, first visit: load", "s", false}, p.name, tree.Seconds())
	b.record(metric{"notebook: load", "s", false}, p.name, load.Seconds())
	b.record(metric{"notebook: kernel idle", "s", false}, p.name, idle.Seconds())
	b.recordRedirectTime(p, "Jupyter tree", treeCounts)
	b.recordCounts(p, "Jupyter tree", treeCounts)
	b.recordCounts(p, "notebook to idle", nbCounts)
	return nil
}

// pageFor starts (once) the path's Jupyter and returns how to reach it: errNoPage for
// ssh -L to a session's socket, which has no Jupyter of its own.
func (b *bench) pageFor(p *route) (*pageRoute, error) {
	r := b.prof
	if pr, ok := r.pages[p.name]; ok {
		if pr == nil {
			return nil, errNoPage
		}
		if p.bin != "" || !pr.proc.exited() {
			return pr, nil // a launcher reconnects by itself
		}
		// ssh -L exits when the link is cut: start another, as the user would.
		proc, base, err := b.forward(r.jupPort)
		if err != nil {
			return nil, err
		}
		pr.proc, pr.base, pr.login = proc, base, jupyterLogin(base, r.jupToken)
		return pr, nil
	}
	if p.bin == "" && p.name != pathSSH {
		r.pages[p.name] = nil
		return nil, errNoPage
	}
	var pr *pageRoute
	if p.bin != "" {
		fmt.Fprintf(os.Stderr, "bench: launching Jupyter through %s…\n", columnName[p.name])
		target, env := b.target(p.extra)
		args := append(append(append([]string{"launch"}, target...), "jupyter", "--json", "--no-browser", "--rm"), p.extra...)
		lp, l, _, err := b.launchArgs(p.bin, p.name+"-jupyter", args, env)
		if err != nil {
			return nil, err
		}
		base := l.Session.BaseURL
		if base == "" {
			base = "/"
		}
		pr = &pageRoute{login: l.URL, base: fmt.Sprintf("http://127.0.0.1:%d%s", l.LocalPort, base), proc: lp}
	} else {
		if err := b.startJupyterByHand(); err != nil {
			return nil, err
		}
		proc, base, err := b.forward(r.jupPort)
		if err != nil {
			return nil, err
		}
		pr = &pageRoute{login: jupyterLogin(base, r.jupToken), base: base, proc: proc}
	}
	r.pages[p.name] = pr
	return pr, nil
}

// jupyterLogin is the URL Jupyter Notebook prints for the user to open
// ("http://127.0.0.1:PORT/?token=…"): its root, which redirects to /tree with the token,
// where the login cookie is set. (Opening /tree?token=… directly, as this bench once
// did, skips the redirect a user pays and so compared a different page load.)
func jupyterLogin(base, token string) string { return base + "?token=" + token }

// startJupyterByHand starts jupyter-notebook on 127.0.0.1 as a user would on the
// remote (here the same machine, in the sshd user's HOME), its token from the
// environment (JUPYTER_TOKEN), and waits until it answers.
func (b *bench) startJupyterByHand() error {
	r := b.prof
	bin, err := e2e.FindProgram("jupyter-notebook")
	if err != nil {
		return fmt.Errorf("jupyter-notebook not found: install it with `bash .ci/install-apps` (or leave out the jupyter item: --items)")
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	tok := make([]byte, 24)
	rand.Read(tok)
	r.jupToken, r.jupPort = hex.EncodeToString(tok), port
	rt := filepath.Join(b.dir, "jupyter-runtime")
	os.MkdirAll(rt, 0o700)
	cmd := exec.Command(bin, "--no-browser", "--allow-root", "--ip=127.0.0.1", "--port="+strconv.Itoa(port), "--port-retries=0")
	cmd.Dir = b.sshd.home
	cmd.Env = []string{"HOME=" + b.sshd.home, "PATH=" + os.Getenv("PATH"), "JUPYTER_TOKEN=" + r.jupToken, "JUPYTER_RUNTIME_DIR=" + rt}
	logf, err := os.Create(filepath.Join(b.dir, "jupyter-by-hand.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := startProc(cmd)
	logf.Close()
	if err != nil {
		return err
	}
	r.jupyter = p
	c := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && !p.exited(); time.Sleep(50 * time.Millisecond) {
		if resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/api", port)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
	}
	log, _ := os.ReadFile(logf.Name())
	return fmt.Errorf("jupyter-notebook did not come up: %s", lastLines(string(log), 5))
}

// forward starts `ssh -N -L` to 127.0.0.1:port on the remote (with the cipher tether
// uses) and waits until it answers; it returns the process and its local base URL.
func (b *bench) forward(port int) (*proc, string, error) {
	lp, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command("ssh", "-F", b.sshd.config, "-N", "-o", "ControlMaster=no", "-o", "ControlPath=none",
		"-o", "ExitOnForwardFailure=yes", "-o", "Ciphers=aes128-gcm@openssh.com",
		"-L", fmt.Sprintf("127.0.0.1:%d:127.0.0.1:%d", lp, port), b.sshd.alias)
	logf, err := os.OpenFile(filepath.Join(b.dir, "ssh-L-jupyter.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := startProc(cmd)
	logf.Close()
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/", lp)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !p.exited(); time.Sleep(10 * time.Millisecond) {
		if resp, err := c.Get(base + "api"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, base, nil
			}
		}
	}
	p.interrupt()
	return nil, "", errors.New("ssh -L to Jupyter did not come up (see ssh-L-jupyter.log)")
}

// browser starts (once) a headless Chromium with an empty profile, as e2e.Browser does.
func (b *bench) browser() (context.Context, error) {
	r := b.prof
	if r.browser != nil {
		return r.browser, nil
	}
	path, err := e2e.FindProgram("chromium")
	if err != nil {
		return nil, fmt.Errorf("chromium not found: install it with `apt-get install -y chromium` (or leave out the jupyter item: --items)")
	}
	profile := filepath.Join(b.dir, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.UserDataDir(profile), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("no-proxy-server", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		return nil, fmt.Errorf("starting chromium: %w", err)
	}
	r.browser, r.stopBr = ctx, []context.CancelFunc{cancel, cancelAlloc}
	return ctx, nil
}

// stopPages stops Chromium, the Jupyter launchers (--rm: their sessions end with
// them), the ssh -L to Jupyter and the Jupyter started by hand.
func (b *bench) stopPages() {
	r := b.prof
	if r == nil {
		return
	}
	for _, c := range r.stopBr {
		c() // cancelAlloc waits for Chromium to exit
	}
	for _, pr := range r.pages {
		if pr != nil {
			pr.proc.interrupt()
		}
	}
	if r.jupyter != nil { // TERM: Jupyter asks for a confirmation on SIGINT
		e2e.StopGroup(r.jupyter.cmd.Process.Pid, r.jupyter.done)
	}
}
