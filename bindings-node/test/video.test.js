'use strict'
// cameras.subscribeVideo(): the demo camera's H.264 as fragmented MP4 (or Annex B access
// units), without decoding, as Buffers over camkit's own bytes.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { CameraManager, startDemoCamera } = require('..')
const { sleep, failure } = require('./helpers')

/** The four-character type of the first MP4 box in `buf`. */
const boxType = (buf, at = 0) => buf.toString('latin1', at + 4, at + 8)

/** Collects chunks until `done(chunks)` is true or `ms` pass. */
function collect (cams, id, opts, done, ms = 5000) {
  const chunks = []
  const errors = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { sub.unsubscribe(); reject(new Error(`only ${chunks.length} chunks in ${ms} ms`)) }, ms)
    const sub = cams.subscribeVideo(id, (err, c) => {
      if (err) return errors.push(err)
      chunks.push(c)
      if (done(chunks)) {
        clearTimeout(timer)
        sub.unsubscribe()
        resolve({ chunks, errors, sub })
      }
    }, opts)
  })
}

describe('video subscriptions', () => {
  let demo
  let cams
  before(async () => {
    demo = await startDemoCamera({ width: 640, height: 360, fps: 15 })
    cams = new CameraManager()
    await cams.connect({ id: 'demo', url: demo.url })
  })
  after(async () => {
    cams.close()
    await demo.stop()
  })

  it('delivers an init segment, then a media segment per frame starting at a keyframe', async () => {
    const { chunks } = await collect(cams, 'demo', undefined, (c) => c.length >= 16)
    const [init, first, ...rest] = chunks
    assert.equal(init.kind, 'init')
    assert.ok(Buffer.isBuffer(init.data))
    assert.equal(boxType(init.data), 'ftyp')
    assert.equal(boxType(init.data, init.data.readUInt32BE(0)), 'moov')
    assert.match(init.codec, /^avc1\.[0-9a-f]{6}$/)
    assert.equal(init.mimeType, `video/mp4; codecs="${init.codec}"`)
    assert.equal(init.keyframe, false)
    assert.equal(first.kind, 'media')
    assert.equal(first.keyframe, true, 'the first picture is a keyframe')
    assert.equal(boxType(first.data), 'moof')
    for (const c of rest) {
      assert.equal(c.kind, 'media')
      assert.equal(c.codec, init.codec)
      assert.equal(boxType(c.data), 'moof')
    }
    // Presentation times go up by a frame (90 kHz / 15 fps = 6000) at a time; a joiner
    // gets the GOP so far at once, so the times say more than the arrival times.
    const pts = chunks.slice(1).map((c) => c.pts90k)
    for (let i = 1; i < pts.length; i++) assert.ok(pts[i] > pts[i - 1], `pts ${pts[i]} after ${pts[i - 1]}`)
    const step = (pts[pts.length - 1] - pts[0]) / (pts.length - 1)
    assert.ok(Math.abs(step - 6000) < 600, `pts step ${step}`)
    // ageMs: since camkit received the frame; the replayed GOP's frames at most its 2 s old
    // (plus the delivery of 16 chunks).
    for (const c of chunks) assert.ok(Number.isFinite(c.ageMs) && c.ageMs >= 0 && c.ageMs < 3000, `ageMs ${c.ageMs}`)
    assert.ok(chunks.some((c) => c.ageMs > 0))
  })

  it('video does not make an on-demand camera decode', async () => {
    const before = cams.status('demo').framesDecoded
    await collect(cams, 'demo', undefined, (c) => c.length >= 10)
    assert.equal(cams.status('demo').framesDecoded, before)
  })

  it('format annexb gives H.264 access units with start codes, parameter sets first', async () => {
    const { chunks } = await collect(cams, 'demo', { format: 'annexb' }, (c) => c.length >= 5)
    assert.equal(chunks[0].kind, 'accessUnit')
    assert.equal(chunks[0].keyframe, true)
    for (const c of chunks) {
      assert.equal(c.kind, 'accessUnit')
      assert.ok(c.data.subarray(0, 4).equals(Buffer.from([0, 0, 0, 1])) || c.data.subarray(0, 3).equals(Buffer.from([0, 0, 1])))
    }
    // An SPS (NAL type 7) in the keyframe's access unit.
    const au = chunks[0].data
    let sps = false
    for (let i = 0; i + 3 < au.length; i++) {
      if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1 && (au[i + 3] & 0x1f) === 7) sps = true
    }
    assert.ok(sps, 'SPS in the keyframe')
  })

  it('subscribers of one camera share the segments bytes (one mux, no copy each)', async () => {
    // Two subscriptions opened together get the same GOP: the same segments.
    const got = [[], []]
    const subs = got.map((list) => cams.subscribeVideo('demo', (err, c) => { if (!err) list.push(c) }))
    while (got[0].length < 3 || got[1].length < 3) await sleep(20)
    for (const s of subs) s.unsubscribe()
    const a = got[0][1]
    const b = got[1].find((c) => c.kind === 'media' && c.pts90k === a.pts90k)
    assert.ok(b, 'the same frame in both')
    assert.notEqual(a.data, b.data)
    const i = a.data.length - 1
    const orig = b.data[i]
    a.data[i] ^= 0xff // what users are told never to do: it shows the memory is shared
    try {
      assert.equal(b.data[i], orig ^ 0xff)
    } finally {
      a.data[i] ^= 0xff
    }
  })

  it('unsubscribe() is final, pause() holds delivery and the queue skips to a keyframe', async () => {
    const chunks = []
    const sub = cams.subscribeVideo('demo', (err, c) => { if (!err) chunks.push(c) }, { maxQueueBytes: 65536 })
    while (chunks.length < 3) await sleep(20)
    sub.pause()
    assert.equal(sub.paused, true)
    await sleep(50)
    const n = chunks.length
    // The demo camera's 640x360 sends some 10 kB/s: 8 s is beyond a 64 KiB queue.
    await sleep(8000)
    assert.equal(chunks.length, n, 'nothing delivered while paused')
    sub.resume()
    // What was queued before the queue filled comes first, then (after the skipped
    // frames) the next keyframe: wait for it.
    await sleep(3000)
    assert.ok(sub.skipped > 0, `skipped ${sub.skipped}`)
    const media = chunks.filter((c) => c.kind === 'media')
    let gaps = 0
    for (let i = 1; i < media.length; i++) {
      const step = media[i].pts90k - media[i - 1].pts90k
      if (step > 15000) {
        gaps++
        assert.ok(media[i].keyframe, `after a gap of ${step} (skipped frames) comes a keyframe`)
      } else {
        assert.ok(step > 0, `a step of ${step}`)
      }
    }
    assert.ok(gaps >= 1, 'the skipped frames show as a gap')
    sub.unsubscribe()
    assert.equal(sub.active, false)
    const m = chunks.length
    await sleep(300)
    assert.equal(chunks.length, m, 'no chunk after unsubscribe()')
    assert.ok(sub.delivered >= m - 1)
  })

  it('names the field at fault, and the camera', async () => {
    let e = await failure(() => cams.subscribeVideo('demo', () => {}, { format: 'h264' }))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^format: /)
    e = await failure(() => cams.subscribeVideo('demo', () => {}, { maxQueueBytes: 1000 }))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /maxQueueBytes/)
    e = await failure(() => cams.subscribeVideo('demo', 'not a function'))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^callback: /)
    e = await failure(() => cams.subscribeVideo('nope', () => {}))
    assert.equal(e.code, 'NOT_FOUND')
  })

  it('ends with one CLOSED call when the camera is disconnected', async () => {
    await cams.connect({ id: 'second', url: demo.url })
    const calls = []
    const sub = cams.subscribeVideo('second', (err, c) => calls.push(err || c))
    while (calls.length < 2) await sleep(20)
    await cams.disconnect('second')
    const deadline = Date.now() + 5000
    while (!calls.some((c) => c instanceof Error) && Date.now() < deadline) await sleep(20)
    const errs = calls.filter((c) => c instanceof Error)
    assert.equal(errs.length, 1)
    assert.equal(errs[0].code, 'CLOSED')
    assert.equal(calls[calls.length - 1], errs[0], 'the error is the last call')
    assert.equal(sub.active, false)
  })
})
