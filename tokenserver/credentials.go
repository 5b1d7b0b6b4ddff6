package tokenserver

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// The WebSocket subprotocol scheme of Jupyter's JEP 119: a client that cannot set
// headers (a browser's WebSocket) offers
//
//	Sec-WebSocket-Protocol: v1.token.websocket.jupyter.org, v1.token.websocket.jupyter.org.<url-encoded token>
//
// The server URL-decodes the token and treats it like Authorization: Bearer. The bare
// protocol is the one named in the response when the app chose none.
const (
	jupyterProtocol      = "v1.token.websocket.jupyter.org"
	jupyterProtocolEntry = jupyterProtocol + "."
)

// maxPresentedLen bounds a presented token before we hash it.
const maxPresentedLen = 4096

var (
	errTwoAuthorization = errors.New("two Authorization headers")
	errBadAuthorization = errors.New("malformed Authorization header")
	errNotOurScheme     = errors.New("Authorization scheme is not token or Bearer")
)

// parseAuthorization reads the token from the Authorization header values:
// "token T" or "Bearer T", the scheme in any letter case, one space, then the token and
// nothing else. More than one header is refused. errNotOurScheme means the header is
// someone else's (Basic, say): it authenticates nothing here and is left alone.
//
// With keys (team mode), the value after the space may also be an access key: any
// string of printable characters, spaces and non-ASCII included (a passphrase), but no
// control character. Such a value can never equal the token (a token is URL-safe
// characters only), so the token's path is unchanged: it is one more wrong token
// unless the team's policy knows it as a key.
func parseAuthorization(values []string, keys bool) (tok string, present bool, err error) {
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, errTwoAuthorization
	}
	v := values[0]
	if v == "" {
		return "", true, errBadAuthorization
	}
	scheme, rest := v, ""
	sep := strings.IndexAny(v, " \t")
	if sep >= 0 {
		scheme, rest = v[:sep], v[sep+1:]
	}
	if !strings.EqualFold(scheme, "token") && !strings.EqualFold(scheme, "bearer") {
		return "", false, errNotOurScheme
	}
	bad := isSpaceOrCtl
	if keys {
		bad = isCtl
	}
	if sep < 0 || v[sep] != ' ' || rest == "" || len(rest) > maxPresentedLen || strings.ContainsFunc(rest, bad) {
		return "", true, errBadAuthorization
	}
	return rest, true, nil
}

func isSpaceOrCtl(r rune) bool {
	return r <= ' ' || r == 0x7f
}

func isCtl(r rune) bool {
	return r < ' ' || r == 0x7f
}

// subprotocols is what a request's Sec-WebSocket-Protocol headers say about us.
type subprotocols struct {
	// present: the request offered the bare protocol or a token entry.
	present bool
	// tok is the URL-decoded token when exactly one token entry came with the bare
	// protocol; err says what was wrong otherwise.
	tok string
	err error
	// others are the entries that are not ours, in order, for the app.
	others []string
}

var (
	errTwoProtocolTokens = errors.New("more than one token subprotocol")
	errBareProtocolOnly  = errors.New("token subprotocol without its token")
	errTokenOnlyProtocol = errors.New("token subprotocol without the bare protocol")
	errProtocolEscape    = errors.New("malformed escape in token subprotocol")
	errEmptyProtocolTok  = errors.New("empty token in subprotocol")
)

// parseSubprotocols reads every Sec-WebSocket-Protocol line (a list may be split over
// several lines) per JEP 119: exactly one bare protocol and exactly one token entry,
// or neither.
func parseSubprotocols(values []string) subprotocols {
	var sp subprotocols
	bare, entries := 0, 0
	var raw string
	for _, line := range values {
		for _, e := range strings.Split(line, ",") {
			e = strings.Trim(e, " \t")
			switch {
			case e == "":
			case strings.EqualFold(e, jupyterProtocol):
				bare++
			case hasPrefixFold(e, jupyterProtocolEntry):
				entries++
				raw = e[len(jupyterProtocolEntry):]
			default:
				sp.others = append(sp.others, e)
			}
		}
	}
	sp.present = bare > 0 || entries > 0
	switch {
	case !sp.present:
		return sp
	case entries > 1:
		sp.err = errTwoProtocolTokens
	case entries == 0:
		sp.err = errBareProtocolOnly
	case bare != 1:
		sp.err = errTokenOnlyProtocol
	default:
		tok, err := url.PathUnescape(raw)
		switch {
		case err != nil:
			sp.err = errProtocolEscape
		case tok == "" || len(tok) > maxPresentedLen:
			sp.err = errEmptyProtocolTok
		default:
			sp.tok = tok
		}
	}
	return sp
}

// queryParam is one name=value pair of a raw query, kept raw so the pairs we do not
// remove reach the app exactly as the client wrote them.
type queryParam struct {
	raw   string
	key   string // unescaped; "" if the key does not unescape
	value string // unescaped
}

func splitQuery(rawQuery string) []queryParam {
	if rawQuery == "" {
		return nil
	}
	var ps []queryParam
	for _, raw := range strings.Split(rawQuery, "&") {
		k, v, _ := strings.Cut(raw, "=")
		p := queryParam{raw: raw}
		if key, err := url.QueryUnescape(k); err == nil {
			p.key = key
			if val, err := url.QueryUnescape(v); err == nil {
				p.value = val
			} else {
				// A value we cannot decode cannot be a valid token; keep it so that a
				// "token" key is still seen (and stripped) as ours.
				p.value = "\x00"
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// joinQuery rebuilds a raw query without the pairs drop selects.
func joinQuery(ps []queryParam, drop func(queryParam) bool) string {
	var b strings.Builder
	for _, p := range ps {
		if drop(p) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.raw)
	}
	return b.String()
}

// ourQueryParam reports whether a query pair is one of our credentials: any `token`,
// and a `code` that has our login-code prefix (other `code` values are the app's).
func ourQueryParam(p queryParam) bool {
	return isTokenKey(p.key) || isCodeKey(p.key) && hasPrefixFold(p.value, loginCodePrefix)
}

// isTokenKey and isCodeKey match our parameter names in any letter case: an app that
// reads its query case-insensitively must not be handed our credential either.
func isTokenKey(k string) bool { return strings.EqualFold(k, "token") }
func isCodeKey(k string) bool  { return strings.EqualFold(k, "code") }

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// hasOurQuery reports quickly whether a raw query may hold one of our parameters.
func hasOurQuery(rawQuery string) bool {
	q := strings.ToLower(rawQuery)
	return strings.Contains(q, "token") || strings.Contains(q, "code") || strings.Contains(q, "%")
}

// stripReferer removes our parameters from a Referer's query, so a page loaded with a
// token in its URL does not hand it to the app in its next request's Referer.
func stripReferer(h http.Header) {
	ref := h.Get("Referer")
	if ref == "" {
		return
	}
	u, err := url.Parse(ref)
	if err != nil {
		h.Del("Referer")
		return
	}
	if !hasOurQuery(u.RawQuery) {
		return
	}
	ps := splitQuery(u.RawQuery)
	clean := joinQuery(ps, ourQueryParam)
	if clean != u.RawQuery {
		u.RawQuery = clean
		h.Set("Referer", u.String())
	}
}
