package remote

import (
	"errors"
	"fmt"
	"strings"
)

// How tether judges the --slurm words before sbatch sees them. sbatch parses its
// command line with getopt_long (short options "+A:a:b:…", REQUIRE_ORDER, and the long
// option table of Slurm's src/common/slurm_opt.c), so a word means to sbatch more than
// it spells: any unambiguous prefix of a long option is that option (--out=/tmp/x is
// --output), a short option's value may be attached (-o/tmp/x) and short options may be
// bundled (-vo/tmp/x is -v -o /tmp/x; -Qa0-3 is -Q -a 0-3). CheckSbatchArgs reads each
// word the way getopt_long does and refuses the options tether owns, so that the job
// keeps the name tether finds it by, writes its output into the session's private
// directory, and is one job that tether watches itself.

// argKind is what an option takes, as getopt_long's has_arg says.
type argKind int

const (
	noArg  argKind = iota
	reqArg         // --opt=V, --opt V, -oV, -o V
	optArg         // --opt=V or -oV only: the next word is never its value
)

// sbatchOption is one entry of sbatch's option table.
type sbatchOption struct {
	long  string
	arg   argKind
	short byte // 0: long only
}

// sbatchOptions are sbatch's options: those of Slurm 22.05 (the oldest release tether
// is tested with) and those added since, up to 25.x. Where the two disagree on whether a
// value may follow "=" (--get-user-env, --requeue), optArg is used: in both, the next
// word is never the option's value. An option a site adds with a SPANK plugin is not
// here; see CheckSbatchArgs for how such words are judged.
var sbatchOptions = []sbatchOption{
	{"account", reqArg, 'A'}, {"acctg-freq", reqArg, 0}, {"array", reqArg, 'a'},
	{"autocomplete", reqArg, 0}, {"batch", reqArg, 0}, {"bb", reqArg, 0}, {"bbf", reqArg, 0},
	{"begin", reqArg, 'b'}, {"chdir", reqArg, 'D'}, {"cluster", reqArg, 0},
	{"cluster-constraint", reqArg, 0}, {"clusters", reqArg, 'M'}, {"comment", reqArg, 0},
	{"consolidate-segments", noArg, 0}, {"constraint", reqArg, 'C'}, {"container", reqArg, 0},
	{"container-id", reqArg, 0}, {"context", reqArg, 0}, {"contiguous", noArg, 0},
	{"core-spec", reqArg, 'S'}, {"cores-per-socket", reqArg, 0}, {"cpu-freq", reqArg, 0},
	{"cpus-per-gpu", reqArg, 0}, {"cpus-per-task", reqArg, 'c'}, {"deadline", reqArg, 0},
	{"delay-boot", reqArg, 0}, {"dependency", reqArg, 'd'}, {"distribution", reqArg, 'm'},
	{"error", reqArg, 'e'}, {"exclude", reqArg, 'x'}, {"exclusive", optArg, 0},
	{"export", reqArg, 0}, {"export-file", reqArg, 0}, {"external", noArg, 0},
	{"extra", reqArg, 0}, {"extra-node-info", reqArg, 'B'}, {"get-user-env", optArg, 0},
	{"gid", reqArg, 0}, {"gpu-bind", reqArg, 0}, {"gpu-freq", reqArg, 0}, {"gpus", reqArg, 'G'},
	{"gpus-per-node", reqArg, 0}, {"gpus-per-socket", reqArg, 0}, {"gpus-per-task", reqArg, 0},
	{"gres", reqArg, 0}, {"gres-flags", reqArg, 0}, {"help", noArg, 'h'}, {"hint", reqArg, 0},
	{"hold", noArg, 'H'}, {"ignore-pbs", noArg, 0}, {"input", reqArg, 'i'},
	{"job-name", reqArg, 'J'}, {"kill-on-invalid-dep", reqArg, 0}, {"licenses", reqArg, 'L'},
	{"mail-type", reqArg, 0}, {"mail-user", reqArg, 0}, {"mcs-label", reqArg, 0},
	{"mem", reqArg, 0}, {"mem-bind", reqArg, 0}, {"mem-per-cpu", reqArg, 0},
	{"mem-per-gpu", reqArg, 0}, {"mem-update", reqArg, 0}, {"mincpus", reqArg, 0},
	{"network", reqArg, 0}, {"nice", optArg, 0}, {"no-kill", optArg, 'k'},
	{"no-requeue", noArg, 0}, {"nodefile", reqArg, 'F'}, {"nodelist", reqArg, 'w'},
	{"nodes", reqArg, 'N'}, {"ntasks", reqArg, 'n'}, {"ntasks-per-core", reqArg, 0},
	{"ntasks-per-gpu", reqArg, 0}, {"ntasks-per-node", reqArg, 0},
	{"ntasks-per-socket", reqArg, 0}, {"ntasks-per-tres", reqArg, 0},
	{"oom-kill-step", optArg, 0}, {"open-mode", reqArg, 0}, {"output", reqArg, 'o'},
	{"overcommit", noArg, 'O'}, {"oversubscribe", noArg, 's'}, {"parsable", noArg, 0},
	{"partition", reqArg, 'p'}, {"power", reqArg, 0}, {"prefer", reqArg, 0},
	{"priority", reqArg, 0}, {"profile", reqArg, 0}, {"propagate", optArg, 0},
	{"qos", reqArg, 'q'}, {"quiet", noArg, 'Q'}, {"reboot", noArg, 0}, {"requeue", optArg, 0},
	{"reservation", reqArg, 0}, {"resources", reqArg, 0}, {"resv-ports", optArg, 0},
	{"runtime", reqArg, 0}, {"segment", reqArg, 0}, {"signal", reqArg, 0},
	{"sockets-per-node", reqArg, 0}, {"spread-job", noArg, 0}, {"spread-segments", noArg, 0},
	{"stepmgr", noArg, 0}, {"switches", reqArg, 0}, {"tasks-per-node", reqArg, 0},
	{"test-only", noArg, 0}, {"thread-spec", reqArg, 0}, {"threads-per-core", reqArg, 0},
	{"time", reqArg, 't'}, {"time-min", reqArg, 0}, {"tmp", reqArg, 0}, {"tres-bind", reqArg, 0},
	{"tres-per-task", reqArg, 0}, {"uid", reqArg, 0}, {"usage", noArg, 0},
	{"use-min-nodes", noArg, 0}, {"verbose", noArg, 'v'}, {"version", noArg, 'V'},
	{"wait", noArg, 'W'}, {"wait-all-nodes", reqArg, 0}, {"wckey", reqArg, 0}, {"wrap", reqArg, 0},
}

