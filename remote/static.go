package remote

import (
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// The static preset: a directory served read-only by tether itself, behind the same
// gate as any app. No app process, nothing else listening.
//
// What it refuses, whatever the gate let through:
//   - every method but GET and HEAD (405): nothing is ever written;
//   - paths that leave the directory: "..", and symlinks (os.Root refuses those that
//     lead outside; we refuse every symlink, so the path a request names is the file
//     it gets);
//   - hidden names (any segment starting with "."): .ssh, .git, .env, .cache;
//   - tether's own session directories (tokens), should the served directory hold
//     them: by name, ignoring case, and by identity (device and inode) at every step,
//     so that a case-insensitive filesystem (macOS, SMB and CIFS shares, vfat) or
//     another name for the same directory does not reach them;
//   - anything but regular files and directories (sockets, devices, FIFOs).
//
// And what it serves cannot act for the user: files go out with
// `Content-Security-Policy: sandbox …` (an HTML or SVG file in the directory, whether
// named so or sniffed, runs no script: it cannot read cookies or use the session) and
// `X-Content-Type-Options: nosniff`.

type staticApp struct {
	dir      string // absolute, symlinks resolved
	root     *os.Root
	base     string
	deny     []string      // relative paths (slash-separated) that are never served, compared ignoring case
	denyDirs []fs.FileInfo // the directories never served, compared by identity
	touch    func()
	team     *staticRights // with --access: each person's paths (static_team.go)
}

// fileCSP goes with every file: no script, no plugins, no forms. The document keeps
// its origin (allow-same-origin, harmless without allow-scripts): in an opaque one
// its images, styles and links would go without the session's SameSite=Strict cookie
// and meet the login page. Links may still open tabs and download files, on a click.
const fileCSP = "sandbox allow-same-origin allow-downloads allow-popups allow-popups-to-escape-sandbox"

// newStaticApp serves dir under base. deny are absolute directories never to serve
// (tether's state root and the session's socket directory).
func newStaticApp(dir, base string, deny []string, touch func()) (*staticApp, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot serve %s: %w", dir, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("cannot serve %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("cannot serve %s: it is not a directory", dir)
	}
	a := &staticApp{dir: real, base: base, touch: touch}
	for _, d := range deny {
		if d == "" {
			continue
		}
		if dfi, err := os.Stat(d); err == nil {
			// By identity: the served directory may not be, or lie inside, a denied one
			// under any name.
			for p := real; ; p = filepath.Dir(p) {
				if pfi, err := os.Stat(p); err == nil && os.SameFile(pfi, dfi) {
					if p == real {
						return nil, fmt.Errorf("refusing to serve %s: it is tether's own session directory, which holds tokens", dir)
					}
					return nil, fmt.Errorf("refusing to serve %s: it is inside tether's session directory %s, which holds tokens", dir, d)
				}
				if filepath.Dir(p) == p {
					break
				}
			}
			a.denyDirs = append(a.denyDirs, dfi)
		}
		rd, err := filepath.EvalSymlinks(d)
		if err != nil {
			rd = filepath.Clean(d)
		}
		rel, err := filepath.Rel(real, rd)
		if err != nil {
			continue
		}
		if rel == "." {
			return nil, fmt.Errorf("refusing to serve %s: it is tether's own session directory, which holds tokens", dir)
		}
		if !strings.HasPrefix(rel, "..") {
			a.deny = append(a.deny, filepath.ToSlash(rel))
		}
		// The served directory inside a session directory: refused outright.
		if r2, err := filepath.Rel(rd, real); err == nil && !strings.HasPrefix(r2, "..") {
			return nil, fmt.Errorf("refusing to serve %s: it is inside tether's session directory %s, which holds tokens", dir, d)
		}
	}
	if a.root, err = os.OpenRoot(real); err != nil {
		return nil, fmt.Errorf("cannot serve %s: %w", dir, err)
	}
	return a, nil
}

func (a *staticApp) Close() error { return a.root.Close() }

