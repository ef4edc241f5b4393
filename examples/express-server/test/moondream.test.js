'use strict'
// /api/moondream against a loopback Moondream (bindings-node/test/moondream-mock.js, cloud
// flavour, checking the key on every request): the real server (a child process) for the
// answers, the error statuses, streamed answers (SSE) and watches; the router in-process for
// the configurations a second server would cost seconds to show (none, misconfigured,
// unreachable). The API key never appears in a response or in the server's output.
const { describe, it, before, after, beforeEach } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const express = require('express')

const { CameraManager } = require('../../../bindings-node')
const { MoondreamMock, DETECT_BOX } = require('../../../bindings-node/test/moondream-mock')
const { moondreamRouter } = require('../../../bindings-node/express/routes/moondream')
const { errorMiddleware } = require('../../../bindings-node/express/errors')
const { startServer, closedPort, sleep } = require('./helpers')

const KEY = 'md-express-key-must-not-leak-7f3a'

/** Every response text seen, to check that the key never appears in one. */
const seen = []

async function post (base, path, json, raw) {
  const r = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(json) })
  const text = await r.text()
  seen.push(text)
  let body = null
  try { body = JSON.parse(text) } catch {}
  return { status: r.status, type: r.headers.get('content-type'), text, json: body }
}

async function get (base, path) {
  const r = await fetch(base + path)
  const text = await r.text()
  seen.push(text)
  let body = null
  try { body = JSON.parse(text) } catch {}
  return { status: r.status, type: r.headers.get('content-type'), text, json: body }
}

/** Parses a whole text/event-stream body into [{event, data}]. */
function parseSse (text) {
  return text.split('\n\n').filter((b) => b.trim()).map((block) => {
    const ev = { event: 'message', data: '' }
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) ev.event = line.slice(7)
      else if (line.startsWith('data: ')) ev.data += line.slice(6)
    }
    return { event: ev.event, data: JSON.parse(ev.data) }
  })
}

/** Reads SSE events from a streaming response until `done(events)` is true. */
async function readSse (res, done, ms = 8000) {
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  let buf = ''
  const events = []
  const end = Date.now() + ms
  while (Date.now() < end && !done(events)) {
    const { value, done: eof } = await reader.read()
    if (eof) break
    buf += decoder.decode(value, { stream: true })
    let i
    while ((i = buf.indexOf('\n\n')) >= 0) {
      events.push(...parseSse(buf.slice(0, i + 2)))
      buf = buf.slice(i + 2)
    }
  }
  await reader.cancel().catch(() => {})
  return events
}

