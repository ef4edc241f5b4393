'use strict'
// A Moondream API on loopback that checks every request it gets, for tests that need no
// internet. It behaves as the Rust mock in tests/src/moondream_mock.rs does:
//
// * Cloud flavour (`start({ apiKey })`): requires `X-Moondream-Auth: <apiKey>` (anything else
//   gets 401 {"error":"Unauthorized"}), answers carry a `request_id`, streams
//   `data: {"chunk":"…","completed":false}` events with the last piece in the
//   `{"chunk":"…","completed":true}` event.
// * Station flavour (`start()`): no auth, no `request_id`, fails with 200 {"error":"…"},
//   streams `{"chunk":"…"}` events, then `{"stats":{…}}`, then `{"completed":true}`.
//
// Every request is checked: POST /v1/{query,caption,detect,point}, a JSON body with exactly
// that call's fields and types, and an `image_url` that is a data:image/jpeg;base64 URL of a
// JPEG whose long side is at most 768 px. A request failing a check gets 400 and is listed in
// `violations`; every request is kept in `requests` (body with image_url replaced by
// "<jpeg>", the JPEG's size). Streamed answers are written in pieces that split events.
//
// Replies are scripted: `push(reply)` queues a reply for the next request; when the queue is
// empty, `defaultReply` answers. A reply is one of:
//   { answer: 'text' }                 the answer/caption (streamed word by word when asked)
//   { stream: ['a ', 'b'], delayMs }   streamed in exactly these pieces (delayMs between)
//   { stream: ['a '], streamError: 'x' }  those pieces, then the event {"error": "x"}
//   { objects: [{x_min,…}] }           detect's boxes (default DETECT_BOX)
//   { points: [{x,y}] }                point's points (default POINT)
//   { status: 429, retryAfter: '0' }   an HTTP status with {"error": error || reason}
//   { status: 500, error: 'boom' }
//   { stationError: 'model not loaded' }  200 {"error": …}
//   { hang: true }                     never answer (the socket stays open until close())
//   { delayMs: 300, answer: 'x' }      answer after a delay
const http = require('node:http')

const MAX_SIDE = 768
const DETECT_BOX = Object.freeze({ x_min: 0.125, y_min: 0.25, x_max: 0.5, y_max: 0.75 })
const POINT = Object.freeze({ x: 0.5, y: 0.25 })

const FIELDS = {
  '/query': { image_url: 'string', question: 'string', stream: 'boolean' },
  '/caption': { image_url: 'string', length: 'string', stream: 'boolean' },
  '/detect': { image_url: 'string', object: 'string' },
  '/point': { image_url: 'string', object: 'string' }
}

/** Width and height from a JPEG's SOF marker, or null. */
function jpegSize (buf) {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return null
  let i = 2
  while (i + 9 < buf.length) {
    if (buf[i] !== 0xff) return null
    const marker = buf[i + 1]
    const len = buf.readUInt16BE(i + 2)
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) }
    }
    i += 2 + len
  }
  return null
}

function check (path, body) {
  const problems = []
  const fields = FIELDS[path]
  if (!fields) return { problems: [`unknown path ${path}`], size: null, jpeg: null }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { problems: ['body is not a JSON object'], size: null, jpeg: null }
  for (const [name, type] of Object.entries(fields)) {
    const v = body[name]
    if (typeof v !== type || (type === 'string' && v.trim() === '')) problems.push(`field ${name}: ${JSON.stringify(v)}`)
  }
  for (const k of Object.keys(body)) if (!(k in fields)) problems.push(`unexpected field ${k}`)
  if (typeof body.length === 'string' && !['short', 'normal', 'long'].includes(body.length)) problems.push(`length ${body.length}`)
  let size = null
  let jpeg = null
  if (typeof body.image_url === 'string') {
    const prefix = 'data:image/jpeg;base64,'
    if (!body.image_url.startsWith(prefix)) {
      problems.push('image_url: not a data:image/jpeg;base64, URL')
    } else {
      jpeg = Buffer.from(body.image_url.slice(prefix.length), 'base64')
      size = jpegSize(jpeg)
      if (!size) problems.push('image_url: not a JPEG')
      else if (Math.max(size.width, size.height) > MAX_SIDE) problems.push(`picture is ${size.width}x${size.height}: long side over ${MAX_SIDE}`)
    }
  }
  return { problems, size, jpeg }
}

const REASONS = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' }