func (a *staticApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.touch != nil {
		a.touch()
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	v := view{owner: true}
	if a.team != nil {
		v = a.team.viewOf(r.Header.Get(userHeader))
	}
	writing := a.team != nil && (r.Method == http.MethodPut || r.Method == http.MethodDelete)
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !writing {
		if a.team != nil {
			h.Set("Allow", "GET, HEAD, PUT, DELETE")
			http.Error(w, "405 method not allowed: files are read with GET and written with PUT or DELETE", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed: this directory is served read-only", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if !strings.HasPrefix(p, a.base) {
		if p+"/" == a.base {
			http.Redirect(w, r, a.base, http.StatusMovedPermanently)
			return
		}
		http.NotFound(w, r)
		return
	}
	rel, ok := a.clean(strings.TrimPrefix(p, a.base))
	if !ok {
		http.NotFound(w, r)
		return
	}
	if writing {
		a.serveTeamWrite(w, r, rel, v)
		return
	}
	if rel == "." && v.loadDefault != "" {
		to := a.base + (&url.URL{Path: v.loadDefault}).EscapedPath()
		if fi, ok := a.lstatAll(v.loadDefault); ok && fi.IsDir() {
			to += "/"
		}
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	fi, ok := a.lstatAll(rel)
	if !ok || !v.mayList(rel, fi.IsDir()) {
		http.NotFound(w, r)
		return
	}
	if fi.IsDir() {
		if rel != "." && !strings.HasSuffix(p, "/") {
			u := *r.URL
			u.Path = p + "/"
			http.Redirect(w, r, u.EscapedPath()+queryOf(r), http.StatusMovedPermanently)
			return
		}
		index := path.Join(rel, "index.html")
		if ifi, ok := a.lstatAll(index); ok && ifi.Mode().IsRegular() && v.mayRead(index) {
			a.serveFile(w, r, index, ifi)
			return
		}
		a.serveDir(w, r, rel, fi, v)
		return
	}
	a.serveFile(w, r, rel, fi)
}

func queryOf(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return "?" + r.URL.RawQuery
}

// clean turns a request path (below the base) into a relative slash path, refusing
// "..", hidden segments, NUL bytes and backslashes.
func (a *staticApp) clean(p string) (string, bool) {
	if strings.ContainsAny(p, "\x00\\") {
		return "", false
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		switch {
		case s == "" || s == ".":
		case strings.HasPrefix(s, "."): // "..", and hidden names
			return "", false
		default:
			segs = append(segs, s)
		}
	}
	if len(segs) == 0 {
		return ".", true
	}
	for _, d := range a.deny {
		if underFold(segs, d) {
			return "", false
		}
	}
	return strings.Join(segs, "/"), true
}

// underFold reports whether the path segs is d or lies under it, ignoring case (the
// filesystem may: macOS, SMB shares). lstatAll compares identities besides.
func underFold(segs []string, d string) bool {
	ds := strings.Split(d, "/")
	if len(segs) < len(ds) {
		return false
	}
	for i, s := range ds {
		if !strings.EqualFold(segs[i], s) {
			return false
		}
	}
	return true
}

// deniedDir reports whether fi is one of the directories never served.
func (a *staticApp) deniedDir(fi fs.FileInfo) bool {
	if !fi.IsDir() {
		return false
	}
	for _, d := range a.denyDirs {
		if os.SameFile(fi, d) {
			return true
		}
	}
	return false
}

// lstatAll checks every component of rel without following symlinks: all must be
// directories or, the last, a regular file or directory.
func (a *staticApp) lstatAll(rel string) (fs.FileInfo, bool) {
	fi, err := a.root.Lstat(".")
	if err != nil {
		return nil, false
	}
	if rel == "." {
		return fi, true
	}
	segs := strings.Split(rel, "/")
	for i := range segs {
		fi, err = a.root.Lstat(strings.Join(segs[:i+1], "/"))
		if err != nil {
			return nil, false
		}
		last := i == len(segs)-1
		if !fi.IsDir() && !(last && fi.Mode().IsRegular()) || a.deniedDir(fi) {
			return nil, false
		}
	}
	return fi, true
}

// serveFile serves a regular file, refusing it if what opens is not what was checked
// (a component swapped for a symlink in between).
func (a *staticApp) serveFile(w http.ResponseWriter, r *http.Request, rel string, checked fs.FileInfo) {
	f, err := a.root.Open(rel)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !os.SameFile(fi, checked) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", fileCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

type dirEntry struct {
	Name, Href string
	Dir        bool
	Size       int64
}

// serveDir lists a directory: subdirectories and regular files, hidden names and
// symlinks left out. Like serveFile, it refuses what opens if it is not the directory
// that was checked.
func (a *staticApp) serveDir(w http.ResponseWriter, r *http.Request, rel string, checked fs.FileInfo, v view) {
	f, err := a.root.Open(rel)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.IsDir() || !os.SameFile(fi, checked) {
		http.NotFound(w, r)
		return
	}
	ents, err := f.ReadDir(-1)
	if err != nil && len(ents) == 0 {
		http.Error(w, "cannot list this directory", http.StatusForbidden)
		return
	}
	var list []dirEntry
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		child := name
		if rel != "." {
			child = rel + "/" + name
		}
		if _, ok := a.clean(child); !ok {
			continue
		}
		t := e.Type()
		if t.IsDir() {
			if info, err := e.Info(); err != nil || a.deniedDir(info) {
				continue
			}
		}
		if !v.mayList(child, t.IsDir()) {
			continue
		}
		switch {
		case t.IsDir():
			list = append(list, dirEntry{Name: name + "/", Href: (&url.URL{Path: "./" + name}).EscapedPath() + "/", Dir: true})
		case t.IsRegular():
			var size int64
			if info, err := e.Info(); err == nil {
				size = info.Size()
			}
			list = append(list, dirEntry{Name: name, Href: (&url.URL{Path: "./" + name}).EscapedPath(), Size: size})
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Dir != list[j].Dir {
			return list[i].Dir
		}
		return list[i].Name < list[j].Name
	})
	title := "/"
	if rel != "." {
		title = "/" + rel + "/"
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	if err := dirTemplate.Execute(w, struct {
		Title    string
		Up       bool
		List     []dirEntry
		Writable bool
	}{title, rel != "." && v.mayList(path.Dir(rel), true) && !(path.Dir(rel) == "." && v.loadDefault != ""), list, v.mayWrite(path.Join(rel, "x"))}); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		return
	}
}

var dirTemplate = template.Must(template.New("dir").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:50em}td{padding:0 1em 0 0}</style></head>
<body><h1>{{.Title}}</h1>
<p>Served {{if .Writable}}by tether; you may upload files here (HTTP PUT){{else}}read-only by tether{{end}}.</p>
<table>{{if .Up}}<tr><td><a href="../">../</a></td><td></td></tr>{{end}}
{{range .List}}<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td>{{if not .Dir}}{{.Size}}{{end}}</td></tr>
{{end}}</table></body></html>
`))
