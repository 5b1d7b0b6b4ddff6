package access

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tether-dev/tether/internal/didyoumean"
)

// The --access file (YAML), in the spirit of MDI's stage2-apps.yml:
//
//	access_control: oidc          # or keys
//	oidc:                         # with oidc only
//	  issuer: https://login.example.org
//	  client_id: tether-lab
//	  client_secret_file: ~/.config/tether/oidc-secret   # mode 600
//	  redirect_url: https://lab.example.org:8443/_tether/oidc/callback
//	user_groups:                  # with oidc only
//	  lab:
//	    emails: ["*@example.org", "guest@gmail.com"]
//	    apps: ["*"]
//	    paths: {read: [/data/shared], write: [~/www], load_default: /data/shared}
//	keys:                         # with keys; with oidc too (for scripts)
//	  nightly-job:
//	    hash: $argon2id$v=19$m=19456,t=2,p=1$...$...   # tether hash-key
//	    apps: [nb]
//
// Every mistake is an error naming FILE:LINE and the fix; unknown keys are refused
// (with the nearest known one). apps: ["*"] is every app the server serves, now and
// after a reload. Key and group names are 1 to 64 letters, digits, '.', '_' or '-',
// starting with a letter or digit (so never an e-mail address), and no key is named
// "owner" (the gate's name for the server's owner). Paths are absolute or start with
// ~/ (the home of the user running tether serve), and are cleaned.

// OIDCConfig is the oidc section, with the client secret read from client_secret_file.
// Its String and GoString leave the secret out.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string
}

func (c OIDCConfig) String() string {
	return fmt.Sprintf("{Issuer:%s ClientID:%s ClientSecret:[%d bytes] RedirectURL:%s}", c.Issuer, c.ClientID, len(c.ClientSecret), c.RedirectURL)
}

func (c OIDCConfig) GoString() string { return "access.OIDCConfig" + c.String() }

// FileError is a mistake in an --access file: "FILE:LINE: what is wrong; the fix"
// (FILE: alone when no line is to blame).
type FileError struct {
	File string
	Line int
	Msg  string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// maxFileSize bounds what Load reads.
const maxFileSize = 1 << 20

// Load reads and checks the --access file at path.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{File: path, Msg: fmt.Sprintf("cannot read it: %v", unwrapPath(err))}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &FileError{File: path, Msg: fmt.Sprintf("cannot read it: %v", unwrapPath(err))}
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, &FileError{File: path, Msg: "is not a regular file"}
	case runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0:
		return nil, &FileError{File: path, Msg: fmt.Sprintf("can be changed by other users (mode %04o), who could give themselves a key or a group; chmod go-w %s", fi.Mode().Perm(), path)}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &FileError{File: path, Msg: fmt.Sprintf("cannot read it: %v", unwrapPath(err))}
	}
	if len(data) > maxFileSize {
		return nil, &FileError{File: path, Msg: fmt.Sprintf("is larger than %d bytes; an access file is a few lines", maxFileSize)}
	}
	return parse(path, data)
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parser reads one file's YAML nodes.
type parser struct {
	file string
	home string // for ~; "" if unknown (then ~ is an error)
	dir  string // the file's directory, for a relative client_secret_file
	// keyOf is the key node of each value node read from a mapping, so that "has no
	// X" and "X is not allowed here" point at the line that names it.
	keyOf map[*yaml.Node]*yaml.Node
}

// at is the node naming value n (its key in a mapping), or n itself.
func (ps *parser) at(n *yaml.Node) *yaml.Node {
	if k := ps.keyOf[n]; k != nil {
		return k
	}
	return n
}

