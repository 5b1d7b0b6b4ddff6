package launcher

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/shquote"
	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
)

// Site profiles: files a site ships on its login node, in /etc/tether/profiles.d, that
// `--profile NAME` may use and `tether apps HOST` lists. They are read over the SSH
// connection the command already has, by a small /bin/sh script (nothing of tether need
// be installed there): for `apps HOST` in the same exec as the detection script, for a
// launch in one more exec on the same connection, only when --profile names none of
// the user's own profiles.
//
// Their content is the site's text, untrusted here: the launcher checks that the files
// could only have come from root (each file and every directory up to / owned by root,
// none writable by anyone else, save sticky directories above the profiles directory,
// as OpenSSH's safe_path does), bounds what it reads, and gives the bytes to the
// caller, which parses them (package profile) and never shows them unfiltered.

// SiteDirEnv, set in the remote's environment, names another directory for the site
// profiles (tests; /etc/tether/profiles.d otherwise).
const SiteDirEnv = "TETHER_SITE_PROFILES_DIR"

// SiteProfiles is what a host's site profile directory holds.
type SiteProfiles struct {
	// Dir is the directory as the remote resolved it (physical path); empty when the
	// host has none.
	Dir string
	// Files are the files that passed the checks, in name order.
	Files []SiteFile
	// Ignored says, one line each, which files (or the whole directory) were left out
	// and why.
	Ignored []string
}

// SiteFile is one site profile file.
type SiteFile struct {
	// Path is the file's path on the remote.
	Path string
	// Data is its content (at most maxSiteFile bytes).
	Data []byte
}

const (
	siteTag      = "tether-site v1 "
	siteEndTag   = "tether-site-end v1"
	siteDoneTag  = "tether-site-done v1"
	maxSiteFile  = 64 << 10
	maxSiteFiles = 100
	maxSiteLines = 1000 // lines of a chatty login shell, directories and files
)

// siteOwner is the uid that must own the site profiles and their directories (tests
// running as another user change it).
var siteOwner = "0"

// siteScript lists the directory named by $TETHER_SITE_PROFILES_DIR or
// /etc/tether/profiles.d: "dir MODE UID PATH" for it and each directory above it
// (physical path), then for each *.yaml or *.yml file whose name is plain
// (letters, digits, . _ -) "file MODE UID SIZE NAME", followed, for a regular file of
// at most 64 KiB, by "data SIZE", exactly the file's bytes, a newline and the end tag.
// Like the probe script it holds no backslash and no newline, so any login shell
// passes it to /bin/sh unchanged.
var siteScript = strings.Join([]string{
	`d="${` + SiteDirEnv + `:-/etc/tether/profiles.d}"; P=;`,
	`case "$d" in /*) [ -d "$d" ] && P=$(cd -P "$d" 2>/dev/null && pwd -P);; esac;`,
	`if [ -z "$P" ]; then echo "` + siteTag + `none $d"; else c="$P"; i=0;`,
	`while [ $i -lt 64 ]; do i=$((i+1)); l=$(ls -ldn "$c" 2>/dev/null); set -f; set -- $l; set +f;`,
	`echo "` + siteTag + `dir ${1:--} ${3:--} $c"; [ "$c" = / ] && break; c="${c%/*}"; [ -n "$c" ] || c=/; done;`,
	`for f in "$P"/*.yaml "$P"/*.yml; do n="${f##*/}";`,
	`case "$n" in "*.yaml"|"*.yml") continue;; *[!A-Za-z0-9._-]*) echo "` + siteTag + `badname"; continue;; esac;`,
	`l=$(ls -ldn "$f" 2>/dev/null); set -f; set -- $l; set +f;`,
	`echo "` + siteTag + `file ${1:--} ${3:--} ${5:--} $n";`,
	`if [ -f "$f" ] && [ ! -h "$f" ] && [ "${5:-x}" -le ` + strconv.Itoa(maxSiteFile) + ` ] 2>/dev/null; then`,
	`echo "` + siteTag + `data $5"; cat "$f"; echo; echo "` + siteEndTag + `"; fi; done; fi;`,
	`echo "` + siteDoneTag + `"`,
}, " ")

