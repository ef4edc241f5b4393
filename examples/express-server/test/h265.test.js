'use strict'
// An H.265 camera (GStreamer's RTSP server, x265 Main 720p with B-frames and open GOPs)
// through the server: decoded with libavcodec, its status JSON names codec and profile,
// /frame, MJPEG and the WebSocket serve its pictures; its video.mp4 and the WebSocket's
// video action carry its own H.265 (an hvc1 track that ffprobe reads and ffmpeg decodes);
// with decoder openh264 the connect is a 502 UNSUPPORTED_CODEC that says to install
// libavcodec.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const WebSocket = require('ws')

const { startServer, startGstServer, isJpeg } = require('./helpers')

/** Width and height from a baseline or progressive JPEG's SOF segment. */
function jpegSize (buf) {
  let pos = 2
  while (pos + 9 < buf.length) {
    const marker = buf[pos + 1]
    const len = buf.readUInt16BE(pos + 2)
    if (marker >= 0xc0 && marker <= 0xc2) return [buf.readUInt16BE(pos + 7), buf.readUInt16BE(pos + 5)]
    pos += 2 + len
  }
  throw new Error('no SOF segment')
}

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

describe('H.265 camera', () => {
  let gst
  let srv
  let url
  before(async () => {
    gst = await startGstServer()
    url = `rtsp://127.0.0.1:${gst.port}/h265-720-bframes`
    srv = await startServer({ CAMKIT_DEMO: '0', CAMKIT_CAMERAS: JSON.stringify([{ cameraId: 'h', url }]) })
    // Cameras from CAMKIT_CAMERAS connect in the background: wait until this one streams.
    const deadline = Date.now() + 20000
    for (;;) {
      const s = await (await fetch(`${srv.base}/api/cameras/h/status`)).json()
      if (s.state === 'streaming') break
      if (Date.now() > deadline) throw new Error(`camera not streaming: ${JSON.stringify(s)}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })
  after(async () => {
    await srv?.stop()
    await gst?.stop()
  })

  it('status JSON names codec and profile', async () => {
    const r = await fetch(`${srv.base}/api/cameras/h/status`)
    assert.equal(r.status, 200)
    const s = await r.json()
    assert.equal(s.state, 'streaming')
    assert.equal(s.codec, 'h265')
    assert.equal(s.profile, 'Main')
    assert.match(s.decoder, /^libavcodec /)
    assert.deepEqual([s.width, s.height], [1280, 720])
  })

  it('GET /frame is a 1280x720 JPEG', async () => {
    const r = await fetch(`${srv.base}/api/cameras/h/frame`)
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('content-type'), 'image/jpeg')
    const jpeg = Buffer.from(await r.arrayBuffer())
    assert.ok(isJpeg(jpeg))
    assert.deepEqual(jpegSize(jpeg), [1280, 720])
    assert.equal(r.headers.get('x-frame-width'), '1280')
  })

  it('MJPEG and the WebSocket serve its pictures', async () => {
    const ac = new AbortController()
    const r = await fetch(`${srv.base}/api/cameras/h/mjpeg?fps=5`, { signal: ac.signal })
    assert.equal(r.status, 200)
    const reader = r.body.getReader()
    let buf = Buffer.alloc(0)
    // The first part's JPEG: from its start marker to its end marker.
    for (;;) {
      const { value, done } = await reader.read()
      assert.ok(!done, 'MJPEG stream ended early')
      buf = Buffer.concat([buf, value])
      const start = buf.indexOf(Buffer.from([0xff, 0xd8, 0xff]))
      const end = start >= 0 ? buf.indexOf(Buffer.from([0xff, 0xd9]), start) : -1
      if (end > 0) {
        assert.deepEqual(jpegSize(buf.subarray(start, end + 2)), [1280, 720])
        break
      }
    }
    ac.abort()

    const ws = new WebSocket(srv.ws)
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const frame = new Promise((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))))
    ws.send(JSON.stringify({ action: 'subscribe', cameraId: 'h', fps: 5 }))
    const m = await frame
    ws.close()
    assert.equal(m.type, 'frame')
    const jpeg = Buffer.from(m.data, 'base64')
    assert.ok(isJpeg(jpeg))
    assert.deepEqual(jpegSize(jpeg), [1280, 720])
  })

  it('video.mp4 is an hvc1 track: ffprobe sees HEVC Main 1280x720, ffmpeg decodes it without an error', async () => {
    const video = `${srv.base}/api/cameras/h/video.mp4`
    const ac = new AbortController()
    const r = await fetch(video, { signal: ac.signal })
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('content-type'), 'video/mp4')
    // x265 Main at 720p: profile 1, compatibility flags 6, main tier, level 3.1.
    assert.match(r.headers.get('x-video-codecs'), /^hvc1\.1\.6\.L93(\.[0-9A-F]{1,2})*$/)
    ac.abort()
    const p = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name,codec_tag_string,profile,width,height', '-of', 'json', video])
    assert.equal(p.code, 0, p.err)
    const [s] = JSON.parse(p.out).streams
    assert.deepEqual([s.codec_name, s.codec_tag_string, s.profile, s.width, s.height], ['hevc', 'hvc1', 'Main', 1280, 720])
    // B-frames and the RASL pictures after each CRA keyframe: any message fails the test.
    const d = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', video, '-t', '3', '-f', 'null', '-', '-progress', 'pipe:1'])
    assert.equal(d.code, 0, d.err)
    assert.equal(d.err.trim(), '', `ffmpeg reported: ${d.err}`)
    const frames = Math.max(...[...d.out.matchAll(/^frame=(\d+)$/gm)].map((m) => Number(m[1])))
    assert.ok(frames >= 35, `${frames} frames decoded`)
  })

  it('the WebSocket video action names the hvc1 MIME type, then sends an init segment with hvcC', async () => {
    const ws = new WebSocket(srv.ws)
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const messages = []
    ws.on('message', (data, isBinary) => messages.push(isBinary ? Buffer.from(data) : JSON.parse(data.toString())))
    ws.send(JSON.stringify({ action: 'video', cameraId: 'h' }))
    const deadline = Date.now() + 10000
    while (messages.length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    ws.close()
    const [head, init, first] = messages
    assert.equal(head.type, 'video')
    assert.match(head.mimeType, /^video\/mp4; codecs="hvc1\.1\.6\.L93[.0-9A-F]*"$/)
    assert.equal(init.toString('latin1', 4, 8), 'ftyp')
    assert.ok(init.includes(Buffer.from('hvc1')) && init.includes(Buffer.from('hvcC')), 'an hvc1 sample entry with its hvcC')
    assert.equal(first.toString('latin1', 4, 8), 'moof')
  })

  it('with decoder openh264 the connect is a 502 UNSUPPORTED_CODEC saying what to do', async () => {
    const r = await fetch(`${srv.base}/api/cameras/connect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cameraId: 'o', url, decoder: 'openh264' })
    })
    assert.equal(r.status, 502)
    const j = await r.json()
    assert.equal(j.code, 'UNSUPPORTED_CODEC')
    assert.match(j.error, /libavcodec/)
  })
})
