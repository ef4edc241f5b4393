'use strict'
// The viewer page and a camera with a sub-stream, in a real browser (Debian's chromium,
// driven by playwright-core): GStreamer's 1280x720 main stream with a 640x360 sub-stream.
// The grid's tile plays the sub-stream through MSE (the <video>'s own size is the
// sub-stream's), the tile's full view the main stream, and back in the grid the sub-stream
// again. A tile whose sub-stream goes off (its server killed) reopens its video on the main
// stream, as the status says the sub-stream stopped streaming.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { launchChromium, startServer, startGstServer, sleep } = require('./helpers')

const TILE = '.tile[data-camera="two"]'

/** A tile's <video>: its size and how far it played. */
function videoState (camera = 'two') {
  const v = document.querySelector(`.tile[data-camera="${camera}"] video.live`)
  return {
    width: v.videoWidth,
    height: v.videoHeight,
    currentTime: v.currentTime,
    frames: v.getVideoPlaybackQuality().totalVideoFrames,
    full: v.closest('.tile').classList.contains('full')
  }
}

/** Waits until a tile's <video> plays at `width` pixels wide. */
async function playsAt (page, width, camera = 'two') {
  await page.waitForFunction(([w, c]) => {
    const v = document.querySelector(`.tile[data-camera="${c}"] video.live`)
    return v && v.videoWidth === w && v.currentTime > 0.3 && v.getVideoPlaybackQuality().totalVideoFrames > 5
  }, [width, camera], { timeout: 30000 })
}

/** POSTs `body` as JSON to `path`; returns the status code. */
async function post (srv, path, body) {
  const r = await fetch(`${srv.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return r.status
}

describe('viewer page: a camera with a sub-stream', () => {
  let gst
  let srv
  let browser

  before(async () => {
    gst = await startGstServer()
    srv = await startServer({
      CAMKIT_DEMO: '0',
      EXPECT_CAMERAS: '1',
      CAMKIT_CAMERAS: JSON.stringify([
        { cameraId: 'two', url: `rtsp://127.0.0.1:${gst.port}/h264-720`, subStream: '/high' }
      ])
    })
    // The sub-stream opens once the main stream played: wait for it, so the page's first
    // request for it is served by it.
    const deadline = Date.now() + 20000
    for (;;) {
      const s = await (await fetch(`${srv.base}/api/cameras/two/status`)).json()
      if (s.subStream && s.subStream.state === 'streaming') break
      assert.ok(Date.now() < deadline, `the sub-stream did not come up: ${JSON.stringify(s)}`)
      await sleep(100)
    }
    browser = await launchChromium(['--autoplay-policy=no-user-gesture-required'])
  })

  after(async () => {
    await browser?.close()
    await srv?.stop()
    await gst?.stop()
  })

  it('the grid tile plays the sub-stream, the full view the main stream', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    const errors = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(srv.base + '/')
    const tile = page.locator(TILE)
    await tile.waitFor({ timeout: 15000 })
    assert.equal(await tile.locator('.mode').getAttribute('data-mode'), 'mse')
    await playsAt(page, 640)
    const grid = await page.evaluate(videoState)
    assert.deepEqual([grid.width, grid.height, grid.full], [640, 360, false])
    assert.match(await tile.locator('.info .details').textContent(), /sub-stream 640×360/)

    await tile.locator('.full-view').click()
    await playsAt(page, 1280)
    const full = await page.evaluate(videoState)
    assert.deepEqual([full.width, full.height, full.full], [1280, 720, true])
    assert.equal(await tile.locator('.full-view').textContent(), 'Back to grid')
    await sleep(1500)
    const later = await page.evaluate(videoState)
    assert.equal(later.width, 1280, 'the full view stays on the main stream')
    assert.ok(later.currentTime > full.currentTime + 0.5, `playing: ${full.currentTime} → ${later.currentTime}`)

    await tile.locator('.full-view').click()
    await playsAt(page, 640)
    const back = await page.evaluate(videoState)
    assert.deepEqual([back.width, back.height, back.full], [640, 360, false])
    assert.equal(await tile.locator('.full-view').textContent(), 'Full view')
    assert.deepEqual(errors, [])
    await page.close()
  })

  it('a tile whose sub-stream goes off plays the main stream', async () => {
    assert.equal(await post(srv, '/api/cameras/disconnect', { cameraId: 'two' }), 200)
    const subServer = await startGstServer()
    let subRunning = true
    try {
      assert.equal(await post(srv, '/api/cameras/connect', {
        cameraId: 'far',
        url: `rtsp://127.0.0.1:${gst.port}/h264-720`,
        subStream: `rtsp://127.0.0.1:${subServer.port}/high`
      }), 200)
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
      const errors = []
      page.on('pageerror', (e) => errors.push(e.message))
      await page.goto(srv.base + '/')
      await playsAt(page, 640, 'far')
      subRunning = false
      await subServer.stop()
      await playsAt(page, 1280, 'far')
      const st = await (await fetch(`${srv.base}/api/cameras/far/status`)).json()
      assert.notEqual(st.subStream.state, 'streaming', JSON.stringify(st.subStream))
      assert.equal(st.state, 'streaming')
      assert.match(await page.locator('.tile[data-camera="far"] .info .details').textContent(), /sub-stream off/)
      assert.deepEqual(errors, [])
      await page.close()
    } finally {
      if (subRunning) await subServer.stop()
    }
  })
})
