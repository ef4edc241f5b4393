'use strict'
// The real server (a child process) through HTTP and a real `ws` client: the seed's routes,
// JSON shapes and WebSocket protocol byte for byte, the MJPEG stream, error statuses,
// metrics, cameras from CAMKIT_CAMERAS, and no password anywhere.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const WebSocket = require('ws')

const { startDemoCamera } = require('../../../bindings-node')
const { startServer, closedPort, silentServer, sleep, isJpeg } = require('./helpers')

const USER = 'operator'
const PASSWORD = 'pa:ss@w0rd/s3cret#1'

async function get (srv, path) {
  const r = await fetch(srv.base + path)
  const body = Buffer.from(await r.arrayBuffer())
  return { status: r.status, type: r.headers.get('content-type'), text: body.toString(), body, headers: r.headers }
}

async function post (srv, path, json, raw) {
  const r = await fetch(srv.base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: raw ?? JSON.stringify(json)
  })
  const text = await r.text()
  return { status: r.status, text, json: JSON.parse(text) }
}

/** Opens a WebSocket and collects its messages. */
async function openWs (url) {
  const ws = new WebSocket(url)
  const messages = []
  ws.on('message', (data, isBinary) => messages.push({ data: Buffer.from(data), isBinary }))
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  return { ws, messages, close: () => ws.close() }
}

async function until (fn, ms = 5000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (fn()) return
    await sleep(25)
  }
  assert.fail('condition not met in time')
}

