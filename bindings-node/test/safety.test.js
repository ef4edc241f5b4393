'use strict'
// Binding safety (issue 7): no callback runs once unsubscribe() / remove() has returned,
// even with frames or events already queued for the JS thread; every call after close()
// fails with CLOSED, never a crash, including calls still in flight when close() runs;
// a manager whose cameras were all disconnected answers normally.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { CameraManager, startDemoCamera } = require('..')
const { failure, sleep } = require('./helpers')

/** Keeps the JS thread busy, so that deliveries queue up behind it. */
function block (ms) {
  const until = Date.now() + ms
  while (Date.now() < until) { /* busy */ }
}

describe('binding safety', () => {
  let demo
  let cams
  let keepAlive // frame and event callbacks do not keep the process alive; this does
  before(async () => {
    keepAlive = setInterval(() => {}, 1000)
    demo = await startDemoCamera({ width: 160, height: 96, fps: 15 })
    cams = new CameraManager()
    await cams.connect({ id: 'demo', url: demo.url, decode: 'continuous' })
  })
  after(async () => {
    cams?.close()
    await demo?.stop()
    clearInterval(keepAlive)
  })

  it('no frame callback runs after unsubscribe() returns (frames queued at 15 fps)', async () => {
    // Each round: the first frame arrives; the JS thread is then kept busy for 150 ms, long
    // enough for the next frame (every 67 ms at 15 fps) to be queued for it; unsubscribe()
    // runs while that call waits in the queue, and a flag is set right after it returns.
    let late = 0
    let frames = 0
    for (let round = 0; round < 6; round++) {
      let unsubscribed = false
      let sub = null
      await new Promise((resolve) => {
        sub = cams.subscribe('demo', { fps: 15 }, (err) => {
          if (unsubscribed) late++
          if (err) return
          frames++
          if (frames === 1 || !sub.active) return
          setImmediate(() => {
            if (unsubscribed) return
            block(150)
            sub.unsubscribe()
            unsubscribed = true
            resolve()
          })
        })
      })
      await sleep(120) // room for any queued call to (wrongly) run
      assert.equal(sub.active, false)
    }
    assert.ok(frames >= 6, `${frames} frames`)
    assert.equal(late, 0, `${late} callback(s) ran after unsubscribe() had returned`)
  })

  it('no CLOSED callback runs after unsubscribe(), even when the camera then goes away', async () => {
    await cams.connect({ id: 'brief', url: demo.url })
    let calls = 0
    let unsubscribed = false
    let late = 0
    const sub = cams.subscribe('brief', { fps: 15 }, () => {
      calls++
      if (unsubscribed) late++
    })
    await sleep(200)
    const gone = cams.disconnect('brief')
    block(100) // the end-of-subscription call is queued meanwhile
    sub.unsubscribe()
    unsubscribed = true
    await gone
    await sleep(150)
    assert.ok(calls >= 1)
    assert.equal(late, 0)
  })

  it('no event callback runs after remove() returns (events queued)', async () => {
    let removed = false
    let late = 0
    let seen = 0
    const listener = cams.onEvent(() => {
      seen++
      if (removed) late++
    })
    const connected = cams.connect({ id: 'events', url: demo.url })
    block(400) // 'connecting' and 'streaming' are queued for the JS thread meanwhile
    listener.remove()
    removed = true
    await connected
    await cams.disconnect('events')
    await sleep(150)
    assert.equal(late, 0, `${late} event(s) after remove(); ${seen} before`)
    listener.remove() // idempotent
  })

  it('a manager whose cameras were all disconnected answers normally', async () => {
    const m = new CameraManager()
    await m.connect({ id: 'a', url: demo.url })
    await m.connect({ id: 'b', url: demo.url })
    await m.disconnectAll()
    assert.deepEqual(m.list(), [])
    for (const fn of [() => m.status('a'), () => m.snapshot('a'), () => m.disconnect('b'),
      () => m.subscribe('a', { fps: 5 }, () => {}), () => m.setDecodePolicy('b', 'continuous')]) {
      const e = await failure(fn)
      assert.equal(e.code, 'NOT_FOUND', e.message)
    }
    await m.disconnectAll()
    await m.connect({ id: 'a', url: demo.url }) // the ids are free again
    m.close()
  })

  it('after close(), every call and property fails with CLOSED or is inert, never a crash', async () => {
    const m = new CameraManager()
    await m.connect({ id: 'demo', url: demo.url })
    const sub = m.subscribe('demo', { fps: 5 }, () => {})
    const listener = m.onEvent(() => {})
    m.close()
    for (const fn of [
      () => m.setDecodePolicy('demo', 'keyframes'),
      () => m.connect({ id: 'demo', url: demo.url }),
      () => m.connect(null),
      () => m.snapshot('demo', { maxWidth: 3 }),
      () => m.subscribe('demo', { fps: 5 }, () => {}),
      () => m.disconnectAll(),
      () => m.list()
    ]) {
      const e = await failure(fn)
      assert.ok(e.code === 'CLOSED' || e.code === 'INVALID_INPUT', `${e.code}: ${e.message}`)
    }
    assert.equal((await failure(() => m.status('demo'))).code, 'CLOSED')
    // Handles of a closed manager stay usable and inert.
    sub.unsubscribe()
    sub.unsubscribe()
    assert.equal(sub.active, false)
    assert.equal(typeof sub.delivered, 'number')
    listener.remove()
    m.close()
    assert.equal(m.closed, true)
  })

  it('calls in flight when close() runs settle (CLOSED or a result), never hang or crash', async () => {
    const m = new CameraManager()
    await m.connect({ id: 'demo', url: demo.url })
    const pending = []
    for (let i = 0; i < 20; i++) {
      pending.push(m.snapshot('demo', { maxWidth: 64 + 16 * i }))
      pending.push(m.connect({ id: `c${i}`, url: demo.url }))
    }
    pending.push(m.disconnect('demo'))
    m.close()
    let timer
    const settled = await Promise.race([
      Promise.allSettled(pending),
      new Promise((resolve) => { timer = setTimeout(resolve, 15000, null) })
    ])
    clearTimeout(timer)
    assert.ok(settled, 'every call settled')
    for (const s of settled) {
      if (s.status === 'rejected') assert.ok(typeof s.reason.code === 'string', String(s.reason))
    }
    assert.deepEqual((await failure(() => m.list())).code, 'CLOSED')
    // The cameras connected while closing were stopped: nobody streams from the demo camera
    // for this manager any more.
    for (let i = 0; i < 40 && demo.sessions > 1; i++) await sleep(50)
    assert.ok(demo.sessions <= 1, `${demo.sessions} sessions still open`) // `cams`' camera
  })

  it('a stopped demo camera stays inert', async () => {
    const d = await startDemoCamera({ width: 64, height: 64 })
    await d.stop()
    await d.stop()
    assert.equal(d.sessions, 0)
    assert.match(d.url, /^rtsp:\/\//)
  })
})
