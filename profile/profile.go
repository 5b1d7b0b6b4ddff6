// Package profile owns host profiles: the laptop's config file (where it lives and its
// YAML), per-host defaults matched like ssh_config's Host patterns, named profiles, and
// the site profiles a login node may ship in /etc/tether/profiles.d.
//
// A setting is a launch flag's long name with its value as written; which names exist
// and what a value means is the caller's business (the command line's), so a new flag
// is a new key with no code here. Nothing here writes a file: the config is the user's.
package profile

import (
	"fmt"
	"strings"
)

// Setting is one key of a host block or a profile, as written.
type Setting struct {
	// Key is the flag's long name (slurm, ssh, port, setup, ...), or app.
	Key string
	// Values holds one value for a scalar, or each item of a YAML list (a repeatable
	// flag given several times).
	Values []string
	// List says the value was written as a YAML list.
	List bool
	// File and Line say where it was written (File as messages show it: ~/.config/...
	// for the user's file, the remote path for a site file).
	File string
	Line int
}

// Where is FILE:LINE, for messages.
func (s Setting) Where() string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

// Profile is a named set of settings: `launch --profile NAME`.
type Profile struct {
	Name     string
	Settings []Setting
	File     string
	Line     int
	// Site marks a profile read from the host's site directory (untrusted text).
	Site bool
	// Hosts is the host block's key when the profile is defined inside one (it
	// applies to those hosts only); empty for a profile of any host.
	Hosts string
}

// Where is FILE:LINE of the profile's name.
func (p *Profile) Where() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// HostBlock is one entry of hosts: its patterns, its settings (the defaults for the
// hosts it matches) and the profiles scoped to those hosts.
type HostBlock struct {
	// Key is the block's key as written, e.g. "hpc" or "*.cluster.example.edu !gw".
	Key      string
	Patterns []string
	Settings []Setting
	Profiles map[string]*Profile
	Line     int
}

// Config is the user's config file.
type Config struct {
	File     string
	Hosts    []HostBlock
	Profiles map[string]*Profile
}

// Error is a problem in a config or site profile file, at a line when known. Its text
// is one line: FILE:LINE: what is wrong; the fix.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Defaults are the settings of every host block that matches host, merged as ssh
// merges Host blocks: for each key the first block (in file order) that sets it wins.
func (c *Config) Defaults(host string) []Setting {
	if c == nil {
		return nil
	}
	var out []Setting
	seen := map[string]bool{}
	for _, b := range c.Hosts {
		if !b.Matches(host) {
			continue
		}
		for _, s := range b.Settings {
			if !seen[s.Key] {
				seen[s.Key] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// Profile is the user's profile NAME for host: the first matching host block's own
// profile of that name, else the top-level one; nil when there is none.
func (c *Config) Profile(host, name string) *Profile {
	if c == nil {
		return nil
	}
	for _, b := range c.Hosts {
		if p := b.Profiles[name]; p != nil && b.Matches(host) {
			return p
		}
	}
	return c.Profiles[name]
}

// ProfilesFor lists the user's profiles that `--profile NAME` can name on host, each
// name once (the one Profile would pick), host-scoped ones first, then by name.
func (c *Config) ProfilesFor(host string) []*Profile {
	if c == nil {
		return nil
	}
	var out []*Profile
	seen := map[string]bool{}
	add := func(ps map[string]*Profile) {
		for _, name := range sortedNames(ps) {
			if !seen[name] {
				seen[name] = true
				out = append(out, ps[name])
			}
		}
	}
	for _, b := range c.Hosts {
		if b.Matches(host) {
			add(b.Profiles)
		}
	}
	add(c.Profiles)
	return out
}

// Matches says whether the block applies to host, the destination as the user typed
// it: as in ssh_config, some pattern must match and no negated one (!pattern) may;
// * and ? are wildcards, letters match in either case. A pattern with an @ is matched
// against the whole destination (alice@hpc), others against the host part.
func (b HostBlock) Matches(host string) bool {
	ok := false
	for _, p := range b.Patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		target := host
		if !strings.Contains(p, "@") {
			if i := strings.LastIndexByte(host, '@'); i >= 0 {
				target = host[i+1:]
			}
		}
		if !Glob(strings.ToLower(p), strings.ToLower(target)) {
			continue
		}
		if neg {
			return false
		}
		ok = true
	}
	return ok
}

// Glob matches s against pattern, where * is any run of characters and ? any one.
func Glob(pattern, s string) bool {
	// Iterative with one backtrack point, as ssh's match_pattern (linear for these
	// sizes: the last * is the only one that needs revisiting).
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// splitPatterns splits a hosts key into its patterns (whitespace or commas between).
func splitPatterns(key string) []string {
	return strings.FieldsFunc(key, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}
