'use strict'
// Who may use the API: an optional bearer token, the browser origins allowed to call it
// cross-origin, and a few response headers. (Which cameras the API may reach is
// src/allowlist.js.)
//
//   CAMKIT_API_TOKEN     when set, /api/*, /metrics and the WebSocket /ws require
//                        `Authorization: Bearer <token>` (the WebSocket also takes
//                        `?token=<token>`, since browsers cannot set its headers).
//                        /health and the viewer's static files stay public: they hold no
//                        camera data. Anything else: 401 {"code":"UNAUTHENTICATED"}.
//   CAMKIT_CORS_ORIGINS  comma-separated origins (`https://app.example.com`) allowed to
//                        call the API from a browser page they serve, or `*` for any.
//                        Default: none, i.e. same-origin only.
//
// Independently of the token, a request a browser sends from a foreign page (its Origin is
// neither this server nor a configured origin) cannot change anything: POST/PUT/PATCH/DELETE
// and WebSocket upgrades from such origins get 403 {"code":"ORIGIN_NOT_ALLOWED"}. CORS
// alone would only stop the page from *reading* the answer, not the request from acting
// (CSRF), and WebSockets are not covered by CORS at all.
const crypto = require('node:crypto')

const TOKEN_MIN_LENGTH = 16

/** Security settings from the environment: {apiToken, corsOrigins}. Throws naming the variable. */
function securityFromEnv (env = process.env) {
  const apiToken = env.CAMKIT_API_TOKEN ? env.CAMKIT_API_TOKEN : null
  if (apiToken !== null && /[\s\u0000-\u001f\u007f]/.test(apiToken)) {
    throw new Error('CAMKIT_API_TOKEN: must not contain spaces or control characters')
  }
  return { apiToken, corsOrigins: parseOrigins(env.CAMKIT_CORS_ORIGINS) }
}

/** `CAMKIT_CORS_ORIGINS` → a list of origins (`['*']` for any). Throws on a malformed entry. */
function parseOrigins (text) {
  if (text === undefined || text.trim() === '') return []
  const origins = []
  for (const raw of text.split(',')) {
    const entry = raw.trim()
    if (entry === '') continue
    if (entry === '*') {
      origins.push('*')
      continue
    }
    let url
    try {
      url = new URL(entry)
    } catch {
      throw new Error(`CAMKIT_CORS_ORIGINS: ${JSON.stringify(entry)} is not an origin (e.g. https://app.example.com)`)
    }
    if (!['http:', 'https:'].includes(url.protocol) || url.origin !== entry.replace(/\/$/, '')) {
      throw new Error(`CAMKIT_CORS_ORIGINS: ${JSON.stringify(entry)} is not an origin: scheme://host[:port], nothing after it`)
    }
    origins.push(url.origin)
  }
  return origins
}

/** Whether `given` is the token, compared in constant time (digests: equal lengths always). */
function tokenMatches (expected, given) {
  if (typeof given !== 'string' || given === '') return false
  const a = crypto.createHash('sha256').update(expected).digest()
  const b = crypto.createHash('sha256').update(given).digest()
  return crypto.timingSafeEqual(a, b)
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
function bearerToken (req) {
  const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization || '')
  return m ? m[1] : null
}

const UNAUTHENTICATED = {
  error: 'authorization: this server requires its API token: send the header "Authorization: Bearer <token>" ' +
    '(WebSocket: the header or ?token=<token>; the viewer page: open it as /?token=<token>)',
  code: 'UNAUTHENTICATED'
}

/** Express middleware: 401 unless the request carries the token (a no-op without one). */
function requireToken (apiToken) {
  return (req, res, next) => {
    if (!apiToken || req.method === 'OPTIONS' || tokenMatches(apiToken, bearerToken(req))) return next()
    res.set('WWW-Authenticate', 'Bearer realm="camkit"')
    res.status(401).json(UNAUTHENTICATED)
  }
}

/** Whether the request's Origin (if any) is this server itself or an allowed origin. */
function originAllowed (req, corsOrigins) {
  const origin = req.headers.origin
  if (origin === undefined) return true // not a browser page's request (curl, a backend)
  if (corsOrigins.includes('*') || corsOrigins.includes(origin)) return true
  // Same origin: the page was served by this server, under the Host the browser used.
  try {
    return new URL(origin).host === req.headers.host
  } catch {
    return false // "null" (sandboxed frames, file://) and garbage
  }
}

