'use strict'
// One list of config fields, for the connect body: every field of camkit's CameraConfig
// (cameraConfigFields(), from the library) is settable in POST /api/cameras/connect, by the
// seed's name where it has one (cameraId, ip, streamPath), else by camkit's. A good value of
// each reaches the config handed to camkit; a bad one is a 400 INVALID_INPUT naming the
// body's field, from the real server. A field added to camkit without a row here fails.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { cameraConfigFields } = require('../../../bindings-node')
const { connectConfig, SEED_FIELD } = require('../../../bindings-node/express/validate')
const { startServer } = require('./helpers')

/** Fields of camkit's config the connect body deliberately does not take, with the reason. */
const NOT_IN_BODY = {}

/** For each camkit field: a good value other than the default, and one camkit refuses. */
const VALUES = {
  id: ['door', 'a/b'],
  url: ['rtsp://127.0.0.1:8554/x', 'http://127.0.0.1/x'],
  host: ['127.0.0.2', 'bad host'],
  port: [8554, 70000],
  path: ['/live', 'no-slash'],
  username: ['operator', 'a\u0007b'],
  password: ['pa:ss@w0rd', 'a\nb'],
  transport: ['udp', 'carrier-pigeon'],
  decode: ['keyframes', 'sometimes'],
  decoder: ['openh264', 'gpu'],
  rtspTimeoutMs: [1234, 0],
  frameTimeoutMs: [1234, 0],
  backoffInitialMs: [1234, 0],
  backoffMaxMs: [12345, 0],
  jpegQuality: [42, 0],
  persistent: [true, 'yes'],
  decodeGraceMs: [1234, 0],
  connectTimeoutMs: [1234, 0],
  snapshotTimeoutMs: [1234, 0],
  teardown: ['never', 'sometimes'],
  unassignedChannelData: ['ignore', 'sometimes'],
  unknownRtcpSsrc: ['processPackets', 'sometimes'],
  subStream: ['/sub', 'stream2']
}

const BASE = { cameraId: 'fields', ip: '127.0.0.1' }

/** The connect body with `field` (camkit's name) set to `value`, by the body's name. */
function bodyWith (field, value) {
  const key = SEED_FIELD[field] ?? field
  if (field === 'url') return { cameraId: BASE.cameraId, url: value }
  if (field === 'password') return { ...BASE, username: 'operator', password: value }
  return { ...BASE, [key]: value }
}

describe('connect body fields', () => {
  let srv
  before(async () => { srv = await startServer() })
  after(async () => { await srv?.stop() })

  it('every camkit config field is settable from the connect body', async () => {
    const fields = cameraConfigFields()
    for (const field of fields) {
      if (NOT_IN_BODY[field]) continue
      assert.ok(VALUES[field], `${field}: add it to the connect body (validate.js) and a row to this test`)
      const [good, bad] = VALUES[field]
      assert.deepEqual(connectConfig(bodyWith(field, good), {})[field], good, `${field} does not reach camkit's config`)
      const key = SEED_FIELD[field] ?? field
      const r = await fetch(`${srv.base}/api/cameras/connect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(bodyWith(field, bad))
      })
      const json = await r.json()
      assert.equal(r.status, 400, `${field}: ${JSON.stringify(json)}`)
      assert.equal(json.code, 'INVALID_INPUT')
      assert.match(json.error, new RegExp(`^${key}: `), `${field}`)
    }
    assert.deepEqual(Object.keys(VALUES).filter((f) => !fields.includes(f)), [], 'rows for fields camkit no longer has')
  })
})
