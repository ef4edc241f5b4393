'use strict'
// Moondream through the Node binding, against a loopback Moondream (test/moondream-mock.js,
// both flavours) and the built-in demo camera: typed results about the camera's current
// picture, streamed answers, watches, and err.code for every failure a caller must tell
// apart. No test needs the internet.
const { describe, it, before, after, beforeEach } = require('node:test')
const assert = require('node:assert/strict')

const { CameraManager, startDemoCamera } = require('..')
const { MoondreamMock, DETECT_BOX, POINT } = require('./moondream-mock')
const { closedPort, failure, sleep } = require('./helpers')

const KEY = 'md-test-key-0123456789'

// The cloud without a key must fail the same way wherever the tests run.
delete process.env.MOONDREAM_API_KEY

async function until (fn, ms = 5000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (fn()) return
    await sleep(20)
  }
  assert.fail('condition not met in time')
}

describe('moondream', () => {
  let demo
  let cams
  let cloud
  let station
  let md

  before(async () => {
    demo = await startDemoCamera({ width: 640, height: 360, fps: 15 })
    cams = new CameraManager()
    await cams.connect({ id: 'door', url: demo.url })
    cloud = await MoondreamMock.start({ apiKey: KEY })
    station = await MoondreamMock.start()
    md = cams.moondream({ baseUrl: cloud.baseUrl, apiKey: KEY, timeoutMs: 5000, maxRetries: 0 })
  })

  after(async () => {
    cams.close()
    await demo.stop()
    await cloud.close()
    await station.close()
  })

  beforeEach(() => {
    cloud.reset()
    station.reset()
  })

  it('asks, captions, detects and points about the current picture, with its seq', async () => {
    cloud.push({ answer: 'White.' })
    const q = await md.query('door', 'What colour is the top-left bar?')
    assert.equal(q.answer, 'White.')
    assert.equal(q.cameraId, 'door')
    assert.equal(q.requestId, 'req-1')
    assert.equal(q.width, 640)
    assert.equal(q.height, 360)
    assert.ok(q.seq >= 1)
    assert.ok(Math.abs(q.capturedAt - Date.now()) < 60000, `capturedAt ${q.capturedAt}`)

    const c = await md.caption('door', { length: 'short' })
    assert.equal(c.caption, 'mock answer')
    const d = await md.detect('door', 'yellow bar')
    assert.deepEqual(d.objects, [{ xMin: DETECT_BOX.x_min, yMin: DETECT_BOX.y_min, xMax: DETECT_BOX.x_max, yMax: DETECT_BOX.y_max }])
    const p = await md.point('door', 'blue bar')
    assert.deepEqual(p.points, [{ x: POINT.x, y: POINT.y }])
    const defaultLength = await md.caption('door')
    assert.equal(defaultLength.caption, 'mock answer')

    assert.deepEqual(cloud.violations, [])
    assert.deepEqual(cloud.requests.map((r) => r.path), ['/query', '/caption', '/detect', '/point', '/caption'])
    for (const r of cloud.requests) {
      assert.equal(r.auth, KEY)
      assert.deepEqual(r.size, { width: 640, height: 360 })
    }
    assert.equal(cloud.requests[0].body.question, 'What colour is the top-left bar?')
    assert.equal(cloud.requests[0].body.stream, false)
    assert.equal(cloud.requests[1].body.length, 'short')
    assert.equal(cloud.requests[4].body.length, 'normal')
    assert.equal(cloud.requests[2].body.object, 'yellow bar')
    assert.equal(md.baseUrl, cloud.baseUrl)
  })

  it('scales large pictures so the long side is 768', async () => {
    const big = await startDemoCamera({ width: 1280, height: 720, fps: 10 })
    try {
      await cams.connect({ id: 'big', url: big.url })
      const q = await md.query('big', 'anything?')
      assert.equal(q.width, 768)
      assert.equal(q.height, 432)
      assert.deepEqual(cloud.requests[0].size, { width: 768, height: 432 })
    } finally {
      await cams.disconnect('big')
      await big.stop()
    }
  })

  it('works with a Moondream Station (no key) and reports its 200 {"error"} as SERVICE_ERROR', async () => {
    const st = cams.moondream({ baseUrl: station.baseUrl, timeoutMs: 5000 })
    station.push({ answer: 'Two people.' })
    const q = await st.query('door', 'How many people?')
    assert.equal(q.answer, 'Two people.')
    assert.equal(q.requestId, undefined)
    assert.equal(station.requests[0].auth, undefined)
    station.push({ stationError: 'model not loaded' })
    const e = await failure(() => st.query('door', 'again?'))
    assert.equal(e.code, 'SERVICE_ERROR')
    assert.match(e.message, /model not loaded/)
  })

  it('streams answers piece by piece, in order, before the promise resolves', async () => {
    cloud.push({ stream: ['The ', 'door ', 'is ', 'open.'] })
    const pieces = []
    const r = await md.queryStream('door', 'Is the door open?', (t) => { pieces.push(t) })
    assert.deepEqual(pieces, ['The ', 'door ', 'is ', 'open.'])
    assert.equal(r.answer, 'The door is open.')
    assert.equal(r.cameraId, 'door')
    assert.ok(r.seq >= 1)
    assert.equal(cloud.requests[0].body.stream, true)

    station.push({ stream: ['A ', 'quiet ', 'street.'] })
    const st = cams.moondream({ baseUrl: station.baseUrl })
    const capPieces = []
    const c = await st.captionStream('door', { length: 'long' }, (t) => capPieces.push(t))
    assert.equal(c.caption, 'A quiet street.')
    assert.deepEqual(capPieces, ['A ', 'quiet ', 'street.'])
    assert.equal(station.requests[0].body.length, 'long')
  })

  it('stops a streamed answer when onChunk returns false; rejects on a failure mid-answer or with what onChunk threw', async () => {
    cloud.push({ stream: ['one ', 'two ', 'three ', 'four'] })
    const seen = []
    const r = await md.queryStream('door', 'count', (t) => { seen.push(t); return seen.length < 2 })
    assert.deepEqual(seen, ['one ', 'two '])
    assert.equal(r.answer, 'one two ')

    cloud.push({ stream: ['half ', 'an '], streamError: 'the model crashed' })
    const got = []
    let e = await failure(() => md.queryStream('door', 'x', (t) => { got.push(t) }))
    assert.equal(e.code, 'SERVICE_ERROR')
    assert.match(e.message, /the model crashed/)
    assert.deepEqual(got, ['half ', 'an '])

    cloud.push({ stream: ['a ', 'b ', 'c'] })
    const boom = new Error('boom from onChunk')
    e = await failure(() => md.queryStream('door', 'x', () => { throw boom }))
    assert.equal(e, boom)
  })

  it('maps failures to err.code: UNAUTHORIZED, RATE_LIMITED, SERVICE_ERROR, TIMEOUT, UNREACHABLE', async () => {
    const wrongKey = 'md-wrong-key-not-to-be-shown'
    const wrong = cams.moondream({ baseUrl: cloud.baseUrl, apiKey: wrongKey })
    let e = await failure(() => wrong.query('door', 'q?'))
    assert.equal(e.code, 'UNAUTHORIZED')
    assert.match(e.message, /MOONDREAM_API_KEY/)
    assert.ok(!e.message.includes(wrongKey), e.message)

    cloud.push({ status: 429, retryAfter: '0' })
    e = await failure(() => md.query('door', 'q?'))
    assert.equal(e.code, 'RATE_LIMITED')
    assert.match(e.message, /429/)
    // With a retry allowed, a 429 with Retry-After: 0 is retried and succeeds.
    const patient = cams.moondream({ baseUrl: cloud.baseUrl, apiKey: KEY, maxRetries: 1 })
    cloud.push({ status: 429, retryAfter: '0' }, { answer: 'after the retry' })
    assert.equal((await patient.query('door', 'q?')).answer, 'after the retry')

    cloud.push({ status: 500, error: 'GPU on fire' })
    e = await failure(() => md.detect('door', 'cat'))
    assert.equal(e.code, 'SERVICE_ERROR')
    assert.match(e.message, /GPU on fire/)

    const impatient = cams.moondream({ baseUrl: cloud.baseUrl, apiKey: KEY, timeoutMs: 300, maxRetries: 0 })
    cloud.push({ hang: true })
    e = await failure(() => impatient.query('door', 'q?'))
    assert.equal(e.code, 'TIMEOUT')

    const nowhere = cams.moondream({ baseUrl: `http://127.0.0.1:${await closedPort()}/v1` })
    e = await failure(() => nowhere.caption('door'))
    assert.equal(e.code, 'UNREACHABLE')
    assert.match(e.message, /is the service running/)
  })

  it('rejects bad input with INVALID_INPUT naming the field, and unknown cameras with NOT_FOUND', async () => {
    let e = await failure(() => md.query('nope', 'q?'))
    assert.equal(e.code, 'NOT_FOUND')
    e = await failure(() => md.query('door'))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^question: /)
    e = await failure(() => md.query('door', '   '))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^question: must not be empty/)
    e = await failure(() => md.detect('door', 42))
    assert.match(e.message, /^object: must be a string/)
    e = await failure(() => md.caption('door', { length: 'tiny' }))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^length: /)
    e = await failure(() => md.queryStream('door', 'q?', 'not a function'))
    assert.match(e.message, /^onChunk: must be a function/)
    e = await failure(() => cams.moondream({ baseUrl: cloud.baseUrl, apiKey: KEY, timeoutMs: 5 }))
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^timeoutMs: /)
    e = await failure(() => cams.moondream({ baseUrl: 'ftp://example.com/v1' }))
    assert.match(e.message, /^baseUrl: /)
    // The cloud needs a key: the message says how to give one.
    e = await failure(() => cams.moondream())
    assert.equal(e.code, 'INVALID_INPUT')
    assert.match(e.message, /^apiKey: .*MOONDREAM_API_KEY/)
    assert.deepEqual(cloud.requests, [])
  })

  it('watches a question and reports only answers that change, until stop()', async () => {
    cloud.push({ answer: 'No' }, { answer: 'No.' }, { answer: 'Yes' })
    cloud.defaultReply = { answer: 'yes.' }
    const events = []
    const errors = []
    const w = md.watch('door', 'Is the door open?', { everyMs: 150, onlyWhenChanged: false }, (err, ev) => {
      if (err) errors.push(err)
      else events.push(ev)
    })
    assert.equal(w.cameraId, 'door')
    assert.equal(w.question, 'Is the door open?')
    assert.equal(w.running, true)
    await until(() => events.length >= 2 && cloud.requests.length >= 5)
    w.stop()
    assert.equal(w.running, false)
    const after = events.length
    await sleep(400)
    assert.equal(events.length, after, 'no callback after stop()')
    assert.deepEqual(errors, [])
    assert.deepEqual(events.map((e) => [e.answer, e.previousAnswer ?? null]), [['No', null], ['Yes', 'No.']])
    assert.equal(events[0].cameraId, 'door')
    assert.equal(events[0].question, 'Is the door open?')
    assert.ok(events[1].seq >= events[0].seq)
    assert.ok(events[1].atMs >= events[0].atMs)
    const s = w.stats
    assert.ok(s.asked >= 5, JSON.stringify(s))
    assert.equal(s.events, 2)
    assert.equal(s.errors, 0)
    const asked = cloud.requests.length
    await sleep(300)
    assert.equal(cloud.requests.length, asked, 'no calls after stop()')
  })

  it('reports a failed tick to the watch callback and goes on; ends with CLOSED on disconnect', async () => {
    await cams.connect({ id: 'temp', url: demo.url })
    cloud.push({ status: 500, error: 'overloaded' }, { answer: 'fine' })
    cloud.defaultReply = { answer: 'fine' }
    const calls = []
    const w = md.watch('temp', 'ok?', { everyMs: 150, onlyWhenChanged: false }, (err, ev) => calls.push(err ? { code: err.code, message: err.message } : ev.answer))
    await until(() => calls.length >= 2)
    assert.equal(calls[0].code, 'SERVICE_ERROR')
    assert.match(calls[0].message, /overloaded/)
    assert.equal(calls[1], 'fine')
    assert.equal(w.running, true)
    await cams.disconnect('temp')
    await until(() => calls.some((c) => c.code === 'CLOSED'))
    assert.equal(calls[calls.length - 1].code, 'CLOSED')
    await until(() => !w.running)
  })

  it('ends a watch whose key is refused, after one UNAUTHORIZED callback', async () => {
    const wrong = cams.moondream({ baseUrl: cloud.baseUrl, apiKey: 'md-wrong' })
    const calls = []
    const w = wrong.watch('door', 'q?', { everyMs: 100 }, (err) => calls.push(err && err.code))
    await until(() => !w.running)
    await sleep(300)
    assert.deepEqual(calls, ['UNAUTHORIZED'])
  })

  it('checks watch arguments synchronously', () => {
    assert.throws(() => md.watch('nope', 'q?', { everyMs: 1000 }, () => {}), (e) => e.code === 'NOT_FOUND')
    assert.throws(() => md.watch('door', 'q?', { everyMs: 10 }, () => {}), (e) => e.code === 'INVALID_INPUT' && /^everyMs: /.test(e.message))
    assert.throws(() => md.watch('door', 'q?', { changeThreshold: -1 }, () => {}), (e) => e.code === 'INVALID_INPUT' && /^changeThreshold: /.test(e.message))
    assert.throws(() => md.watch('door', 'q?', null, 'nope'), (e) => e.code === 'INVALID_INPUT' && /^callback: /.test(e.message))
    assert.throws(() => md.watch('door', '', null, () => {}), (e) => e.code === 'INVALID_INPUT' && /^question: /.test(e.message))
  })

  it('fails with CLOSED once the manager is closed', async () => {
    const other = new CameraManager()
    await other.connect({ id: 'door', url: demo.url })
    const m = other.moondream({ baseUrl: station.baseUrl })
    other.close()
    const e = await failure(() => m.query('door', 'q?'))
    assert.ok(['CLOSED', 'NOT_FOUND'].includes(e.code), e.code)
    assert.throws(() => other.moondream({ baseUrl: station.baseUrl }), (err) => err.code === 'CLOSED')
  })
})
