'use strict'
// The viewer page plays the demo camera's own H.264 through Media Source Extensions in a
// real browser (Debian's chromium, driven by playwright-core): the <video> plays
// (currentTime advances, decoded frames grow), stays near the live edge with a short
// buffer, and a canvas drawn from it shows the demo camera's colour band. Without MSE the
// tile falls back to JPEG frames and says so.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { launchChromium, startServer, sleep } = require('./helpers')

const TILE = '.tile[data-camera="demo"]'

/** The <video>'s playback state, and the colours of the demo band's first six bars. */
function videoState () {
  const v = document.querySelector('.tile[data-camera="demo"] video.live')
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

describe('viewer page: live video through MSE', () => {
  let srv
  let browser

  before(async () => {
    srv = await startServer()
    browser = await launchChromium(['--autoplay-policy=no-user-gesture-required'])
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
