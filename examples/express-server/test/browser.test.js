'use strict'
// The viewer page in a real browser (Debian's chromium, driven by playwright-core; no
// browser is ever downloaded): the demo camera's tile shows a live picture that changes,
// and connecting to a closed port through the form shows camkit's message on the page.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const os = require('node:os')
const path = require('node:path')

const { launchChromium, startServer, closedPort, sleep, decodePng } = require('./helpers')

const SCREENSHOT = path.join(os.tmpdir(), 'camkit-viewer.png')

/** Mean absolute difference of two same-sized decoded PNGs, over all RGB samples. */
function meanDifference (a, b) {
  assert.equal(a.width, b.width)
  assert.equal(a.height, b.height)
  let sum = 0
  for (let y = 0; y < a.height; y++) {
    for (let x = 0; x < a.width; x++) {
      const p = a.rgb(x, y)
      const q = b.rgb(x, y)
      sum += Math.abs(p[0] - q[0]) + Math.abs(p[1] - q[1]) + Math.abs(p[2] - q[2])
    }
  }
  return sum / (a.width * a.height * 3)
}

/** Average colour of a small square around (x, y). */
function colourAt (img, x, y) {
  const acc = [0, 0, 0]
  let n = 0
  for (let dy = -2; dy <= 2; dy++) {
    for (let dx = -2; dx <= 2; dx++) {
      const p = img.rgb(Math.round(x) + dx, Math.round(y) + dy)
      acc[0] += p[0]; acc[1] += p[1]; acc[2] += p[2]; n++
    }
  }
  return acc.map((v) => v / n)
}

describe('viewer page', () => {
  let srv
  let browser
  let page

  before(async () => {
    srv = await startServer()
    browser = await launchChromium()
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  })

  after(async () => {
    await browser?.close()
    await srv?.stop()
  })

  it('shows the demo camera live, with its state, fps and resolution', async () => {
    const errors = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(srv.base + '/?video=jpeg')
    const tile = page.locator('.tile[data-camera="demo"]')
    await tile.locator('img.live[src]').waitFor({ timeout: 15000 })
    await page.waitForFunction(() => {
      const img = document.querySelector('.tile[data-camera="demo"] img.live')
      return img && img.complete && img.naturalWidth > 0
    }, null, { timeout: 10000 })
    await page.waitForFunction(() => /fps/.test(document.querySelector('.tile[data-camera="demo"] .info').textContent))
    assert.equal(await tile.locator('.badge').textContent(), 'streaming')
    assert.match(await tile.locator('.info').textContent(), /640×360 · \d+(\.\d)? fps/)
    assert.equal(await tile.locator('a.snapshot').getAttribute('href'), '/api/cameras/demo/frame?stream=main')

    const img = tile.locator('img.live')
    const first = decodePng(await img.screenshot())
    await sleep(1500)
    const second = decodePng(await img.screenshot())
    const diff = meanDifference(first, second)
    // The demo picture has a running clock and a moving box: the tile must change.
    assert.ok(diff > 0.2, `the picture did not change (mean difference ${diff.toFixed(3)})`)
    // And it is the demo picture: its colour band starts white, yellow, cyan (top quarter).
    const bar = first.width / 8
    const y = first.height / 8
    const [white, yellow, cyan, , , red] = [0, 1, 2, 3, 4, 5].map((i) => colourAt(first, bar * (i + 0.5), y))
    assert.ok(white.every((v) => v > 200), `white bar is ${white}`)
    assert.ok(yellow[0] > 200 && yellow[1] > 200 && yellow[2] < 80, `yellow bar is ${yellow}`)
    assert.ok(cyan[0] < 80 && cyan[1] > 200 && cyan[2] > 200, `cyan bar is ${cyan}`)
    assert.ok(red[0] > 200 && red[1] < 80 && red[2] < 80, `red bar is ${red}`)
    assert.deepEqual(errors, [])
  })

  it('shows the error of a failed connect on the page', async () => {
    const port = await closedPort()
    await page.fill('input[name=cameraId]', 'door')
    await page.fill('input[name=ip]', '127.0.0.1')
    await page.fill('input[name=port]', String(port))
    await page.fill('input[name=username]', 'admin')
    await page.fill('input[name=password]', 'not-shown-anywhere')
    await page.click('#connect-form button[type=submit]')
    const err = page.locator('#connect-error')
    await err.waitFor({ state: 'visible', timeout: 10000 })
    const text = await err.textContent()
    assert.match(text, /^UNREACHABLE: camera "door": cannot connect to rtsp:\/\/127\.0\.0\.1:\d+\/: Connection refused/)
    assert.match(text, /check that the camera is on/)
    assert.ok(!(await page.content()).includes('not-shown-anywhere'))
    await page.screenshot({ path: SCREENSHOT })
    console.log(`# screenshot of the viewer: ${SCREENSHOT}`)
  })
})
