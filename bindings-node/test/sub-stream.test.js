'use strict'
// A camera with a sub-stream through the binding: a 1080p main stream and a 640x360
// sub-stream from gst-rtsp-server, behind digest authentication (the camera's
// credentials apply to the sub-stream's path). Which stream served a snapshot is read
// from the status: each stream counts the frames it decoded. Which stream a video
// subscription carries is read from its init segment (the avc1 sample entry's size).
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { CameraManager } = require('..')
const { startGstServer, failure, sleep } = require('./helpers')

const USER = 'camkit'
const PASSWORD = 's3cr@t:pass/word'

describe('a camera with a sub-stream', () => {
  let gst
  let cams
  before(async () => {
    gst = await startGstServer()
    cams = new CameraManager()
  })
  after(async () => {
    cams?.close()
    await gst?.stop()
  })

  const decoded = () => {
    const s = cams.status('two')
    return [s.framesDecoded, s.subStream.framesDecoded]
  }

  it('connects both streams and reports the sub-stream apart', async () => {
    const st = await cams.connect({
      id: 'two',
      url: `rtsp://127.0.0.1:${gst.port}/auth/h264-1080`,
      username: USER,
      password: PASSWORD,
      subStream: '/auth/h264-360'
    })
    assert.deepEqual([st.width, st.height], [1920, 1080])
    assert.equal(st.subStream.state, 'streaming', JSON.stringify(st.subStream))
    assert.deepEqual([st.subStream.width, st.subStream.height], [640, 360])
    assert.equal(st.subStream.off, undefined)
    assert.ok(!JSON.stringify(st).includes(PASSWORD))
  })

  it('takes maxWidth 640 snapshots from the sub-stream, full size from the main', async () => {
    // Frames arrive undecoded (decode onDemand, nobody watching) for a moment, so that the
    // snapshot's catch-up decodes on the stream that serves it (not the picture of connect).
    await sleep(400)
    const before = decoded()
    const small = await cams.snapshot('two', { maxWidth: 640 })
    assert.deepEqual([small.width, small.height], [640, 360])
    const mid = decoded()
    assert.ok(mid[1] > before[1], `the sub-stream decoded it: ${before} -> ${mid}`)
    assert.equal(mid[0], before[0], `the main stream decoded nothing: ${before} -> ${mid}`)
    const full = await cams.snapshot('two')
    assert.deepEqual([full.width, full.height], [1920, 1080])
    assert.ok(decoded()[0] > mid[0], 'the main stream decoded the full-size one')
    const main = await cams.snapshot('two', { maxWidth: 640, stream: 'main' })
    assert.equal(main.width, 640)
  })

  it('refuses an unknown stream naming the field', async () => {
    const e = await failure(() => cams.snapshot('two', { stream: 'hd' }))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.equal(e.field, 'stream', e.message)
    assert.throws(() => cams.subscribe('two', { fps: 1, stream: 'hd' }, () => {}), (err) => err.field === 'stream')
    const v = await failure(() => cams.subscribeVideo('two', () => {}, { stream: 'hd' }))
    assert.equal(v.code, 'INVALID_INPUT')
    assert.equal(v.field, 'stream', v.message)
  })

  it("subscribeVideo carries the sub-stream with stream: 'sub', the main stream by default", async () => {
    /** The picture size in the first init segment of a video subscription with `opts`. */
    const initSize = (opts) => new Promise((resolve, reject) => {
      const sub = cams.subscribeVideo('two', (err, chunk) => {
        if (err) return reject(err)
        if (chunk.kind !== 'init') return
        sub.unsubscribe()
        // The sample entry in stsd (ftyp's brands may name avc1 too).
        const at = chunk.data.indexOf('avc1', chunk.data.indexOf('stsd', 0, 'latin1'), 'latin1')
        if (at < 0) return reject(new Error('no avc1 sample entry in the init segment'))
        resolve([chunk.data.readUInt16BE(at + 28), chunk.data.readUInt16BE(at + 30)])
      }, opts)
    })
    assert.deepEqual(await initSize({ stream: 'sub' }), [640, 360])
    assert.deepEqual(await initSize({}), [1920, 1080])
    assert.deepEqual(await initSize({ stream: 'main' }), [1920, 1080])
  })

  it('refuses a bad subStream naming the field, never echoing a password', async () => {
    const e = await failure(() => cams.connect({ id: 'bad', url: `rtsp://127.0.0.1:${gst.port}/h264-720`, subStream: 'rtsp://u:hunter2@bad host/x' }))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.equal(e.field, 'subStream', e.message)
    assert.ok(!e.message.includes('hunter2'), e.message)
  })
})
