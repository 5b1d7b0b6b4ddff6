package wire

import "testing"

// A stop answer from a remote that may be hostile: a session id and a job id of their
// shapes, or it is refused; a line that is not one (chatter) is not ok.
func TestDecodeStopped(t *testing.T) {
	for line, want := range map[string]struct{ ok, valid bool }{
		`{"stopped":"abcdefgh"}`:                       {true, true},
		`{"stopped":"abcdefgh","job_id":"42"}`:         {true, true},
		`{"stopped":"abcdefgh","job_id":"42.pbs-1"}`:   {true, true},
		`{"stopped":"../../etc"}`:                      {true, false},
		`{"stopped":"abcdefgh","job_id":"42; rm -rf"}`: {true, false},
		`{"stopped":"abcdefgh","job_id":"42_1"}`:       {true, false},
		`Welcome to login7`:                            {false, false},
		`{"level":"note","said":[{"text":"x"}]}`:       {false, false},
	} {
		s, ok, err := DecodeStopped([]byte(line))
		if ok != want.ok || (err == nil) != want.valid && ok {
			t.Errorf("%s: %+v ok %v err %v; want ok %v valid %v", line, s, ok, err, want.ok, want.valid)
		}
	}
}
