'use strict'
// One list of config fields: every field of camkit's CameraConfig, as the library lists
// them (cameraConfigFields()), is read by this binding. A value camkit refuses proves it:
// connect rejects with INVALID_INPUT and `err.field` naming that field. A field added to
// camkit and not to the binding's CameraConfig is silently ignored by napi-rs, so connect
// would not reject; a field added without a row below fails on its own.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { CameraManager, cameraConfigFields } = require('..')
const { closedPort, failure } = require('./helpers')

/** Fields of camkit's config this binding deliberately does not take, with the reason. */
const NOT_IN_NODE = {}

describe('camera config fields', () => {
  let cams
  let port
  before(async () => {
    cams = new CameraManager()
    port = await closedPort()
  })
  after(() => cams.close())

  it('every camkit config field is settable from Node', async () => {
    // A config camkit accepts (connecting fails later, UNREACHABLE: nothing listens).
    const ok = { id: 'fields', host: '127.0.0.1', port }
    /** For each field, a config that differs from `ok` only in a bad value of it. */
    const bad = {
      id: { ...ok, id: 'a/b' },
      url: { id: ok.id, url: 'http://127.0.0.1/x' },
      host: { ...ok, host: 'bad host' },
      port: { ...ok, port: 70000 },
      path: { ...ok, path: 'no-slash' },
      username: { ...ok, username: 'a\u0007b' },
      password: { ...ok, password: 'a\nb' },
      transport: { ...ok, transport: 'carrier-pigeon' },
      decode: { ...ok, decode: 'sometimes' },
      decoder: { ...ok, decoder: 'gpu' },
      rtspTimeoutMs: { ...ok, rtspTimeoutMs: 0 },
      frameTimeoutMs: { ...ok, frameTimeoutMs: 0 },
      backoffInitialMs: { ...ok, backoffInitialMs: 0 },
      backoffMaxMs: { ...ok, backoffMaxMs: 0 },
      jpegQuality: { ...ok, jpegQuality: 0 },
      persistent: { ...ok, persistent: 'yes' },
      decodeGraceMs: { ...ok, decodeGraceMs: 0 },
      connectTimeoutMs: { ...ok, connectTimeoutMs: 0 },
      snapshotTimeoutMs: { ...ok, snapshotTimeoutMs: 0 },
      teardown: { ...ok, teardown: 'sometimes' },
      unassignedChannelData: { ...ok, unassignedChannelData: 'sometimes' },
      unknownRtcpSsrc: { ...ok, unknownRtcpSsrc: 'sometimes' },
      subStream: { ...ok, subStream: 'stream2' }
    }
    const fields = cameraConfigFields()
    assert.ok(fields.includes('id') && fields.includes('rtspTimeoutMs'), `${fields}`)
    assert.equal((await failure(() => cams.connect(ok))).code, 'UNREACHABLE')
    for (const field of fields) {
      if (NOT_IN_NODE[field]) continue
      assert.ok(bad[field], `${field}: add a value camkit refuses to this test`)
      const e = await failure(() => cams.connect(bad[field]))
      assert.equal(e.code, 'INVALID_INPUT', `${field}: ${e.code} ${e.message}`)
      assert.equal(e.field, field, `${field}: ${e.message}`)
    }
    assert.deepEqual(Object.keys(bad).filter((f) => !fields.includes(f)), [], 'rows for fields camkit no longer has')
  })
})
