'use strict'
// A camera with a sub-stream through the server: connected with `subStream` in the connect
// body (1080p main, 640x360 sub-stream from gst-rtsp-server); GET /frame?maxWidth=640 is
// decoded by the sub-stream (the status JSON's subStream.framesDecoded), a full-size frame
// and ?stream=main by the main stream; a bad ?stream= is a 400 naming the field.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { startServer, startGstServer, isJpeg } = require('./helpers')

async function status (srv) {
  return (await fetch(`${srv.base}/api/cameras/two/status`)).json()
}

async function frame (srv, query) {
  const r = await fetch(`${srv.base}/api/cameras/two/frame${query}`)
  assert.equal(r.status, 200, await r.clone().text())
  const jpeg = Buffer.from(await r.arrayBuffer())
  assert.ok(isJpeg(jpeg))
  return Number(r.headers.get('x-frame-width'))
}

describe('a camera with a sub-stream through the server', () => {
  let gst
  let srv
  before(async () => {
    gst = await startGstServer()
    srv = await startServer({ CAMKIT_DEMO: '0', EXPECT_CAMERAS: '0' })
  })
  after(async () => {
    await srv?.stop()
    await gst?.stop()
  })

  it('connects with subStream in the body', async () => {
    const r = await fetch(`${srv.base}/api/cameras/connect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cameraId: 'two', url: `rtsp://127.0.0.1:${gst.port}/h264-1080`, subStream: '/high' })
    })
    assert.equal(r.status, 200, await r.clone().text())
    const s = await status(srv)
    assert.equal(s.state, 'streaming')
    assert.equal(s.subStream.state, 'streaming', JSON.stringify(s.subStream))
    assert.deepEqual([s.subStream.width, s.subStream.height], [640, 360])
  })

  it('serves maxWidth=640 from the sub-stream, full size and stream=main from the main', async () => {
    const before = await status(srv)
    assert.equal(await frame(srv, '?maxWidth=640'), 640)
    const mid = await status(srv)
    assert.ok(mid.subStream.framesDecoded > before.subStream.framesDecoded, 'the sub-stream decoded it')
    assert.equal(mid.framesDecoded, before.framesDecoded, 'the main stream decoded nothing')
    assert.equal(await frame(srv, '?maxWidth=640&stream=main'), 640)
    const main = await status(srv)
    assert.ok(main.framesDecoded > mid.framesDecoded, 'stream=main decoded the main stream')
    assert.equal(await frame(srv, ''), 1920)
  })

  it('a bad stream is a 400 naming the field', async () => {
    const r = await fetch(`${srv.base}/api/cameras/two/frame?stream=hd`)
    assert.equal(r.status, 400)
    const body = await r.json()
    assert.equal(body.code, 'INVALID_INPUT')
    assert.match(body.error, /^stream: /)
  })
})
