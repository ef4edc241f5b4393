'use strict'
// API hardening (issue 7), against the real server (a child process) with every access
// control on: CAMKIT_API_TOKEN, CAMKIT_CORS_ORIGINS and CAMKIT_ALLOWED_CAMERA_NETS. Bad input
// of every route is a 400 naming the field; the token guards /api, /metrics and /ws (header
// or ?token=), the viewer page passes it on; foreign origins cannot act; cameras outside
// the allowlist are 403 before anything is sent to them; and a distinctive password never
// appears in any response or in the server's output, whether the connect succeeds or fails.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const WebSocket = require('ws')

const { startDemoCamera } = require('../../../bindings-node')
const { createAllowlist } = require('../../../bindings-node/express/allowlist')
const { tokenMatches, parseOrigins } = require('../../../bindings-node/express/security')
const { launchChromium, startServer, closedPort, sleep } = require('./helpers')

const TOKEN = 'tok-4f1b9e2c7d35a8e0'
const AUTH = { authorization: `Bearer ${TOKEN}` }
const ALLOWED_ORIGIN = 'https://app.example.com'
const USER = 'operator'
// Distinctive, and plain enough that no JSON or URL escaping could hide a leak from the grep.
const PASSWORD = 'Zq9camkitSECRETpw7731'
const WRONG_PASSWORD = 'Wr0ngcamkitSECRETpw4410'

