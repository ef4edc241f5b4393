'use strict'
// GET /api/cameras/:id/frame outside Express (src/frame-fast-path.js): which requests it
// takes and which it leaves to Express, and that the two answer alike.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')

const { CameraManager, startDemoCamera } = require('../../../bindings-node')
const { frameFastPath, plainQuery } = require('../../../bindings-node/express/frame-fast-path')
const { createMetrics } = require('../../../bindings-node/express/metrics')
const { start } = require('../server')
const { isJpeg } = require('./helpers')

const TOKEN = 'tok-fastpath-0123456789'

describe('frame fast path', () => {
  let demo
  let cams
  let fast // the fast path alone; what it leaves gets 418 "not mine"
  let srv // the whole server, with a token
  const logged = []

  before(async () => {
    demo = await startDemoCamera({ width: 320, height: 180, fps: 15 })
    cams = new CameraManager()
    await cams.connect({ id: 'demo', url: demo.url })
    const handler = frameFastPath({ cameras: cams, metrics: createMetrics(), apiToken: TOKEN, log: (m) => logged.push(m) })
    const server = http.createServer((req, res) => {
      if (!handler(req, res)) res.writeHead(418).end('not mine')
    })
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    fast = { server, base: `http://127.0.0.1:${server.address().port}` }
    srv = await start({ port: 0, cameras: [{ id: 'demo', url: demo.url }], demo: false, log: () => {}, security: { apiToken: TOKEN, corsOrigins: [] } })
    srv.base = `http://127.0.0.1:${srv.port}`
  })
  after(async () => {
    fast.server.closeAllConnections()
    await new Promise((resolve) => fast.server.close(resolve))
    await srv.close()
    cams.close()
    await demo.stop()
  })

  const auth = { authorization: `Bearer ${TOKEN}` }
  const get = (base, path, headers = auth) => fetch(base + path, { headers })

  it('takes plain requests: a JPEG with every header of the route', async () => {
    for (const path of ['/api/cameras/demo/frame', '/api/cameras/demo/frame?maxWidth=160', '/api/cameras/demo/frame?quality=50&maxWidth=160']) {
      const r = await get(fast.base, path)
      assert.equal(r.status, 200, path)
      assert.equal(r.headers.get('content-type'), 'image/jpeg')
      assert.equal(r.headers.get('cache-control'), 'no-store')
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff')
      assert.equal(r.headers.get('etag'), null)
      const body = Buffer.from(await r.arrayBuffer())
      assert.ok(isJpeg(body))
      assert.equal(Number(r.headers.get('content-length')), body.length)
      assert.equal(r.headers.get('x-frame-width'), path.includes('maxWidth') ? '160' : '320')
    }
  })

  it('answers camkit errors itself, as {error, code} with the mapped status', async () => {
    const r = await get(fast.base, '/api/cameras/nope/frame')
    assert.equal(r.status, 404)
    assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8')
    const body = await r.json()
    assert.equal(body.code, 'NOT_FOUND')
    assert.match(body.error, /nope/)
  })

  it('leaves everything else to Express', async () => {
    const cases = [
      ['/api/cameras/demo/frame', {}], // no token
      ['/api/cameras/demo/frame', { authorization: 'Bearer wrong-token-000000' }],
      ['/api/cameras/demo/frame', { ...auth, origin: 'https://elsewhere.example' }], // CORS
      ['/api/cameras/demo/frame?t=1', auth], // a query key the route ignores
      ['/api/cameras/demo/frame?maxWidth=1&maxWidth=2', auth],
      ['/api/cameras/demo/frame?maxWidth[]=1', auth],
      ['/api/cameras/demo/frame?maxWidth=%33%32%30', auth],
      ['/api/cameras/demo/frame?maxWidth=3', auth], // a bad value: Express's 400
      ['/api/cameras/d%65mo/frame', auth],
      ['/api/cameras/../frame', auth],
      ['/api/cameras/demo/frame/', auth],
      ['/API/cameras/demo/frame', auth],
      ['/api/cameras/demo/status', auth]
    ]
    for (const [path, headers] of cases) {
      const r = await get(fast.base, path, headers)
      assert.equal(r.status, 418, `${path} ${JSON.stringify(headers)}`)
      await r.arrayBuffer()
    }
    for (const method of ['HEAD', 'POST']) {
      const r = await fetch(fast.base + '/api/cameras/demo/frame', { method, headers: auth })
      assert.equal(r.status, 418, method)
    }
    const r = await fetch(fast.base + '/api/cameras/demo/frame', { method: 'GET', headers: { ...auth, 'content-type': 'application/json', 'content-length': '2' }, body: '{}' }).catch((e) => e)
    // fetch refuses a GET with a body; a raw request shows it instead.
    assert.ok(r instanceof Error)
    const status = await new Promise((resolve, reject) => {
      const req = http.request(fast.base + '/api/cameras/demo/frame', { method: 'GET', headers: { ...auth, 'content-type': 'application/json', 'content-length': '2' } }, (res) => { res.resume(); resolve(res.statusCode) })
      req.on('error', reject)
      req.end('{}')
    })
    assert.equal(status, 418, 'a GET with a body')
  })

  it('the server answers alike through the fast path and through Express', async () => {
    // `?t=1` is ignored by the route but sends the request through Express.
    for (const [path, status] of [['/api/cameras/demo/frame', 200], ['/api/cameras/nope/frame', 404]]) {
      const viaFast = await get(srv.base, path)
      const viaExpress = await get(srv.base, `${path}?t=1`)
      assert.equal(viaFast.status, status)
      assert.equal(viaExpress.status, status)
      const names = (r) => [...r.headers.keys()].filter((k) => !['date', 'etag', 'keep-alive', 'connection'].includes(k)).sort()
      assert.deepEqual(names(viaFast), names(viaExpress))
      for (const h of ['content-type', 'cache-control', 'x-content-type-options', 'referrer-policy', 'x-frame-options', 'x-frame-width']) {
        assert.equal(viaFast.headers.get(h), viaExpress.headers.get(h), h)
      }
      const [a, b] = [Buffer.from(await viaFast.arrayBuffer()), Buffer.from(await viaExpress.arrayBuffer())]
      if (status === 200) assert.ok(isJpeg(a) && isJpeg(b))
      else assert.deepEqual(JSON.parse(a), JSON.parse(b))
    }
    // Refusals come from Express on both: 401 without the token.
    const r = await get(srv.base, '/api/cameras/demo/frame', {})
    assert.equal(r.status, 401)
    assert.equal((await r.json()).code, 'UNAUTHENTICATED')
  })

  it('plainQuery: the options of a plain query, null for anything Express must parse', () => {
    assert.deepEqual(plainQuery(undefined), {})
    assert.deepEqual(plainQuery(''), {})
    assert.deepEqual(plainQuery('maxWidth=320&quality=5'), { maxWidth: '320', quality: '5' })
    assert.deepEqual(plainQuery('maxWidth='), { maxWidth: '' })
    for (const q of ['t=1', 'maxWidth=1&maxWidth=2', 'maxWidth[]=1', 'a[b]=1', 'maxWidth=%31', '__proto__=1']) {
      assert.equal(plainQuery(q), null, q)
    }
    assert.deepEqual(logged, [])
  })
})