class MoondreamMock {
  /** Starts a mock on 127.0.0.1 and a free port; `apiKey` makes it the cloud flavour. */
  static async start ({ apiKey } = {}) {
    const mock = new MoondreamMock(apiKey)
    await new Promise((resolve) => mock.server.listen(0, '127.0.0.1', resolve))
    mock.baseUrl = `http://127.0.0.1:${mock.server.address().port}/v1`
    return mock
  }

  constructor (apiKey) {
    this.apiKey = apiKey
    this.cloud = apiKey !== undefined
    this.script = []
    this.defaultReply = { answer: 'mock answer' }
    this.requests = []
    this.violations = []
    this.sockets = new Set()
    this.nextId = 1
    this.server = http.createServer((req, res) => this.handle(req, res))
    this.server.on('connection', (s) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
  }

  push (...replies) { this.script.push(...replies) }

  /** Forgets the script, the requests and the violations (between tests). */
  reset () {
    this.script = []
    this.defaultReply = { answer: 'mock answer' }
    this.requests = []
    this.violations = []
  }

  close () {
    for (const s of this.sockets) s.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  handle (req, res) {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const path = req.url.startsWith('/v1/') ? req.url.slice(3) : req.url
      let body = null
      const problems = []
      if (req.method !== 'POST') problems.push(`method ${req.method}`)
      if (!String(req.headers['content-type'] || '').startsWith('application/json')) problems.push(`content-type ${req.headers['content-type']}`)
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        problems.push('body is not JSON')
      }
      const checked = check(path, body)
      problems.push(...checked.problems)
      const recorded = { path, auth: req.headers['x-moondream-auth'], body: body && typeof body === 'object' ? { ...body, image_url: body.image_url === undefined ? undefined : '<jpeg>' } : body, size: checked.size, jpeg: checked.jpeg, at: Date.now() }
      this.requests.push(recorded)
      if (problems.length) {
        this.violations.push(...problems)
        return this.json(res, 400, { error: `mock: ${problems.join('; ')}` })
      }
      if (this.cloud && req.headers['x-moondream-auth'] !== this.apiKey) return this.json(res, 401, { error: 'Unauthorized' })
      const reply = this.script.length ? this.script.shift() : this.defaultReply
      const stream = body.stream === true
      const answer = () => this.answer(res, path, reply, stream)
      if (reply.delayMs && !reply.stream) setTimeout(answer, reply.delayMs)
      else answer()
    })
  }

  answer (res, path, reply, stream) {
    if (reply.hang) return
    if (reply.status) {
      const headers = reply.retryAfter !== undefined ? { 'Retry-After': reply.retryAfter } : {}
      return this.json(res, reply.status, { error: reply.error || REASONS[reply.status] || 'error' }, headers)
    }
    if (reply.stationError) return this.json(res, 200, { error: reply.stationError })
    const extra = this.cloud ? { request_id: `req-${this.nextId++}` } : { _stats: { tokens: 3, duration: 0.1 } }
    if (path === '/detect') return this.json(res, 200, { ...extra, objects: reply.objects || [DETECT_BOX] })
    if (path === '/point') return this.json(res, 200, { ...extra, points: reply.points || [POINT] })
    const text = reply.stream ? reply.stream.join('') : reply.answer
    if (!stream) return this.json(res, 200, { ...extra, [path === '/caption' ? 'caption' : 'answer']: text })
    const pieces = reply.stream || text.split(/(?<= )/)
    this.streamPieces(res, pieces, reply.delayMs || 0, reply.streamError)
  }

  json (res, status, body, headers = {}) {
    const text = JSON.stringify(body)
    res.writeHead(status, REASONS[status] || 'OK', { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers })
    res.end(text)
  }

  async streamPieces (res, pieces, delayMs, streamError) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
    const last = streamError ? -1 : pieces.length - 1
    const events = pieces.map((p, i) => `data: ${JSON.stringify(this.cloud ? { chunk: p, completed: i === last } : { chunk: p })}\n\n`)
    if (streamError) {
      events.push(`data: ${JSON.stringify({ error: streamError })}\n\n`)
    } else {
      if (!this.cloud) events.push(`data: ${JSON.stringify({ stats: { tokens: pieces.length, duration: 0.1 } })}\n\n`)
      if (!this.cloud || pieces.length === 0) events.push('data: {"completed":true}\n\n')
    }
    for (const ev of events) {
      // Each event in two writes cut in the middle, as networks do.
      const b = Buffer.from(ev)
      const cut = (b.length >> 1) + 1
      res.write(b.subarray(0, cut))
      await new Promise((resolve) => setTimeout(resolve, 3))
      res.write(b.subarray(cut))
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs))
    }
    res.end()
  }
}

module.exports = { MoondreamMock, DETECT_BOX, POINT, MAX_SIDE, jpegSize }