describe('API hardening', () => {
  let srv
  let secured // a demo camera that requires USER / PASSWORD
  let demoPort
  const seen = [] // every response body and header block, for the leak check

  /** fetch that records the response; `headers` defaults to the token. */
  async function request (method, path, { headers = AUTH, json, body } = {}) {
    const init = { method, headers: { ...headers } }
    if (json !== undefined) {
      init.body = JSON.stringify(json)
      init.headers['content-type'] = 'application/json'
    } else if (body !== undefined) {
      init.body = body
    }
    const r = await fetch(srv.base + path, init)
    const text = await r.text()
    seen.push(text, JSON.stringify([...r.headers]))
    let parsed = null
    try {
      parsed = JSON.parse(text)
    } catch {}
    return { status: r.status, headers: r.headers, text, json: parsed }
  }

  /** Asserts the one error shape: JSON {error, code}, and the status and code given. */
  function assertError (r, status, code, field) {
    assert.equal(r.status, status, r.text)
    assert.match(r.headers.get('content-type'), /^application\/json/)
    assert.deepEqual(Object.keys(r.json), ['error', 'code'], r.text)
    assert.equal(r.json.code, code, r.text)
    if (field) assert.match(r.json.error, new RegExp(`^${field}: `), r.text)
  }

  /** A WebSocket to /ws: resolves {ws, messages} once open, or {status, body} when refused. */
  function openWs (query = '', options = {}) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${srv.ws}${query}`, options)
      const messages = []
      ws.on('message', (data) => messages.push(data.toString()))
      ws.once('open', () => resolve({ ws, messages }))
      ws.once('unexpected-response', (req, res) => {
        let body = ''
        res.on('data', (d) => { body += d })
        res.on('end', () => { seen.push(body); resolve({ status: res.statusCode, body: JSON.parse(body) }) })
      })
      ws.once('error', reject)
    })
  }

  async function wsExchange (message) {
    const c = await openWs(`?token=${TOKEN}`)
    c.ws.send(typeof message === 'string' ? message : JSON.stringify(message))
    for (let i = 0; i < 100 && c.messages.length === 0; i++) await sleep(20)
    c.ws.close()
    seen.push(...c.messages)
    return JSON.parse(c.messages[0])
  }

  before(async () => {
    secured = await startDemoCamera({ width: 160, height: 96, fps: 15, username: USER, password: PASSWORD })
    demoPort = secured.port
    srv = await startServer({
      CAMKIT_DEMO: '1',
      CAMKIT_API_TOKEN: TOKEN,
      CAMKIT_CORS_ORIGINS: ALLOWED_ORIGIN,
      // Loopback only as listed: 127.0.0.1 (the test cameras), not the rest of 127/8.
      CAMKIT_ALLOWED_CAMERA_NETS: '127.0.0.1/32, ::1, 192.0.2.0/24'
    })
  })

  after(async () => {
    await srv?.stop()
    await secured?.stop()
  })

  describe('bearer token', () => {
    it('guards /api and /metrics: 401 JSON without it or with a wrong one', async () => {
      for (const [method, path] of [['GET', '/api/cameras'], ['GET', '/api/cameras/demo/frame'], ['GET', '/metrics'],
        ['GET', '/api/cameras/demo/mjpeg'], ['POST', '/api/cameras/disconnect'], ['GET', '/api/nothing']]) {
        for (const headers of [{}, { authorization: 'Bearer wrong-token-0000000' }, { authorization: TOKEN },
          { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }]) {
          const r = await request(method, path, { headers })
          assertError(r, 401, 'UNAUTHENTICATED', 'authorization')
          assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="camkit"')
        }
      }
      // A body is not even read without the token: no 400 for this broken JSON.
      const r = await request('POST', '/api/cameras/connect', { headers: { 'content-type': 'application/json' }, body: '{broken' })
      assertError(r, 401, 'UNAUTHENTICATED')
    })

    it('lets the token through, any case of "Bearer"', async () => {
      assert.equal((await request('GET', '/api/cameras')).status, 200)
      assert.equal((await request('GET', '/api/cameras', { headers: { authorization: `bearer ${TOKEN}` } })).status, 200)
      assert.equal((await request('GET', '/metrics')).status, 200)
    })

    it('leaves /health and the viewer page\'s files public', async () => {
      for (const path of ['/health', '/', '/app.js', '/style.css']) {
        assert.equal((await request('GET', path, { headers: {} })).status, 200, path)
      }
    })

    it('guards the WebSocket: 401 JSON without it; header or ?token= open it', async () => {
      for (const [query, opts] of [['', {}], ['?token=wrong', {}], [`?token=${TOKEN}x`, {}], ['', { headers: { authorization: 'Bearer nope' } }]]) {
        const r = await openWs(query, opts)
        assert.equal(r.status, 401, query)
        assert.equal(r.body.code, 'UNAUTHENTICATED')
      }
      for (const [query, opts] of [[`?token=${TOKEN}`, {}], ['', { headers: AUTH }]]) {
        const c = await openWs(query, opts)
        c.ws.send('{"action":"ping"}')
        for (let i = 0; i < 100 && c.messages.length === 0; i++) await sleep(10)
        assert.deepEqual(c.messages, ['{"type":"pong"}'])
        c.ws.close()
      }
    })
  })

  describe('origins', () => {
    it('answers CORS for the configured origin only', async () => {
      let r = await request('GET', '/api/cameras', { headers: { ...AUTH, origin: ALLOWED_ORIGIN } })
      assert.equal(r.headers.get('access-control-allow-origin'), ALLOWED_ORIGIN)
      assert.match(r.headers.get('vary'), /Origin/)
      r = await request('GET', '/api/cameras', { headers: { ...AUTH, origin: 'https://evil.example' } })
      assert.equal(r.headers.get('access-control-allow-origin'), null)
      r = await request('OPTIONS', '/api/cameras/connect', { headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } })
      assert.equal(r.status, 204)
      assert.match(r.headers.get('access-control-allow-headers'), /Authorization/)
      r = await request('OPTIONS', '/api/cameras/connect', { headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
      assertError(r, 403, 'ORIGIN_NOT_ALLOWED')
    })

    it('refuses state changes and WebSockets from foreign pages, even with the token', async () => {
      const r = await request('POST', '/api/cameras/disconnect', { headers: { ...AUTH, origin: 'https://evil.example' }, json: { cameraId: 'demo' } })
      assertError(r, 403, 'ORIGIN_NOT_ALLOWED', 'origin')
      assert.equal((await request('GET', '/api/cameras/demo/status')).json.state, 'streaming', 'still connected')
      const w = await openWs(`?token=${TOKEN}`, { origin: 'https://evil.example' })
      assert.equal(w.status, 403)
      assert.equal(w.body.code, 'ORIGIN_NOT_ALLOWED')
      // Same-origin pages (the viewer) and the configured origin are fine.
      for (const origin of [srv.base, ALLOWED_ORIGIN]) {
        const c = await openWs(`?token=${TOKEN}`, { origin })
        assert.ok(c.ws, origin)
        c.ws.close()
      }
    })

    it('sets protective headers', async () => {
      const r = await request('GET', '/', { headers: {} })
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff')
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer')
      assert.equal(r.headers.get('x-powered-by'), null)
    })
  })

  describe('bad input is a 400 naming the field', () => {
    it('POST /api/cameras/connect: types, missing fields, ids, hosts, ports, urls', async () => {
      const ok = { cameraId: 'x', ip: '127.0.0.1', port: demoPort, streamPath: '/demo' }
      const cases = [
        [{ ...ok, cameraId: undefined }, 'cameraId'],
        [{ ...ok, cameraId: 7 }, 'cameraId'],
        [{ ...ok, cameraId: ['x'] }, 'cameraId'],
        [{ ...ok, cameraId: 'a/b' }, 'cameraId'],
        [{ ...ok, cameraId: 'a\\b' }, 'cameraId'],
        [{ ...ok, cameraId: '..' }, 'cameraId'],
        [{ ...ok, cameraId: 'a\u0000b' }, 'cameraId'],
        [{ ...ok, cameraId: 'line\nbreak' }, 'cameraId'],
        [{ ...ok, cameraId: 'bidi\u202eflip' }, 'cameraId'],
        [{ ...ok, cameraId: 'é'.repeat(33) }, 'cameraId'], // 66 bytes
        [{ ...ok, ip: undefined }, 'ip'],
        [{ ...ok, ip: 1234 }, 'ip'],
        [{ ...ok, ip: '1.2.3.4/x@evil' }, 'ip'],
        [{ ...ok, ip: 'user@127.0.0.1' }, 'ip'],
        [{ ...ok, ip: 'rtsp://127.0.0.1' }, 'ip'],
        [{ ...ok, ip: '127.0.0.1:554' }, 'ip'],
        [{ ...ok, ip: '127.1' }, 'ip'],
        [{ ...ok, ip: '2130706433' }, 'ip'],
        [{ ...ok, ip: 'fe80::1%eth0' }, 'ip'],
        [{ ...ok, ip: 'a'.repeat(300) }, 'ip'],
        [{ ...ok, port: 0 }, 'port'],
        [{ ...ok, port: 65536 }, 'port'],
        [{ ...ok, port: -1 }, 'port'],
        [{ ...ok, port: 80.5 }, 'port'],
        [{ ...ok, port: '80x' }, 'port'],
        [{ ...ok, port: true }, 'port'],
        [{ ...ok, streamPath: 5 }, 'streamPath'],
        [{ ...ok, streamPath: '/a\r\nInjected: 1' }, 'streamPath'],
        [{ ...ok, username: 5 }, 'username'],
        [{ ...ok, username: 'a\r\nb', password: 'p' }, 'username'],
        [{ ...ok, username: 'u', password: 5 }, 'password'],
        [{ ...ok, username: 'u', password: 'p\r\nq' }, 'password'],
        [{ ...ok, persistent: 'yes' }, 'persistent'],
        [{ ...ok, decode: 'always' }, 'decode'],
        [{ ...ok, rtspTimeoutMs: 10 }, 'rtspTimeoutMs'],
        [{ cameraId: 'x', url: 'http://127.0.0.1/x' }, 'url'],
        [{ cameraId: 'x', url: 'rtsp://127.0.0.1:0/x' }, 'url'],
        [{ cameraId: 'x', url: 'rtsp://127.0.0.1:70000/x' }, 'url'],
        [{ cameraId: 'x', url: 'rtsp://::1/x' }, 'url'],
        [{ cameraId: 'x', url: 'rtsp://127.0.0.1/x\u0000' }, 'url'],
        [{ cameraId: 'x', url: 42 }, 'url'],
        [{ cameraId: 'x', url: 'rtsp://127.0.0.1/x', ip: '127.0.0.1' }, 'url']
      ]
      for (const [json, field] of cases) {
        const r = await request('POST', '/api/cameras/connect', { json })
        assertError(r, 400, 'INVALID_INPUT', field)
      }
    })

    it('bodies: not JSON, not an object, malformed, too large', async () => {
      let r = await request('POST', '/api/cameras/connect', { headers: { ...AUTH, 'content-type': 'text/plain' }, body: '{"cameraId":"x","ip":"127.0.0.1"}' })
      assertError(r, 400, 'INVALID_INPUT', 'body')
      r = await request('POST', '/api/cameras/connect', { json: [1, 2] })
      assertError(r, 400, 'INVALID_INPUT', 'body')
      r = await request('POST', '/api/cameras/disconnect', { json: ['demo'] })
      assertError(r, 400, 'INVALID_INPUT', 'body')
      r = await request('POST', '/api/cameras/disconnect', { json: { cameraId: 12 } })
      assertError(r, 400, 'INVALID_INPUT', 'cameraId')
      r = await request('POST', '/api/cameras/connect', { headers: { ...AUTH, 'content-type': 'application/json' }, body: '{"cameraId": "x",' })
      assertError(r, 400, 'INVALID_INPUT', 'body')
      assert.equal(r.text, '{"error":"body: not valid JSON","code":"INVALID_INPUT"}')
      r = await request('POST', '/api/cameras/connect', { json: { cameraId: 'x', ip: '127.0.0.1', pad: 'x'.repeat(70 * 1024) } })
      assertError(r, 413, 'PAYLOAD_TOO_LARGE', 'body')
    })

    it('paths: ids with path or control characters, broken %-escapes', async () => {
      // ('..' itself cannot be sent: clients resolve it in the path before sending.)
      for (const id of ['a%00b', '..%2F..%2Fetc', 'a%5Cb', 'x%0Ay', 'a%E2%80%AEb']) {
        for (const route of ['status', 'frame', 'mjpeg']) {
          assertError(await request('GET', `/api/cameras/${id}/${route}`), 400, 'INVALID_INPUT', 'cameraId')
        }
      }
      assertError(await request('GET', '/api/cameras/%E0%A4%A/status'), 400, 'INVALID_INPUT', 'path')
    })

    it('query strings: fps, maxWidth, quality out of range or of the wrong type', async () => {
      for (const q of ['fps=0', 'fps=61', 'fps=abc', 'fps=1&fps=2', 'fps[a]=1', 'fps=Infinity']) {
        assertError(await request('GET', `/api/cameras/demo/mjpeg?${q}`), 400, 'INVALID_INPUT', 'fps')
      }
      for (const [q, field] of [['maxWidth=3', 'maxWidth'], ['maxWidth=1e9', 'maxWidth'], ['quality=0', 'quality'], ['quality=x', 'quality']]) {
        assertError(await request('GET', `/api/cameras/demo/frame?${q}`), 400, 'INVALID_INPUT', field)
      }
    })

    it('WebSocket subscribe: fps, cameraId and binary checked', async () => {
      for (const [m, field] of [
        [{ action: 'subscribe', cameraId: 'demo', fps: 0 }, 'fps'],
        [{ action: 'subscribe', cameraId: 'demo', fps: 61 }, 'fps'],
        [{ action: 'subscribe', cameraId: 'demo', fps: 'fast' }, 'fps'],
        [{ action: 'subscribe', cameraId: 'demo', fps: [5] }, 'fps'],
        [{ action: 'subscribe', cameraId: 'a/b' }, 'cameraId'],
        [{ action: 'subscribe', cameraId: 5 }, 'cameraId'],
        [{ action: 'subscribe', cameraId: 'x\u0007' }, 'cameraId'],
        [{ action: 'subscribe', cameraId: 'demo', binary: 'yes' }, 'binary'],
        [{ action: 'subscribe', cameraId: 'demo', maxWidth: 2 }, 'maxWidth'],
        [{ action: 42 }, 'action'],
        [[1, 2], 'action']
      ]) {
        const e = await wsExchange(m)
        assert.equal(e.type, 'error')
        assert.equal(e.code, 'INVALID_INPUT', JSON.stringify(e))
        assert.match(e.error, new RegExp(`^${field}: `), JSON.stringify(e))
      }
      const e = await wsExchange('{"action": "subscribe", "cameraId": ')
      assert.deepEqual([e.code, e.error], ['INVALID_INPUT', 'message: not valid JSON'])
    })

    it('unknown routes are 404 JSON, API or not', async () => {
      for (const [method, path] of [['GET', '/nope'], ['GET', '/api/nope'], ['DELETE', '/api/cameras/demo'],
        ['POST', '/health'], ['GET', '/app.js/x'], ['PUT', '/metrics']]) {
        assertError(await request(method, path), 404, 'NOT_FOUND')
      }
      const w = await openWs(`/../elsewhere?token=${TOKEN}`).catch((e) => ({ error: e }))
      assert.ok(w.status === 404 || w.error, 'no WebSocket outside /ws')
    })
  })

  describe('camera allowlist', () => {
    it('refuses hosts outside CAMKIT_ALLOWED_CAMERA_NETS with 403 HOST_NOT_ALLOWED', async () => {
      for (const json of [
        { cameraId: 'x', ip: '127.0.0.2', port: demoPort }, // loopback, but not listed
        { cameraId: 'x', ip: '10.1.2.3' },
        { cameraId: 'x', ip: '::ffff:10.1.2.3' },
        { cameraId: 'x', ip: '[fd00::1]' },
        { cameraId: 'x', url: `rtsp://127.0.0.2:${demoPort}/demo` },
        // camkit reads the host after the last '@': 10.1.2.3, not 127.0.0.1.
        { cameraId: 'x', url: 'rtsp://127.0.0.1/x@10.1.2.3' },
        { cameraId: 'x', url: `rtsp://${USER}:${PASSWORD}@10.9.9.9:554/s` }
      ]) {
        const r = await request('POST', '/api/cameras/connect', { json })
        assertError(r, 403, 'HOST_NOT_ALLOWED', json.url ? 'url' : 'ip')
      }
      // Nothing was connected, and the demo camera (configured) was never subject to it.
      const { cameras } = (await request('GET', '/api/cameras')).json
      assert.deepEqual(cameras.map((c) => c.cameraId), ['demo'])
      assert.equal(cameras[0].state, 'streaming')
    })

    it('connects listed hosts; a host name is resolved, checked and pinned to its address', async () => {
      let r = await request('POST', '/api/cameras/connect', { json: { cameraId: 'named', ip: 'localhost', port: demoPort, streamPath: '/demo', username: USER, password: PASSWORD } })
      assert.equal(r.status, 200, r.text)
      const s = (await request('GET', '/api/cameras/named/status')).json
      assert.equal(s.url, `rtsp://127.0.0.1:${demoPort}/demo`)
      r = await request('POST', '/api/cameras/connect', { json: { cameraId: 'byurl', url: `rtsp://${USER}:${PASSWORD}@localhost:${demoPort}/demo` } })
      assert.equal(r.status, 200, r.text)
      assert.equal((await request('GET', '/api/cameras/byurl/status')).json.url, `rtsp://127.0.0.1:${demoPort}/demo`)
      for (const id of ['named', 'byurl']) assert.equal((await request('POST', '/api/cameras/disconnect', { json: { cameraId: id } })).status, 200)
    })
  })

  it('never shows a password in a response or the server output, on success or failure', async () => {
    const port = demoPort
    const attempts = [
      { cameraId: 'good', ip: '127.0.0.1', port, streamPath: '/demo', username: USER, password: PASSWORD },
      { cameraId: 'goodurl', url: `rtsp://${USER}:${PASSWORD}@127.0.0.1:${port}/demo` },
      { cameraId: 'wrong', ip: '127.0.0.1', port, streamPath: '/demo', username: USER, password: WRONG_PASSWORD },
      { cameraId: 'wrongurl', url: `rtsp://${USER}:${WRONG_PASSWORD}@127.0.0.1:${port}/demo` },
      { cameraId: 'retrying', ip: '127.0.0.1', port, streamPath: '/demo', username: USER, password: WRONG_PASSWORD, persistent: true },
      { cameraId: 'closed', ip: '127.0.0.1', port: await closedPort(), username: USER, password: PASSWORD },
      { cameraId: 'outside', ip: '10.0.0.9', username: USER, password: PASSWORD },
      { cameraId: 'badport', ip: '127.0.0.1', port: 99999, username: USER, password: PASSWORD },
      { cameraId: 'bad/id', url: `rtsp://${USER}:${PASSWORD}@127.0.0.1:${port}/demo` },
      { cameraId: 'badurl', url: `rtsp://${USER}:${PASSWORD}@127.0.0.1:0/demo` }
    ]
    const statuses = []
    for (const json of attempts) statuses.push((await request('POST', '/api/cameras/connect', { json })).status)
    assert.deepEqual(statuses, [200, 200, 401, 401, 200, 502, 403, 400, 400, 400])
    await request('POST', '/api/cameras/connect', { headers: { ...AUTH, 'content-type': 'application/json' }, body: `{"cameraId":"x","password":"${PASSWORD}"` })
    await request('POST', '/api/cameras/connect', { json: { cameraId: 'x', password: PASSWORD, pad: 'x'.repeat(70 * 1024) } })
    await wsExchange(`{"action":"subscribe","password":"${PASSWORD}"`)
    await sleep(300) // the event log lines of 'retrying' are written
    for (const path of ['/api/cameras', '/api/cameras/good/status', '/api/cameras/goodurl', '/api/cameras/retrying/status', '/metrics']) {
      assert.equal((await request('GET', path)).status, 200, path)
    }
    assert.equal((await request('GET', '/api/cameras/good/frame')).status, 200)
    for (const id of ['good', 'goodurl', 'retrying']) await request('POST', '/api/cameras/disconnect', { json: { cameraId: id } })

    const responses = seen.join('\n')
    assert.ok(responses.includes('"cameraId":"retrying"'), 'the responses were recorded')
    const output = srv.output()
    assert.match(output, /camera "retrying": .*UNAUTHORIZED/, 'the failures were logged')
    for (const secret of [PASSWORD, WRONG_PASSWORD, 'SECRETpw']) {
      assert.ok(!responses.includes(secret), `a response contains ${secret}`)
      assert.ok(!output.includes(secret), `the server output contains ${secret}:\n${output}`)
    }
    assert.ok(!output.includes(TOKEN), 'the server output contains the API token')
  })

  it('the viewer page opened as /?token= streams the demo camera and drops the token from the URL', async () => {
    const browser = await launchChromium()
    try {
      const page = await browser.newPage()
      // JPEG tiles (?video=jpeg): this test is about the token, the MSE path has its own.
      await page.goto(`${srv.base}/?token=${TOKEN}&video=jpeg`)
      await page.waitForFunction(() => {
        const img = document.querySelector('.tile[data-camera="demo"] img.live')
        return img && img.complete && img.naturalWidth > 0
      }, null, { timeout: 15000 })
      assert.equal(await page.locator('.tile[data-camera="demo"] .badge').textContent(), 'streaming')
      assert.equal(new URL(page.url()).search, '?video=jpeg', 'the token is gone from the address bar, the rest stays')
      // The snapshot button fetches with the token.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('.tile[data-camera="demo"] a.snapshot')])
      assert.equal(download.suggestedFilename(), 'demo.jpg')

      // Without it, the page says why nothing works.
      const bare = await browser.newPage()
      await bare.goto(`${srv.base}/`)
      await bare.waitForFunction(() => /authorization/.test(document.getElementById('server-status').textContent), null, { timeout: 5000 })
    } finally {
      await browser.close()
    }
  })
})

