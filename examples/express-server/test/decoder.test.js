'use strict'
// The decoder choice through the server: the connect body's `decoder` (400 naming the field
// on a bad value) and CAMKIT_DECODER as the server's default, on a server whose machine
// lacks libavcodec (CAMKIT_LIBAVCODEC pointed at nothing).
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { connectConfig, defaultDecoder } = require('../../../bindings-node/express/validate')
const { fromEnv } = require('../../../bindings-node/express/config')
const { startDemoCamera } = require('../../../bindings-node')
const { startServer } = require('./helpers')

const BODY = { cameraId: 'a', ip: '127.0.0.1' }

async function post (srv, json) {
  const r = await fetch(`${srv.base}/api/cameras/connect`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(json)
  })
  const text = await r.text()
  return { status: r.status, text, json: JSON.parse(text) }
}

describe('decoder choice', () => {
  it('connect bodies: decoder passes through, bad values name the field', () => {
    for (const d of ['auto', 'openh264', 'libavcodec']) {
      assert.equal(connectConfig({ ...BODY, decoder: d }, {}).decoder, d)
    }
    assert.equal(connectConfig(BODY, {}).decoder, undefined, "camkit's default")
    for (const bad of ['ffmpeg2', 'OpenH264 ', 42, true]) {
      assert.throws(() => connectConfig({ ...BODY, decoder: bad }, {}), (e) => {
        assert.equal(e.code, 'INVALID_INPUT')
        assert.match(e.message, /^decoder: must be one of auto, openh264, libavcodec/)
        return true
      })
    }
  })

  it('CAMKIT_DECODER is the default; the body wins; a bad value stops the start', () => {
    const env = { CAMKIT_DECODER: 'openh264' }
    assert.equal(defaultDecoder(env), 'openh264')
    assert.equal(connectConfig(BODY, env).decoder, 'openh264')
    assert.equal(connectConfig({ ...BODY, decoder: 'libavcodec' }, env).decoder, 'libavcodec')
    assert.equal(defaultDecoder({ CAMKIT_DECODER: '' }), undefined)
    assert.throws(() => defaultDecoder({ CAMKIT_DECODER: 'gpu' }), /^Error: CAMKIT_DECODER: must be one of/)
    assert.throws(() => fromEnv({ CAMKIT_DECODER: 'gpu' }), /CAMKIT_DECODER/)
    const cams = fromEnv({ CAMKIT_DECODER: 'openh264', CAMKIT_CAMERAS: JSON.stringify([{ id: 'c', url: 'rtsp://127.0.0.1/x' }]) })
    assert.equal(cams[0].decoder, 'openh264')
  })

  describe('server', () => {
    let demo
    let srv
    let without // a server on a machine without libavcodec that defaults to it
    before(async () => {
      demo = await startDemoCamera({ width: 320, height: 240, fps: 15 })
      ;[srv, without] = await Promise.all([
        startServer({ CAMKIT_DEMO: '1' }),
        startServer({
          CAMKIT_DEMO: '0',
          CAMKIT_DECODER: 'libavcodec',
          CAMKIT_LIBAVCODEC: '/nonexistent/libavcodec.so.59',
          CAMKIT_CAMERAS: JSON.stringify([{ cameraId: 'cfg', url: demo.url, decoder: 'openh264' }])
        })
      ])
    })
    after(async () => {
      await Promise.all([srv?.stop(), without?.stop()])
      await demo?.stop()
    })

    it('a bad decoder in a connect body is a 400 naming it', async () => {
      const r = await post(srv, { ...BODY, decoder: 'quicksync' })
      assert.equal(r.status, 400)
      assert.equal(r.json.code, 'INVALID_INPUT')
      assert.match(r.json.error, /^decoder: /)
    })

    it('CAMKIT_DECODER applies to connects without a decoder; a camera entry may override it', async () => {
      // The configured camera asked for openh264 and decodes.
      const f = await fetch(`${without.base}/api/cameras/cfg/frame`)
      assert.equal(f.status, 200)
      assert.equal(f.headers.get('content-type'), 'image/jpeg')
      // A connect without `decoder` gets CAMKIT_DECODER=libavcodec, which is missing here.
      const r = await post(without, { cameraId: 'x', url: demo.url })
      assert.equal(r.status, 400)
      assert.equal(r.json.code, 'INVALID_INPUT')
      assert.match(r.json.error, /^decoder: libavcodec cannot be loaded/)
      assert.match(r.json.error, /apt-get install libavcodec/)
      // Naming openh264 in the body works there.
      const ok = await post(without, { cameraId: 'y', url: demo.url, decoder: 'openh264' })
      assert.equal(ok.status, 200, ok.text)
    })
  })
})
