package tunnel

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// HostAliases lists the host names the ssh config spells out in its Host lines (no
// patterns: nothing with *, ? or !), as ssh would read it for o (ConfigFile, Home), with
// the files it Includes: what a user may type as HOST, for suggestions and shell
// completion. Files that cannot be read are skipped; the list is sorted and has no
// duplicates.
func HostAliases(o ResolveOptions) []string {
	r, err := newResolver(ResolveOptions{ConfigFile: o.ConfigFile, SystemConfigFile: o.SystemConfigFile, Home: o.Home, User: "-"})
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, f := range r.files {
		r.aliasesIn(f.path, f.system, seen, 0)
	}
	out := make([]string, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

func (r *resolver) aliasesIn(path string, system bool, seen map[string]bool, depth int) {
	b, err := os.ReadFile(path)
	if err != nil || depth > maxIncludeDepth {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, rest, ok := splitKeyword(line)
		if !ok {
			continue
		}
		args, err := splitArgs(rest)
		if err != nil {
			continue
		}
		switch strings.ToLower(key) {
		case "host":
			for _, a := range args {
				if a != "" && !strings.ContainsAny(a, "*?!") && ValidHost(a) == nil {
					seen[a] = true
				}
			}
		case "include":
			for _, pat := range args {
				pat = expandTilde(pat, r.home)
				if !filepath.IsAbs(pat) {
					if system {
						pat = filepath.Join("/etc/ssh", pat)
					} else {
						pat = filepath.Join(r.home, ".ssh", pat)
					}
				}
				matches, _ := filepath.Glob(pat)
				for _, m := range matches {
					r.aliasesIn(m, system, seen, depth+1)
				}
			}
		}
	}
}
