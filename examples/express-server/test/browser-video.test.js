'use strict'
// The viewer page plays the demo camera's own H.264 through Media Source Extensions in a
// real browser (Debian's chromium, driven by playwright-core): the <video> plays
// (currentTime advances, decoded frames grow), stays near the live edge with a short
// buffer, and a canvas drawn from it shows the demo camera's colour band. Without MSE the
// tile falls back to JPEG frames and says so. An H.265 camera (GStreamer, x265) plays
// through MSE where the browser takes its hvc1 codec string and falls back to JPEG frames
// where it does not (Debian's chromium has no HEVC decoder), beside an H.264 camera that
// plays through MSE. A camera that drops its session mid-stream reconnects with a new init
// segment, and the browser goes on playing.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { WebSocket } = require('ws')

const { launchChromium, startServer, startGstServer, sleep } = require('./helpers')
const { startDemoCamera } = require('../../../bindings-node')

const TILE = '.tile[data-camera="demo"]'

/** The <video>'s playback state, and the colours of the demo band's first six bars. */
function videoState (camera = 'demo') {
  const v = document.querySelector(`.tile[data-camera="${camera}"] video.live`)
  const q = v.getVideoPlaybackQuality()
  const c = document.createElement('canvas')
  c.width = v.videoWidth
  c.height = v.videoHeight
  const ctx = c.getContext('2d')
  ctx.drawImage(v, 0, 0)
  const bar = c.width / 8
  const y = Math.round(c.height / 8)
  const bars = [0, 1, 2, 3, 4, 5].map((i) => {
    const d = ctx.getImageData(Math.round(bar * (i + 0.5)) - 2, y - 2, 5, 5).data
    const acc = [0, 0, 0]
    for (let p = 0; p < d.length; p += 4) { acc[0] += d[p]; acc[1] += d[p + 1]; acc[2] += d[p + 2] }
    return acc.map((x) => x / (d.length / 4))
  })
  const b = v.buffered
  return {
    currentTime: v.currentTime,
    frames: q.totalVideoFrames,
    width: v.videoWidth,
    height: v.videoHeight,
    bufferedStart: b.length ? b.start(0) : 0,
    bufferedEnd: b.length ? b.end(b.length - 1) : 0,
    paused: v.paused,
    bars
  }
}

function launch () {
  return launchChromium(['--autoplay-policy=no-user-gesture-required'])
}

describe('viewer page: live video through MSE', () => {
  let srv
  let browser

  before(async () => {
    srv = await startServer()
    browser = await launch()
  })

  after(async () => {
    await browser?.close()
    await srv?.stop()
  })

  it('plays the demo camera through MSE, at the live edge, in its colours', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    const errors = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(srv.base + '/')
    const tile = page.locator(TILE)
    await tile.waitFor({ timeout: 15000 })
    assert.equal(await tile.locator('.mode').getAttribute('data-mode'), 'mse')
    assert.equal(await tile.locator('.mode').textContent(), 'video (MSE)')
    await page.waitForFunction(() => {
      const v = document.querySelector('.tile[data-camera="demo"] video.live')
      return v && v.currentTime > 0.3 && v.getVideoPlaybackQuality().totalVideoFrames > 5
    }, null, { timeout: 20000 })
    assert.match(await tile.locator('.mode').getAttribute('title'), /^video\/mp4; codecs="avc1\.[0-9a-f]{6}"$/)
    assert.equal(await tile.locator('img.live').isHidden(), true)

    const first = await page.evaluate(videoState)
    await sleep(2000)
    const second = await page.evaluate(videoState)
    assert.equal(second.paused, false)
    assert.ok(second.currentTime - first.currentTime > 1.2, `currentTime ${first.currentTime} → ${second.currentTime}`)
    assert.ok(second.frames - first.frames >= 15, `decoded frames ${first.frames} → ${second.frames}`)
    assert.equal(second.width, 640)
    assert.equal(second.height, 360)
    // Near the live edge.
    assert.ok(second.bufferedEnd - second.currentTime < 1.5, `${second.bufferedEnd - second.currentTime} s behind the newest frame`)

    // The demo picture's colour band: white, yellow, cyan, green, magenta, red.
    const [white, yellow, cyan, green, magenta, red] = second.bars
    assert.ok(white.every((v) => v > 200), `white bar is ${white}`)
    assert.ok(yellow[0] > 200 && yellow[1] > 200 && yellow[2] < 80, `yellow bar is ${yellow}`)
    assert.ok(cyan[0] < 80 && cyan[1] > 200 && cyan[2] > 200, `cyan bar is ${cyan}`)
    assert.ok(green[0] < 80 && green[1] > 200 && green[2] < 80, `green bar is ${green}`)
    assert.ok(magenta[0] > 200 && magenta[1] < 80 && magenta[2] > 200, `magenta bar is ${magenta}`)
    assert.ok(red[0] > 200 && red[1] < 80 && red[2] < 80, `red bar is ${red}`)
    assert.deepEqual(errors, [])
    await page.close()
  })

  it('falls back to JPEG frames where MSE is missing, and says so', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    await page.addInitScript(() => { delete window.MediaSource; window.MediaSource = undefined })
    await page.goto(srv.base + '/')
    const tile = page.locator(TILE)
    await tile.locator('img.live[src]').waitFor({ timeout: 15000 })
    assert.equal(await tile.locator('.mode').getAttribute('data-mode'), 'jpeg')
    assert.equal(await tile.locator('.mode').textContent(), 'JPEG frames')
    assert.match(await tile.locator('.mode').getAttribute('title'), /no Media Source Extensions/)
    assert.equal(await tile.locator('video.live').isHidden(), true)
    await page.close()
  })
})

