package host

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os/user"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/tether-dev/tether/relay"
	"github.com/tether-dev/tether/tunnel"
)

// TokenEnv is where the host token comes from (never argv: ps shows argv to every
// user of the machine).
const TokenEnv = "TETHER_PORTAL_TOKEN"

// Options are `tether host`'s flags and environment.
type Options struct {
	RelayURL           string
	Token              string // the host token, from TokenEnv
	HostKeyFile        string // the persistent host key (made on first run)
	AuthorizedKeysFile string // "": a client token alone logs in
	RelayCAFile        string // --relay-ca: trust the relay's certificate only if it chains to this PEM file
	Stderr             io.Writer

	// listen, when set, replaces relay.Listen (tests).
	listen func(ctx context.Context) (net.Listener, error)
}

// offer is a checked configuration: the server, and what the banner says of it.
type offer struct {
	srv      *tunnel.Server
	claims   *relay.Claims
	hostKey  ssh.Signer
	madeKey  bool
	keys     int
	username string
	logf     func(format string, args ...any)
}

// Run offers this machine through the relay until ctx ends (nil then) or the relay
// refuses the host for good (its token expired or revoked).
func Run(ctx context.Context, o Options) error {
	if runtime.GOOS == "windows" {
		return errors.New("tether host runs on Linux and macOS; on Windows, use OpenSSH's sshd")
	}
	of, err := prepare(o)
	if err != nil {
		return err
	}
	ro := &relay.Options{Logf: of.logf}
	if o.RelayCAFile != "" {
		if ro.TLS, err = relay.TrustFile(o.RelayCAFile); err != nil {
			return err
		}
	}
	listen := o.listen
	if listen == nil {
		listen = func(ctx context.Context) (net.Listener, error) {
			return relay.Listen(ctx, o.RelayURL, o.Token, ro)
		}
	}
	ln, err := listen(ctx)
	var refused *relay.RefusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("the relay %s refused this host: %s", o.RelayURL, refused.Msg)
	}
	if err != nil {
		return errors.New(tokenWords(err)) // relay's words: the URL and how to fix it
	}
	of.banner(o)
	served := make(chan error, 1)
	go func() { served <- of.srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		of.srv.Close()
		<-served
		of.logf("stopped")
		return nil
	case err := <-served:
		of.srv.Close()
		if errors.Is(err, tunnel.ErrServerClosed) {
			return nil
		}
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // tunnel's "server accept:" says nothing to the user
		}
		return fmt.Errorf("the relay %s no longer takes this host: %s", o.RelayURL, tokenWords(err))
	}
}

// prepare checks the token, the keys and the user, and builds the server.
func prepare(o Options) (*offer, error) {
	if o.Token == "" {
		return nil, fmt.Errorf("%s is not set; set it to this machine's host token (made by whoever runs the relay: tether relay token --role host --portal ID NAME)", TokenEnv)
	}
	rk, claims, err := relay.SelfKey(o.Token)
	if err != nil {
		return nil, fmt.Errorf("the host token in %s is not valid: %s", TokenEnv, tokenWords(err))
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("cannot tell which user runs tether host: %v", err)
	}
	hostKey, made, err := loadHostKey(o.HostKeyFile)
	if err != nil {
		return nil, err
	}
	var keys []ssh.PublicKey
	if o.AuthorizedKeysFile != "" {
		if keys, err = loadAuthorizedKeys(o.AuthorizedKeysFile); err != nil {
			return nil, err
		}
	}
	of := &offer{claims: claims, hostKey: hostKey, madeKey: made, keys: len(keys), username: u.Username}
	var logMu sync.Mutex
	of.logf = func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(o.Stderr, "%s tether host: %s\n", time.Now().Format("2006-01-02 15:04:05"), fmt.Sprintf(format, args...))
	}
	of.srv = &tunnel.Server{
		HostKey:        hostKey,
		AuthorizedKeys: keys,
		CheckPassword:  clientTokenCheck(rk, claims.Portal, of.logf),
		OnExpire: func(_ net.Addr, user string, until time.Time) {
			of.logf("client token expired at %s: closed its connection (SSH user %q)", until.Local().Format("2006-01-02 15:04:05 MST"), user)
		},
		LoginShell: true,
		AuthLog: func(remote net.Addr, user, method string, err error) {
			var partial *ssh.PartialSuccessError
			switch {
			case err == nil:
				of.logf("login as %s (SSH user %q, %s)", of.username, user, method)
			case errors.As(err, &partial):
			default:
				of.logf("login refused (SSH user %q, %s): %s", user, method, tokenWords(err))
			}
		},
	}
	return of, nil
}

// clientTokenCheck is the password check: a client token for portal, signed by the
// relay key the host's own token names (so a host token, another portal's token or
// one the relay's key did not sign never logs in). The check is a signature
// verification, not a comparison of secrets. The token's expiry ends the connection
// (tunnel closes it then), as VS Code's tunnels and Matic's portals end access when
// a token expires; past it, the token is refused here without Verify's leeway for
// clock skew, so a client whose connection was just closed cannot log in again with
// the same token.
func clientTokenCheck(rk ed25519.PublicKey, portal string, logf func(string, ...any)) func(string, []byte) (time.Time, error) {
	return func(_ string, password []byte) (time.Time, error) {
		c, err := relay.Verify(rk, string(password), relay.RoleClient, portal)
		if err != nil {
			return time.Time{}, err
		}
		if !time.Now().Before(c.Expires) {
			return time.Time{}, fmt.Errorf("client token %q expired at %s", c.Name, c.Expires.Local().Format("2006-01-02 15:04:05 MST"))
		}
		logf("client token %q accepted (expires %s)", c.Name, c.Expires.Local().Format("2006-01-02 15:04:05 MST"))
		return c.Expires, nil
	}
}

// tokenWords is a token error as the user reads it: relay's words without the
// package prefix (they never contain the token).
func tokenWords(err error) string {
	return strings.TrimPrefix(err.Error(), "relay: ")
}

// banner says what is offered, to whom, and as whom.
func (of *offer) banner(o Options) {
	w := o.Stderr
	fp := ssh.FingerprintSHA256(of.hostKey.PublicKey())
	if of.madeKey {
		fmt.Fprintf(w, "tether host: made a new host key %s (launchers pin it the first time they connect; keep the file, or they will refuse a new one)\n", o.HostKeyFile)
	}
	fmt.Fprintf(w, "tether host: offering this machine as portal %s through the relay %s\n", of.claims.Portal, o.RelayURL)
	fmt.Fprintf(w, "  host key:        %s (%s)\n", fp, o.HostKeyFile)
	who := "holders of a client token for portal " + of.claims.Portal
	if of.keys > 0 {
		who += fmt.Sprintf(" who also hold a key in %s (%s)", o.AuthorizedKeysFile, plural(of.keys, "key"))
	}
	fmt.Fprintf(w, "  who may connect: %s\n", who)
	fmt.Fprintf(w, "  logs in as:      %s, whatever SSH user name a client gives (commands run in %s's login shell)\n", of.username, of.username)
	fmt.Fprintf(w, "  host token:      %q, expires %s\n", of.claims.Name, of.claims.Expires.Local().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "  from a laptop:   TETHER_PORTAL_TOKEN=<client token> tether launch --relay %s portal:%s\n", o.RelayURL, of.claims.Portal)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
