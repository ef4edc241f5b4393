'use strict'
// Cluster.subscribe() / subscribeVideo() on a node that does not own the camera: two nodes
// in this process (each with its own CameraManager) on a real nats-server, the camera from
// the GStreamer RTSP server. The same Subscription / VideoSubscription classes as
// CameraManager's, with the same rules: synchronous errors for bad input and unknown
// cameras, unsubscribe() final, pause()/resume(), a last CLOSED call. Cluster.moondream()
// through the non-owner asks about the owner's picture (a loopback Moondream). view().stats
// counts the owner's lease claim and renewals.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { CameraManager, Cluster, Subscription, VideoSubscription } = require('..')
const { startGstServer, startNats, sleep, isJpeg } = require('./helpers')
const { MoondreamMock } = require('./moondream-mock')

const KEY = 'node-cluster-test-key-0123456789'

/** Resolves once `ok()` is true; rejects after `ms`. */
async function until (what, ok, ms = 15000) {
  const deadline = Date.now() + ms
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** Calls of `subscribe(callback)`'s callback until `done(values)`; rejects after `ms`. */
function collect (subscribe, done, ms = 15000) {
  const values = []
  const errors = []
  let sub
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe()
      reject(new Error(`only ${values.length} values (errors: ${errors.map((e) => e.code)}) in ${ms} ms`))
    }, ms)
    sub = subscribe((err, v) => {
      if (err) return errors.push(err)
      values.push(v)
      if (done(values)) {
        clearTimeout(timer)
        resolve({ values, errors, sub })
      }
    })
  })
}

function thrown (fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('expected a throw')
}

describe('Cluster subscriptions through a non-owner', () => {
  let nats, gst, managers, nodes, owner, watcher

  before(async () => {
    ;[nats, gst] = await Promise.all([startNats(), startGstServer()])
    managers = [new CameraManager(), new CameraManager()]
    nodes = []
    for (const [i, cams] of managers.entries()) {
      nodes.push(await Cluster.join(cams, { natsUrl: nats.url, nodeId: `node-${i}`, clusterKey: KEY, prefix: 'nodetest' }))
    }
    await until('both nodes to see each other', () => nodes.every((n) => n.view().nodes.length === 2))
    await nodes[0].connect({ id: 'cam', url: `rtsp://127.0.0.1:${gst.port}/high`, decode: 'onDemand' })
    const ownerIndex = managers.findIndex((m) => m.list().some((s) => s.id === 'cam'))
    assert.ok(ownerIndex >= 0, 'a node runs the camera')
    owner = nodes[ownerIndex]
    watcher = nodes[1 - ownerIndex]
  })

  after(async () => {
    for (const n of nodes || []) await n.leave()
    for (const m of managers || []) m.close()
    await Promise.all([nats && nats.stop(), gst && gst.stop()])
  })

  it('throws at once for bad input and an unknown camera', () => {
    const cb = () => {}
    let e = thrown(() => watcher.subscribe('no-such-cam', { fps: 5 }, cb))
    assert.equal(e.code, 'NOT_FOUND')
    e = thrown(() => watcher.subscribe('cam', { fps: 0 }, cb))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.equal(e.field, 'fps')
    e = thrown(() => watcher.subscribe('cam', { fps: 5 }, 'not a function'))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.equal(e.field, 'callback')
    e = thrown(() => watcher.subscribeVideo('cam', cb, { format: 'avi' }))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.equal(e.field, 'format')
    e = thrown(() => watcher.subscribeVideo('no-such-cam', cb))
    assert.equal(e.code, 'NOT_FOUND')
  })

  it('view().stats: the owner\'s lease claim and renewals, as numbers', async () => {
    const st = owner.view().stats
    for (const v of Object.values(st)) assert.equal(typeof v, 'number')
    assert.deepEqual(Object.keys(st).sort(), ['fencedStops', 'leaseClaims', 'leaseRenewalFailures', 'leaseRenewals', 'leasesLost', 'leasesReleased', 'natsReconnects'])
    assert.ok(st.leaseClaims >= 1, JSON.stringify(st))
    await until('a lease renewal', () => owner.view().stats.leaseRenewals > st.leaseRenewals, 5000)
    assert.equal(watcher.view().stats.leaseClaims, 0, 'the watcher claimed nothing')
  })

  it('delivers the owner\'s frames; unsubscribe() is final', async () => {
    let calls = 0
    const { values, sub } = await collect((cb) => watcher.subscribe('cam', { fps: 10, maxWidth: 320 }, (err, f) => {
      calls++
      cb(err, f)
    }), (v) => v.length >= 5)
    assert.ok(sub instanceof Subscription)
    assert.equal(sub.cameraId, 'cam')
    assert.equal(sub.active, true)
    for (const [i, f] of values.entries()) {
      assert.ok(isJpeg(f.jpeg), 'a JPEG')
      assert.deepEqual([f.width, f.height], [320, 180], 'maxWidth reached the owner')
      if (i > 0) assert.ok(f.seq > values[i - 1].seq, `seq ${f.seq} after ${values[i - 1].seq}`)
    }
    sub.unsubscribe()
    const n = calls
    assert.equal(sub.active, false)
    await sleep(600)
    assert.equal(calls, n, 'no call after unsubscribe()')
    // The call that unsubscribed may not be counted: the count follows its return.
    assert.ok(sub.delivered >= values.length - 1, `delivered ${sub.delivered}`)
  })

  it('delivers the owner\'s video: init, then media from a keyframe; pause() holds it', async () => {
    let paused = false
    let duringPause = 0
    const { values, sub } = await collect((cb) => watcher.subscribeVideo('cam', (err, c) => {
      if (paused) duringPause++
      cb(err, c)
    }), (v) => v.length >= 10)
    assert.ok(sub instanceof VideoSubscription)
    const [init, first] = values
    assert.equal(init.kind, 'init')
    assert.match(init.codec, /^avc1\.64/)
    assert.equal(init.mimeType, `video/mp4; codecs="${init.codec}"`)
    assert.equal(first.kind, 'media')
    assert.equal(first.keyframe, true)
    assert.ok(values.slice(1).every((c) => c.kind === 'media' && Buffer.isBuffer(c.data)))
    sub.pause()
    assert.equal(sub.paused, true)
    await sleep(100) // a chunk already on its way to JS may still land
    paused = true
    await sleep(600)
    assert.equal(duringPause, 0, 'nothing delivered while paused')
    paused = false
    const before = sub.delivered
    sub.resume()
    await until('chunks after resume()', () => sub.delivered > before)
    assert.equal(typeof sub.skipped, 'number')
    sub.unsubscribe()
    assert.equal(sub.active, false)
  })

  it('video of an MJPEG camera through a non-owner ends with UNSUPPORTED_CODEC, its only call', async () => {
    await nodes[0].connect({ id: 'mj', url: `rtsp://127.0.0.1:${gst.port}/mjpeg` })
    const asker = managers[0].list().some((s) => s.id === 'mj') ? nodes[1] : nodes[0]
    const calls = []
    const sub = asker.subscribeVideo('mj', (err, chunk) => calls.push([err, chunk]))
    await until('the end', () => calls.length > 0 && !sub.active)
    await sleep(300)
    assert.equal(calls.length, 1, 'one call')
    assert.equal(calls[0][0].code, 'UNSUPPORTED_CODEC')
    assert.equal(sub.delivered, 0)
    await nodes[0].disconnect('mj')
  })

  it('moondream() through a non-owner asks about the owner\'s picture', async () => {
    const mock = await MoondreamMock.start({ apiKey: 'md-key-0123456789' })
    try {
      const md = watcher.moondream({ baseUrl: mock.baseUrl, apiKey: 'md-key-0123456789', timeoutMs: 5000, maxRetries: 0 })
      mock.push({ answer: 'Colour bars.' })
      const q = await md.query('cam', 'What is shown?')
      assert.equal(q.answer, 'Colour bars.')
      assert.equal(q.cameraId, 'cam')
      assert.deepEqual([q.width, q.height], [640, 360])
      assert.deepEqual(mock.violations, [])
      assert.equal(mock.requests.length, 1)
      assert.deepEqual(mock.requests[0].size, { width: 640, height: 360 })
      await assert.rejects(md.query('no-such-cam', 'Anyone?'), (e) => e.code === 'NOT_FOUND')
    } finally {
      await mock.close()
    }
  })

  it('ends with CLOSED when the camera leaves the cluster; leave() makes calls throw CLOSED', async () => {
    const last = []
    const frames = watcher.subscribe('cam', { fps: 5 }, (err) => { if (err) last.push(['frames', err]) })
    const video = watcher.subscribeVideo('cam', (err) => { if (err) last.push(['video', err]) })
    await until('both to deliver', () => frames.delivered > 0 && video.delivered > 0)
    await owner.disconnect('cam')
    await until('both subscriptions to end', () => last.length === 2 && !frames.active && !video.active)
    for (const [what, err] of last) assert.equal(err.code, 'CLOSED', `${what}: ${err.message}`)
    await watcher.leave()
    let e = thrown(() => watcher.subscribe('cam', { fps: 5 }, () => {}))
    assert.equal(e.code, 'CLOSED')
    e = thrown(() => watcher.moondream({ baseUrl: 'http://127.0.0.1:9/v1' }))
    assert.equal(e.code, 'CLOSED')
  })
})

