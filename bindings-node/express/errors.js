'use strict'
// camkit error codes → HTTP statuses, and the one JSON error shape: {error, code}.
//
// Every error response names what went wrong and what to do (camkit's messages do), carries
// a stable `code`, and never contains a password: camkit's messages are built from redacted
// pieces, and request bodies are never echoed.

/** HTTP status for each camkit `err.code`. */
const STATUS_BY_CODE = Object.freeze({
  INVALID_INPUT: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  INTERNAL: 500,
  UNREACHABLE: 502,
  PROTOCOL: 502,
  UNSUPPORTED_CODEC: 502,
  DECODE: 502,
  NO_FRAME: 503,
  CLOSED: 503,
  TIMEOUT: 504,
  // Moondream (/api/moondream): the service's 429 after camkit's retries, its own failure,
  // and no key or URL configured.
  RATE_LIMITED: 429,
  SERVICE_ERROR: 502,
  MOONDREAM_NOT_CONFIGURED: 503,
  // Access control (src/security.js, src/allowlist.js): no or a wrong API token, a page
  // from a foreign origin, a camera outside CAMKIT_ALLOWED_CAMERA_NETS; a body over the limit.
  UNAUTHENTICATED: 401,
  ORIGIN_NOT_ALLOWED: 403,
  HOST_NOT_ALLOWED: 403,
  PAYLOAD_TOO_LARGE: 413
})

/** An error raised by this server (bad input, unknown route) with a camkit-style code. */
class HttpError extends Error {
  constructor (code, message) {
    super(message)
    this.code = code
  }
}

/** A 400 naming the offending field: `field: problem`. */
function invalid (field, problem) {
  return new HttpError('INVALID_INPUT', `${field}: ${problem}`)
}

function statusOf (err) {
  return STATUS_BY_CODE[err && err.code] || 500
}

/** The request body limit (express.json's `limit`), in bytes. */
const BODY_LIMIT = 64 * 1024

/**
 * Express error middleware: camkit and HttpError errors as {error, code}; body-parser
 * failures as 400/413/415 without echoing the body (Node's JSON.parse messages quote it,
 * and it may hold a password); a malformed %-escape in the path as 400; anything else as
 * a 500 INTERNAL whose details go to the log only.
 */
function errorMiddleware (log) {
  // eslint-disable-next-line no-unused-vars
  return (err, req, res, next) => {
    const { status, body } = errorResponse(err, `${req.method} ${req.path}`, log)
    if (res.headersSent) return res.end()
    res.status(status).json(body)
  }
}

/**
 * The answer to an error: {status, body}. `where` (method and path) goes to the log with
 * the details of an internal error.
 */
function errorResponse (err, where, log) {
  let body
  let status
  if (err && err.type === 'entity.parse.failed') {
    body = { error: 'body: not valid JSON', code: 'INVALID_INPUT' }
  } else if (err && err.type === 'entity.too.large') {
    status = 413
    body = { error: `body: too large (at most ${(err.limit || BODY_LIMIT) / 1024} kB)`, code: 'PAYLOAD_TOO_LARGE' }
  } else if (err && typeof err.type === 'string' && err.status >= 400 && err.status < 500) {
    // body-parser's other refusals (an unsupported charset or encoding, an aborted
    // request …): their messages name the problem, never the body.
    status = err.status
    body = { error: `body: ${err.message}`, code: 'INVALID_INPUT' }
  } else if (err instanceof URIError && err.status === 400) {
    body = { error: 'path: malformed %-escape in the URL', code: 'INVALID_INPUT' }
  } else if (err && typeof err.code === 'string' && STATUS_BY_CODE[err.code]) {
    body = { error: err.message, code: err.code }
  } else {
    log(`internal error on ${where}: ${err && err.stack ? err.stack : err}`)
    body = { error: 'internal error; the server log has the details', code: 'INTERNAL' }
  }
  return { status: status || statusOf(body), body }
}

/** An async route handler whose rejection goes to the error middleware. */
const route = (fn) => (req, res, next) => Promise.resolve(fn(req, res, next)).catch(next)

module.exports = { STATUS_BY_CODE, BODY_LIMIT, HttpError, invalid, statusOf, errorResponse, errorMiddleware, route }
