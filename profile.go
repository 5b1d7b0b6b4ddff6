package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/alecthomas/kong"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/launcher"
	"github.com/tether-dev/tether/profile"
	"github.com/tether-dev/tether/wire"
)

// Host profiles on the command line. The user's config file (package profile) gives
// per-host defaults and named profiles; a host may ship site profiles. Each setting is
// a launch flag's long name: it is parsed by kong exactly as if it had been typed, into
// the flag it names, so a new flag is a new key with nothing to add here. Precedence:
// the flags given (and a flag's environment variable, e.g. TETHER_SSH) always win, then
// the named profile (--profile), then the host's defaults.
//
// Kong's Resolver interface does this for flags while the command line is parsed, but a
// site profile arrives later, over the SSH connection the launch opens, and a default
// app is a positional argument; so both are applied here, after parsing, with kong's
// own decoding (Value.Parse) of each flag.

// profileFlags are launch's.
type profileFlags struct {
	Profile   string `placeholder:"NAME" help:"Apply this named profile: yours from the config file (tether apps HOST lists them), else one of HOST's site profiles (/etc/tether/profiles.d). Flags you give win over it."`
	NoProfile bool   `name:"no-profile" help:"Ignore your config file (host defaults and profiles) for this launch."`

	state *profileState // set by CLI.AfterApply
}

// appsProfiles is what `apps HOST` needs to list the profiles.
type appsProfiles struct {
	state *profileState
}

// profileState is what AfterApply found for the command: the config, the flags, what
// it applied and what is left for the site profiles.
type profileState struct {
	conf     *profile.Config
	host     string
	flags    map[string]*kong.Flag // the command's flags by long name
	launch   map[string]*kong.Flag // launch's: which keys exist
	explicit map[string]bool       // given on the command line or by environment
	defaults []profile.Setting     // the host defaults applied
	named    *profile.Profile      // the user's profile applied
	app      *string               // launch's APP, to set from an app setting
	appGiven bool                  // an APP or a COMMAND was given
	site     string                // the profile to look for among the site profiles
	tell     bool                  // say what was applied (launch, attach)
}

// connectionKeys are the settings that ls, stop, logs and apps HOST take from a host's
// defaults: how to reach it.
var connectionKeys = map[string]bool{"ssh": true, "ssh-config": true}

// laptopKeys are the launch flags a site profile may not set: they act on the laptop
// (its files, its ports, its browser, how it speaks SSH) or opt out of a protection,
// which only the user may choose. Flags taking a local path are refused too, whatever
// their name (laptopFlag).
var laptopKeys = map[string]bool{
	"ssh": true, "ssh-config": true, "remote-binary": true, "port": true, "no-browser": true,
	"open-file": true, "json": true, "rm": true, "allow-exposed": true,
}

// AfterApply applies the config file's host defaults (and launch's named profile) to
// the command being run, once kong has parsed the command line.
// What it applied goes to kong's stderr (run sets it to Env's).
func (c *CLI) AfterApply(kctx *kong.Context) error {
	st, pf, err := newProfileState(kctx)
	if st == nil || err != nil {
		return err
	}
	if pf != nil && pf.NoProfile {
		if pf.Profile != "" {
			return &usageError{msg: "--profile and --no-profile contradict each other; drop one"}
		}
		return nil
	}
	path, err := profile.Path()
	if err != nil {
		if pf != nil && pf.Profile != "" {
			return fmt.Errorf("--profile %s: %v", pf.Profile, err)
		}
		return nil // no home, no config: nothing to apply
	}
	st.conf, err = profile.Load(path, st.checker(false))
	if err != nil {
		return err
	}
	if ap := appsOf(kctx); ap != nil {
		ap.state = st
	}
	if st.conf == nil && (pf == nil || pf.Profile == "") {
		return nil
	}
	settings := st.conf.Defaults(st.host)
	if pf != nil && pf.Profile != "" {
		if p := st.conf.Profile(st.host, pf.Profile); p != nil {
			st.named = p
			settings = overlay(p.Settings, settings)
		} else {
			st.site = pf.Profile
		}
	}
	applied, err := st.apply(settings)
	if err != nil {
		return err
	}
	for _, s := range applied {
		if st.named == nil || !has(st.named.Settings, s.Key) {
			st.defaults = append(st.defaults, s)
		}
	}
	if pf != nil {
		pf.state = st
	}
	if st.site == "" && st.tell {
		// launch and attach say what they took; ls, stop, logs and apps only take the
		// transport, which their own output shows when it matters.
		if line := st.summary(nil); line != "" {
			fmt.Fprintf(kctx.Stderr, "tether: %s\n", line)
		}
	}
	return nil
}

