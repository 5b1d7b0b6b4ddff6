package launcher

import (
	"bytes"
	"testing"
)

// recordingPrompter writes its question to the same screen as the status line, as the
// terminal prompter does (/dev/tty is stderr's terminal), and answers.
type recordingPrompter struct {
	screen *bytes.Buffer
	during func() // what other goroutines say while the question is up
}

func (r recordingPrompter) ask(q string) {
	r.screen.WriteString(q)
	if r.during != nil {
		r.during()
	}
	r.screen.WriteString("\n") // the user pressed Enter
}

func (r recordingPrompter) Passphrase(string) ([]byte, error) {
	r.ask("Enter passphrase for key '/k': ")
	return []byte("p"), nil
}
func (r recordingPrompter) Password(string, string) (string, error) {
	r.ask("password: ")
	return "", nil
}
func (r recordingPrompter) KeyboardInteractive(string, string, string, string, []string, []bool) ([]string, error) {
	r.ask("(u@h) One-time password: ")
	return []string{"1"}, nil
}
func (r recordingPrompter) ConfirmHostKey(string, string) (bool, error) {
	r.ask("Are you sure (yes/no)? ")
	return true, nil
}

// TestPromptOnItsOwnLine: a question asked while a status step is on screen starts on
// a line of its own ("tether: connecting to HOST" is finished first), and what the
// launcher says while the user types (a reconnect's step) waits until the answer is in.
func TestPromptOnItsOwnLine(t *testing.T) {
	var screen bytes.Buffer
	st := &status{w: &screen, out: &screen, tty: true}
	s := &session{o: Options{}, status: st}
	rp := recordingPrompter{screen: &screen, during: func() { st.step("connection to gpu lost; reconnecting") }}
	s.o.Prompter = rp
	p := s.prompter()

	st.step("connecting to gpu")
	p.KeyboardInteractive("u", "h", "", "", []string{"q"}, []bool{false})
	st.step("starting the app on gpu")
	st.done()
	want := "tether: connecting to gpu\n" +
		"(u@h) One-time password: \n" +
		"tether: connection to gpu lost; reconnecting\n" +
		"tether: starting the app on gpu\n"
	if got := screen.String(); got != want {
		t.Errorf("screen:\n%q\nwant:\n%q", got, want)
	}

	// Every kind of question, and nothing held back after it.
	screen.Reset()
	rp.during = nil
	s.o.Prompter = rp
	p = s.prompter()
	for _, ask := range []func(){
		func() { p.Passphrase("/k") },
		func() { p.Password("u", "h") },
		func() { p.ConfirmHostKey("h", "m") },
	} {
		st.step("connecting to gpu")
		ask()
	}
	want = "tether: connecting to gpu\nEnter passphrase for key '/k': \n" +
		"tether: connecting to gpu\npassword: \n" +
		"tether: connecting to gpu\nAre you sure (yes/no)? \n"
	if got := screen.String(); got != want {
		t.Errorf("screen:\n%q\nwant:\n%q", got, want)
	}
	if st.holds != 0 || st.w != st.out {
		t.Errorf("the status is still held after the questions")
	}
}