describe('/api/moondream', () => {
  let mock
  let srv

  before(async () => {
    mock = await MoondreamMock.start({ apiKey: KEY })
    srv = await startServer({ MOONDREAM_URL: mock.baseUrl, MOONDREAM_API_KEY: KEY, MOONDREAM_TIMEOUT_MS: '600', MOONDREAM_MAX_RETRIES: '0' })
  })

  after(async () => {
    await srv?.stop()
    await mock?.close()
    const out = srv ? srv.output() : ''
    assert.ok(!out.includes(KEY), 'the API key appears in the server output')
    for (const t of seen) assert.ok(!t.includes(KEY), `the API key appears in a response: ${t.slice(0, 200)}`)
  })

  beforeEach(() => mock.reset())

  it('GET /status says it is configured, and where', async () => {
    const r = await get(srv.base, '/api/moondream/status')
    assert.equal(r.status, 200)
    assert.deepEqual(r.json, { configured: true, flavour: 'station', baseUrl: mock.baseUrl, message: null })
  })

  it('answers query, caption, detect and point about the camera, with the picture they are about', async () => {
    mock.push({ answer: 'Yes.' })
    let r = await post(srv.base, '/api/moondream/query', { cameraId: 'demo', question: 'Is there a clock?' })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.json.answer, 'Yes.')
    assert.equal(r.json.cameraId, 'demo')
    assert.equal(r.json.width, 640)
    assert.equal(r.json.height, 360)
    assert.ok(r.json.seq >= 1)
    assert.equal(typeof r.json.capturedAt, 'number')
    assert.equal(r.json.requestId, 'req-1')

    r = await post(srv.base, '/api/moondream/caption', { cameraId: 'demo', length: 'short' })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.json.caption, 'mock answer')
    r = await post(srv.base, '/api/moondream/detect', { cameraId: 'demo', object: 'box' })
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.json.objects, [{ xMin: DETECT_BOX.x_min, yMin: DETECT_BOX.y_min, xMax: DETECT_BOX.x_max, yMax: DETECT_BOX.y_max }])
    r = await post(srv.base, '/api/moondream/point', { cameraId: 'demo', object: 'clock' })
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.json.points, [{ x: 0.5, y: 0.25 }])

    assert.deepEqual(mock.violations, [])
    assert.deepEqual(mock.requests.map((q) => [q.path, q.auth]), [['/query', KEY], ['/caption', KEY], ['/detect', KEY], ['/point', KEY]])
    assert.equal(mock.requests[1].body.length, 'short')
  })

  it('answers 400 naming the field for bad input', async () => {
    const cases = [
      ['/query', { question: 'q?' }, /^cameraId: missing/],
      ['/query', { cameraId: 'demo' }, /^question: missing/],
      ['/query', { cameraId: 'demo', question: 7 }, /^question: must be a string/],
      ['/query', { cameraId: 'demo', question: '   ' }, /^question: must not be blank/],
      ['/query', { cameraId: 'demo', question: 'x'.repeat(2001) }, /^question: at most 2000/],
      ['/caption', { cameraId: 'demo', length: 'tiny' }, /^length: must be one of short, normal, long/],
      ['/detect', { cameraId: 'demo' }, /^object: missing/],
      ['/point', { cameraId: ['demo'], object: 'x' }, /^cameraId: must be a string/],
      ['/watch', { cameraId: 'demo', question: 'q?', everyMs: 10 }, /^everyMs: must be between 500 and 86400000/],
      ['/watch', { cameraId: 'demo', question: 'q?', onlyWhenChanged: 'yes' }, /^onlyWhenChanged: /]
    ]
    for (const [path, body, message] of cases) {
      const r = await post(srv.base, '/api/moondream' + path, body)
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${r.text}`)
      assert.equal(r.json.code, 'INVALID_INPUT')
      assert.match(r.json.error, message)
    }
    const r = await post(srv.base, '/api/moondream/query', null, '[1,2]')
    assert.equal(r.status, 400)
    assert.match(r.json.error, /^body: /)
    assert.equal(mock.requests.length, 0)
  })

  it('maps failures: 404 unknown camera, 401, 429, 502, 504', async () => {
    let r = await post(srv.base, '/api/moondream/query', { cameraId: 'nope', question: 'q?' })
    assert.equal(r.status, 404)
    assert.equal(r.json.code, 'NOT_FOUND')

    mock.push({ status: 401, error: 'invalid key' })
    r = await post(srv.base, '/api/moondream/query', { cameraId: 'demo', question: 'q?' })
    assert.equal(r.status, 401)
    assert.equal(r.json.code, 'UNAUTHORIZED')
    assert.match(r.json.error, /MOONDREAM_API_KEY/)

    mock.push({ status: 429, retryAfter: '0' })
    r = await post(srv.base, '/api/moondream/detect', { cameraId: 'demo', object: 'cat' })
    assert.equal(r.status, 429)
    assert.equal(r.json.code, 'RATE_LIMITED')

    mock.push({ status: 500, error: 'GPU on fire' })
    r = await post(srv.base, '/api/moondream/caption', { cameraId: 'demo' })
    assert.equal(r.status, 502)
    assert.equal(r.json.code, 'SERVICE_ERROR')
    assert.match(r.json.error, /GPU on fire/)

    mock.push({ hang: true })
    r = await post(srv.base, '/api/moondream/point', { cameraId: 'demo', object: 'cat' })
    assert.equal(r.status, 504)
    assert.equal(r.json.code, 'TIMEOUT')

    r = await get(srv.base, '/api/moondream/nope')
    assert.equal(r.status, 404)
  })

  it('streams an answer as server-sent events (POST ?stream=1 and GET /query/stream)', async () => {
    mock.push({ stream: ['The ', 'clock ', 'says ', 'noon.'] })
    let r = await post(srv.base, '/api/moondream/query?stream=1', { cameraId: 'demo', question: 'What time is it?' })
    assert.equal(r.status, 200)
    assert.match(r.type, /^text\/event-stream/)
    let events = parseSse(r.text)
    assert.deepEqual(events.filter((e) => e.event === 'chunk').map((e) => e.data.text), ['The ', 'clock ', 'says ', 'noon.'])
    const done = events[events.length - 1]
    assert.equal(done.event, 'done')
    assert.equal(done.data.answer, 'The clock says noon.')
    assert.equal(done.data.cameraId, 'demo')
    assert.equal(mock.requests[0].body.stream, true)

    mock.push({ stream: ['A ', 'test ', 'card.'] })
    r = await get(srv.base, '/api/moondream/query/stream?cameraId=demo&question=' + encodeURIComponent('What is this?'))
    assert.equal(r.status, 200)
    events = parseSse(r.text)
    assert.equal(events[events.length - 1].data.answer, 'A test card.')

    mock.push({ stream: ['Short.'] })
    r = await post(srv.base, '/api/moondream/caption?stream=1', { cameraId: 'demo', length: 'short' })
    events = parseSse(r.text)
    assert.equal(events[events.length - 1].data.caption, 'Short.')
  })

  it('reports a failure before the first piece as a JSON error, and one mid-answer as an error event', async () => {
    mock.push({ status: 429, retryAfter: '0' })
    let r = await post(srv.base, '/api/moondream/query?stream=1', { cameraId: 'demo', question: 'q?' })
    assert.equal(r.status, 429)
    assert.equal(r.json.code, 'RATE_LIMITED')

    mock.push({ stream: ['half '], streamError: 'the model crashed' })
    r = await post(srv.base, '/api/moondream/query?stream=1', { cameraId: 'demo', question: 'q?' })
    assert.equal(r.status, 200)
    const events = parseSse(r.text)
    assert.deepEqual(events.map((e) => e.event), ['chunk', 'error'])
    assert.equal(events[1].data.code, 'SERVICE_ERROR')
    assert.match(events[1].data.error, /the model crashed/)
  })

  it('runs a watch: created, listed, its answers streamed, stopped', async () => {
    mock.push({ answer: 'No' }, { answer: 'Yes' })
    mock.defaultReply = { answer: 'Yes.' }
    let r = await post(srv.base, '/api/moondream/watch', { cameraId: 'demo', question: 'Is the box on the left?', everyMs: 500, onlyWhenChanged: false })
    assert.equal(r.status, 201, r.text)
    const id = r.json.watchId
    assert.match(id, /^w\d+$/)
    assert.equal(r.json.running, true)
    assert.equal(r.json.everyMs, 500)

    const res = await fetch(`${srv.base}/api/moondream/watches/${id}/events`)
    assert.match(res.headers.get('content-type'), /^text\/event-stream/)
    const events = await readSse(res, (evs) => evs.some((e) => e.event === 'answer' && e.data.answer === 'Yes'))
    assert.equal(events[0].event, 'watch')
    const answers = events.filter((e) => e.event === 'answer').map((e) => [e.data.answer, e.data.previousAnswer])
    // The first answer may have come before the stream opened; the change to "Yes" is live.
    assert.deepEqual(answers.slice(-1), [['Yes', 'No']])

    r = await get(srv.base, '/api/moondream/watches')
    const listed = r.json.watches.find((w) => w.watchId === id)
    assert.equal(listed.answer, 'Yes')
    assert.equal(listed.cameraId, 'demo')
    assert.ok(listed.stats.asked >= 2)
    r = await get(srv.base, `/api/moondream/watches/${id}`)
    assert.deepEqual(r.json.recent.filter((e) => e.type === 'answer').map((e) => e.answer), ['No', 'Yes'])

    r = await fetch(`${srv.base}/api/moondream/watches/${id}`, { method: 'DELETE' })
    assert.equal(r.status, 200)
    const asked = mock.requests.length
    await sleep(800)
    assert.ok(mock.requests.length <= asked + 1, 'the watch stopped asking')
    r = await get(srv.base, `/api/moondream/watches/${id}`)
    assert.equal(r.status, 404)
    r = await post(srv.base, '/api/moondream/watch/stop', { watchId: id })
    assert.equal(r.status, 404)
    r = await post(srv.base, '/api/moondream/watch', { cameraId: 'nope', question: 'q?' })
    assert.equal(r.status, 404)
  })
})

describe('/api/moondream without a working configuration', () => {
  let cams
  const servers = []
  const lines = []

  /** The router alone, in-process, with this environment. */
  async function app (env) {
    const a = express()
    a.use(express.json())
    a.use('/api/moondream', moondreamRouter({ cameras: cams, log: (l) => lines.push(l), env }))
    a.use(errorMiddleware((l) => lines.push(l)))
    const s = http.createServer(a)
    await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve))
    servers.push(s)
    return `http://127.0.0.1:${s.address().port}`
  }

  before(() => { cams = new CameraManager() })
  after(async () => {
    for (const s of servers) await new Promise((resolve) => s.close(resolve))
    cams.close()
  })

  it('answers 503 MOONDREAM_NOT_CONFIGURED saying how to set a key, and /status says so', async () => {
    const base = await app({})
    const s = await get(base, '/api/moondream/status')
    assert.equal(s.status, 200)
    assert.equal(s.json.configured, false)
    assert.match(s.json.message, /MOONDREAM_API_KEY/)
    for (const path of ['/query', '/caption', '/detect', '/point', '/watch']) {
      const r = await post(base, '/api/moondream' + path, { cameraId: 'demo', question: 'q?', object: 'x' })
      assert.equal(r.status, 503, path)
      assert.equal(r.json.code, 'MOONDREAM_NOT_CONFIGURED')
      assert.match(r.json.error, /set MOONDREAM_API_KEY .* or MOONDREAM_URL/)
    }
    assert.equal((await get(base, '/api/moondream/watches')).status, 503)
  })

  it('names the variable that is wrong, and never shows the key', async () => {
    let base = await app({ MOONDREAM_URL: 'ftp://example.com/v1', MOONDREAM_API_KEY: KEY })
    let s = await get(base, '/api/moondream/status')
    assert.equal(s.json.configured, false)
    assert.match(s.json.message, /MOONDREAM_URL: /)
    base = await app({ MOONDREAM_API_KEY: 'has a space ' + KEY })
    s = await get(base, '/api/moondream/status')
    assert.match(s.json.message, /MOONDREAM_API_KEY: /)
    assert.ok(!s.text.includes(KEY))
    base = await app({ MOONDREAM_URL: 'http://127.0.0.1:2020/v1', MOONDREAM_TIMEOUT_MS: 'soon' })
    s = await get(base, '/api/moondream/status')
    assert.match(s.json.message, /MOONDREAM_TIMEOUT_MS: must be an integer/)
    assert.ok(!lines.join('\n').includes(KEY))
  })

  it('answers 502 UNREACHABLE when the service cannot be reached', async () => {
    const { startDemoCamera } = require('../../../bindings-node')
    const demo = await startDemoCamera({ width: 160, height: 120, fps: 10 })
    try {
      await cams.connect({ id: 'tiny', url: demo.url })
      const base = await app({ MOONDREAM_URL: `http://127.0.0.1:${await closedPort()}/v1` })
      const r = await post(base, '/api/moondream/query', { cameraId: 'tiny', question: 'q?' })
      assert.equal(r.status, 502)
      assert.equal(r.json.code, 'UNREACHABLE')
    } finally {
      await cams.disconnect('tiny').catch(() => {})
      await demo.stop()
    }
  })
})