// siteCommand is the exec command line running siteScript with /bin/sh.
func siteCommand() string {
	return shquote.Join([]string{"/bin/sh", "-c", siteScript})
}

var siteFileName = regexp.MustCompile(`^[A-Za-z0-9._-]+\.ya?ml$`)

// readSite parses siteScript's output from br. Lines before the first tagged one (a
// chatty login shell) are skipped; a file whose bytes do not end where the listing said
// (it changed while read) or output cut short is an error.
func readSite(br *bufio.Reader) (SiteProfiles, error) {
	var sp SiteProfiles
	var chain []string // why the directory chain is unsafe, if it is
	var pending *siteEntry
	files := 0
	for i := 0; i < maxSiteLines; i++ {
		line, err := readLine(br, maxLine)
		if err == errLineTooLong {
			continue
		}
		if err != nil {
			return sp, fmt.Errorf("the site profile listing was cut short")
		}
		if line == siteDoneTag {
			if len(chain) > 0 {
				sp.Ignored = append([]string{fmt.Sprintf("%s: %s; its profiles are ignored", sp.Dir, chain[0])}, sp.Ignored...)
				sp.Files = nil
			}
			return sp, nil
		}
		rest, ok := strings.CutPrefix(line, siteTag)
		if !ok {
			continue
		}
		kind, rest, _ := strings.Cut(rest, " ")
		switch kind {
		case "none":
			// No directory: no site profiles.
		case "dir":
			f := strings.SplitN(rest, " ", 3)
			if len(f) != 3 || !cleanAbs(f[2]) {
				return sp, fmt.Errorf("malformed site profile listing")
			}
			if sp.Dir == "" {
				sp.Dir = f[2]
				if why := unsafeSiteDir(f[0], f[1], false); why != "" {
					chain = append(chain, "the directory "+why)
				}
			} else if why := unsafeSiteDir(f[0], f[1], true); why != "" {
				chain = append(chain, f[2]+", above it, "+why)
			}
		case "badname":
			sp.Ignored = append(sp.Ignored, "a file whose name is not plain letters, digits, '.', '_' and '-'")
		case "file":
			f := strings.SplitN(rest, " ", 4)
			if len(f) != 4 || !siteFileName.MatchString(f[3]) || sp.Dir == "" {
				return sp, fmt.Errorf("malformed site profile listing")
			}
			if files++; files > maxSiteFiles {
				return sp, fmt.Errorf("more than %d site profile files in %s", maxSiteFiles, sp.Dir)
			}
			e := &siteEntry{path: strings.TrimSuffix(sp.Dir, "/") + "/" + f[3]}
			e.why = unsafeSiteFile(f[0], f[1], f[2])
			if e.why != "" {
				sp.Ignored = append(sp.Ignored, e.path+": "+e.why)
			}
			pending = e
		case "data":
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 || n > maxSiteFile || pending == nil {
				return sp, fmt.Errorf("malformed site profile listing")
			}
			data := make([]byte, n)
			if _, err := io.ReadFull(br, data); err != nil {
				return sp, fmt.Errorf("the site profile listing was cut short")
			}
			if l, err := readLine(br, maxLine); err != nil || l != "" {
				return sp, fmt.Errorf("%s changed while it was read; try again", pending.path)
			}
			if l, err := readLine(br, maxLine); err != nil || l != siteEndTag {
				return sp, fmt.Errorf("%s changed while it was read; try again", pending.path)
			}
			if pending.why == "" {
				sp.Files = append(sp.Files, SiteFile{Path: pending.path, Data: data})
			}
			pending = nil
		}
	}
	return sp, fmt.Errorf("the site profile listing is too long")
}

type siteEntry struct {
	path string
	why  string // why it is ignored; "" when it is used
}