// newProfileState finds the HOST of the command kong selected, if it takes one, and
// its flags. pf is launch's profile flags.
func newProfileState(kctx *kong.Context) (*profileState, *profileFlags, error) {
	node := kctx.Selected()
	if node == nil || !node.Target.IsValid() || !node.Target.CanAddr() {
		return nil, nil, nil
	}
	st := &profileState{explicit: explicitFlags(kctx), launch: launchFlags(kctx.Model)}
	var pf *profileFlags
	all := true
	switch cmd := node.Target.Addr().Interface().(type) {
	case *LaunchCmd:
		st.host, pf = cmd.Host, &cmd.profileFlags
		st.app, st.appGiven = &cmd.App, cmd.App != "" || len(cmd.Command) > 0
		st.tell = true
	case *AttachCmd:
		st.host, st.tell = cmd.Host, true
	case *LsCmd:
		if len(cmd.Args) == 1 {
			st.host = cmd.Args[0]
		}
		all = false
	case *StopCmd:
		if len(cmd.Args) == 2 || len(cmd.Args) == 1 && cmd.All {
			st.host = cmd.Args[0]
		}
		all = false
	case *LogsCmd:
		if len(cmd.Args) == 2 {
			st.host = cmd.Args[0]
		}
		all = false
	case *AppsCmd:
		if len(cmd.Args) == 1 {
			st.host = cmd.Args[0]
		}
		all = false
	case *ForwardCmd:
		st.host = cmd.Host
		all = false
	}
	if st.host == "" {
		return nil, nil, nil
	}
	st.flags = map[string]*kong.Flag{}
	for _, f := range node.Flags {
		if all || connectionKeys[f.Name] {
			st.flags[f.Name] = f
		}
	}
	return st, pf, nil
}

func appsOf(kctx *kong.Context) *appsProfiles {
	if a, ok := kctx.Selected().Target.Addr().Interface().(*AppsCmd); ok && !a.JSON {
		return &a.appsProfiles
	}
	return nil
}

// launchFlags are launch's flags by long name: the keys a profile may hold (hidden
// flags and the profile flags themselves excepted).
func launchFlags(app *kong.Application) map[string]*kong.Flag {
	out := map[string]*kong.Flag{}
	for _, n := range app.Children {
		if n.Name != "launch" {
			continue
		}
		for _, f := range n.Flags {
			if !f.Hidden && f.Name != "profile" && f.Name != "no-profile" && f.Name != "help" {
				out[f.Name] = f
			}
		}
	}
	return out
}

// explicitFlags are the flags given on the command line, and those whose environment
// variable is set (kong's env tags, and TETHER_SSH for --ssh): a profile sets none.
func explicitFlags(kctx *kong.Context) map[string]bool {
	out := map[string]bool{}
	for _, p := range kctx.Path {
		if p.Flag != nil {
			out[p.Flag.Name] = true
		}
	}
	for _, f := range kctx.Flags() {
		for _, e := range f.Envs {
			if _, ok := os.LookupEnv(e); ok {
				out[f.Name] = true
			}
		}
	}
	if os.Getenv("TETHER_SSH") != "" {
		out["ssh"] = true
	}
	return out
}

