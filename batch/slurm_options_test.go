package batch

import (
	"slices"
	"strings"
	"testing"
)

// Issue 11 item 7(c): the --slurm words are judged the way sbatch's getopt_long reads
// them. Before, only exact names were refused, so a prefix (--out=/tmp/x), a bundle
// (-vo/tmp/x, -Qa0-3) or a spelled-out value form slipped through to sbatch.
func TestCheckSbatchArgsReadsLikeGetoptLong(t *testing.T) {
	refused := []struct {
		words []string
		want  []string // in the error, besides "tether's own" or the reason
	}{
		{[]string{"--out=/tmp/x"}, []string{"option --out=/tmp/x (sbatch reads it as --output) is tether's own: the job's output goes to the session's private directory; drop it"}},
		{[]string{"--job=x"}, []string{"--job=x (sbatch reads it as --job-name)", "tether's own", "finds it by that name"}},
		{[]string{"--arr=0-3"}, []string{"--arr=0-3 (sbatch reads it as --array)", "one job per session"}},
		{[]string{"-vo/tmp/x"}, []string{"-vo/tmp/x (sbatch reads it as --output)"}},
		{[]string{"-Qa0-3"}, []string{"-Qa0-3 (sbatch reads it as --array)"}},
		{[]string{"-o/tmp/x"}, []string{"-o/tmp/x (sbatch reads it as --output)"}},
		{[]string{"--output", "/tmp/x"}, []string{"option --output is tether's own"}},
		{[]string{"--output=/tmp/x"}, []string{"option --output=/tmp/x is tether's own"}},
		{[]string{"-J", "x"}, []string{"-J (sbatch reads it as --job-name)"}},
		{[]string{"-Jx"}, []string{"-Jx (sbatch reads it as --job-name)"}},
		{[]string{"--job-name", "x"}, []string{"--job-name is tether's own"}},
		{[]string{"-e", "/tmp/err"}, []string{"(sbatch reads it as --error)"}},
		{[]string{"--err=/tmp/err"}, []string{"(sbatch reads it as --error)"}},
		{[]string{"--inp", "/etc/passwd"}, []string{"(sbatch reads it as --input)"}},
		{[]string{"-p", "gpu", "-vQi/dev/zero"}, []string{"-vQi/dev/zero (sbatch reads it as --input)"}},
		{[]string{"-a", "1-4"}, []string{"--array"}},
		{[]string{"--wr=hostname"}, []string{"--wrap"}},
		{[]string{"--wait"}, []string{"--wait is tether's own"}},
		{[]string{"-W"}, []string{"--wait"}},
		{[]string{"-vW"}, []string{"--wait"}},
		{[]string{"--pars"}, []string{"--parsable"}},
		{[]string{"--test"}, []string{"--test-only"}},
		{[]string{"-M", "other"}, []string{"--clusters", "SLURM_CLUSTERS"}},
		{[]string{"--cluster=other"}, []string{"--cluster", "SLURM_CLUSTERS"}},
		{[]string{"--help"}, []string{"print something and submit nothing"}},
		{[]string{"-h"}, []string{"--help"}},
		{[]string{"--usa"}, []string{"--usage"}},
		{[]string{"-V"}, []string{"--version"}},
		// Ambiguous, and a prefix of an option tether owns: refused whatever this
		// Slurm version would make of it.
		{[]string{"--o=/tmp/x"}, []string{"may read it as --output"}},
		{[]string{"--e=/tmp/x"}, []string{"may read it as --error"}},
		{[]string{"--w"}, []string{"may read it as --wait or --wrap"}},
		{[]string{"--j=x"}, []string{"--job-name"}},
		// Ambiguous among options tether does not own.
		{[]string{"--mem-per=4G"}, []string{"ambiguous", "--mem-per-cpu", "--mem-per-gpu"}},
		{[]string{"--nt=4"}, []string{"ambiguous"}},
		// Not options: the script and its arguments.
		{[]string{"job.sh"}, []string{`word "job.sh" is not an sbatch option`}},
		{[]string{"-p", "gpu", "job.sh"}, []string{`"job.sh"`}},
		{[]string{"--exclusive", "job.sh"}, []string{`"job.sh"`}},
		{[]string{"-Q", "job.sh"}, []string{`"job.sh"`}},
		{[]string{"-"}, []string{`word "-"`}},
		{[]string{"--=x"}, []string{`word "--=x"`}},
		{[]string{"-p", "gpu", "--"}, []string{`"--" ends sbatch's options`}},
		// A value missing: sbatch would take tether's own next option as the value.
		{[]string{"-p"}, []string{"option -p needs a value"}},
		{[]string{"-N1", "--partition"}, []string{"--partition needs a value"}},
		{[]string{"-vp"}, []string{"-vp needs a value"}},
		// Odd forms.
		{[]string{"--quiet=yes"}, []string{"--quiet takes no value"}},
		{[]string{"--hold"}, []string{"--hold is tether's own", "never starts"}},
		{[]string{"-QH"}, []string{"sbatch reads it as --hold"}},
		{[]string{"-y"}, []string{"no option -y"}},
		{[]string{"-vy"}, []string{"no option -y"}},
		{[]string{"--comment=a\x00b"}, []string{"NUL"}},
		// Options tether does not know (a site's plugin): the word after must pass
		// both as their value and as an option.
		{[]string{"--site-opt", "value"}, []string{"cannot tell whether \"value\" is its value", "--site-opt=value"}},
		{[]string{"-p", "gpu", "--site-flag"}, []string{"if it takes a value write --site-flag=VALUE"}},
		{[]string{"--site-opt", "--output=/tmp/x"}, []string{"--output=/tmp/x is tether's own"}},
		{[]string{"--site-opt", "-p", "gpu"}, []string{`"gpu" is not an sbatch option`}},
	}
	for _, tt := range refused {
		err := CheckSbatchArgs(tt.words)
		if err == nil {
			t.Errorf("for %q, got no error; want it refused", tt.words)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("for %q, got %q; want it to say %q", tt.words, err, w)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("for %q, got a multi-line error %q", tt.words, err)
		}
	}

	kept := [][]string{
		nil,
		{"-p", "gpu", "--gres=gpu:1", "-t", "4:00:00", "-N1", "-c4", "--mem=8G"},
		{"-pgpu", "-t1:00:00", "-N", "1", "--exclusive", "-A", "proj"},
		{"--partition", "gpu", "--mem=4G", "-c", "4", "--export=ALL", "--comment", "-dashed"},
		{"--chdir", "/scratch/me"},
		{"-D/scratch/me", "-vQ", "-Qv", "-vp", "gpu", "-Qkv"},                            // -k takes an optional value: -kv is -k=v
		{"--part=gpu", "--cpus-per-t=4", "--ntasks-per-n", "4", "--mem", "4G", "--quie"}, // unambiguous prefixes of options tether leaves alone
		{"--gpus-per-node=1", "--ntasks-per-node", "4", "--dependency=afterok:12", "--open-mode=append"},
		{"--requeue", "--get-user-env", "--exclusive=user", "--nice=10", "--propagate"},
		{"--site-opt=value", "--site-flag", "--gres=gpu:1"}, // a plugin's options, judged both ways
		{"--container-image=nvcr.io/nvidia/pytorch:24.01"},
	}
	for _, words := range kept {
		if err := CheckSbatchArgs(words); err != nil {
			t.Errorf("for %q, got %v; want it kept", words, err)
		}
	}
}

