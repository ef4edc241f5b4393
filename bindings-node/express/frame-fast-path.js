'use strict'
// GET /api/cameras/:cameraId/frame without Express, for the requests where that changes
// nothing but the cost: the route is the one clients poll, and Express's per-request work
// (its request/response set-up, the router's walk through every middleware and route, the
// query parser) costs more than the snapshot itself (BENCHMARKS.md has the figures).
//
// It answers only plain requests, exactly as the Express route would: a GET with no body,
// no Origin header (so no CORS), the right token (when one is required), a camera id with
// no %-escapes that validates, and a query of at most `maxWidth`, `quality` and `stream`, once each,
// that validates, without escapes or brackets. Everything else, and every refusal (401,
// 400), goes to Express as before, which answers it with its own code.
// Once it has taken a request, the answer is a JPEG or camkit's error as `{error, code}`.
const { cameraIdValue, frameOptions } = require('./validate')
const { tokenMatches, bearerToken, SECURITY_HEADERS } = require('./security')
const { errorResponse } = require('./errors')
const { sendJpeg } = require('./routes/cameras')

const FRAME_PATH = /^\/api\/cameras\/([^/?%]+)\/frame(?:\?(.*))?$/
const QUERY_KEYS = new Set(['maxWidth', 'quality', 'stream'])

/** The snapshot options of a plain query string, or null when Express should parse it. */
function plainQuery (search) {
  const query = {}
  if (search === undefined || search === '') return query
  if (/[%[\]]/.test(search)) return null
  for (const [k, v] of new URLSearchParams(search)) {
    if (!QUERY_KEYS.has(k) || k in query) return null
    query[k] = v
  }
  return query
}

/**
 * A request handler for the HTTP server, in front of the Express app: returns true when it
 * has taken the request, false when the app should have it.
 */
function frameFastPath ({ cameras, metrics, apiToken, log }) {
  return (req, res) => {
    if (req.method !== 'GET') return false
    const m = FRAME_PATH.exec(req.url)
    if (m === null) return false
    const h = req.headers
    if (h.origin !== undefined || h['transfer-encoding'] !== undefined || (h['content-length'] ?? '0') !== '0') return false
    if (apiToken && !tokenMatches(apiToken, bearerToken(req))) return false
    let id
    let opts
    try {
      id = cameraIdValue(m[1])
      const query = plainQuery(m[2])
      if (query === null) return false
      opts = frameOptions(query)
    } catch {
      return false
    }
    for (const [name, value] of SECURITY_HEADERS) res.setHeader(name, value)
    cameras.snapshot(id, opts).then((frame) => {
      metrics.counters.snapshots++
      sendJpeg(res, frame)
    }, (err) => {
      const { status, body } = errorResponse(err, `${req.method} ${req.url.split('?')[0]}`, log)
      const json = JSON.stringify(body)
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) })
      res.end(json)
    })
    return true
  }
}

module.exports = { frameFastPath, plainQuery, FRAME_PATH }