// checker judges a setting against launch's flags: the key must be one (or app), and
// each value must parse as kong would parse it from the command line. A site
// profile may not set the laptop's flags.
func (st *profileState) checker(site bool) profile.Checker {
	return func(s profile.Setting) error {
		if s.Key == "app" {
			if s.List || len(s.Values) != 1 {
				return errors.New("names one preset (tether apps lists them)")
			}
			if _, ok := wire.LookupPreset(s.Values[0]); !ok {
				return fmt.Errorf("%q is not a preset (tether apps lists them)", clipValue(s.Values[0]))
			}
			return nil
		}
		f := st.launch[s.Key]
		if f == nil {
			return profile.ErrUnknownKey
		}
		if site && (laptopKeys[s.Key] || laptopFlag(f)) {
			return fmt.Errorf("a site profile cannot set it: --%s acts on your laptop, and only you choose that (in your own config file or on the command line)", s.Key)
		}
		if s.List && !f.IsSlice() {
			return fmt.Errorf("takes one value, not a list")
		}
		for _, v := range s.Values {
			if err := checkValue(f, v); err != nil {
				return err
			}
		}
		return nil
	}
}

// laptopFlag: a flag whose value is a local file or directory.
func laptopFlag(f *kong.Flag) bool {
	switch f.Tag.Type {
	case "path", "existingfile", "existingdir", "filecontent":
		return true
	}
	return f.Target.Type() == reflect.TypeOf((*os.File)(nil))
}

// checkValue parses v for f into a scratch value, as kong would parse it from the
// command line.
func checkValue(f *kong.Flag, v string) error {
	if f.Enum != "" && !f.EnumMap()[v] {
		return fmt.Errorf("%q is not one of %s", clipValue(v), f.Enum)
	}
	if f.Name == "ssh" {
		switch v {
		case launcher.SSHNative, launcher.SSHOpenSSH, launcher.SSHAuto:
		default:
			return fmt.Errorf("%q: choose native, openssh or auto", clipValue(v))
		}
	}
	scratch := reflect.New(f.Target.Type()).Elem()
	set := f.Set
	err := f.Parse(kong.Scan().PushTyped(v, kong.FlagValueToken), scratch)
	f.Set = set
	return kongError(err)
}

// kongError drops kong's "--flag=PLACEHOLDER: " prefix: the message names the key.
func kongError(err error) error {
	if err == nil {
		return nil
	}
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}

// overlay is top's settings, then those of under whose keys top does not set.
func overlay(top, under []profile.Setting) []profile.Setting {
	out := append([]profile.Setting{}, top...)
	for _, s := range under {
		if !has(top, s.Key) {
			out = append(out, s)
		}
	}
	return out
}

func has(ss []profile.Setting, key string) bool {
	for _, s := range ss {
		if s.Key == key {
			return true
		}
	}
	return false
}

// apply sets each setting's flag (or launch's APP) unless it was given, and returns
// the settings applied.
func (st *profileState) apply(settings []profile.Setting) ([]profile.Setting, error) {
	var applied []profile.Setting
	for _, s := range settings {
		if s.Key == "app" {
			if st.app != nil && !st.appGiven {
				*st.app = s.Values[0]
				applied = append(applied, s)
			}
			continue
		}
		f := st.flags[s.Key]
		if f == nil || st.explicit[s.Key] {
			continue // a flag this command lacks, or one given
		}
		if err := f.Reset(); err != nil {
			return nil, &profile.Error{File: s.File, Line: s.Line, Msg: fmt.Sprintf("%s: %v", s.Key, kongError(err))}
		}
		for _, v := range s.Values {
			if err := f.Parse(kong.Scan().PushTyped(v, kong.FlagValueToken), f.Target); err != nil {
				return nil, &profile.Error{File: s.File, Line: s.Line, Msg: fmt.Sprintf("%s: %v", s.Key, kongError(err))}
			}
		}
		applied = append(applied, s)
	}
	return applied, nil
}