// Every option tether owns is refused in every spelling getopt_long accepts: the name,
// each prefix that is unique in the table, "=VALUE" and the next word as value, and its
// short letter alone, with its value attached, and at the end of a bundle.
func TestCheckSbatchArgsEveryOwnedSpelling(t *testing.T) {
	for _, opt := range sbatchOptions {
		if sbatchOwned[opt.long] == "" {
			continue
		}
		var words [][]string
		for n := 1; n <= len(opt.long); n++ {
			p := "--" + opt.long[:n]
			words = append(words, []string{p}, []string{p + "=v"}, []string{p, "v"})
		}
		if opt.short != 0 {
			s := "-" + string(opt.short)
			words = append(words, []string{s}, []string{s, "v"}, []string{s + "v"}, []string{"-v" + s[1:] + "v"}, []string{"-Qv" + s[1:], "v"})
		}
		for _, w := range words {
			if err := CheckSbatchArgs(w); err == nil {
				t.Errorf("for %q (--%s), got no error", w, opt.long)
			}
		}
	}
}

// The table itself: names unique, short letters unique, every option tether owns in it.
func TestSbatchOptionTable(t *testing.T) {
	seen := map[string]bool{}
	shorts := map[byte]string{}
	for _, o := range sbatchOptions {
		if seen[o.long] {
			t.Errorf("--%s twice", o.long)
		}
		seen[o.long] = true
		if o.short != 0 {
			if other, dup := shorts[o.short]; dup {
				t.Errorf("-%c is --%s and --%s", o.short, other, o.long)
			}
			shorts[o.short] = o.long
		}
	}
	for name := range sbatchOwned {
		if !seen[name] {
			t.Errorf("tether owns --%s, which is not in the table", name)
		}
	}
}

// Tether's own options come last on sbatch's command line (later wins), spell out
// --error and --input (SBATCH_ERROR and SBATCH_INPUT would change them otherwise), and
// sbatch runs without the SBATCH_* variables nothing on its command line undoes.
func TestSbatchEnvAndTetherArgs(t *testing.T) {
	args := tetherSbatchArgs("tether-abc", "/home/u/.cache/tether/slurm/abc/job.out")
	want := []string{"--parsable", "--job-name=tether-abc", "--output=/home/u/.cache/tether/slurm/abc/job.out",
		"--error=/home/u/.cache/tether/slurm/abc/job.out", "--input=/dev/null"}
	if !slices.Equal(args, want) {
		t.Errorf("got %q; want %q", args, want)
	}
	if err := CheckSbatchArgs(args); err == nil {
		t.Error("tether's own options pass the check meant for the user's")
	}

	env := []string{"HOME=/home/u", "SBATCH_ARRAY_INX=0-3", "SBATCH_WAIT=1", "SBATCH_OUTPUT=/tmp/o", "SBATCH_ERROR=/tmp/e",
		"SBATCH_INPUT=/tmp/i", "SBATCH_JOB_NAME=x", "SBATCH_PARTITION=gpu", "SLURM_CONF=/etc/slurm/slurm.conf"}
	got, err := sbatchEnv(env)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"HOME=/home/u", "SBATCH_PARTITION=gpu", "SLURM_CONF=/etc/slurm/slurm.conf"}; !slices.Equal(got, want) {
		t.Errorf("sbatch's environment: got %q; want %q", got, want)
	}

	if _, err := sbatchEnv([]string{"SBATCH_CLUSTERS=other"}); err == nil || !strings.Contains(err.Error(), "set SLURM_CLUSTERS=other instead") {
		t.Errorf("SBATCH_CLUSTERS alone: got %v; want it refused", err)
	}
	if _, err := sbatchEnv([]string{"SBATCH_CLUSTERS=other", "SLURM_CLUSTERS=other"}); err != nil {
		t.Errorf("SBATCH_CLUSTERS as SLURM_CLUSTERS: %v", err)
	}
}
