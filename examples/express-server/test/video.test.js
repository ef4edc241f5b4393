'use strict'
// Live video without decoding, with real clients: ffprobe and ffmpeg read
// GET /api/cameras/:id/video.mp4 of GStreamer's High-profile stream with B-frames; a
// reader that never reads does not hold up another viewer; the WebSocket's video action
// sends the MIME type, then fMP4 segments; the route is guarded like the others.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const net = require('node:net')
const { WebSocket } = require('ws')

const { startServer, startGstServer, sleep } = require('./helpers')

const TOKEN = 'video-test-token'
const AUTH = { Authorization: `Bearer ${TOKEN}` }
/** ffmpeg's and ffprobe's option for the same header. */
const FF_AUTH = ['-headers', `Authorization: Bearer ${TOKEN}\r\n`]

/** Runs a command; resolves with its exit code, stdout and stderr. */
function run (cmd, args, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} did not finish in ${timeoutMs} ms:\n${err}`)) }, timeoutMs)
    child.on('error', reject)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out, err }) })
  })
}

/** Counts the `moof` boxes of a byte stream read from `body` (a fetch body). */
function moofCounter () {
  let pending = Buffer.alloc(0)
  const counter = { moofs: 0, bytes: 0, types: [] }
  counter.push = (chunk) => {
    counter.bytes += chunk.length
    pending = Buffer.concat([pending, chunk])
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(0)
      if (size < 8 || pending.length < size) break
      const type = pending.toString('latin1', 4, 8)
      if (counter.types.length < 4) counter.types.push(type)
      if (type === 'moof') counter.moofs++
      pending = pending.subarray(size)
    }
  }
  return counter
}

/** A process-wide counter from /metrics. */
async function metric (srv, name) {
  const text = await (await fetch(`${srv.base}/metrics`, { headers: AUTH })).text()
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : NaN
}

/** camkit_video_segment_delay_seconds from /metrics: its buckets (le → cumulative count), sum and count. */
async function delayHistogram (srv) {
  const text = await (await fetch(`${srv.base}/metrics`, { headers: AUTH })).text()
  const buckets = [...text.matchAll(/^camkit_video_segment_delay_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1], Number(m[2])])
  const num = (name) => Number(new RegExp(`^camkit_video_segment_delay_seconds_${name} (\\S+)$`, 'm').exec(text)?.[1])
  return { buckets, sum: num('sum'), count: num('count') }
}

describe('live video (video.mp4 and the WebSocket video action)', () => {
  let gst
  let srv
  let url

  before(async () => {
    gst = await startGstServer()
    srv = await startServer({
      EXPECT_CAMERAS: '2',
      CAMKIT_DEMO: '1',
      CAMKIT_API_TOKEN: TOKEN,
      CAMKIT_CAMERAS: JSON.stringify([{ cameraId: 'hb', url: `rtsp://127.0.0.1:${gst.port}/high-bframes` }])
    })
    url = `${srv.base}/api/cameras/hb/video.mp4`
  })

  after(async () => {
    await srv?.stop()
    await gst?.stop()
  })

  it('is guarded and validated like the other camera routes', async () => {
    let r = await fetch(`${srv.base}/api/cameras/hb/video.mp4`)
    assert.equal(r.status, 401)
    r = await fetch(`${srv.base}/api/cameras/nope/video.mp4`, { headers: AUTH })
    assert.equal(r.status, 404)
    assert.equal((await r.json()).code, 'NOT_FOUND')
    r = await fetch(`${srv.base}/api/cameras/hb/video.mp4?maxQueueBytes=12`, { headers: AUTH })
    assert.equal(r.status, 400)
    const body = await r.json()
    assert.equal(body.code, 'INVALID_INPUT')
    assert.match(body.error, /^maxQueueBytes: /)
  })

  it('ffprobe sees H.264 High 640x360, served as video/mp4', async () => {
    const ac = new AbortController()
    const r = await fetch(`${srv.base}/api/cameras/hb/video.mp4`, { headers: AUTH, signal: ac.signal })
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('content-type'), 'video/mp4')
    assert.match(r.headers.get('x-video-codecs'), /^avc1\.64/)
    ac.abort()
    const p = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,profile,width,height', '-of', 'json', ...FF_AUTH, url])
    assert.equal(p.code, 0, p.err)
    const [s] = JSON.parse(p.out).streams
    assert.equal(s.codec_name, 'h264')
    assert.equal(s.profile, 'High')
    assert.equal(s.width, 640)
    assert.equal(s.height, 360)
  })

  it('ffmpeg decodes 3 s of the B-frame stream without an error', async () => {
    const p = await run('ffmpeg', ['-nostdin', '-v', 'error', ...FF_AUTH, '-i', url, '-t', '3', '-f', 'null', '-', '-progress', 'pipe:1'])
    assert.equal(p.code, 0, p.err)
    // Any message fails the test: a decode error, a damaged segment, or decode times that
    // do not step with the sample durations ("non monotonically increasing dts").
    const errors = p.err.split('\n').filter((l) => l.trim() !== '' && !/^\s*Last message repeated \d+ times$/.test(l))
    assert.deepEqual(errors, [], `ffmpeg reported: ${p.err}`)
    const frames = Math.max(...[...p.out.matchAll(/^frame=(\d+)$/gm)].map((m) => Number(m[1])))
    // 3 s at 15 fps (the GOP so far comes at once, then live).
    assert.ok(frames >= 40, `${frames} frames decoded`)
  })

  it('a reader that never reads does not hold up another viewer, and is not written to without bound', async () => {
    // The stalled reader: asks for the stream, then never reads a byte.
    const stalled = net.connect(srv.port, '127.0.0.1')
    await new Promise((resolve) => stalled.once('connect', resolve))
    stalled.pause()
    stalled.write(`GET /api/cameras/demo/video.mp4?maxQueueBytes=65536 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`)
    const sentBefore = await metric(srv, 'camkit_video_bytes_sent_total')
    const delayBefore = await delayHistogram(srv)
    await sleep(4000) // the demo camera's 2 Mbit/s fill the stalled socket's buffers
    const ac = new AbortController()
    const viewer = moofCounter()
    const r = await fetch(`${srv.base}/api/cameras/demo/video.mp4`, { headers: AUTH, signal: ac.signal })
    assert.equal(r.status, 200)
    const reading = (async () => {
      try {
        for await (const chunk of r.body) viewer.push(chunk)
      } catch (e) {
        if (e.name !== 'AbortError') throw e
      }
    })()
    const stalledAt4s = await metric(srv, 'camkit_video_bytes_sent_total') - sentBefore
    await sleep(3000)
    const moofs = viewer.moofs
    const stalledAt7s = await metric(srv, 'camkit_video_bytes_sent_total') - sentBefore - viewer.bytes
    ac.abort()
    await reading
    stalled.destroy()
    assert.deepEqual(viewer.types.slice(0, 3), ['ftyp', 'moov', 'moof'])
    // 3 s of a 15 fps camera (plus the GOP so far at the start).
    assert.ok(moofs >= 35, `the other viewer got ${moofs} frames in 3 s`)
    // Once its socket is full the stalled reader is paused: over the last 3 s camkit wrote
    // it (almost) nothing more, where 3 s of video is ~750 kB.
    const grew = stalledAt7s - stalledAt4s
    assert.ok(grew < 200 * 1024, `${grew} more bytes written to the stalled reader (${stalledAt4s} in its first 4 s)`)

    // The delay of live segments (arrival in camkit → write to the socket) was recorded:
    // the demo camera's 2 s GOP brings a live keyframe within the reader's 3 s.
    const delay = await delayHistogram(srv)
    assert.equal(delay.buckets.at(-1)[0], '+Inf')
    assert.equal(delay.buckets.at(-1)[1], delay.count)
    for (let i = 1; i < delay.buckets.length; i++) assert.ok(delay.buckets[i][1] >= delay.buckets[i - 1][1], 'cumulative buckets')
    assert.ok(delay.count - delayBefore.count >= 5, `${delay.count - delayBefore.count} live segments timed`)
    assert.ok(delay.sum > delayBefore.sum && delay.sum / delay.count < 1, `mean delay ${delay.sum / delay.count} s`)
  })

  it('the WebSocket video action sends the MIME type, then an init segment and media segments', async () => {
    const ws = new WebSocket(`${srv.ws}?token=${TOKEN}`)
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const messages = []
    ws.on('message', (data, isBinary) => messages.push(isBinary ? Buffer.from(data) : JSON.parse(data.toString())))
    ws.send(JSON.stringify({ action: 'video', cameraId: 'hb' }))
    const deadline = Date.now() + 10000
    while (messages.length < 10 && Date.now() < deadline) await sleep(50)
    ws.send(JSON.stringify({ action: 'unsubscribe' }))
    await sleep(300)
    const n = messages.length
    await sleep(500)
    assert.ok(messages.length - n <= 1, 'nothing after unsubscribe (but one in flight)')
    ws.send(JSON.stringify({ action: 'video', cameraId: 'nope' }))
    await sleep(300)
    ws.close()
    const [head, init, first] = messages
    assert.equal(head.type, 'video')
    assert.equal(head.cameraId, 'hb')
    assert.match(head.mimeType, /^video\/mp4; codecs="avc1\.64[0-9a-f]{4}"$/)
    assert.equal(head.mimeType, `video/mp4; codecs="${head.codec}"`)
    assert.equal(init.toString('latin1', 4, 8), 'ftyp')
    assert.equal(first.toString('latin1', 4, 8), 'moof')
    for (const m of messages.slice(2, 10)) assert.ok(Buffer.isBuffer(m) && m.toString('latin1', 4, 8) === 'moof')
    const err = messages.find((m) => m.type === 'error')
    assert.equal(err.code, 'NOT_FOUND')
  })
})