func (ps *parser) errf(n *yaml.Node, format string, args ...any) error {
	e := &FileError{File: ps.file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	return e
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// parse checks data, the contents of file.
func parse(file string, data []byte) (*Policy, error) {
	ps := &parser{file: file, dir: filepath.Dir(file), keyOf: map[*yaml.Node]*yaml.Node{}}
	if h, err := os.UserHomeDir(); err == nil {
		ps.home = h
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, ps.errf(nil, "is empty; it needs at least access_control: keys and one key (see tether serve --help)")
		}
		return nil, ps.yamlError(err, data)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			return nil, ps.yamlError(err, data)
		}
		return nil, ps.errf(&extra, "a second YAML document (after ---); an access file is one")
	}
	if len(doc.Content) == 0 {
		return nil, ps.errf(nil, "is empty; it needs at least access_control: keys and one key (see tether serve --help)")
	}
	return ps.policy(doc.Content[0])
}

// yamlError turns the YAML library's error into FILE:LINE: ..., with a hint for the
// common slip of an unquoted '*' (which YAML reads as an alias).
func (ps *parser) yamlError(err error, data []byte) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	e := &FileError{File: ps.file, Line: line, Msg: "not valid YAML: " + msg}
	lines := strings.Split(string(data), "\n")
	near := ""
	for l := max(line-1, 1); l <= min(line+1, len(lines)) && line > 0; l++ {
		near += lines[l-1] + "\n"
	}
	if line == 0 {
		near = string(data)
	}
	if unquotedStar.MatchString(near) {
		e.Msg += `; quote values that start with '*', e.g. ["*@example.org"] or ["*"]`
	}
	return e
}

var unquotedStar = regexp.MustCompile(`(?m)(^|[\[,:-])\s*\*`)

// field is one known key of a mapping.
type field struct {
	name string
	set  func(v *yaml.Node) error
}

// mapping walks the pairs of n, a mapping (what names it in errors), calling each
// field's set; unknown and repeated keys are errors.
func (ps *parser) mapping(n *yaml.Node, what string, fields []field) error {
	if n.Kind != yaml.MappingNode {
		return ps.errf(n, "%s must be a mapping (lines of name: value)", what)
	}
	var names []string
	for _, f := range fields {
		names = append(names, f.name)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := ps.plain(k); err != nil {
			return err
		}
		if err := ps.plain(v); err != nil {
			return err
		}
		if k.Kind != yaml.ScalarNode {
			return ps.errf(k, "a key in %s is not a name", what)
		}
		if first, ok := seen[k.Value]; ok {
			return ps.errf(k, "%q appears twice in %s (first at line %d); keep one", k.Value, what, first)
		}
		seen[k.Value] = k.Line
		ps.keyOf[v] = k
		i := slices.Index(names, k.Value)
		if i < 0 {
			msg := fmt.Sprintf("unknown key %q in %s", k.Value, what)
			if near := didyoumean.Closest(k.Value, names); len(near) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", near[0])
			} else {
				msg += "; it may have " + strings.Join(names, ", ")
			}
			return ps.errf(k, "%s", msg)
		}
		if err := fields[i].set(v); err != nil {
			return err
		}
	}
	return nil
}

// plain refuses YAML's aliases and merge keys: an access file says everything where
// it is read.
func (ps *parser) plain(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode || n.Tag == "!!merge" {
		return ps.errf(n, "YAML aliases and merges (*name, <<) are not allowed here; write the value out (quote a value that starts with '*': \"*@example.org\")")
	}
	if n.Anchor != "" {
		return ps.errf(n, "YAML anchors (&%s) are not allowed here; write each value out", n.Anchor)
	}
	return nil
}

// str reads a non-empty scalar.
func (ps *parser) str(n *yaml.Node, what string) (string, error) {
	if err := ps.plain(n); err != nil {
		return "", err
	}
	if n.Kind != yaml.ScalarNode {
		return "", ps.errf(n, "%s must be a single value", what)
	}
	if n.Tag == "!!null" || strings.TrimSpace(n.Value) == "" {
		return "", ps.errf(n, "%s is empty", what)
	}
	return n.Value, nil
}

