'use strict'
// A camera with a sub-stream through the server: connected with `subStream` in the connect
// body (1080p main, 640x360 sub-stream from gst-rtsp-server); GET /frame?maxWidth=640 is
// decoded by the sub-stream (the status JSON's subStream.framesDecoded), a full-size frame
// and ?stream=main by the main stream; a bad ?stream= is a 400 naming the field. Video:
// ffprobe reads video.mp4?stream=sub at the sub-stream's 640x360 and video.mp4 (and
// ?stream=main) at the main stream's 1920x1080; the WebSocket's video action with
// stream 'sub' sends the sub-stream's fMP4 (ffprobe reads what the socket got), and a bad
// stream is an error message naming the field. /metrics gives each stream's figures (the
// sub-stream's with stream="sub") and camkit_camera_sub_stream_up, 0 for a camera whose
// sub-stream cannot be reached while its main stream streams.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { WebSocket } = require('ws')

const { startServer, startGstServer, closedPort, isJpeg, sleep } = require('./helpers')

/** The width and height ffprobe reads from `input` (a URL or file). */
function probeSize (input) {
  return new Promise((resolve, reject) => {
    const args = ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'json', input]
    const child = spawn('ffprobe', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`ffprobe did not finish:\n${err}`)) }, 30000)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`ffprobe exited with ${code}: ${err}`))
      const [s] = JSON.parse(out).streams
      resolve([s.width, s.height])
    })
  })
}

/** Opens a WebSocket on the server, sends `msg`, collects messages for `ms`. */
async function wsVideo (srv, msg, ms = 1500) {
  const ws = new WebSocket(srv.ws)
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const texts = []
  const binary = []
  ws.on('message', (data, isBinary) => {
    if (isBinary) binary.push(Buffer.from(data))
    else texts.push(JSON.parse(data.toString()))
  })
  ws.send(JSON.stringify(msg))
  await new Promise((resolve) => setTimeout(resolve, ms))
  ws.close()
  return { texts, mp4: Buffer.concat(binary) }
}

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
    // Frames arrive undecoded for a moment (decode onDemand, nobody watching), so that the
    // frame's catch-up decodes on the stream that serves it (not the picture of connect).
    await sleep(400)
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

  it('/metrics has each stream\'s figures, and whether the sub-stream is up', async () => {
    const lone = await closedPort()
    const r = await fetch(`${srv.base}/api/cameras/connect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cameraId: 'lone', url: `rtsp://127.0.0.1:${gst.port}/high`, subStream: `rtsp://127.0.0.1:${lone}/sub` })
    })
    assert.equal(r.status, 200, await r.clone().text())
    const s = await status(srv)
    const text = await (await fetch(`${srv.base}/metrics`)).text()
    const value = (sample) => {
      const line = text.split('\n').find((l) => l.startsWith(`${sample} `))
      assert.ok(line, `no ${sample} in\n${text}`)
      return Number(line.slice(sample.length + 1))
    }
    assert.equal(value('camkit_camera_sub_stream_up{camera="two"}'), 1)
    assert.equal(value('camkit_camera_state{camera="two",stream="sub",state="streaming"}'), 1)
    assert.equal(value('camkit_camera_state{camera="two",state="streaming"}'), 1)
    assert.equal(value('camkit_camera_width_pixels{camera="two",stream="sub"}'), 640)
    assert.equal(value('camkit_camera_height_pixels{camera="two",stream="sub"}'), 360)
    assert.equal(value('camkit_camera_width_pixels{camera="two"}'), 1920)
    const subDecoded = value('camkit_camera_frames_decoded_total{camera="two",stream="sub"}')
    assert.ok(subDecoded >= s.subStream.framesDecoded && subDecoded > 0, `sub-stream decoded ${subDecoded}, status said ${s.subStream.framesDecoded}`)
    assert.ok(value('camkit_camera_frames_decoded_total{camera="two"}') >= s.framesDecoded)
    assert.ok(value('camkit_camera_frames_received_total{camera="two",stream="sub"}') > 0)
    // The other camera's sub-stream is unreachable: down, while its main stream streams.
    assert.equal(value('camkit_camera_sub_stream_up{camera="lone"}'), 0)
    assert.equal(value('camkit_camera_state{camera="lone",state="streaming"}'), 1)
    assert.equal(value('camkit_camera_state{camera="lone",stream="sub",state="streaming"}'), 0)
    assert.equal(value('camkit_camera_frames_received_total{camera="lone",stream="sub"}'), 0)
    const d = await fetch(`${srv.base}/api/cameras/disconnect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cameraId: 'lone' })
    })
    assert.equal(d.status, 200)
  })

  it('a bad stream is a 400 naming the field', async () => {
    for (const route of ['frame', 'video.mp4']) {
      const r = await fetch(`${srv.base}/api/cameras/two/${route}?stream=hd`)
      assert.equal(r.status, 400, route)
      const body = await r.json()
      assert.equal(body.code, 'INVALID_INPUT', route)
      assert.match(body.error, /^stream: /, route)
    }
  })

  it('video.mp4?stream=sub is the sub-stream, video.mp4 and ?stream=main the main stream', async () => {
    const url = `${srv.base}/api/cameras/two/video.mp4`
    assert.deepEqual(await probeSize(`${url}?stream=sub`), [640, 360])
    assert.deepEqual(await probeSize(url), [1920, 1080])
    assert.deepEqual(await probeSize(`${url}?stream=main`), [1920, 1080])
    assert.deepEqual(await probeSize(`${url}?stream=auto`), [1920, 1080])
  })

  it("the WebSocket's video action takes stream: 'sub', and names a bad stream", async () => {
    const { texts, mp4 } = await wsVideo(srv, { action: 'video', cameraId: 'two', stream: 'sub' })
    assert.equal(texts[0]?.type, 'video', JSON.stringify(texts))
    assert.match(texts[0].mimeType, /^video\/mp4; codecs="avc1\./)
    const file = path.join(os.tmpdir(), `camkit-sub-stream-${process.pid}.mp4`)
    fs.writeFileSync(file, mp4)
    try {
      assert.deepEqual(await probeSize(file), [640, 360])
    } finally {
      fs.rmSync(file, { force: true })
    }
    const bad = await wsVideo(srv, { action: 'video', cameraId: 'two', stream: 'hd' }, 300)
    assert.equal(bad.mp4.length, 0)
    assert.equal(bad.texts.length, 1, JSON.stringify(bad.texts))
    assert.equal(bad.texts[0].type, 'error')
    assert.equal(bad.texts[0].code, 'INVALID_INPUT')
    assert.match(bad.texts[0].error, /^stream: /)
  })
})