describe('viewer page: an H.265 camera beside an H.264 one, and a reconnect mid-stream', () => {
  let gst
  let demo
  let srv
  let browser
  let hevcCodec

  before(async () => {
    gst = await startGstServer()
    demo = await startDemoCamera({ width: 640, height: 360 })
    srv = await startServer({
      CAMKIT_DEMO: '0',
      EXPECT_CAMERAS: '2',
      CAMKIT_CAMERAS: JSON.stringify([
        { cameraId: 'cam', url: demo.url },
        { cameraId: 'hevc', url: `rtsp://127.0.0.1:${gst.port}/h265-720` }
      ])
    })
    // The H.265 camera's codec string, as the server names it.
    const deadline = Date.now() + 20000
    while (!hevcCodec && Date.now() < deadline) {
      const ac = new AbortController()
      const r = await fetch(`${srv.base}/api/cameras/hevc/video.mp4`, { signal: ac.signal }).catch(() => null)
      hevcCodec = r && r.status === 200 ? r.headers.get('x-video-codecs') : null
      ac.abort()
      if (!hevcCodec) await sleep(200)
    }
    assert.match(hevcCodec || '', /^hvc1\./)
    browser = await launch()
  })

  after(async () => {
    await browser?.close()
    await srv?.stop()
    await demo?.stop()
    await gst?.stop()
  })

  /** Waits until `camera`'s tile shows JPEG pictures; returns their size and sequence numbers. */
  async function jpegPictures (page, camera) {
    const img = page.locator(`.tile[data-camera="${camera}"] img.live`)
    await page.waitForFunction((c) => {
      const i = document.querySelector(`.tile[data-camera="${c}"] img.live`)
      return i && i.complete && i.naturalWidth > 0 && Number(i.dataset.seq) > 0
    }, camera, { timeout: 20000 })
    const first = Number(await img.getAttribute('data-seq'))
    await sleep(1500)
    const size = await img.evaluate((i) => [i.naturalWidth, i.naturalHeight])
    return { size, first, later: Number(await img.getAttribute('data-seq')) }
  }

  /** Waits until `camera`'s <video> plays. */
  async function playing (page, camera) {
    await page.waitForFunction((c) => {
      const v = document.querySelector(`.tile[data-camera="${c}"] video.live`)
      return v && v.currentTime > 0.3 && v.getVideoPlaybackQuality().totalVideoFrames > 5
    }, camera, { timeout: 20000 })
  }

  /** Checks that the H.265 camera's tile shows JPEG pictures because `mime` was refused. */
  async function fellBack (page, mime) {
    const hevc = page.locator('.tile[data-camera="hevc"]')
    const pics = await jpegPictures(page, 'hevc')
    assert.equal(await hevc.locator('.mode').getAttribute('data-mode'), 'jpeg')
    assert.equal(await hevc.locator('.mode').textContent(), 'JPEG frames')
    assert.equal(await hevc.locator('.mode').getAttribute('title'), `this browser cannot play ${mime}`)
    assert.equal(await hevc.locator('video.live').isHidden(), true)
    // STREAM's maxWidth 960 of the 1280x720 camera, new pictures coming.
    assert.deepEqual(pics.size, [960, 540])
    assert.ok(pics.later > pics.first, `pictures ${pics.first} → ${pics.later}`)
  }

  it('the H.265 camera falls back to JPEG frames where the browser refuses hvc1, the H.264 one plays through MSE', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    const errors = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(srv.base + '/')
    const mime = `video/mp4; codecs="${hevcCodec}"`
    const canPlay = await page.evaluate((m) => MediaSource.isTypeSupported(m), mime)
    await page.locator('.tile[data-camera="hevc"]').waitFor({ timeout: 15000 })
    if (canPlay) {
      // A Chromium with an HEVC decoder: the camera's own H.265 plays ...
      await playing(page, 'hevc')
      assert.equal(await page.locator('.tile[data-camera="hevc"] .mode').getAttribute('data-mode'), 'mse')
      // ... and where isTypeSupported says no (as Debian's chromium does), JPEG frames.
      const refusing = await browser.newPage({ viewport: { width: 1280, height: 800 } })
      await refusing.addInitScript(() => {
        const real = MediaSource.isTypeSupported.bind(MediaSource)
        MediaSource.isTypeSupported = (t) => !/hvc1|hev1/.test(t) && real(t)
      })
      await refusing.goto(srv.base + '/')
      await fellBack(refusing, mime)
      await refusing.close()
    } else {
      await fellBack(page, mime)
    }
    await playing(page, 'cam')
    const cam = page.locator('.tile[data-camera="cam"]')
    assert.equal(await cam.locator('.mode').getAttribute('data-mode'), 'mse')
    assert.match(await cam.locator('.mode').getAttribute('title'), /^video\/mp4; codecs="avc1\./)
    assert.deepEqual(errors, [])
    await page.close()
  })

  it('a camera that drops its session mid-stream comes back with a new init segment, and the video plays on', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    const errors = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(srv.base + '/')
    await playing(page, 'cam')
    // A second viewer on the same WebSocket protocol, to see what the page is sent.
    const ws = new WebSocket(srv.ws)
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    const seen = { video: 0, inits: 0, segments: 0 }
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        if (JSON.parse(data.toString()).type === 'video') seen.video++
      } else if (Buffer.from(data).toString('latin1', 4, 8) === 'ftyp') {
        seen.inits++
      } else {
        seen.segments++
      }
    })
    ws.send(JSON.stringify({ action: 'video', cameraId: 'cam' }))
    await sleep(1500)
    const before = await page.evaluate(videoState, 'cam')
    const reconnects = (await (await fetch(`${srv.base}/api/cameras/cam/status`)).json()).reconnects
    demo.dropConnections()
    const deadline = Date.now() + 15000
    for (;;) {
      const st = await (await fetch(`${srv.base}/api/cameras/cam/status`)).json()
      if (st.reconnects > reconnects && st.state === 'streaming') break
      assert.ok(Date.now() < deadline, `camera did not come back: ${JSON.stringify(st)}`)
      await sleep(100)
    }
    const segmentsAtReconnect = seen.segments
    await sleep(3000)
    const after = await page.evaluate(videoState, 'cam')
    // Two seconds (30 frames at 15 fps): a loaded machine may hold Chromium's decoder back.
    await sleep(2000)
    const later = await page.evaluate(videoState, 'cam')
    ws.close()
    assert.equal(seen.video, 2, 'a "video" message for each session')
    assert.equal(seen.inits, 2, 'an init segment for each session')
    assert.ok(seen.segments - segmentsAtReconnect >= 30, `${seen.segments - segmentsAtReconnect} segments in 3 s after the reconnect`)
    assert.equal(await page.locator('.tile[data-camera="cam"] .mode').getAttribute('data-mode'), 'mse')
    assert.equal(later.paused, false)
    assert.ok(after.currentTime > before.currentTime + 1, `currentTime ${before.currentTime} → ${after.currentTime}`)
    assert.ok(later.currentTime - after.currentTime > 1.2, `playing after the reconnect: ${after.currentTime} → ${later.currentTime}`)
    assert.ok(later.frames - after.frames >= 10, `decoded frames ${after.frames} → ${later.frames} after the reconnect`)
    assert.ok(later.bufferedEnd - later.currentTime < 1.5, `${later.bufferedEnd - later.currentTime} s behind the newest frame`)
    assert.deepEqual(errors, [])
    await page.close()
  })
})
