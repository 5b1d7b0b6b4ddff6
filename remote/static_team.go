package remote

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tether-dev/tether/access"
)

// The static preset on a team server (--access): each person sees and changes only
// what their paths allow.
//
//   - Who: X-Tether-User, which the gate sets on every request (the key's name, the
//     e-mail, or "owner") after removing any copy the client sent; this handler runs
//     in the gate's process, behind it, so nobody else can reach it to set one. A
//     request without it gets nothing.
//   - The owner (the server's token) reads everything, as without --access, and
//     writes nothing.
//   - Anyone else reads what lies under their paths.read or paths.write and writes
//     (PUT a file, DELETE a file) only under paths.write. The paths are absolute, as
//     the access file gives them (~/ expanded); a path inside the served DIR grants that
//     part of it, a path above DIR grants all of it, a path elsewhere grants nothing
//     here. The directories on the way down to a granted path are listed with only the
//     entries that lead there.
//   - paths.load_default, when it lies inside DIR, is where the app opens: its root
//     redirects there.
//   - Writing: one regular file at a time, into a directory that exists (no mkdir),
//     replacing a regular file or making a new one, at most maxUpload bytes; no
//     symlink on the way is followed (the same checks as reading, and os.Root); a file
//     is written under a hidden temporary name and renamed into place, so a reader
//     never sees half of it. Hidden names and tether's own directories stay refused.
//     The gate's cross-origin checks keep other sites from writing through a
//     person's browser.

// userHeader is the gate's header naming who came (tokenserver.UserHeader).
const userHeader = "X-Tether-User"

// maxUpload bounds one PUT.
const maxUpload = 64 << 20

// staticRights is a team server's per-person view of one static app.
type staticRights struct {
	// paths returns a person's paths in the policy in force (access.Live.Paths).
	paths func(user string) access.Paths
	// dirs are the served directory as given and as resolved (symlinks), both
	// absolute and clean: a path of the access file is matched against either.
	dirs []string
}

// view is what one person may do in the app: relative slash paths ("." is all).
type view struct {
	owner       bool
	read, write []string
	loadDefault string // "" for none
}

func (sr *staticRights) viewOf(user string) view {
	if user == "owner" {
		return view{owner: true}
	}
	var v view
	if user == "" {
		return v
	}
	p := sr.paths(user)
	for _, d := range p.Read {
		if rel, ok := sr.rel(d); ok {
			v.read = append(v.read, rel)
		}
	}
	for _, d := range p.Write {
		if rel, ok := sr.rel(d); ok {
			v.read = append(v.read, rel)
			v.write = append(v.write, rel)
		}
	}
	if p.LoadDefault != "" {
		if rel, ok := sr.rel(p.LoadDefault); ok && rel != "." && v.mayRead(rel) {
			v.loadDefault = rel
		}
	}
	return v
}

// rel maps an absolute path of the access file into the served directory: "." for
// the directory or a path above it; ok=false for a path elsewhere.
func (sr *staticRights) rel(p string) (string, bool) {
	for _, d := range sr.dirs {
		if within(d, p) {
			return ".", true
		}
		if within(p, d) {
			r, err := filepath.Rel(d, p)
			if err == nil {
				return filepath.ToSlash(r), true
			}
		}
	}
	return "", false
}

// within reports whether p is dir or lies under it (both absolute and clean).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

func under(rel, root string) bool {
	return root == "." || rel == root || strings.HasPrefix(rel, root+"/")
}

func (v view) mayRead(rel string) bool {
	if v.owner {
		return true
	}
	for _, r := range v.read {
		if under(rel, r) {
			return true
		}
	}
	return false
}

func (v view) mayWrite(rel string) bool {
	for _, r := range v.write {
		if under(rel, r) {
			return true
		}
	}
	return false
}

// leadsTo reports whether the directory rel lies on the way down to a readable path.
func (v view) leadsTo(rel string) bool {
	for _, r := range v.read {
		if rel == "." || strings.HasPrefix(r, rel+"/") {
			return true
		}
	}
	return false
}

// mayList reports whether a directory entry (its relative path) shows in a listing.
func (v view) mayList(rel string, dir bool) bool {
	return v.mayRead(rel) || dir && v.leadsTo(rel)
}

// plainName reports whether a path to write is valid UTF-8 without control
// characters: a name with a newline or an escape sequence would play tricks on
// whoever lists the directory in a terminal or reads a log line naming it.
func plainName(rel string) bool {
	return utf8.ValidString(rel) && !strings.ContainsFunc(rel, unicode.IsControl)
}

// serveTeamWrite answers PUT and DELETE of rel for v.
func (a *staticApp) serveTeamWrite(w http.ResponseWriter, r *http.Request, rel string, v view) {
	if rel == "." || !v.mayWrite(rel) {
		if v.mayRead(rel) {
			http.Error(w, "403 forbidden: your access lets you read this, not change it", http.StatusForbidden)
			return
		}
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodPut && !plainName(rel) {
		http.Error(w, "400 bad request: a file name may not hold control characters (a newline, a tab, an escape) or invalid UTF-8", http.StatusBadRequest)
		return
	}
	parent, base := path.Dir(rel), path.Base(rel)
	pfi, ok := a.lstatAll(parent)
	if !ok || !pfi.IsDir() {
		http.Error(w, "409 conflict: the directory does not exist (uploads make no directories)", http.StatusConflict)
		return
	}
	// From here on, one name inside the directory just checked, opened once: a path
	// resolved again could meet a symlink put in place of a directory on the way
	// since (another user who may write in a shared directory swapping it to steer
	// the write elsewhere in the served directory).
	dir, err := a.root.OpenRoot(parent)
	if err != nil {
		http.Error(w, "409 conflict: the directory does not exist (uploads make no directories)", http.StatusConflict)
		return
	}
	defer dir.Close()
	if dfi, err := dir.Stat("."); err != nil || !os.SameFile(dfi, pfi) {
		http.Error(w, "409 conflict: the directory changed while it was checked; try again", http.StatusConflict)
		return
	}
	old, err := dir.Lstat(base)
	exists := err == nil
	if exists && !old.Mode().IsRegular() {
		http.Error(w, "409 conflict: only regular files are written or deleted here", http.StatusConflict)
		return
	}
	if r.Method == http.MethodDelete {
		if !exists {
			http.NotFound(w, r)
			return
		}
		if err := dir.Remove(base); err != nil {
			http.Error(w, "cannot delete the file", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.ContentLength > maxUpload {
		http.Error(w, "413 request entity too large: at most 64 MiB per file", http.StatusRequestEntityTooLarge)
		return
	}
	var rb [8]byte
	rand.Read(rb[:])
	tmp := ".tether-upload-" + hex.EncodeToString(rb[:])
	f, err := dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		http.Error(w, "cannot write the file", http.StatusInternalServerError)
		return
	}
	_, err = io.Copy(f, http.MaxBytesReader(w, r.Body, maxUpload))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dir.Rename(tmp, base)
	}
	if err != nil {
		dir.Remove(tmp)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "413 request entity too large: at most 64 MiB per file", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot write the file", http.StatusInternalServerError)
		return
	}
	if exists {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}
