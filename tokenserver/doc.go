// Package tokenserver is the guarded HTTP/WebSocket server that stands in front of an
// app: it owns tokens and every way a token may arrive (header, query, cookie, login
// form, WebSocket subprotocol), cookies, the login page, Host and Origin checks, rate
// limiting, TLS, log redaction, and the reverse proxy to the app over TCP or a Unix
// socket. It imports none of tether's other packages.
//
// Every request goes through one gate (Server.ServeHTTP), in this order: the Host
// must be a loopback name or an allowed one (DNS rebinding); a request the cookie
// alone would authenticate must pass the cross-origin checks (an exact Origin on
// WebSocket handshakes, http.CrossOriginProtection plus an exact Origin on unsafe
// methods); every credential presented must be valid and at least one must be; then
// our credentials are stripped and the request reaches Options.App.
//
// Our own endpoints live under {BaseURL}_tether/ and are never proxied:
//
//	GET  {BaseURL}_tether/login              the login form (200)
//	POST {BaseURL}_tether/login              token=…&next=… → cookie, 303 to next
//	GET  {BaseURL}_tether/challenge?nonce=N  ChallengeResponse(token, N), no auth;
//	                                         with Tether-Owner-Proof: OwnerProof(token,
//	                                         N), Tether-Owner: accepted (or refused)
//	GET  {BaseURL}_tether/forward/PORT       with Options.Ports, a header token and
//	                                         Upgrade: tether-forward: a raw stream to PORT
//
//	GET  {BaseURL}_tether/logout             a sign-out button
//	POST {BaseURL}_tether/logout             ends the session (cross-origin checked)
//	GET  {BaseURL}_tether/signin?next=…      with Options.SignIn: off to the provider
//
// Team mode (Options.Team, team.go): besides the owner's token, access keys and people
// signed in by Options.SignIn (OIDC) come in; each app of Options.Apps lives under
// {BaseURL}NAME/ and opens to those the policy admits (403 otherwise), with the person
// in X-Tether-User; {BaseURL} is a start page; only the owner reaches other ports.
//
// With Options.Ports, authenticated requests under {BaseURL}proxy/PORT/,
// {BaseURL}proxy/absolute/PORT/ and {BaseURL}absproxy/PORT/ go to another loopback port
// of the machine instead of the app (ports.go): a port number only, never a host, and
// only where Ports allows.
//
// A page load with ?token= or a one-time ?code= (MintLoginCode) gets the session
// cookie and is sent on to the same URL without it.
//
// On a TCP listener, connections that have not presented a valid credential are
// limited: one answer each, a short time to sign in, a cap per source address and in
// all (connguard.go). The proxy keeps the app's own secrets out of everything the app
// sends back: headers, bodies of any type and coding, ranges, WebSocket messages
// (scrub.go, scrubws.go).
package tokenserver
