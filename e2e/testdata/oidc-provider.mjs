// A real OpenID provider for the e2e tests: node-oidc-provider (npm oidc-provider,
// OpenID Certified) on 127.0.0.1, with one confidential client, a few accounts and
// its own login and consent pages (username + password; a browser or a Go client with
// a cookie jar fills them). Started by e2e.StartOIDCProvider; everything comes from the
// environment (secrets never in argv):
//
//   OIDC_PROVIDER_DIR  the npm prefix oidc-provider is installed in (.ci/run does it)
//   OIDC_CLIENT        JSON {"id", "secret", "redirect_uri"}
//   OIDC_ACCOUNTS      JSON {"LOGIN": {"password", "email", "email_verified"}, ...}
//   OIDC_CONFORM       "1": e-mail claims only from UserInfo, not in the ID token
//                      (oidc-provider's conformIdTokenClaims); otherwise in both
//
// It listens on 127.0.0.1:0 and prints one line, {"issuer": "http://127.0.0.1:PORT"},
// once it serves; the issuer is only known then. It exits on SIGTERM.
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`oidc-provider.mjs: ${name} is not set`);
    process.exit(2);
  }
  return v;
};
const { default: Provider } = await import(
  pathToFileURL(join(env('OIDC_PROVIDER_DIR'), 'node_modules', 'oidc-provider', 'lib', 'index.js')).href);
const client = JSON.parse(env('OIDC_CLIENT'));
const accounts = JSON.parse(env('OIDC_ACCOUNTS'));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
const same = (a, b) => {
  const x = Buffer.from(String(a)); const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
};

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: client.id,
      client_secret: client.secret,
      redirect_uris: [client.redirect_uri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    pkce: { required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    conformIdTokenClaims: process.env.OIDC_CONFORM === '1',
    async findAccount(ctx, id) {
      const a = accounts[id];
      if (!a) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, email: a.email, email_verified: a.email_verified }) };
    },
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  provider.on('server_error', (ctx, err) => console.error('oidc-provider server_error:', err));
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    const m = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(new URL(req.url, issuer).pathname);
    if (!m) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      const uid = escape(details.uid);
      const prompt = details.prompt.name;
      if (req.method === 'GET' && !m[2]) {
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        res.setHeader('Cache-Control', 'no-store');
        if (prompt === 'login') {
          res.end(page('Sign in', `<form method="post" action="/interaction/${uid}/login">
<label>Username <input id="username" name="username" autofocus></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="signin" type="submit">Sign in</button></form>`));
        } else {
          res.end(page('Allow access', `<p>${escape(details.params.client_id)} asks for your e-mail address.</p>
<form method="post" action="/interaction/${uid}/confirm"><button id="allow" type="submit">Allow</button></form>
<form method="post" action="/interaction/${uid}/abort"><button id="deny" type="submit">Deny</button></form>`));
        }
        return;
      }
      if (req.method !== 'POST') {
        res.statusCode = 405;
        return res.end();
      }
      const form = await readForm(req);
      if (m[2] === 'login' && prompt === 'login') {
        const login = form.get('username') ?? '';
        const a = Object.hasOwn(accounts, login) ? accounts[login] : undefined;
        if (!a || !same(form.get('password') ?? '', a.password)) {
          res.statusCode = 401;
          res.setHeader('Content-Type', 'text/html; charset=utf-8');
          return res.end(page('Sign in', `<p id="error">Wrong username or password.</p>
<form method="post" action="/interaction/${uid}/login">
<label>Username <input id="username" name="username"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="signin" type="submit">Sign in</button></form>`));
        }
        return await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
      }
      if (m[2] === 'confirm' && prompt === 'consent') {
        const { details: missing } = details.prompt;
        const grant = details.grantId ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
        if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
        if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
        if (missing.missingResourceScopes) {
          for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
            grant.addResourceScope(indicator, scopes.join(' '));
          }
        }
        const grantId = await grant.save();
        return await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      }
      if (m[2] === 'abort') {
        return await provider.interactionFinished(req, res,
          { error: 'access_denied', error_description: 'the person denied access' }, { mergeWithLastSubmission: false });
      }
      res.statusCode = 400;
      res.end(page('Error', `<p>unexpected ${escape(m[2])} for prompt ${escape(prompt)}</p>`));
    } catch (err) {
      console.error('oidc-provider.mjs interaction:', err.message);
      if (!res.headersSent) {
        res.statusCode = 400;
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
      }
      res.end(page('Error', `<p id="error">${escape(err.message)}</p>`));
    }
  });
  console.log(JSON.stringify({ issuer }));
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