// summary is the line saying what was applied: "profile gpu: --slurm "-p gpu";
// defaults for hpc: jupyter --port 8888". site, when set, is the site profile applied
// in place of a profile of the user's.
func (st *profileState) summary(site []profile.Setting) string {
	var parts []string
	switch {
	case site != nil:
		if f := st.format(site); f != "" {
			parts = append(parts, "site profile "+st.site+": "+f)
		}
	case st.named != nil:
		if f := st.format(st.applied(st.named.Settings)); f != "" {
			parts = append(parts, "profile "+st.named.Name+": "+f)
		}
	}
	var defaults []profile.Setting
	for _, s := range st.defaults {
		if !has(site, s.Key) {
			defaults = append(defaults, s)
		}
	}
	if f := st.format(defaults); f != "" {
		parts = append(parts, "defaults for "+safeWord(st.host)+": "+f)
	}
	return strings.Join(parts, "; ")
}

// applied are the settings of ss that apply() would not skip.
func (st *profileState) applied(ss []profile.Setting) []profile.Setting {
	var out []profile.Setting
	for _, s := range ss {
		if s.Key == "app" && st.app != nil && !st.appGiven || s.Key != "app" && st.flags[s.Key] != nil && !st.explicit[s.Key] {
			out = append(out, s)
		}
	}
	return out
}

// format shows settings as flags, the app first: `jupyter --port 8888`.
func (st *profileState) format(ss []profile.Setting) string {
	var words []string
	for _, s := range ss {
		if s.Key == "app" {
			words = append([]string{quoteWord(s.Values[0])}, words...)
			continue
		}
		if s.List && len(s.Values) == 0 {
			words = append(words, "(no --"+s.Key+")")
		}
		for _, v := range s.Values {
			switch strings.ToLower(v) {
			case "true", "yes":
				if f := st.launch[s.Key]; f != nil && f.IsBool() {
					words = append(words, "--"+s.Key)
					continue
				}
			}
			words = append(words, "--"+s.Key, quoteWord(v))
		}
	}
	return strings.Join(words, " ")
}

// quoteWord shows a value as a shell would need it: bare when plain, else in double
// quotes with Go's escapes (so a control or bidi character from a site file shows as
// an escape, never as itself).
func quoteWord(v string) string {
	if v != "" && strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.,:/=@+%~", r))
	}) < 0 {
		return v
	}
	return strconv.Quote(clipValue(v))
}

// clipValue is a value from a config file as a message shows it: at most 200 bytes.
func clipValue(v string) string { return termsafe.Clip(v, 200) }

// safeWord is the host as typed, for a message.
func safeWord(s string) string {
	if q := quoteWord(s); q != s {
		return q
	}
	return s
}

// siteProfile is launch's callback for the site profiles, when --profile names none of
// the user's: it applies the site's profile of that name to the flags not given (over
// the host defaults) and returns the options made from them.
func (c *LaunchCmd) siteProfile(env *Env, kctx *kong.Context) func(launcher.SiteProfiles) (launcher.LaunchOptions, string, error) {
	st := c.state
	if st == nil || st.site == "" {
		return nil
	}
	return func(sp launcher.SiteProfiles) (launcher.LaunchOptions, string, error) {
		profiles, problems := parseSite(sp, st.checker(true))
		var p *profile.Profile
		for _, q := range profiles {
			if q.Name == st.site {
				p = q
			}
		}
		if p == nil {
			return launcher.LaunchOptions{}, "", st.noProfile(sp, profiles, problems)
		}
		applied, err := st.apply(p.Settings)
		if err != nil {
			return launcher.LaunchOptions{}, "", err
		}
		if applied == nil {
			applied = []profile.Setting{}
		}
		o, err := c.launchOptions(env, kctx)
		return o, st.summary(applied), err
	}
}

