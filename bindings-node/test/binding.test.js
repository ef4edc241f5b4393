'use strict'
// The Node binding against the built-in demo camera, gst-rtsp-server and misbehaving
// servers: results, err.code for every failure a caller must tell apart, and the life cycle
// (close, garbage collection, process exit).
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const { CameraManager, startDemoCamera } = require('..')
const { startGstServer, closedPort, silentServer, failure, sleep, isJpeg } = require('./helpers')

const GST_USER = 'camkit'
const GST_PASSWORD = 's3cr@t:pass/word'

describe('with the demo camera', () => {
  let demo
  let cams
  before(async () => {
    demo = await startDemoCamera({ width: 640, height: 360, fps: 15 })
    cams = new CameraManager()
  })
  after(async () => {
    cams.close()
    await demo.stop()
  })

  it('starts on a free port and says where', () => {
    assert.match(demo.url, /^rtsp:\/\/127\.0\.0\.1:\d+\/demo$/)
    assert.ok(demo.port > 0)
    assert.equal(demo.url, `rtsp://127.0.0.1:${demo.port}/demo`)
  })

  it('connects and reports status', async () => {
    const events = []
    const listener = cams.onEvent((e) => events.push(e))
    const st = await cams.connect({ id: 'demo', url: demo.url })
    assert.equal(st.id, 'demo')
    assert.equal(st.state, 'streaming')
    assert.equal(st.url, demo.url)
    assert.equal(st.codec, 'h264')
    assert.equal(st.width, 640)
    assert.equal(st.height, 360)
    assert.equal(st.transport, 'tcp')
    assert.equal(st.decode, 'onDemand')
    assert.equal(typeof st.framesReceived, 'number')
    assert.deepEqual(cams.list().map((s) => s.id), ['demo'])
    assert.equal(cams.status('demo').id, 'demo')
    await sleep(100)
    listener.remove()
    assert.ok(events.some((e) => e.cameraId === 'demo' && e.state === 'streaming'), JSON.stringify(events))
    assert.equal(typeof events[0].atMs, 'number')
  })

  it('takes snapshots, full size and scaled', async () => {
    const f = await cams.snapshot('demo')
    assert.ok(isJpeg(f.jpeg), 'JPEG magic')
    assert.equal(f.width, 640)
    assert.equal(f.height, 360)
    assert.ok(f.seq >= 1)
    assert.ok(Math.abs(f.capturedAt - Date.now()) < 60000, `capturedAt ${f.capturedAt}`)
    const small = await cams.snapshot('demo', { maxWidth: 320, quality: 50 })
    assert.ok(isJpeg(small.jpeg))
    assert.equal(small.width, 320)
    assert.equal(small.height, 180)
    assert.ok(small.jpeg.length < f.jpeg.length)
  })

  it('delivers subscribed frames at the requested rate', async () => {
    const frames = []
    const errors = []
    const sub = cams.subscribe('demo', { fps: 5, maxWidth: 320 }, (err, frame) => {
      if (err) errors.push(err)
      else frames.push(frame)
    })
    assert.equal(sub.cameraId, 'demo')
    assert.equal(sub.active, true)
    await sleep(2000)
    sub.unsubscribe()
    const n = frames.length
    assert.ok(n >= 7 && n <= 12, `${n} frames in 2 s at 5 fps`)
    assert.deepEqual(errors, [])
    for (const f of frames) {
      assert.ok(isJpeg(f.jpeg))
      assert.equal(f.width, 320)
    }
    for (let i = 1; i < frames.length; i++) assert.ok(frames[i].seq > frames[i - 1].seq, 'seq increases')
    assert.equal(sub.active, false)
    assert.equal(sub.delivered, n)
    await sleep(400)
    assert.equal(frames.length, n, 'no frame after unsubscribe()')
  })

  it('a slow callback gets the newest frames, no backlog, and does not starve the event loop', async () => {
    const seqs = []
    const sub = cams.subscribe('demo', { fps: 30 }, (err, f) => {
      assert.equal(err, null)
      seqs.push(f.seq)
      const until = Date.now() + 300
      while (Date.now() < until) { /* a callback that blocks the JS thread */ }
    })
    const t0 = Date.now()
    await sleep(1500)
    const late = Date.now() - t0 - 1500
    sub.unsubscribe()
    assert.ok(late < 700, `a 1.5 s timer fired ${late} ms late`)
    assert.ok(seqs.length >= 2 && seqs.length <= 7, `${seqs.length} calls of a 300 ms callback in ~1.5 s`)
    // 15 fps camera, 300 ms per callback: each call skips the pictures that came meanwhile.
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] - seqs[i - 1] >= 3, `seqs ${seqs}`)
    await sleep(400)
  })

  it('changes the decode policy', () => {
    cams.setDecodePolicy('demo', 'continuous')
    assert.equal(cams.status('demo').decode, 'continuous')
    cams.setDecodePolicy('demo', 'onDemand')
    assert.throws(() => cams.setDecodePolicy('demo', 'sometimes'), (e) => e.code === 'INVALID_INPUT' && /^decode/.test(e.message))
  })

  it('refuses a second camera with the same id', async () => {
    const e = await failure(() => cams.connect({ id: 'demo', url: demo.url }))
    assert.equal(e.code, 'ALREADY_EXISTS')
  })

  it('rejects bad input with INVALID_INPUT naming the field', async () => {
    const cases = [
      [{ id: 'x' }, 'host'],
      [{ id: 'a/b', host: 'h' }, 'id'],
      [{ host: 'h' }, 'id'],
      [{ id: 'x', host: 'h', port: 'abc' }, 'port'],
      [{ id: 'x', host: 'h', port: 70000 }, 'port'],
      [{ id: 'x', host: 'bad host' }, 'host'],
      [{ id: 'x', host: 'h', path: 'no-slash' }, 'path'],
      [{ id: 'x', host: 'h', transport: 'carrier-pigeon' }, 'transport'],
      [{ id: 'x', host: 'h', jpegQuality: 0 }, 'jpegQuality'],
      [{ id: 'x', host: 'h', rtspTimeoutMs: 0 }, 'rtspTimeoutMs'],
      [{ id: 'x', url: 'http://h/p' }, 'url'],
      [5, 'config'],
      [undefined, 'config']
    ]
    for (const [config, field] of cases) {
      const e = await failure(() => cams.connect(config))
      assert.ok(e instanceof Error)
      assert.equal(e.code, 'INVALID_INPUT', `${JSON.stringify(config)}: ${e.code} ${e.message}`)
      assert.ok(e.message.startsWith(`${field}:`), `${JSON.stringify(config)}: ${e.message}`)
      assert.equal(e.field, field, `err.field of ${JSON.stringify(config)}`)
      assert.equal(e.status, undefined, 'no server answered')
    }
    let e = await failure(() => cams.snapshot('demo', { maxWidth: 3 }))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^maxWidth/)
    assert.equal(e.field, 'maxWidth')
    // Thrown synchronously: the same fields as a rejection.
    e = await failure(() => cams.subscribe('demo', { fps: 0 }, () => {}))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^fps/)
    assert.equal(e.field, 'fps')
    e = await failure(() => cams.subscribe('demo', { fps: 5 }, 'not a function'))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^callback/)
    assert.equal(e.field, 'callback')
    e = await failure(() => startDemoCamera({ width: 7 }))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^width/)
    assert.equal(e.field, 'width')
    e = await failure(() => cams.disconnect('nobody'))
    assert.equal(e.code, 'NOT_FOUND')
    assert.equal(e.field, undefined, 'an error about no field has none')
  })

  it('says NOT_FOUND for an unknown camera', async () => {
    for (const fn of [
      () => cams.status('nope'),
      () => cams.snapshot('nope'),
      () => cams.disconnect('nope'),
      () => cams.subscribe('nope', { fps: 1 }, () => {}),
      () => cams.setDecodePolicy('nope', 'continuous')
    ]) {
      const e = await failure(fn)
      assert.equal(e.code, 'NOT_FOUND', e.message)
      assert.match(e.message, /"nope"/)
    }
  })

  it('says UNREACHABLE for a closed port', async () => {
    const port = await closedPort()
    const e = await failure(() => cams.connect({ id: 'closed', host: '127.0.0.1', port }))
    assert.equal(e.code, 'UNREACHABLE')
    assert.match(e.message, /refused/i)
    assert.throws(() => cams.status('closed'), (e) => e.code === 'NOT_FOUND', 'a failed camera is forgotten')
  })

  it('says TIMEOUT for a camera that accepts and never answers', async () => {
    const srv = await silentServer()
    try {
      const t0 = Date.now()
      const e = await failure(() => cams.connect({ id: 'silent', host: '127.0.0.1', port: srv.port, rtspTimeoutMs: 500 }))
      assert.equal(e.code, 'TIMEOUT', e.message)
      assert.ok(Date.now() - t0 < 5000)
    } finally {
      await srv.close()
    }
  })

  it('says NO_FRAME for a persistent camera without a picture yet', async () => {
    const port = await closedPort()
    // A persistent camera stays and retries; connect reports the failure either way.
    try {
      const st = await cams.connect({ id: 'later', host: '127.0.0.1', port, persistent: true })
      assert.equal(st.lastError.code, 'UNREACHABLE')
    } catch (e) {
      assert.equal(e.code, 'UNREACHABLE')
    }
    assert.notEqual(cams.status('later').state, 'streaming')
    assert.equal(cams.status('later').lastError.code, 'UNREACHABLE')
    const s = await failure(() => cams.snapshot('later'))
    assert.equal(s.code, 'NO_FRAME', s.message)
    await cams.disconnect('later')
  })

  it('ends subscriptions with CLOSED when the camera is disconnected', async () => {
    await cams.connect({ id: 'short', url: demo.url })
    let ended = null
    const sub = cams.subscribe('short', { fps: 5 }, (err) => { if (err) ended = err })
    await sleep(300)
    await cams.disconnect('short')
    for (let i = 0; i < 50 && !ended; i++) await sleep(20)
    assert.equal(ended?.code, 'CLOSED')
    assert.equal(sub.active, false)
    assert.throws(() => cams.status('short'), (e) => e.code === 'NOT_FOUND')
  })

  it('a manager can have a runtime of its own', async () => {
    const m = new CameraManager({ workerThreads: 1 })
    try {
      await m.connect({ id: 'own', url: demo.url })
      assert.ok(isJpeg((await m.snapshot('own')).jpeg))
    } finally {
      m.close()
    }
    assert.throws(() => new CameraManager({ workerThreads: 0 }), (e) => e.code === 'INVALID_INPUT' && /^workerThreads/.test(e.message))
    assert.throws(() => new CameraManager('fast'), (e) => e.code === 'INVALID_INPUT' && /^options/.test(e.message))
    assert.equal(new CameraManager(null).closed, false)
  })

  it('after close(), every call fails with CLOSED', async () => {
    const m = new CameraManager()
    await m.connect({ id: 'demo', url: demo.url })
    let ended = null
    m.subscribe('demo', { fps: 5 }, (err) => { if (err) ended = err })
    m.close()
    m.close()
    assert.equal(m.closed, true)
    for (const fn of [
      () => m.connect({ id: 'again', url: demo.url }),
      () => m.status('demo'),
      () => m.list(),
      () => m.snapshot('demo'),
      () => m.disconnect('demo'),
      () => m.disconnectAll(),
      () => m.subscribe('demo', { fps: 5 }, () => {}),
      () => m.onEvent(() => {})
    ]) {
      const e = await failure(fn)
      assert.equal(e.code, 'CLOSED', e.message)
    }
    for (let i = 0; i < 50 && !ended; i++) await sleep(20)
    assert.equal(ended?.code, 'CLOSED', 'the subscription ended')
  })
})