const ORIGIN_NOT_ALLOWED = {
  error: 'origin: requests from this page\'s origin are not allowed; add it to CAMKIT_CORS_ORIGINS on the server',
  code: 'ORIGIN_NOT_ALLOWED'
}

const SAFE_METHODS = new Set(['GET', 'HEAD'])

/**
 * Express middleware: CORS for the configured origins (preflights answered here), and
 * 403 for requests that would act on behalf of a page from a foreign origin.
 */
function cors (corsOrigins) {
  return (req, res, next) => {
    const origin = req.headers.origin
    const allowed = originAllowed(req, corsOrigins)
    if (origin !== undefined && allowed) {
      res.set('Access-Control-Allow-Origin', corsOrigins.includes('*') ? '*' : origin)
      res.vary('Origin')
      res.set('Access-Control-Expose-Headers', 'X-Frame-Seq, X-Frame-Width, X-Frame-Height, X-Frame-Captured-At')
    }
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      if (!allowed) return res.status(403).json(ORIGIN_NOT_ALLOWED)
      res.set({
        'Access-Control-Allow-Methods': 'GET, POST, PUT, PATCH, DELETE',
        'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept',
        'Access-Control-Max-Age': '600'
      })
      return res.status(204).end()
    }
    if (!allowed && !SAFE_METHODS.has(req.method)) return res.status(403).json(ORIGIN_NOT_ALLOWED)
    next()
  }
}

/** The headers every response gets, as [name, value] pairs. */
const SECURITY_HEADERS = Object.freeze([
  ['X-Content-Type-Options', 'nosniff'],
  // The viewer may be opened as /?token=…: never send that URL to another site.
  ['Referrer-Policy', 'no-referrer'],
  ['X-Frame-Options', 'SAMEORIGIN']
])

/** Express middleware: headers every response gets. */
function securityHeaders () {
  return (req, res, next) => {
    for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value)
    next()
  }
}

/**
 * The WebSocket upgrade's verdict: null to accept, or {status, body} to refuse. The token
 * may come as `Authorization: Bearer` or as `?token=`.
 */
function checkUpgrade (req, { apiToken, corsOrigins }) {
  if (!originAllowed(req, corsOrigins)) return { status: 403, body: ORIGIN_NOT_ALLOWED }
  if (apiToken) {
    let query = null
    try {
      query = new URL(req.url, 'http://x').searchParams.get('token')
    } catch {}
    if (!tokenMatches(apiToken, bearerToken(req)) && !tokenMatches(apiToken, query)) {
      return { status: 401, body: UNAUTHENTICATED }
    }
  }
  return null
}

/** Writes a JSON HTTP response on a raw socket (an upgrade that is refused) and closes it. */
function refuseUpgrade (socket, status, body) {
  const json = JSON.stringify(body)
  const reason = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' }[status] || 'Error'
  const extra = status === 401 ? 'WWW-Authenticate: Bearer realm="camkit"\r\n' : ''
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(json)}\r\n${extra}Connection: close\r\n\r\n${json}`)
}

/** One line for the start-up log: what is required, never the token itself. */
function describeSecurity ({ apiToken, corsOrigins }) {
  const parts = [apiToken ? 'API token required for /api, /metrics and /ws' : 'no API token (anyone who reaches this port may use the API)']
  if (apiToken && apiToken.length < TOKEN_MIN_LENGTH) parts.push(`warning: CAMKIT_API_TOKEN is shorter than ${TOKEN_MIN_LENGTH} characters`)
  parts.push(corsOrigins.length ? `CORS origins: ${corsOrigins.join(', ')}` : 'CORS: same-origin only')
  return parts.join('; ')
}

module.exports = {
  securityFromEnv,
  parseOrigins,
  tokenMatches,
  bearerToken,
  requireToken,
  originAllowed,
  cors,
  securityHeaders,
  SECURITY_HEADERS,
  checkUpgrade,
  refuseUpgrade,
  describeSecurity
}