// list reads a sequence of non-empty scalars, or one scalar as a list of one.
func (ps *parser) list(n *yaml.Node, what string) ([]string, []*yaml.Node, error) {
	if err := ps.plain(n); err != nil {
		return nil, nil, err
	}
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		s, err := ps.str(n, what)
		return []string{s}, []*yaml.Node{n}, err
	}
	if n.Kind != yaml.SequenceNode && n.Tag != "!!null" {
		return nil, nil, ps.errf(n, "%s must be a list, e.g. [a, b]", what)
	}
	var out []string
	for _, c := range n.Content {
		s, err := ps.str(c, "an entry of "+what)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, s)
	}
	return out, n.Content, nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// policy reads the top-level mapping.
func (ps *parser) policy(root *yaml.Node) (*Policy, error) {
	p := &Policy{file: ps.file, byName: map[string]*accessKey{}, byHash: map[string]*accessKey{}, cache: newKeyCache()}
	var modeNode, keysNode, groupsNode, oidcNode *yaml.Node
	err := ps.mapping(root, "the file", []field{
		{"access_control", func(v *yaml.Node) error { modeNode = v; return nil }},
		{"keys", func(v *yaml.Node) error { keysNode = v; return nil }},
		{"user_groups", func(v *yaml.Node) error { groupsNode = v; return nil }},
		{"oidc", func(v *yaml.Node) error { oidcNode = v; return nil }},
	})
	if err != nil {
		return nil, err
	}
	if modeNode == nil {
		return nil, ps.errf(root, "access_control is missing; add access_control: keys (access keys only) or access_control: oidc (sign-in, and keys if listed)")
	}
	mode, err := ps.mode(modeNode)
	if err != nil {
		return nil, err
	}
	p.mode = mode
	if keysNode != nil {
		if err := ps.keys(keysNode, p); err != nil {
			return nil, err
		}
	}
	switch mode {
	case ModeKeys:
		if groupsNode != nil {
			return nil, ps.errf(ps.at(groupsNode), "user_groups need access_control: oidc (people sign in to be matched by e-mail); remove them or switch to oidc")
		}
		if oidcNode != nil {
			return nil, ps.errf(ps.at(oidcNode), "an oidc section needs access_control: oidc; remove it or switch to oidc")
		}
		if len(p.keys) == 0 {
			return nil, ps.errf(modeNode, "access_control: keys lists no keys; add one under keys: (its hash from tether hash-key)")
		}
	case ModeOIDC:
		if oidcNode == nil {
			return nil, ps.errf(modeNode, "access_control: oidc needs an oidc section (issuer, client_id, client_secret_file, redirect_url)")
		}
		c, err := ps.oidc(oidcNode)
		if err != nil {
			return nil, err
		}
		p.oidc = c
		if groupsNode == nil {
			return nil, ps.errf(modeNode, "access_control: oidc lists no user_groups, so nobody could sign in; add one (emails: [\"*@example.org\"], apps: [\"*\"])")
		}
		if err := ps.groups(groupsNode, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (ps *parser) mode(n *yaml.Node) (Mode, error) {
	if err := ps.plain(n); err != nil {
		return "", err
	}
	if n.Kind != yaml.ScalarNode {
		return "", ps.errf(n, "access_control must be keys or oidc")
	}
	switch v := n.Value; {
	case v == string(ModeKeys) || v == string(ModeOIDC):
		return Mode(v), nil
	case v == "oauth2":
		return "", ps.errf(n, "access_control: oauth2 is called oidc here (OpenID Connect sign-in); write access_control: oidc")
	case n.Tag == "!!null" || v == "null":
		return "", ps.errf(n, "access_control must be keys or oidc (without --access, the server has one owner with one token)")
	default:
		msg := fmt.Sprintf("access_control %q is not keys or oidc", v)
		if near := didyoumean.Closest(v, []string{"keys", "oidc"}); len(near) > 0 {
			msg += fmt.Sprintf("; did you mean %s?", near[0])
		}
		return "", ps.errf(n, "%s", msg)
	}
}

// entryName checks the name of a key or group.
func (ps *parser) entryName(n *yaml.Node, what string) error {
	switch {
	case !namePattern.MatchString(n.Value):
		return ps.errf(n, "%s name %q is not valid: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (no '@')", what, n.Value)
	case what == "key" && strings.EqualFold(n.Value, "owner"):
		return ps.errf(n, "a key may not be named %q: it is the server's owner (its token); pick another name", n.Value)
	}
	return nil
}

// entries walks a mapping of NAME: {...}.
func (ps *parser) entries(n *yaml.Node, what string, each func(k, v *yaml.Node) error) error {
	if err := ps.plain(n); err != nil {
		return err
	}
	if n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return ps.errf(n, "%s must be a mapping of NAME: {...}", what)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := ps.plain(k); err != nil {
			return err
		}
		if k.Kind != yaml.ScalarNode {
			return ps.errf(k, "an entry of %s has no name", what)
		}
		if first, ok := seen[k.Value]; ok {
			return ps.errf(k, "%q appears twice in %s (first at line %d); keep one", k.Value, what, first)
		}
		seen[k.Value] = k.Line
		ps.keyOf[v] = k
		if err := ps.plain(v); err != nil {
			return err
		}
		if err := each(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (ps *parser) keys(n *yaml.Node, p *Policy) error {
	return ps.entries(n, "keys", func(k, v *yaml.Node) error {
		if err := ps.entryName(k, "key"); err != nil {
			return err
		}
		what := fmt.Sprintf("key %q", k.Value)
		key := accessKey{name: k.Value}
		var hashNode, appsNode *yaml.Node
		err := ps.mapping(v, what, []field{
			{"hash", func(v *yaml.Node) error { hashNode = v; return nil }},
			{"apps", func(v *yaml.Node) error { appsNode = v; return nil }},
			{"paths", func(v *yaml.Node) (err error) { key.paths, err = ps.paths(v, what); return err }},
		})
		if err != nil {
			return err
		}
		if hashNode == nil {
			return ps.errf(k, "%s has no hash; add hash: with the output of tether hash-key", what)
		}
		raw, err := ps.str(hashNode, what+"'s hash")
		if err != nil {
			return err
		}
		if key.phc, err = parsePHC(raw); err != nil {
			return ps.errf(hashNode, "%s's hash: %v; paste the whole line tether hash-key printed", what, err)
		}
		key.raw, key.stamp = raw, keyStamp(raw)
		if other := p.byHash[raw]; other != nil {
			return ps.errf(hashNode, "%s has the same hash as key %q; give each key its own (tether hash-key salts every hash afresh)", what, other.name)
		}
		if key.apps, err = ps.apps(appsNode, k, what); err != nil {
			return err
		}
		p.keys = append(p.keys, &key)
		p.byName[key.name], p.byHash[raw] = &key, &key
		return nil
	})
}

func (ps *parser) groups(n *yaml.Node, p *Policy) error {
	err := ps.entries(n, "user_groups", func(k, v *yaml.Node) error {
		if err := ps.entryName(k, "group"); err != nil {
			return err
		}
		what := fmt.Sprintf("user group %q", k.Value)
		g := group{name: k.Value}
		var emailsNode, appsNode *yaml.Node
		err := ps.mapping(v, what, []field{
			{"emails", func(v *yaml.Node) error { emailsNode = v; return nil }},
			{"apps", func(v *yaml.Node) error { appsNode = v; return nil }},
			{"paths", func(v *yaml.Node) (err error) { g.paths, err = ps.paths(v, what); return err }},
		})
		if err != nil {
			return err
		}
		if emailsNode == nil {
			return ps.errf(k, "%s has no emails; add emails: [\"*@example.org\"] (a domain), [bob@example.org] (one address) or [\"*@*\"] (anyone)", what)
		}
		emails, nodes, err := ps.list(emailsNode, what+"'s emails")
		if err != nil {
			return err
		}
		if len(emails) == 0 {
			return ps.errf(emailsNode, "%s's emails is empty; list at least one address or pattern", what)
		}
		for i, e := range emails {
			pt, err := parsePattern(e)
			if err != nil {
				return ps.errf(nodes[i], "%s: %v", what, err)
			}
			g.patterns = append(g.patterns, pt)
		}
		if g.apps, err = ps.apps(appsNode, k, what); err != nil {
			return err
		}
		p.groups = append(p.groups, g)
		return nil
	})
	if err == nil && len(p.groups) == 0 {
		return ps.errf(ps.at(n), "user_groups is empty, so nobody could sign in; add one")
	}
	return err
}

// apps reads an apps list: app names, or "*" for every app.
func (ps *parser) apps(n, owner *yaml.Node, what string) ([]string, error) {
	if n == nil {
		return nil, ps.errf(owner, "%s has no apps; add apps: [NAME, ...] (the names of serve's --app NAME=...), or apps: [\"*\"] for all", what)
	}
	apps, nodes, err := ps.list(n, what+"'s apps")
	if err != nil {
		return nil, err
	}
	if len(apps) == 0 {
		return nil, ps.errf(n, "%s's apps is empty; list the apps it may open, or [\"*\"] for all", what)
	}
	for i, a := range apps {
		if a != "*" && !namePattern.MatchString(a) {
			return nil, ps.errf(nodes[i], "%s: %q is not an app name (letters, digits, '.', '_', '-'; \"*\" for all)", what, a)
		}
	}
	if slices.Contains(apps, "*") {
		return []string{"*"}, nil
	}
	slices.Sort(apps)
	return slices.Compact(apps), nil
}

// paths reads a paths mapping.
func (ps *parser) paths(n *yaml.Node, what string) (Paths, error) {
	var out Paths
	var ldNode *yaml.Node
	pathList := func(dst *[]string, name string) func(v *yaml.Node) error {
		return func(v *yaml.Node) error {
			vals, nodes, err := ps.list(v, what+"'s "+name+" paths")
			if err != nil {
				return err
			}
			for i, s := range vals {
				p, err := ps.path(nodes[i], s, what)
				if err != nil {
					return err
				}
				*dst = append(*dst, p)
			}
			return nil
		}
	}
	err := ps.mapping(n, what+"'s paths", []field{
		{"read", pathList(&out.Read, "read")},
		{"write", pathList(&out.Write, "write")},
		{"load_default", func(v *yaml.Node) error { ldNode = v; return nil }},
	})
	if err != nil {
		return out, err
	}
	if ldNode != nil {
		s, err := ps.str(ldNode, what+"'s load_default")
		if err != nil {
			return out, err
		}
		if out.LoadDefault, err = ps.path(ldNode, s, what); err != nil {
			return out, err
		}
		if !slices.ContainsFunc(append(slices.Clone(out.Read), out.Write...), func(d string) bool { return within(out.LoadDefault, d) }) {
			return out, ps.errf(ldNode, "%s's load_default %s is not within its read or write paths; add it (or a directory above it) to read", what, out.LoadDefault)
		}
	}
	slices.Sort(out.Read)
	slices.Sort(out.Write)
	out.Read, out.Write = slices.Compact(out.Read), slices.Compact(out.Write)
	return out, nil
}

// path expands ~ and checks that s is absolute, then cleans it.
func (ps *parser) path(n *yaml.Node, s, what string) (string, error) {
	if s == "~" || strings.HasPrefix(s, "~/") {
		if ps.home == "" {
			return "", ps.errf(n, "%s: %s starts with ~ but the home directory is unknown (set HOME); or write the path out", what, s)
		}
		s = filepath.Join(ps.home, strings.TrimPrefix(s, "~"))
	} else if strings.HasPrefix(s, "~") {
		return "", ps.errf(n, "%s: %s: only ~/ (your own home) is understood; write the path out", what, s)
	}
	if !filepath.IsAbs(s) {
		return "", ps.errf(n, "%s: %s is not an absolute path; start it with / or ~/", what, s)
	}
	return filepath.Clean(s), nil
}

// within reports whether p is dir or lies under it (both clean and absolute).
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// oidc reads the oidc section and the client secret.
func (ps *parser) oidc(n *yaml.Node) (*OIDCConfig, error) {
	var c OIDCConfig
	var secretNode *yaml.Node
	nodes := map[string]*yaml.Node{}
	strField := func(name string, dst *string) field {
		return field{name, func(v *yaml.Node) (err error) {
			nodes[name] = v
			*dst, err = ps.str(v, "oidc's "+name)
			return err
		}}
	}
	err := ps.mapping(n, "oidc", []field{
		strField("issuer", &c.Issuer),
		strField("client_id", &c.ClientID),
		{"client_secret_file", func(v *yaml.Node) error { secretNode = v; return nil }},
		strField("redirect_url", &c.RedirectURL),
	})
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"issuer", "client_id", "redirect_url"} {
		if nodes[name] == nil {
			return nil, ps.errf(ps.at(n), "oidc has no %s; add it (the provider's registration of this server gives client_id and its secret)", name)
		}
	}
	if err := ps.webURL(nodes["issuer"], c.Issuer, "issuer", false); err != nil {
		return nil, err
	}
	if err := ps.webURL(nodes["redirect_url"], c.RedirectURL, "redirect_url", true); err != nil {
		return nil, err
	}
	if secretNode == nil {
		return nil, ps.errf(ps.at(n), "oidc has no client_secret_file; put the client secret alone in a file only you can read (chmod 600) and name it here")
	}
	s, err := ps.str(secretNode, "oidc's client_secret_file")
	if err != nil {
		return nil, err
	}
	if c.ClientSecret, err = ps.secret(secretNode, s); err != nil {
		return nil, err
	}
	return &c, nil
}

// webURL checks an issuer or redirect URL: https, or http on a loopback host (a
// provider or a test on this machine); for the redirect, a path that is not just /.
func (ps *parser) webURL(n *yaml.Node, s, name string, redirect bool) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" && !redirect {
		return ps.errf(n, "oidc's %s %q is not a URL like https://host/path", name, s)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
	default:
		return ps.errf(n, "oidc's %s %q must use https (http only on this machine's loopback)", name, s)
	}
	if redirect && (u.Path == "" || u.Path == "/" || u.RawQuery != "") {
		return ps.errf(n, "oidc's redirect_url %q needs a path of its own, e.g. https://%s/_tether/oidc/callback (tether serves the sign-in's callback there)", s, u.Host)
	}
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// maxSecretSize bounds a client secret file.
const maxSecretSize = 4096

// secret reads client_secret_file (~/ expanded, relative to the access file's
// directory): a regular file nobody else may read, whose one line is the secret. The
// secret itself is never in an error.
func (ps *parser) secret(n *yaml.Node, s string) (string, error) {
	p := s
	if strings.HasPrefix(s, "~") {
		var err error
		if p, err = ps.path(n, s, "oidc's client_secret_file"); err != nil {
			return "", err
		}
	} else if !filepath.IsAbs(p) {
		p = filepath.Join(ps.dir, p)
	}
	f, err := os.Open(p)
	if err != nil {
		return "", ps.errf(n, "oidc's client_secret_file %s: %v", p, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", ps.errf(n, "oidc's client_secret_file %s: %v", p, unwrapPath(err))
	}
	switch {
	case !fi.Mode().IsRegular():
		return "", ps.errf(n, "oidc's client_secret_file %s is not a regular file", p)
	case runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0:
		return "", ps.errf(n, "oidc's client_secret_file %s can be read or changed by other users (mode %04o); chmod 600 %s", p, fi.Mode().Perm(), p)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return "", ps.errf(n, "oidc's client_secret_file %s: %v", p, unwrapPath(err))
	}
	if len(data) > maxSecretSize {
		return "", ps.errf(n, "oidc's client_secret_file %s is larger than %d bytes; it should hold the client secret alone", p, maxSecretSize)
	}
	secret := strings.TrimSpace(string(data))
	switch {
	case secret == "":
		return "", ps.errf(n, "oidc's client_secret_file %s is empty; put the client secret in it", p)
	case strings.ContainsAny(secret, "\r\n"):
		return "", ps.errf(n, "oidc's client_secret_file %s has more than one line; it should hold the client secret alone", p)
	}
	return secret, nil
}