describe('with gst-rtsp-server', () => {
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

  it('connects to a 720p H.264 stream and snapshots it', async () => {
    const st = await cams.connect({ id: 'hd', host: '127.0.0.1', port: gst.port, path: '/h264-720' })
    assert.equal(st.width, 1280)
    assert.equal(st.height, 720)
    const f = await cams.snapshot('hd', { maxWidth: 640 })
    assert.ok(isJpeg(f.jpeg))
    assert.equal(f.width, 640)
    assert.equal(f.height, 360)
    await cams.disconnect('hd')
  })

  it('says UNAUTHORIZED for a wrong password, never echoing it', async () => {
    const e = await failure(() => cams.connect({
      id: 'auth', host: '127.0.0.1', port: gst.port, path: '/auth/h264-1080', username: GST_USER, password: 'wrong-hunter2'
    }))
    assert.equal(e.code, 'UNAUTHORIZED')
    assert.equal(e.status, 401, 'the RTSP status the camera answered')
    assert.equal(e.field, undefined)
    assert.match(e.message, /username\/password/)
    assert.ok(!e.message.includes('hunter2'))
  })

  it('connects with the right password, special characters and all', async () => {
    const st = await cams.connect({
      id: 'auth', host: '127.0.0.1', port: gst.port, path: '/auth/h264-1080', username: GST_USER, password: GST_PASSWORD
    })
    assert.equal(st.width, 1920)
    assert.ok(!JSON.stringify(st).includes(GST_PASSWORD))
    await cams.disconnect('auth')
  })

  it('says UNSUPPORTED_CODEC for H.265 on OpenH264 (H.265 needs libavcodec)', async () => {
    const e = await failure(() => cams.connect({ id: 'hevc', host: '127.0.0.1', port: gst.port, path: '/h265', decoder: 'openh264' }))
    assert.equal(e.code, 'UNSUPPORTED_CODEC')
  })
})

