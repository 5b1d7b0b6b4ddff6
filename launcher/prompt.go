package launcher

import (
	"sync"

	"github.com/tether-dev/tether/tunnel"
)

// terminal is the launcher's terminal prompter (/dev/tty), opened on first use and kept
// for the process (a reconnect may ask again); nil without a terminal.
var terminal = sync.OnceValue(func() tunnel.Prompter {
	if tp := tunnel.NewTerminalPrompter(); tp != nil {
		return tp
	}
	return nil
})

// prompter is what asks the user during this session's logins (o.Prompter in tests,
// else the terminal), with the status line held while it asks: the question stands on
// a line of its own, never after "tether: connecting to HOST", and nothing is printed
// into the line the user types on. nil when there is nobody to ask.
func (s *session) prompter() tunnel.Prompter {
	p := s.o.Prompter
	if p == nil {
		p = terminal()
	}
	if p == nil {
		return nil
	}
	return statusPrompter{p: p, st: s.status}
}

// statusPrompter holds the status line around each question.
type statusPrompter struct {
	p  tunnel.Prompter
	st *status
}

func (sp statusPrompter) Passphrase(keyFile string) ([]byte, error) {
	defer sp.st.hold()()
	return sp.p.Passphrase(keyFile)
}

func (sp statusPrompter) Password(user, host string) (string, error) {
	defer sp.st.hold()()
	return sp.p.Password(user, host)
}

func (sp statusPrompter) KeyboardInteractive(user, host, name, instruction string, questions []string, echos []bool) ([]string, error) {
	defer sp.st.hold()()
	return sp.p.KeyboardInteractive(user, host, name, instruction, questions, echos)
}

func (sp statusPrompter) ConfirmHostKey(host, message string) (bool, error) {
	defer sp.st.hold()()
	return sp.p.ConfirmHostKey(host, message)
}