describe('Cluster life cycle', () => {
  it('keeps its cameras running after the app dropped the CameraManager object', async () => {
    // A child process with --expose-gc: a Cluster joined with a manager nothing else
    // references. Garbage collection of the manager object must not close it while the
    // Cluster lives (it did: every call then failed with CLOSED).
    const { spawn } = require('node:child_process')
    const path = require('node:path')
    const script = `
      const { CameraManager, Cluster, startDemoCamera } = require('.')
      const { startNats, sleep } = require('./test/helpers')
      ;(async () => {
        const nats = await startNats()
        const demo = await startDemoCamera({ width: 320, height: 180 })
        const cluster = await Cluster.join(new CameraManager(), { natsUrl: nats.url, nodeId: 'gc-node', clusterKey: ${JSON.stringify(KEY)}, prefix: 'gctest' })
        await cluster.connect({ id: 'demo', url: demo.url })
        for (let i = 0; i < 20; i++) { globalThis.gc(); await sleep(50) }
        try {
          const s = await cluster.status('demo')
          const f = await cluster.snapshot('demo', { maxWidth: 160 })
          console.log('after gc: ' + s.state + ' ' + f.width + 'x' + f.height + ' sessions ' + demo.sessions)
        } catch (e) {
          console.log('after gc: ' + e.code + ': ' + e.message)
        }
        await cluster.leave()
        await demo.stop()
        await nats.stop()
      })().catch((e) => { console.log('failed: ' + e.stack); process.exit(1) })
    `
    const r = await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--expose-gc', '-e', script], { cwd: path.resolve(__dirname, '..'), stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout.on('data', (d) => { out += d })
      child.stderr.on('data', (d) => { out += d })
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`child did not exit within 30 s:\n${out}`)) }, 30000)
      child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out }) })
    })
    assert.equal(r.code, 0, r.out)
    assert.match(r.out, /after gc: streaming 160x90 sessions 1/)
  })
})
