package launcher

import (
	"strings"

	"github.com/tether-dev/tether/batch"
	"github.com/tether-dev/tether/internal/shquote"
)

// SplitOptions splits a scheduler's options string (--slurm "…", --sge "…") into the
// submit command's arguments the way a POSIX shell splits words, without a shell
// (shquote.Split: what a shell would expand is refused).
func SplitOptions(s string) ([]string, error) { return shquote.Split(s) }

// BatchArgs turns a scheduler's options string into the submit command's arguments
// (SplitOptions) and refuses, read as that command reads them (the scheduler's
// CheckOptions), options tether sets itself or that would break the session: usage
// errors naming the flag.
func BatchArgs(kind, s string) ([]string, batch.Scheduler, error) {
	sched, err := batch.Lookup(kind)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	words, err := SplitOptions(s)
	if err != nil {
		return nil, nil, usageError("%s: %v", sched.Flag(), err)
	}
	if err := sched.CheckOptions(words); err != nil {
		return nil, nil, usageError("%s %v", sched.Flag(), err)
	}
	return words, sched, nil
}

// SbatchArgs is BatchArgs for Slurm.
func SbatchArgs(s string) ([]string, error) {
	words, _, err := BatchArgs("slurm", s)
	return words, err
}

// joinOptions writes scheduler options back as one string that SplitOptions splits
// into the same words: a word of safe characters as it is, others in single quotes.
func joinOptions(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
			q[i] = w
		} else {
			q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}