// unsafeSiteDir says why a directory (as `ls -ldn` shows its mode and owner) could hold
// files that did not come from root: owned by someone else, or writable by group or
// others (above the profiles directory, a sticky directory may be: others can add
// names there but not replace ours).
func unsafeSiteDir(mode, uid string, above bool) string {
	if len(mode) < 10 || mode[0] != 'd' {
		return "is not a directory"
	}
	if uid != siteOwner && !(above && uid == "0") {
		return "is owned by uid " + termsafe.Clip(termsafe.OneLine(uid), 12) + ", not root"
	}
	if mode[5] == 'w' || mode[8] == 'w' {
		if above && (mode[9] == 't' || mode[9] == 'T') {
			return ""
		}
		return "is writable by others (" + termsafe.OneLine(mode[:10]) + ")"
	}
	return ""
}

// unsafeSiteFile says why a file is left out: not a regular file (a symlink
// included), not root's, writable by others, or too large.
func unsafeSiteFile(mode, uid, size string) string {
	switch {
	case len(mode) < 10 || mode[0] != '-':
		return "not a regular file (symbolic links are not followed)"
	case uid != siteOwner:
		return "owned by uid " + termsafe.Clip(termsafe.OneLine(uid), 12) + ", not root"
	case mode[5] == 'w' || mode[8] == 'w':
		return "writable by others (" + termsafe.OneLine(mode[:10]) + ")"
	}
	if n, err := strconv.Atoi(size); err != nil || n > maxSiteFile {
		return fmt.Sprintf("larger than %d KiB", maxSiteFile>>10)
	}
	return ""
}

// siteProfiles reads the host's site profiles over the session's connection.
func (s *session) siteProfiles(ctx context.Context) (SiteProfiles, error) {
	var sp SiteProfiles
	why, err := s.runReading(ctx, siteCommand(), func(br *bufio.Reader) (err error) {
		sp, err = readSite(br)
		return err
	})
	if err != nil {
		return sp, errorf("try again, or drop --profile", "could not read the site profiles on %s: %s", s.host, why)
	}
	return sp, nil
}

// runReading runs command over the session's connection (30 s at most) and gives its
// output to read; what read leaves is read to the end and dropped. When read fails, why
// says so in words for a message: the command's failure when it failed, else read's,
// and what it wrote on stderr. The command's goroutine is runReading's: it returns
// only once the command has ended (its output read to EOF, the end of which the
// goroutine writes after Run returns).
func (s *session) runReading(ctx context.Context, command string, read func(*bufio.Reader) error) (why string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan error, 1)
	go func() {
		status, err := s.conn.Run(ctx, command, nil, pw, &limitedBuilder{b: &stderr, n: 4096})
		if err == nil && status != 0 {
			err = fmt.Errorf("exit status %d", status)
		}
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	br := bufio.NewReaderSize(pr, 64<<10)
	err = read(br)
	io.Copy(io.Discard, br)
	runErr := <-done
	if err == nil {
		return "", nil
	}
	why = err.Error()
	if runErr != nil {
		why = termsafe.Clip(termsafe.OneLine(tunnel.Message(runErr)), 200)
	}
	if e := strings.TrimSpace(stderr.String()); e != "" {
		why += ": " + termsafe.Clip(termsafe.OneLine(e), 200)
	}
	return why, err
}

// applySiteProfile reads the site profiles and lets o.SiteProfile choose the options;
// only the remote side's are taken from what it returns (the connection, the local
// port and the browser stay as the user and their own config set them).
func (s *session) applySiteProfile(ctx context.Context, o LaunchOptions) (LaunchOptions, error) {
	s.status.step("reading the site profiles on %s", s.host)
	sp, err := s.siteProfiles(ctx)
	s.status.done()
	if ctx.Err() != nil {
		return o, &Error{Msg: "interrupted; nothing was started", Code: 130}
	}
	if err != nil {
		return o, err
	}
	n, applied, err := o.SiteProfile(sp)
	if err != nil {
		return o, err
	}
	n.Options, n.ForwardOptions, n.SiteProfile = o.Options, o.ForwardOptions, nil
	if applied != "" {
		s.status.line("tether: %s", applied)
	}
	return n, nil
}

// withSiteProfiles runs siteScript after command (the apps detection) in the same
// exec, when asked to.
func withSiteProfiles(command string, yes bool) string {
	if !yes {
		return command
	}
	return command + " ; " + siteCommand()
}
