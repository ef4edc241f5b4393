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
  TIMEOUT: 504
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

/**
 * Express error middleware: camkit and HttpError errors as {error, code}; body-parser
 * failures as 400/413 without echoing the body (Node's JSON.parse messages quote it, and it
 * may hold a password); anything else as a 500 INTERNAL whose details go to the log only.
 */
function errorMiddleware (log) {
  // eslint-disable-next-line no-unused-vars
  return (err, req, res, next) => {
    let body
    if (err && err.type === 'entity.parse.failed') {
      body = { error: 'body: not valid JSON', code: 'INVALID_INPUT' }
    } else if (err && err.type === 'entity.too.large') {
      return res.status(413).json({ error: 'body: too large (at most 64 kB)', code: 'INVALID_INPUT' })
    } else if (err && typeof err.code === 'string' && STATUS_BY_CODE[err.code]) {
      body = { error: err.message, code: err.code }
    } else {
      log(`internal error on ${req.method} ${req.path}: ${err && err.stack ? err.stack : err}`)
      body = { error: 'internal error; the server log has the details', code: 'INTERNAL' }
    }
    if (res.headersSent) return res.end()
    res.status(statusOf(body)).json(body)
  }
}

module.exports = { STATUS_BY_CODE, HttpError, invalid, statusOf, errorMiddleware }
