'use strict'
// Moondream on the viewer page in a real browser (Debian's chromium via playwright-core, as
// browser.test.js), against a loopback Moondream (bindings-node/test/moondream-mock.js): the
// ask box shows the streamed answer, Detect draws the box over the live picture where the
// answer's 0..1 coordinates say, and without a key the page says how to set one.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { MoondreamMock, DETECT_BOX } = require('../../../bindings-node/test/moondream-mock')
const { launchChromium, startServer, decodePng } = require('./helpers')

const KEY = 'md-browser-key-never-on-the-page'

describe('viewer page with Moondream', () => {
  let mock
  let srv
  let browser
  let page

  before(async () => {
    mock = await MoondreamMock.start({ apiKey: KEY })
    srv = await startServer({ MOONDREAM_URL: mock.baseUrl, MOONDREAM_API_KEY: KEY })
    browser = await launchChromium()
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  })

  after(async () => {
    await browser?.close()
    await srv?.stop()
    await mock?.close()
  })

  it('shows the streamed answer to a question asked in a tile', async () => {
    const errors = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(srv.base + '/?video=jpeg')
    const tile = page.locator('.tile[data-camera="demo"]')
    await tile.locator('img.live[src]').waitFor({ timeout: 15000 })
    await tile.locator('.md-ask').waitFor({ state: 'visible', timeout: 5000 })
    assert.equal(await page.locator('#moondream-note').isHidden(), true)

    mock.push({ stream: ['A ', 'test ', 'card ', 'with ', 'a ', 'clock.'], delayMs: 20 })
    await tile.locator('.md-question').fill('What do you see?')
    await tile.locator('.md-ask-button').click()
    await page.waitForFunction(() => {
      const a = document.querySelector('.tile[data-camera="demo"] .md-answer')
      return a && a.dataset.seq && a.textContent === 'A test card with a clock.'
    }, null, { timeout: 10000 })
    assert.deepEqual(mock.violations, [])
    assert.equal(mock.requests[0].body.question, 'What do you see?')
    assert.equal(mock.requests[0].body.stream, true)
    assert.ok(!(await page.content()).includes(KEY))
    assert.deepEqual(errors, [])
  })

  it('draws the detected box over the live picture', async () => {
    const tile = page.locator('.tile[data-camera="demo"]')
    await tile.locator('.md-question').fill('box')
    await tile.locator('.md-detect').click()
    await page.waitForFunction(() => document.querySelector('.tile[data-camera="demo"] canvas.md-overlay').dataset.shapes === '1', null, { timeout: 10000 })
    assert.match(await tile.locator('.md-answer').textContent(), /^1 × box \(picture #\d+\)$/)
    assert.equal(mock.requests[mock.requests.length - 1].path, '/detect')

    // The canvas covers the picture exactly, and the demo picture (16:9) fills the 16:9 tile,
    // so the box is at the answer's fractions of the canvas.
    const geo = await page.evaluate(() => {
      const c = document.querySelector('.tile[data-camera="demo"] canvas.md-overlay')
      const img = document.querySelector('.tile[data-camera="demo"] img.live')
      const cr = c.getBoundingClientRect()
      const ir = img.getBoundingClientRect()
      return { canvas: [cr.x, cr.y, cr.width, cr.height], img: [ir.x, ir.y, ir.width, ir.height], pixels: [c.width, c.height] }
    })
    assert.deepEqual(geo.canvas, geo.img, 'the overlay lies exactly over the picture')
    const [, , cw, ch] = geo.canvas
    const pixel = (fx, fy) => page.evaluate(([fx, fy]) => {
      const c = document.querySelector('.tile[data-camera="demo"] canvas.md-overlay')
      const d = c.getContext('2d').getImageData(Math.round(fx * c.width), Math.round(fy * c.height), 1, 1).data
      return [...d]
    }, [fx, fy])
    const midY = (DETECT_BOX.y_min + DETECT_BOX.y_max) / 2
    const midX = (DETECT_BOX.x_min + DETECT_BOX.x_max) / 2
    const edges = [[DETECT_BOX.x_min, midY], [DETECT_BOX.x_max, midY], [midX, DETECT_BOX.y_max]]
    for (const [fx, fy] of edges) {
      const [r, g, b, a] = await pixel(fx, fy)
      assert.ok(a > 200 && g > 200 && r < 120 && b < 120, `no green stroke at (${fx}, ${fy}): ${[r, g, b, a]}`)
    }
    // Inside the box and outside it the picture shows through.
    for (const [fx, fy] of [[midX, midY], [0.8, 0.5], [0.05, 0.9]]) {
      const [, , , a] = await pixel(fx, fy)
      assert.equal(a, 0, `the overlay covers (${fx}, ${fy})`)
    }

    // And on screen: the stroke is drawn over the live picture.
    const shot = decodePng(await tile.locator('.picture').screenshot())
    const sx = Math.round(DETECT_BOX.x_min * cw * (shot.width / cw))
    const sy = Math.round(midY * ch * (shot.height / ch))
    const [r, g, b] = shot.rgb(sx, sy)
    assert.ok(g > 200 && r < 140 && b < 140, `the screenshot has no green stroke at the box's left edge: ${[r, g, b]}`)

    await tile.locator('.md-clear').click()
    assert.equal(await page.evaluate(() => document.querySelector('.tile[data-camera="demo"] canvas.md-overlay').dataset.shapes), '0')
  })

  it('says how to set MOONDREAM_API_KEY when the server has no Moondream', async () => {
    const other = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    try {
      // The server of this test is configured; the page is shown an unconfigured one.
      await other.route('**/api/moondream/status', (route) => route.fulfill({
        contentType: 'application/json',
        body: JSON.stringify({ configured: false, flavour: null, baseUrl: null, message: 'Moondream is not configured: set MOONDREAM_API_KEY to a Moondream cloud API key, or MOONDREAM_URL to a Moondream Station, and restart the server' })
      }))
      await other.goto(srv.base + '/?video=jpeg')
      const note = other.locator('#moondream-note')
      await note.waitFor({ state: 'visible', timeout: 10000 })
      assert.match(await note.textContent(), /MOONDREAM_API_KEY/)
      await other.locator('.tile[data-camera="demo"]').waitFor({ timeout: 10000 })
      assert.equal(await other.locator('.tile[data-camera="demo"] .md-ask').isHidden(), true)
    } finally {
      await other.close()
    }
  })
})