// Why tether owns an option.
const (
	whyOutput = "the job's output goes to the session's private directory"
	whyName   = "tether names the job tether-<session> and finds it by that name"
	whyPrint  = "it makes sbatch print something and submit nothing"
)

// tetherOwned are the sbatch options tether sets itself or that would break the
// session, by long name, with why. Tether passes output, error, input, job name and
// --parsable itself, after the user's options (see tetherSbatchArgs).
var tetherOwned = map[string]string{
	"output":    whyOutput,
	"error":     whyOutput,
	"input":     "the job reads no input (tether passes --input=/dev/null)",
	"job-name":  whyName,
	"array":     "tether runs one job per session",
	"wrap":      "the job runs tether serve from the script tether writes",
	"wait":      "tether watches the job itself (sbatch would not return until the job ends)",
	"parsable":  "tether passes it to read the job id",
	"test-only": "tether submits the job for real",
	"clusters":  "tether asks squeue and scancel about the job on their default cluster; set SLURM_CLUSTERS in your login environment on the cluster instead, which sbatch, squeue and scancel all read",
	"cluster":   "tether asks squeue and scancel about the job on their default cluster; set SLURM_CLUSTERS in your login environment on the cluster instead, which sbatch, squeue and scancel all read",
	"help":      whyPrint,
	"usage":     whyPrint,
	"version":   whyPrint,
}

// sbatchShort finds a short option by its letter.
func sbatchShort(c byte) (sbatchOption, bool) {
	for _, o := range sbatchOptions {
		if o.short == c && c != 0 {
			return o, true
		}
	}
	return sbatchOption{}, false
}