describe('express server', () => {
  let srv
  let secured // a demo camera that requires USER / PASSWORD
  let silent

  before(async () => {
    secured = await startDemoCamera({ width: 320, height: 180, fps: 15, username: USER, password: PASSWORD })
    silent = await silentServer()
    srv = await startServer({
      CAMKIT_DEMO: '1',
      EXPECT_CAMERAS: '2',
      CAMKIT_CAMERAS: JSON.stringify([{ cameraId: 'configured', url: secured.url, username: USER, password: PASSWORD }])
    })
  })

  after(async () => {
    await srv?.stop()
    await secured?.stop()
    await silent?.close()
  })

  it('GET /health has the seed shape', async () => {
    const r = await get(srv, '/health')
    assert.equal(r.status, 200)
    assert.equal(r.text, '{"status":"ok","activeCameras":2}')
  })

  it('connects the demo camera and the configured ones at start', async () => {
    const r = await get(srv, '/api/cameras')
    const { cameras } = JSON.parse(r.text)
    assert.deepEqual(cameras.map((c) => c.cameraId), ['configured', 'demo'])
    for (const c of cameras) assert.equal(c.state, 'streaming', JSON.stringify(c))
    assert.equal(cameras[0].url, secured.url)
  })

  it('POST /api/cameras/connect answers exactly as the seed', async () => {
    const port = Number(new URL(secured.url).port)
    const r = await post(srv, '/api/cameras/connect', { cameraId: 'cam1', ip: '127.0.0.1', port, username: USER, password: PASSWORD, streamPath: '/demo' })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.text, '{"success":true,"cameraId":"cam1"}')
  })

  it('GET /api/cameras/:id/status starts with the seed fields', async () => {
    const r = await get(srv, '/api/cameras/cam1/status')
    assert.equal(r.status, 200)
    const s = JSON.parse(r.text)
    assert.deepEqual(Object.keys(s).slice(0, 3), ['cameraId', 'connected', 'frames'])
    assert.equal(s.cameraId, 'cam1')
    assert.equal(s.connected, true)
    assert.equal(typeof s.frames, 'number')
    assert.equal(s.width, 320)
    assert.equal(s.state, 'streaming')
  })

  it('GET /api/cameras/:id/frame is a JPEG', async () => {
    const r = await get(srv, '/api/cameras/demo/frame')
    assert.equal(r.status, 200)
    assert.equal(r.type, 'image/jpeg')
    assert.ok(isJpeg(r.body))
    const small = await get(srv, '/api/cameras/demo/frame?maxWidth=320')
    assert.equal(small.headers.get('x-frame-width'), '320')
  })

  it('GET /api/cameras/websocket-url and /api/cameras/status point at this server', async () => {
    let r = await get(srv, '/api/cameras/websocket-url')
    assert.equal(r.text, `{"url":"ws://127.0.0.1:${srv.port}/ws"}`)
    r = await get(srv, '/api/cameras/status')
    assert.equal(r.text, `{"running":true,"port":${srv.port},"baseUrl":"http://127.0.0.1:${srv.port}"}`)
  })

  it('speaks the seed WebSocket protocol byte for byte', async () => {
    const c = await openWs(srv.ws)
    c.ws.send(JSON.stringify({ action: 'ping' }))
    await until(() => c.messages.length === 1)
    assert.equal(c.messages[0].isBinary, false)
    assert.equal(c.messages[0].data.toString(), '{"type":"pong"}')

    c.ws.send(JSON.stringify({ action: 'subscribe', cameraId: 'demo', fps: 5 }))
    await sleep(2000)
    const frames = c.messages.slice(1)
    assert.ok(frames.length >= 7 && frames.length <= 12, `${frames.length} frames in 2 s at 5 fps`)
    const nowLoop = Number(process.hrtime.bigint()) / 1e9
    for (const m of frames) {
      assert.equal(m.isBinary, false)
      const text = m.data.toString()
      // Field order, compact separators, a float timestamp: what Starlette's send_json writes.
      const match = /^\{"type":"frame","cameraId":"demo","data":"([A-Za-z0-9+/]+=*)","timestamp":(\d+\.\d+)\}$/.exec(text)
      assert.ok(match, text.slice(0, 120))
      assert.ok(isJpeg(Buffer.from(match[1], 'base64')))
      // asyncio's loop.time() is the monotonic clock, the one process.hrtime reads.
      assert.ok(Math.abs(Number(match[2]) - nowLoop) < 10, `timestamp ${match[2]} vs monotonic ${nowLoop}`)
    }

    c.ws.send(JSON.stringify({ action: 'unsubscribe' }))
    await sleep(300)
    const n = c.messages.length
    await sleep(700)
    assert.equal(c.messages.length, n, 'no frames after unsubscribe')
    c.close()
  })

  it('sends binary frames on request: header length, JSON header, JPEG', async () => {
    const c = await openWs(srv.ws)
    c.ws.send(JSON.stringify({ action: 'subscribe', cameraId: 'demo', fps: 10, binary: true, maxWidth: 320 }))
    await until(() => c.messages.length >= 2)
    for (const m of c.messages.slice(0, 2)) {
      assert.equal(m.isBinary, true)
      const n = m.data.readUInt32BE(0)
      const header = JSON.parse(m.data.subarray(4, 4 + n).toString())
      assert.equal(header.type, 'frame')
      assert.equal(header.cameraId, 'demo')
      assert.equal(header.width, 320)
      assert.equal(header.height, 180)
      assert.equal(typeof header.timestamp, 'number')
      assert.ok(isJpeg(m.data.subarray(4 + n)))
    }
    c.close()
  })

  it('reports WebSocket errors instead of staying silent', async () => {
    const c = await openWs(srv.ws)
    c.ws.send(JSON.stringify({ action: 'subscribe', cameraId: 'nope', fps: 5 }))
    c.ws.send('{not json')
    c.ws.send(JSON.stringify({ action: 'subscribe', cameraId: 'demo', fps: 0 }))
    await until(() => c.messages.length >= 3)
    const [a, b, d] = c.messages.map((m) => JSON.parse(m.data.toString()))
    assert.deepEqual([a.type, a.cameraId, a.code], ['error', 'nope', 'NOT_FOUND'])
    assert.deepEqual([b.type, b.code], ['error', 'INVALID_INPUT'])
    assert.deepEqual([d.type, d.code], ['error', 'INVALID_INPUT'])
    assert.match(d.error, /^fps/)
    c.close()
  })

  it('streams MJPEG: multipart/x-mixed-replace with JPEG parts', async () => {
    const ac = new AbortController()
    const r = await fetch(`${srv.base}/api/cameras/demo/mjpeg?fps=10`, { signal: ac.signal })
    assert.equal(r.status, 200)
    const m = /^multipart\/x-mixed-replace; boundary=(\S+)$/.exec(r.headers.get('content-type'))
    assert.ok(m, r.headers.get('content-type'))
    const boundary = Buffer.from(`--${m[1]}\r\n`)
    let buf = Buffer.alloc(0)
    const reader = r.body.getReader()
    const parts = []
    while (parts.length < 3) {
      const { value, done } = await reader.read()
      assert.ok(!done, 'stream ended early')
      buf = Buffer.concat([buf, value])
      // Parse complete parts: boundary, headers, blank line, Content-Length bytes, CRLF.
      for (;;) {
        if (buf.length < boundary.length || !buf.subarray(0, boundary.length).equals(boundary)) break
        const headerEnd = buf.indexOf('\r\n\r\n')
        if (headerEnd < 0) break
        const headers = buf.subarray(boundary.length, headerEnd).toString()
        const len = Number(/Content-Length: (\d+)/i.exec(headers)[1])
        assert.match(headers, /Content-Type: image\/jpeg/i)
        if (buf.length < headerEnd + 4 + len + 2) break
        parts.push(buf.subarray(headerEnd + 4, headerEnd + 4 + len))
        buf = buf.subarray(headerEnd + 4 + len + 2)
      }
    }
    ac.abort()
    for (const p of parts) assert.ok(isJpeg(p))
  })

  it('maps bad input to 400 naming the field', async () => {
    const cases = [
      [{ ip: '127.0.0.1' }, /^cameraId/],
      [{ cameraId: 'x' }, /^ip/],
      [{ cameraId: 'x', ip: '127.0.0.1', port: 'eighty' }, /^port/],
      [{ cameraId: 'x', ip: '127.0.0.1', port: 70000 }, /^port/],
      [{ cameraId: 'x', ip: 'bad host' }, /^ip/],
      [{ cameraId: 'x', ip: '127.0.0.1', streamPath: 'no-slash' }, /^streamPath/],
      [{ cameraId: 'a/b', ip: '127.0.0.1' }, /^cameraId/],
      [{ cameraId: 'x', ip: '127.0.0.1', transport: 'pigeon' }, /^transport/],
      [{ cameraId: 'x', ip: '127.0.0.1', password: 'p' }, /^username/]
    ]
    for (const [body, field] of cases) {
      const r = await post(srv, '/api/cameras/connect', body)
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.text}`)
      assert.equal(r.json.code, 'INVALID_INPUT')
      assert.match(r.json.error, field, JSON.stringify(body))
    }
    const r = await post(srv, '/api/cameras/connect', null, `{"cameraId":"x","password":"${PASSWORD}`)
    assert.equal(r.status, 400)
    assert.equal(r.text, '{"error":"body: not valid JSON","code":"INVALID_INPUT"}')
    const f = await get(srv, '/api/cameras/demo/frame?maxWidth=3')
    assert.equal(f.status, 400)
    assert.match(JSON.parse(f.text).error, /^maxWidth/)
    const d = await post(srv, '/api/cameras/disconnect', {})
    assert.equal(d.status, 400)
    assert.match(d.json.error, /^cameraId/)
  })

  it('maps an unknown camera to 404', async () => {
    for (const path of ['/api/cameras/nope/status', '/api/cameras/nope/frame', '/api/cameras/nope/mjpeg', '/api/cameras/nope']) {
      const r = await get(srv, path)
      assert.equal(r.status, 404, path)
      assert.deepEqual(Object.keys(JSON.parse(r.text)), ['error', 'code'])
      assert.equal(JSON.parse(r.text).code, 'NOT_FOUND')
    }
    const r = await post(srv, '/api/cameras/disconnect', { cameraId: 'nope' })
    assert.equal(r.status, 404)
    assert.equal((await get(srv, '/api/nothing-here')).status, 404)
  })

  it('maps camera failures to 401 / 502 / 504 / 503 with {error, code}', async () => {
    const port = Number(new URL(secured.url).port)
    let r = await post(srv, '/api/cameras/connect', { cameraId: 'auth', ip: '127.0.0.1', port, streamPath: '/demo', username: USER, password: 'wrong-hunter2' })
    assert.equal(r.status, 401, r.text)
    assert.equal(r.json.code, 'UNAUTHORIZED')
    assert.ok(!r.text.includes('hunter2'))

    // No credentials given: none are invented, the camera refuses.
    r = await post(srv, '/api/cameras/connect', { cameraId: 'auth', ip: '127.0.0.1', port, streamPath: '/demo' })
    assert.equal(r.status, 401, r.text)

    r = await post(srv, '/api/cameras/connect', { cameraId: 'closed', ip: '127.0.0.1', port: await closedPort() })
    assert.equal(r.status, 502, r.text)
    assert.equal(r.json.code, 'UNREACHABLE')
    assert.match(r.json.error, /refused/)

    r = await post(srv, '/api/cameras/connect', { cameraId: 'silent', ip: '127.0.0.1', port: silent.port, rtspTimeoutMs: 500 })
    assert.equal(r.status, 504, r.text)
    assert.equal(r.json.code, 'TIMEOUT')

    r = await post(srv, '/api/cameras/connect', { cameraId: 'wrongpath', ip: '127.0.0.1', port: Number(new URL(secured.url).port), streamPath: '/nothing', username: USER, password: PASSWORD })
    assert.equal(r.status, 502, r.text)

    await post(srv, '/api/cameras/connect', { cameraId: 'later', ip: '127.0.0.1', port: await closedPort(), persistent: true })
    const f = await get(srv, '/api/cameras/later/frame')
    assert.equal(f.status, 503, f.text)
    assert.equal(JSON.parse(f.text).code, 'NO_FRAME')
    assert.equal((await post(srv, '/api/cameras/disconnect', { cameraId: 'later' })).status, 200)
  })

  it('serves Prometheus metrics', async () => {
    const r = await get(srv, '/metrics')
    assert.equal(r.status, 200)
    assert.match(r.type, /^text\/plain; version=0\.0\.4/)
    assert.match(r.text, /^# TYPE camkit_camera_fps gauge$/m)
    assert.match(r.text, /^camkit_camera_state\{camera="demo",state="streaming"\} 1$/m)
    assert.match(r.text, /^camkit_camera_fps\{camera="demo"\} \d+(\.\d+)?$/m)
    assert.match(r.text, /^camkit_camera_frames_received_total\{camera="demo"\} [1-9]\d*$/m)
    assert.match(r.text, /^camkit_camera_reconnects_total\{camera="demo"\} 0$/m)
    assert.match(r.text, /^camkit_camera_partial_frames_skipped_total\{camera="demo"\} \d+$/m)
    assert.match(r.text, /^camkit_camera_video_lost_seconds_total\{camera="demo"\} 0$/m)
    assert.match(r.text, /^camkit_camera_picture_stale\{camera="demo"\} 0$/m)
    assert.match(r.text, /^camkit_ws_frames_sent_total [1-9]\d*$/m)
    assert.match(r.text, /^camkit_mjpeg_frames_sent_total [1-9]\d*$/m)
    for (const line of r.text.trim().split('\n')) {
      assert.match(line, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? -?\d+(\.\d+)?(e[+-]?\d+)?)$/, line)
    }
  })

  it('POST /api/cameras/disconnect answers exactly as the seed', async () => {
    const r = await post(srv, '/api/cameras/disconnect', { cameraId: 'cam1' })
    assert.equal(r.status, 200)
    assert.equal(r.text, '{"success":true}')
    assert.equal((await get(srv, '/api/cameras/cam1/status')).status, 404)
  })

  it('serves the viewer page at /', async () => {
    const r = await get(srv, '/')
    assert.equal(r.status, 200)
    assert.match(r.type, /^text\/html/)
    assert.match(r.text, /<title>camkit/)
  })

  it('never shows a password in a response or a log line', async () => {
    const all = (await get(srv, '/api/cameras')).text + (await get(srv, '/metrics')).text
    assert.ok(!all.includes(PASSWORD))
    await sleep(100)
    const log = srv.output()
    assert.match(log, /camera "cam1": connecting to 127\.0\.0\.1:\d+\/demo as "operator"/)
    for (const secret of [PASSWORD, 'hunter2', 's3cret']) assert.ok(!log.includes(secret), `log contains ${secret}:\n${log}`)
  })

  it('shuts down cleanly on SIGTERM', async () => {
    const code = await srv.stop()
    assert.equal(code, 0)
    srv = null
  })
})
