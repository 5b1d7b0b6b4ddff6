package launcher

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/termsafe"
	"github.com/tether-dev/tether/tunnel"
	"github.com/tether-dev/tether/wire"
)

// Ls is `tether ls HOST [--json] [--show-token] [--prune]`: the remote's `ls --json`
// (after its --prune, which says on stderr what it removed), shown as
// the session table (wire.WriteSessions: no tokens unless ShowToken, the app by its
// name, and the local URL this laptop remembers for each session), or passed on as
// JSON with local_port added where this laptop remembers one. The remote's notes
// (sessions of other hosts, a scheduler that did not answer) go to stderr in the
// laptop's words (words.go); its failure too.
func Ls(ctx context.Context, o LsOptions) error {
	s, err := open(ctx, o.Options, oneCommand)
	if err != nil {
		return err
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	args := []string{"ls", "--json", "--json-notes"}
	if o.Prune {
		args = append(args, "--prune")
	}
	var raw []byte
	var failed *wire.Failure
	res, err := s.ensure(ctx, args, func(br *bufio.Reader) error {
		var err error
		raw, err = io.ReadAll(io.LimitReader(br, maxListing+1))
		return err
	}, s.relayNotes(&failed))
	switch {
	case err != nil:
		return err
	case res.err != nil:
		return &Error{Msg: fmt.Sprintf("lost %s: %s", s.host, termsafe.Clip(termsafe.OneLine(tunnel.Message(res.err)), 200)), Hint: "try again", Err: res.err}
	case res.status != 0:
		if failed == nil {
			failed = failureIn(raw) // ls --json says it on stdout too
		}
		return s.remoteStatus(res.status, failed)
	case len(raw) > maxListing:
		return errorf("try `"+s.cmdline("ls")+"`", "the session list from %s is too long", s.host)
	}
	ports := rememberedPorts(s.host)
	stdout := termsafe.Writer(s.o.Stdout)
	if o.JSON {
		b, err := withLocalPorts(raw, ports)
		if err != nil {
			return errorf("try `"+s.cmdline("ls")+"`", "%s sent a bad session list: %s", s.host, termsafe.Clip(termsafe.OneLine(err.Error()), 200))
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	recs, err := decodeListing(raw)
	if err != nil {
		return errorf("try `"+s.cmdline("ls")+"`", "%s sent a bad session list: %s", s.host, termsafe.Clip(termsafe.OneLine(err.Error()), 200))
	}
	if len(recs) == 0 {
		_, err := fmt.Fprintf(stdout, "no tether sessions on %s\n", s.host)
		return err
	}
	if err := wire.WriteSessions(stdout, recs, wire.TableOptions{URLTitle: "LOCAL URL", ShowToken: o.ShowToken,
		URL: func(r wire.Record) string { return localURL(ports, r) }}); err != nil {
		return err
	}
	over := 0
	for _, r := range recs {
		if r.State == wire.StateDead || r.State == wire.StateAppExited || r.State == wire.StateEnded {
			over++
		}
	}
	if over > 0 {
		// Ended batch sessions keep their records and logs until pruned: say how.
		fmt.Fprintf(s.o.Stderr, "tether: %d of these sessions are over; `%s` removes them (and their logs)\n", over, s.cmdline("ls", "--prune"))
	}
	return nil
}

// localURL is the URL of session r on this laptop, on the port remembered for it
// (empty when none is).
func localURL(ports map[string]int, r wire.Record) string {
	p, ok := ports[r.ID]
	if !ok {
		return ""
	}
	base := r.BaseURL
	if base == "" {
		base = "/"
	}
	return "http://127.0.0.1:" + strconv.Itoa(p) + base
}

// withLocalPorts is the remote's `ls --json` array (after any lines a login shell
// printed first), each record as the remote sent it plus local_port where this laptop
// remembers one.
func withLocalPorts(raw []byte, ports map[string]int) ([]byte, error) {
	i := strings.IndexByte(string(raw), '[')
	if i < 0 {
		return nil, fmt.Errorf("the session list is not JSON")
	}
	var items []map[string]json.RawMessage
	if err := json.NewDecoder(strings.NewReader(string(raw[i:]))).Decode(&items); err != nil {
		return nil, fmt.Errorf("the session list is not JSON: %v", err)
	}
	if items == nil {
		items = []map[string]json.RawMessage{}
	}
	for _, it := range items {
		var id string
		if json.Unmarshal(it["id"], &id) == nil && wire.ValidID(id) {
			if p, ok := ports[id]; ok {
				it["local_port"] = json.RawMessage(strconv.Itoa(p))
			}
		}
	}
	return json.Marshal(items)
}