// sbatchLong finds the long option a name (what follows "--", before any "=") means to
// getopt_long: the option of exactly that name, else the one option it is a prefix of.
// Several: ambiguous; none: unknown (known is false).
func sbatchLong(name string) (o sbatchOption, candidates []string, known bool) {
	for _, opt := range sbatchOptions {
		if opt.long == name {
			return opt, nil, true
		}
	}
	for _, opt := range sbatchOptions {
		if strings.HasPrefix(opt.long, name) {
			o = opt
			candidates = append(candidates, "--"+opt.long)
		}
	}
	return o, candidates, len(candidates) == 1
}

// ownedPrefixOf is the tether-owned options name is a prefix of (so a word that some
// Slurm version, or a site's plugin, could still read as one of them).
func ownedPrefixOf(name string) []string {
	var out []string
	for _, opt := range sbatchOptions {
		if _, owned := tetherOwned[opt.long]; owned && strings.HasPrefix(opt.long, name) {
			out = append(out, "--"+opt.long)
		}
	}
	return out
}

// CheckSbatchArgs judges the --slurm words the way sbatch's getopt_long will read
// them, and refuses: options tether owns, however they are spelled (a prefix, an
// attached value, inside a bundle of short options); an abbreviation that is ambiguous,
// or a prefix of an option tether owns (conservative: another Slurm version may read it
// so); a word that is not an option (sbatch would take it for the script, and
// everything after it for the script's arguments); an option whose value is missing
// (it would take tether's own next option as its value). Errors read after "--slurm ".
//
// An option tether does not know (a site's SPANK plugin) passes, written --opt=VALUE,
// or as --opt followed by more options: the word after it must then be fine both as its
// value and as an option, since tether cannot tell which sbatch will take it for.
func CheckSbatchArgs(args []string) error { return checkSbatchFrom(args, 0, 0) }

// maxUnknownSbatch bounds the options tether does not know written without "=", each
// of which doubles the readings checked.
const maxUnknownSbatch = 8

func checkSbatchFrom(args []string, i, unknown int) error {
	for ; i < len(args); i++ {
		a := args[i]
		if strings.ContainsRune(a, 0) || len(a) > 4096 {
			return errors.New("option holds a NUL byte or is over 4 KiB")
		}
		switch {
		case a == "--":
			return errors.New("word \"--\" ends sbatch's options; give options only")
		case a == "-" || !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--="):
			return fmt.Errorf("word %q is not an sbatch option: give options only (tether writes the job script itself)", clip(a))
		case strings.HasPrefix(a, "--"):
			next, err := checkLong(a, args[i+1:])
			if err != nil {
				return err
			}
			switch next {
			case nextValue:
				i++
			case nextEither:
				if unknown++; unknown > maxUnknownSbatch {
					return fmt.Errorf("option %s: over %d options tether does not know; write them as --opt=VALUE", clip(a), maxUnknownSbatch)
				}
				if err := checkSbatchFrom(args, i+2, unknown); err != nil {
					return err // read with the next word as its value
				}
				// and read as a flag: go on with the next word
			}
		default:
			takesNext, err := checkShorts(a, i+1 < len(args))
			if err != nil {
				return err
			}
			if takesNext {
				i++
			}
		}
	}
	return nil
}

// What an option does with the word after it.
type nextWord int

const (
	nextOption nextWord = iota // the next word is read on its own
	nextValue                  // the next word is the option's value
	nextEither                 // tether cannot tell: both readings must pass
)

// checkLong judges one --word; rest are the words after it.
func checkLong(a string, rest []string) (nextWord, error) {
	name, _, hasValue := strings.Cut(a[2:], "=")
	opt, candidates, known := sbatchLong(name)
	if (!known || tetherOwned[opt.long] == "") && !(known && opt.long == name) {
		if owned := ownedPrefixOf(name); len(owned) > 0 {
			// Not an exact name, and it could be read as an option tether owns.
			return 0, fmt.Errorf("option %s (sbatch may read it as %s) is tether's own: %s; drop it",
				clip(a), strings.Join(owned, " or "), tetherOwned[strings.TrimPrefix(owned[0], "--")])
		}
	}
	switch {
	case len(candidates) > 1:
		return 0, fmt.Errorf("option %s is ambiguous: sbatch could read it as %s; write the option out in full", clip(a), strings.Join(candidates, ", "))
	case !known && hasValue:
		return nextOption, nil
	case !known && len(rest) == 0:
		return 0, fmt.Errorf("option %s is not one tether knows of sbatch (a site's plugin?): if it takes a value write %s=VALUE, else put it before another option", clip(a), clip(a))
	case !known && !strings.HasPrefix(rest[0], "-"):
		return 0, fmt.Errorf("option %s is not one tether knows of sbatch (a site's plugin?), so tether cannot tell whether %q is its value or a script; write %s=%s", clip(a), clip(rest[0]), clip(a), clip(rest[0]))
	case !known:
		return nextEither, nil
	}
	if why := tetherOwned[opt.long]; why != "" {
		return 0, ownedError(a, opt, why)
	}
	switch opt.arg {
	case noArg:
		if hasValue {
			return 0, fmt.Errorf("option %s: --%s takes no value", clip(a), opt.long)
		}
	case reqArg:
		if !hasValue {
			if len(rest) == 0 {
				return 0, fmt.Errorf("option %s needs a value", clip(a))
			}
			return nextValue, nil
		}
	}
	return nextOption, nil
}

