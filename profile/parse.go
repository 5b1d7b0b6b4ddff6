package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/tether-dev/tether/internal/termsafe"
	"go.yaml.in/yaml/v3"
)

// Checker judges one setting: nil when the key is a setting and its values are good
// for it. An unknown key is reported by wrapping ErrUnknownKey; any other error is the
// value's problem, worded for the user ("expected a duration like 15m"). The parser
// adds FILE:LINE and the key.
type Checker func(s Setting) error

// ErrUnknownKey is what a Checker wraps for a key that is no setting.
var ErrUnknownKey = errors.New("unknown key")

const (
	// MaxConfigSize bounds the user's config file.
	MaxConfigSize = 1 << 20
	// MaxSiteFileSize bounds one site profile file (read from the remote).
	MaxSiteFileSize = 64 << 10
	// maxDepth bounds nested merge keys (<<: *anchor) and aliases.
	maxDepth = 8
)

// Parse reads a user config file's text. file names it in errors.
func Parse(file string, data []byte, check Checker) (*Config, error) {
	p := parser{file: file, check: check}
	root, err := p.document(data)
	if err != nil {
		return nil, err
	}
	c := &Config{File: file, Profiles: map[string]*Profile{}}
	if root == nil {
		return c, nil
	}
	err = p.mapping(root, "the file", func(k, v *yaml.Node) error {
		switch k.Value {
		case "hosts":
			return p.mapping(v, "hosts:", func(hk, hv *yaml.Node) error {
				pats := splitPatterns(hk.Value)
				if len(pats) == 0 {
					return p.errorf(hk, "a hosts: key must name hosts, as you type them (hpc, alice@hpc) or as patterns (*.cluster.example.edu)")
				}
				for _, pat := range pats {
					if strings.TrimLeft(pat, "!") == "" {
						return p.errorf(hk, "%q is not a host pattern", pat)
					}
				}
				b := HostBlock{Key: hk.Value, Patterns: pats, Line: hk.Line, Profiles: map[string]*Profile{}}
				settings, err := p.settings(hv, "hosts: "+hk.Value, func(kk, vv *yaml.Node) (bool, error) {
					if kk.Value != "profiles" {
						return false, nil
					}
					return true, p.profiles(vv, b.Profiles, hk.Value, false)
				})
				if err != nil {
					return err
				}
				b.Settings = settings
				c.Hosts = append(c.Hosts, b)
				return nil
			})
		case "profiles":
			return p.profiles(v, c.Profiles, "", false)
		}
		if check != nil && check(Setting{Key: k.Value, Values: []string{v.Value}}) == nil {
			return p.errorf(k, "%s is a setting: put it under hosts: HOST: (defaults for a host) or profiles: NAME: (a named profile)", k.Value)
		}
		return p.errorf(k, "unknown key %q: this file holds hosts: (defaults by host) and profiles: (named profiles)", k.Value)
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ParseSite reads one site profile file (from the remote's profiles.d): the same
// format, with profiles: only. Its profiles are marked Site.
func ParseSite(file string, data []byte, check Checker) ([]*Profile, error) {
	p := parser{file: file, check: check}
	if len(data) > MaxSiteFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("larger than %d KiB; tether reads no more", MaxSiteFileSize>>10)}
	}
	root, err := p.document(data)
	if err != nil || root == nil {
		return nil, err
	}
	found := map[string]*Profile{}
	err = p.mapping(root, "the file", func(k, v *yaml.Node) error {
		if k.Value == "profiles" {
			return p.profiles(v, found, "", true)
		}
		return p.errorf(k, "a site profile file holds only profiles: (not %q)", k.Value)
	})
	if err != nil {
		return nil, err
	}
	var out []*Profile
	for _, name := range sortedNames(found) {
		out = append(out, found[name])
	}
	return out, nil
}

type parser struct {
	file  string
	check Checker
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data as one YAML document whose root is a mapping (nil for an
// empty file).
func (p *parser) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, p.yamlError(err, data)
	}
	var more yaml.Node
	if err := dec.Decode(&more); err != io.EOF {
		line := 0
		if err == nil {
			line = more.Line
		}
		return nil, &Error{File: p.file, Line: line, Msg: "a second YAML document (---): keep everything in one"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, p.errorf(root, "the file must be a YAML mapping (key: value lines), starting with hosts: or profiles:")
	}
	return root, nil
}

// yamlError words a YAML syntax error as FILE:LINE: problem. The scanner leaves the
// line out of some errors; a tab in the indentation (the usual cause) is found by hand.
func (p *parser) yamlError(err error, data []byte) error {
	msg := strings.TrimSpace(err.Error())
	lines := strings.Split(string(data), "\n")
	tabbed := func(n int) bool { // line n (1-based) is indented with a tab
		if n < 1 || n > len(lines) {
			return false
		}
		l := lines[n-1]
		return strings.Contains(l[:len(l)-len(strings.TrimLeft(l, " \t"))], "\t")
	}
	const tabMsg = "a tab in the indentation: YAML indents with spaces only"
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		if strings.Contains(m[2], "cannot start any token") && tabbed(n) {
			return &Error{File: p.file, Line: n, Msg: tabMsg}
		}
		return &Error{File: p.file, Line: n, Msg: termsafe.OneLine(m[2]) + " (YAML syntax)"}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if strings.Contains(msg, "cannot start any token") {
		for i := range lines {
			if tabbed(i + 1) {
				return &Error{File: p.file, Line: i + 1, Msg: tabMsg}
			}
		}
	}
	return &Error{File: p.file, Msg: termsafe.OneLine(msg) + " (YAML syntax)"}
}

// resolve follows an alias (bounded: an alias to an alias chain ends).
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// mapping calls each for every key of n, a mapping, in order, refusing non-string keys
// and keys given twice.
func (p *parser) mapping(n *yaml.Node, what string, each func(k, v *yaml.Node) error) error {
	m := p.resolve(n)
	if m == nil || m.Kind != yaml.MappingNode {
		return p.errorf(n, "%s must be a mapping (key: value lines below it, indented)", what)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			return p.errorf(k, "in %s: keys must be plain words", what)
		}
		if k.Tag == "!!merge" {
			if err := each(k, v); err != nil {
				return err
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			return p.errorf(k, "%s is given twice in %s (first at line %d); keep one", k.Value, what, first)
		}
		seen[k.Value] = k.Line
		if err := each(k, v); err != nil {
			return err
		}
	}
	return nil
}

// validName: profile names are what users type after --profile.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// profiles reads a profiles: mapping into into; hosts is the host block's key for
// host-scoped ones.
func (p *parser) profiles(n *yaml.Node, into map[string]*Profile, hosts string, site bool) error {
	return p.mapping(n, "profiles:", func(k, v *yaml.Node) error {
		if k.Tag == "!!merge" {
			return p.errorf(k, "<< merges settings, not profiles: use it inside a profile")
		}
		if !validName.MatchString(k.Value) {
			return p.errorf(k, "profile name %q: use letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)", termsafe.Clip(termsafe.OneLine(k.Value), 40))
		}
		settings, err := p.settings(v, "profile "+k.Value, nil)
		if err != nil {
			return err
		}
		into[k.Value] = &Profile{Name: k.Value, Settings: settings, File: p.file, Line: k.Line, Site: site, Hosts: hosts}
		return nil
	})
}

// settings reads a mapping of settings. other, when set, may claim a key first (a host
// block's profiles:). Merge keys (<<: *anchor, or a list of them) bring in another
// mapping's settings under the ones written here, as YAML defines.
func (p *parser) settings(n *yaml.Node, what string, other func(k, v *yaml.Node) (bool, error)) ([]Setting, error) {
	return p.settingsDepth(n, what, other, 0)
}

func (p *parser) settingsDepth(n *yaml.Node, what string, other func(k, v *yaml.Node) (bool, error), depth int) ([]Setting, error) {
	if depth > maxDepth {
		return nil, p.errorf(n, "merges (<<) nested too deep in %s", what)
	}
	if r := p.resolve(n); r != nil && r.Kind == yaml.ScalarNode && r.Tag == "!!null" {
		return nil, nil // "gpu:" with nothing below: an empty profile
	}
	var own, merged []Setting
	err := p.mapping(n, what, func(k, v *yaml.Node) error {
		if k.Tag == "!!merge" {
			srcs := []*yaml.Node{v}
			if r := p.resolve(v); r != nil && r.Kind == yaml.SequenceNode {
				srcs = r.Content
			}
			for _, src := range srcs {
				ms, err := p.settingsDepth(src, what+" (merged by << at line "+strconv.Itoa(k.Line)+")", nil, depth+1)
				if err != nil {
					return err
				}
				merged = appendNew(merged, ms)
			}
			return nil
		}
		if other != nil {
			if done, err := other(k, v); done || err != nil {
				return err
			}
		}
		s, err := p.setting(k, v)
		if err != nil {
			return err
		}
		own = append(own, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return appendNew(own, merged), nil
}

// appendNew appends the settings of more whose keys are not in to yet.
func appendNew(to, more []Setting) []Setting {
	have := map[string]bool{}
	for _, s := range to {
		have[s.Key] = true
	}
	for _, s := range more {
		if !have[s.Key] {
			have[s.Key] = true
			to = append(to, s)
		}
	}
	return to
}

// secretWords are keys tether refuses outright: it keeps no secrets in its config.
var secretWords = []string{"token", "password", "passwd", "passphrase", "secret", "credential", "apikey", "api-key", "api_key", "otp", "private-key", "privatekey"}

func (p *parser) setting(k, v *yaml.Node) (Setting, error) {
	s := Setting{Key: k.Value, File: p.file, Line: k.Line}
	r := p.resolve(v)
	switch {
	case r == nil:
		return s, p.errorf(k, "%s: a value that refers to itself", k.Value)
	case r.Kind == yaml.ScalarNode && r.Tag == "!!null":
		return s, p.errorf(k, "%s has no value: write %s: VALUE (%s: \"\" for an empty one)", k.Value, k.Value, k.Value)
	case r.Kind == yaml.ScalarNode:
		s.Values = []string{r.Value}
	case r.Kind == yaml.SequenceNode:
		s.List, s.Values = true, []string{}
		for _, item := range r.Content {
			it := p.resolve(item)
			if it == nil || it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				return s, p.errorf(item, "%s: each item of the list must be one value", k.Value)
			}
			s.Values = append(s.Values, it.Value)
		}
	default:
		return s, p.errorf(v, "%s takes a value (or a list of values for a repeatable flag), not a mapping", k.Value)
	}
	if p.check == nil {
		return s, nil
	}
	if err := p.check(s); err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return s, p.unknown(k, err)
		}
		return s, p.errorf(k, "%s: %s", k.Value, termsafe.OneLine(err.Error()))
	}
	return s, nil
}

// unknown words an unknown key: a secret gets its own refusal; a key that is a flag
// in other letter case says so.
func (p *parser) unknown(k *yaml.Node, err error) error {
	low := strings.ToLower(k.Value)
	for _, w := range secretWords {
		if strings.Contains(low, w) {
			return p.errorf(k, "%s looks like a secret, and tether keeps none in its config file (it is plain text, and tether never reads tokens or passwords from it); remove it", termsafe.Clip(termsafe.OneLine(k.Value), 40))
		}
	}
	if low != k.Value {
		if e := p.check(Setting{Key: low, Values: []string{""}}); e == nil || !errors.Is(e, ErrUnknownKey) {
			return p.errorf(k, "unknown key %q: keys are flag names in lower case (%s)", termsafe.Clip(termsafe.OneLine(k.Value), 40), low)
		}
	}
	hint := strings.TrimPrefix(strings.TrimPrefix(err.Error(), ErrUnknownKey.Error()), ": ")
	if hint == "" {
		hint = "settings are launch flags by their long names (slurm, ssh, port, ...: see tether launch --help), and app"
	}
	return p.errorf(k, "unknown key %q: %s", termsafe.Clip(termsafe.OneLine(k.Value), 40), hint)
}

func sortedNames(m map[string]*Profile) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