/** Runs `script` in a child node process; resolves with its exit code, output and duration. */
function runNode (script, args = []) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const child = spawn(process.execPath, [...args, '-e', script], {
      cwd: path.resolve(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`child did not exit within 15 s:\n${out}`)) }, 15000)
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, ms: Date.now() - t0 }) })
  })
}

describe('life cycle', () => {
  it('the process exits by itself with cameras live, subscribed and listened to', async () => {
    const r = await runNode(`
      const { CameraManager, startDemoCamera } = require('.')
      ;(async () => {
        const demo = await startDemoCamera({ width: 320, height: 180 })
        const cams = new CameraManager()
        cams.onEvent(() => {})
        await cams.connect({ id: 'demo', url: demo.url })
        let n = 0
        cams.subscribe('demo', { fps: 15 }, () => { n++ })
        await new Promise((r) => setTimeout(r, 500))
        globalThis.keep = [demo, cams]
        console.log('END OF SCRIPT frames=' + n)
      })()
    `)
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /END OF SCRIPT frames=[1-9]/)
    assert.ok(r.ms < 6000, `exited after ${r.ms} ms`)
  })

  it('callbacks do not keep the process alive after close()', async () => {
    const r = await runNode(`
      const { CameraManager, startDemoCamera } = require('.')
      ;(async () => {
        const demo = await startDemoCamera({ width: 320, height: 180 })
        const cams = new CameraManager()
        cams.onEvent(() => {})
        await cams.connect({ id: 'demo', url: demo.url })
        cams.subscribe('demo', { fps: 15 }, () => {})
        cams.close()
        await demo.stop()
        console.log('CLOSED')
      })()
    `)
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /CLOSED/)
    assert.ok(r.ms < 6000, `exited after ${r.ms} ms`)
  })

  it('a garbage-collected manager stops its cameras', async () => {
    const r = await runNode(`
      const { CameraManager, startDemoCamera } = require('.')
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
      ;(async () => {
        const demo = await startDemoCamera({ width: 320, height: 180 })
        await (async () => {
          const cams = new CameraManager()
          await cams.connect({ id: 'demo', url: demo.url })
        })()
        await sleep(200)
        const before = demo.sessions
        for (let i = 0; i < 50 && demo.sessions > 0; i++) { globalThis.gc(); await sleep(100) }
        console.log('sessions ' + before + ' -> ' + demo.sessions)
        await demo.stop()
      })()
    `, ['--expose-gc'])
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /sessions 1 -> 0/)
  })
})
