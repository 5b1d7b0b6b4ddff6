// Package tokenserver is the guarded HTTP/WebSocket server that stands in front of an
// app: it owns tokens and every way a token may arrive (header, query, cookie, login
// form, WebSocket subprotocol), cookies, the login page, Host and Origin checks, rate
// limiting, TLS, log redaction, and the reverse proxy to the app over TCP or a Unix
// socket. It imports none of tether's other packages.
package tokenserver