describe('access-control pieces', () => {
  it('allowlist: IPv4 and IPv6 networks, single hosts, IPv4-mapped addresses', async () => {
    const a = createAllowlist(' 192.168.1.0/24,fd00:cafe::/32 , 10.0.0.7, ::1')
    assert.deepEqual(a.nets, ['192.168.1.0/24', 'fd00:cafe::/32', '10.0.0.7', '::1'])
    for (const ip of ['192.168.1.1', '192.168.1.255', 'fd00:cafe:1::9', '10.0.0.7', '::1', '::ffff:192.168.1.20']) assert.ok(a.inside(ip), ip)
    for (const ip of ['192.168.2.1', '10.0.0.8', 'fd00:caff::1', '127.0.0.1', '::2', '0.0.0.0', '::']) assert.ok(!a.inside(ip), ip)
    assert.deepEqual(await a.check({ id: 'c', host: '[fd00:cafe::5]', port: 554 }), { id: 'c', host: 'fd00:cafe::5', port: 554 })
    assert.deepEqual(await a.check({ id: 'c', url: 'rtsp://u:p@w@[fd00:cafe::5]:8554/s?x' }), { id: 'c', url: 'rtsp://u:p@w@[fd00:cafe::5]:8554/s?x' })
    await assert.rejects(a.check({ id: 'c', url: 'rtsp://192.168.1.9/a@10.9.9.9/s' }), (e) => e.code === 'HOST_NOT_ALLOWED')
    assert.equal(createAllowlist(undefined), null)
    assert.equal(createAllowlist('  '), null)
    for (const bad of ['10.0.0/8', '10.0.0.0/33', 'fd00::/129', 'example.com', '10.0.0.0/8/8', ',']) {
      assert.throws(() => createAllowlist(bad), /^Error: CAMKIT_ALLOWED_CAMERA_NETS: /, bad)
    }
  })

  it('token comparison and origin lists', () => {
    assert.ok(tokenMatches('abc', 'abc'))
    for (const given of ['abd', 'ab', 'abcd', '', null, undefined]) assert.ok(!tokenMatches('abc', given), String(given))
    assert.deepEqual(parseOrigins(' https://a.example , http://localhost:3000,*'), ['https://a.example', 'http://localhost:3000', '*'])
    assert.deepEqual(parseOrigins(undefined), [])
    for (const bad of ['a.example', 'ftp://a.example', 'https://a.example/x']) assert.throws(() => parseOrigins(bad), /CAMKIT_CORS_ORIGINS/)
  })
})