// noProfile is the error for a --profile NAME found nowhere.
func (st *profileState) noProfile(sp launcher.SiteProfiles, site []*profile.Profile, problems []string) error {
	mine := "your config file has none"
	if st.conf != nil {
		mine = "not in " + st.conf.File
		if names := profileNames(st.conf.ProfilesFor(st.host)); names != "" {
			mine += " (" + names + ")"
		}
	}
	theirs := "nor among " + safeWord(st.host) + "'s site profiles"
	switch {
	case sp.Dir == "":
		theirs = "and " + safeWord(st.host) + " has no site profiles"
	case len(site) > 0:
		theirs += " (" + profileNames(site) + ")"
	}
	msg := fmt.Sprintf("no profile %q for %s: %s, %s", st.site, safeWord(st.host), mine, theirs)
	if len(problems) > 0 {
		// The profile may be in a file that was left out: say which were, and why.
		const most = 3
		msg += "; left out there: " + strings.Join(problems[:min(len(problems), most)], "; ")
		if len(problems) > most {
			msg += fmt.Sprintf(" (and %d more: tether apps %s lists them)", len(problems)-most, safeWord(st.host))
		}
	}
	return &usageError{msg: msg}
}

func profileNames(ps []*profile.Profile) string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// parseSite parses each site file; a file with a problem is left out, and the problem
// said (FILE:LINE, its text made terminal-safe by package profile).
func parseSite(sp launcher.SiteProfiles, check profile.Checker) ([]*profile.Profile, []string) {
	var out []*profile.Profile
	problems := append([]string{}, sp.Ignored...)
	byName := map[string]*profile.Profile{}
	for _, f := range sp.Files {
		ps, err := profile.ParseSite(f.Path, f.Data, check)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		for _, p := range ps {
			if first := byName[p.Name]; first != nil {
				problems = append(problems, fmt.Sprintf("%s: profile %s is also in %s; the first is used", p.Where(), p.Name, first.Where()))
				continue
			}
			byName[p.Name] = p
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, problems
}

// listProfiles is `apps HOST`'s profile table: the host's defaults and the profiles
// --profile can name, the user's and the site's (the user's own wins over a site
// profile of the same name).
func (st *profileState) listProfiles(w io.Writer, stderr io.Writer, sp launcher.SiteProfiles) error {
	var mine []*profile.Profile
	var defaults []profile.Setting
	if st.conf != nil {
		mine = st.conf.ProfilesFor(st.host)
		defaults = st.conf.Defaults(st.host)
	}
	site, problems := parseSite(sp, st.checker(true))
	if len(mine) == 0 && len(site) == 0 && len(defaults) == 0 && len(problems) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "PROFILE\tFROM\tSETS\n")
	if len(defaults) > 0 {
		fmt.Fprintf(tw, "(defaults)\t%s\t%s\n", defaults[0].Where(), st.format(defaults))
	}
	names := map[string]bool{}
	for _, p := range mine {
		names[p.Name] = true
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Where(), orNothing(st.format(p.Settings)))
	}
	for _, p := range site {
		from := "site " + p.Where()
		if names[p.Name] {
			from += " (yours wins)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, from, orNothing(st.format(p.Settings)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, why := range problems {
		fmt.Fprintf(stderr, "tether: site profiles on %s: ignored %s\n", safeWord(st.host), why)
	}
	return nil
}

func orNothing(s string) string {
	if s == "" {
		return "(nothing)"
	}
	return s
}

// profilesLister is `apps HOST`'s callback, when it lists profiles.
func (a *appsProfiles) profilesLister(env *Env) func(io.Writer, launcher.SiteProfiles) error {
	if a.state == nil {
		return nil
	}
	return func(w io.Writer, sp launcher.SiteProfiles) error { return a.state.listProfiles(w, env.Stderr, sp) }
}