// checkShorts judges one -word: a bundle of short options, the last of them perhaps
// with its value attached; takesNext says the next word is the value of the last one.
func checkShorts(a string, haveNext bool) (takesNext bool, err error) {
	for j := 1; j < len(a); j++ {
		opt, ok := sbatchShort(a[j])
		if !ok {
			return false, fmt.Errorf("option %s: sbatch has no option -%c that tether knows; use the option's long name", clip(a), a[j])
		}
		if why := tetherOwned[opt.long]; why != "" {
			return false, ownedError(a, opt, why)
		}
		switch opt.arg {
		case reqArg:
			if j+1 < len(a) {
				return false, nil // the rest of the word is its value
			}
			if !haveNext {
				return false, fmt.Errorf("option %s needs a value", clip(a))
			}
			return true, nil
		case optArg:
			return false, nil // the rest of the word, if any, is its value
		}
	}
	return false, nil
}

// ownedError refuses an option tether owns, saying how sbatch reads the word when it
// does not spell the option out.
func ownedError(a string, opt sbatchOption, why string) error {
	reads := ""
	if a != "--"+opt.long && !strings.HasPrefix(a, "--"+opt.long+"=") {
		reads = " (sbatch reads it as --" + opt.long + ")"
	}
	return fmt.Errorf("option %s%s is tether's own: %s; drop it", clip(a), reads, why)
}

// tetherSbatchArgs are the options tether gives sbatch, after the user's: on sbatch's
// command line (which wins over #SBATCH lines and SBATCH_* variables) and last (so they
// win over anything before them that CheckSbatchArgs did not catch). --error and
// --input are spelled out although Slurm's defaults are the same, because SBATCH_ERROR
// and SBATCH_INPUT in the user's login environment would change them.
func tetherSbatchArgs(jobName, output string) []string {
	return []string{"--parsable", "--job-name=" + jobName, "--output=" + output, "--error=" + output, "--input=/dev/null"}
}

// sbatchEnvDropped are SBATCH_* variables sbatch reads as options tether owns. The
// command line wins over most (tetherSbatchArgs), but nothing on it undoes an array or
// --wait, so sbatch runs without all of them.
var sbatchEnvDropped = []string{"SBATCH_ARRAY_INX", "SBATCH_WAIT", "SBATCH_OUTPUT", "SBATCH_ERROR", "SBATCH_INPUT", "SBATCH_JOB_NAME"}

// sbatchEnv is the environment sbatch runs with: env without sbatchEnvDropped. It
// refuses SBATCH_CLUSTERS naming other clusters than SLURM_CLUSTERS: sbatch alone reads
// it, so squeue and scancel would look for the job on another cluster.
func sbatchEnv(env []string) ([]string, error) {
	get := func(k string) string {
		for i := len(env) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(env[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
	if c := get("SBATCH_CLUSTERS"); c != "" && c != get("SLURM_CLUSTERS") {
		return nil, fmt.Errorf("SBATCH_CLUSTERS=%s in your login environment sends the job to a cluster where squeue and scancel do not look for it; set SLURM_CLUSTERS=%s instead (sbatch, squeue and scancel all read it)", clip(c), clip(c))
	}
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, d := range sbatchEnvDropped {
			drop = drop || k == d
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out, nil
}
