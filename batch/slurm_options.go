package batch

import (
	"fmt"
	"strings"

	"github.com/tether-dev/tether/internal/termsafe"
)

// How tether judges the --slurm words before sbatch sees them. sbatch parses its
// command line with getopt_long (short options "+A:a:b:…", REQUIRE_ORDER, and the long
// option table of Slurm's src/common/slurm_opt.c): see getoptCheck.

// sbatchOptions are sbatch's options: those of Slurm 22.05 (the oldest release tether
// is tested with) and those added since, up to 25.x. Where the two disagree on whether a
// value may follow "=" (--get-user-env, --requeue), optArg is used: in both, the next
// word is never the option's value. An option a site adds with a SPANK plugin is not
// here; see CheckSbatchArgs for how such words are judged.
var sbatchOptions = []option{
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

// sbatchOwned are the sbatch options tether sets itself or that would break the
// session, by long name, with why. Tether passes output, error, input, job name and
// --parsable itself, after the user's options (see tetherSbatchArgs).
var sbatchOwned = map[string]string{
	"output":    whyOutput,
	"error":     whyOutput,
	"input":     "the job reads no input (tether passes --input=/dev/null)",
	"job-name":  whyName,
	"array":     "tether runs one job per session",
	"wrap":      "the job runs tether serve from the script tether writes",
	"wait":      "tether watches the job itself (sbatch would not return until the job ends)",
	"hold":      "a held job never starts by itself; tether waits for the job it submits",
	"parsable":  "tether passes it to read the job id",
	"test-only": "tether submits the job for real",
	"clusters":  "tether asks squeue and scancel about the job on their default cluster; set SLURM_CLUSTERS in your login environment on the cluster instead, which sbatch, squeue and scancel all read",
	"cluster":   "tether asks squeue and scancel about the job on their default cluster; set SLURM_CLUSTERS in your login environment on the cluster instead, which sbatch, squeue and scancel all read",
	"help":      whyPrint,
	"usage":     whyPrint,
	"version":   whyPrint,
}

var sbatchCheck = &getoptCheck{prog: "sbatch", opts: sbatchOptions, owned: sbatchOwned, longs: true}

// CheckSbatchArgs judges the --slurm words the way sbatch's getopt_long will read them
// (getoptCheck.check). Errors read after "--slurm ".
func CheckSbatchArgs(args []string) error { return sbatchCheck.check(args) }

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
		return nil, fmt.Errorf("SBATCH_CLUSTERS=%s in your login environment sends the job to a cluster where squeue and scancel do not look for it; set SLURM_CLUSTERS=%s instead (sbatch, squeue and scancel all read it)", termsafe.Clip(c, 64), termsafe.Clip(c, 64))
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
