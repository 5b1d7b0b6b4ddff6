#!/bin/sh
# tether-batch-NAME: a site's scheduler wrapper for tether (`tether launch HOST --batch
# "NAME OPTIONS"`). This template works as it is on a Slurm cluster; a site copies it
# onto the login nodes' PATH as tether-batch-NAME (NAME: lowercase letters, digits, -
# and _), makes it executable, and changes the three places marked ADAPT: what the
# submit command is, which options users may not give, and how the job's state is
# read. Each command gets every argument as its own word (tether runs it without a
# shell); it prints what tether reads on stdout, and the reason on stderr when it
# refuses something (exit non-zero). See batch/site.go for the protocol.
#
#   tether-batch-NAME submit NAME OUTPUT SCRIPT [OPTION...]
#       submit SCRIPT as one job named NAME, its output and errors into OUTPUT, its
#       input /dev/null; print the job's id on the first line.
#   tether-batch-NAME status ID...
#       one line per job still known: ID|NAME|STATE|NODE|TIME_LEFT|TIME_LIMIT|START|REASON
#       (STATE in Slurm's words: PENDING, RUNNING, COMPLETED, CANCELLED, FAILED,
#       TIMEOUT...; times as squeue prints them; START as YYYY-MM-DDTHH:MM:SS).
#   tether-batch-NAME cancel ID NAME
#       cancel job ID if it is still named NAME; a job already gone is not an error.
set -eu

die() { echo "$*" >&2; exit 2; }

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
submit)
	[ $# -ge 3 ] || die "usage: $0 submit NAME OUTPUT SCRIPT [OPTION...]"
	name=$1 output=$2 script=$3
	shift 3
	# ADAPT: options users may not give. tether names the job, places its output and
	# watches one job itself: options that would change that are refused. For a
	# scheduler tether knows (slurm, sge, pbs, lsf), the tether that runs this wrapper
	# judges them as that scheduler's submit command reads them ($TETHER_BIN batch
	# check, exit 2 with the reason); a front end of your own refuses its own
	# equivalents here too.
	if [ -n "${TETHER_BIN:-}" ]; then
		(
			for a in "$@"; do set -- "$@" "--option=$a"; shift; done
			exec "$TETHER_BIN" batch check --scheduler=slurm "$@"
		) || exit 2
	fi
	# ADAPT: the submit command. Add the site's defaults before "$@" (the user's
	# options win over them), e.g. an account: set -- --account=default "$@".
	out=$(sbatch --parsable "$@" --job-name="$name" --output="$output" --error="$output" --input=/dev/null "$script") || exit 1
	echo "${out%%;*}"
	;;
status)
	[ $# -ge 1 ] || exit 0
	# ADAPT: how the job's state is read, one line per job in the format above.
	ids=$(printf '%s,' "$@")
	if ! out=$(squeue -h -t all -j "${ids%,}" -o '%i|%j|%T|%N|%L|%l|%S|%r' 2>&1); then
		# One unknown id makes squeue fail: the job ended long ago.
		case $out in *"Invalid job id"*) exit 0 ;; esac
		printf '%s\n' "$out" >&2
		exit 1
	fi
	[ -z "$out" ] || printf '%s\n' "$out"
	;;
cancel)
	[ $# -eq 2 ] || die "usage: $0 cancel ID NAME"
	scancel --name="$2" "$1" 2>/dev/null || true
	;;
*)
	die "usage: $0 submit|status|cancel ..."
	;;
esac
