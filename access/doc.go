// Package access owns a team server's access policy (tether serve --access FILE): who
// may come in (access keys, stored as argon2id hashes so the file may be public; people
// signed in with OIDC, by their verified e-mail matched against group patterns) and
// what each may use (apps, file paths). It reads and checks the file, verifies keys,
// and answers the gate's questions (tokenserver.Team) for the policy in force, which
// Live replaces on reload. It imports nothing of tether's but the leaf internal/didyoumean, and the
// gate does not import it: remote wires them together.
package access
