'use strict'
// Request validation: the seed's JSON fields in, camkit configs out. Every failure is a 400
// INVALID_INPUT naming the field, in the seed's vocabulary (cameraId, ip, streamPath).
const { invalid } = require('./errors')

const TRANSPORTS = ['tcp', 'udp', 'auto']
const DECODE_POLICIES = ['onDemand', 'continuous', 'keyframes']

function optionalString (body, field, { max = 1024 } = {}) {
  const v = body[field]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') throw invalid(field, 'must be a string')
  if (v.length > max) throw invalid(field, `at most ${max} characters`)
  return v
}

/** An integer from a JSON number or a numeric string (query strings, form posts). */
function optionalInt (value, field, min, max) {
  if (value === undefined || value === null || value === '') return undefined
  const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isInteger(n)) throw invalid(field, 'must be an integer')
  if (n < min || n > max) throw invalid(field, `must be between ${min} and ${max}`)
  return n
}

function optionalNumber (value, field, min, max) {
  if (value === undefined || value === null || value === '') return undefined
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value
  if (typeof n !== 'number' || !Number.isFinite(n)) throw invalid(field, 'must be a number')
  if (n < min || n > max) throw invalid(field, `must be between ${min} and ${max}`)
  return n
}

function oneOf (value, field, allowed) {
  if (value === undefined || value === null || value === '') return undefined
  if (!allowed.includes(value)) throw invalid(field, `must be one of ${allowed.join(', ')}`)
  return value
}

/**
 * The seed's connect body → a camkit CameraConfig.
 *
 * Fields (the seed's): cameraId, ip, username, password, streamPath (default "/1"), and
 * port (default 554). Beyond the seed: url (a full rtsp:// URL instead of ip/port/
 * streamPath), transport, decode, persistent, rtspTimeoutMs. No credentials are invented:
 * without username and password camkit connects without authentication.
 */
function connectConfig (body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid('body', 'must be a JSON object (Content-Type: application/json)')
  }
  const cameraId = optionalString(body, 'cameraId', { max: 64 })
  if (cameraId === undefined || cameraId === '') throw invalid('cameraId', 'missing')
  const ip = optionalString(body, 'ip', { max: 253 })
  const url = optionalString(body, 'url', { max: 2048 })
  const username = optionalString(body, 'username', { max: 256 })
  const password = optionalString(body, 'password', { max: 256 })
  const streamPath = optionalString(body, 'streamPath')
  const port = optionalInt(body.port, 'port', 1, 65535)
  if (url && ip) throw invalid('url', 'give either url or ip, not both')
  if (!url && !ip) throw invalid('ip', "missing: give the camera's IP address or host name (or url)")
  if (password !== undefined && !username) throw invalid('username', 'missing (a password was given)')
  if (url && (port !== undefined || streamPath !== undefined)) {
    throw invalid('url', 'port and streamPath belong in the url when url is given')
  }
  const config = { id: cameraId }
  if (url) {
    config.url = url
  } else {
    config.host = ip
    config.port = port ?? 554
    config.path = streamPath === undefined || streamPath === '' ? '/1' : streamPath
  }
  if (username) {
    config.username = username
    config.password = password ?? ''
  }
  const transport = oneOf(body.transport, 'transport', TRANSPORTS)
  if (transport) config.transport = transport
  const decode = oneOf(body.decode, 'decode', DECODE_POLICIES)
  if (decode) config.decode = decode
  if (body.persistent !== undefined) {
    if (typeof body.persistent !== 'boolean') throw invalid('persistent', 'must be true or false')
    config.persistent = body.persistent
  }
  const rtspTimeoutMs = optionalInt(body.rtspTimeoutMs, 'rtspTimeoutMs', 100, 120000)
  if (rtspTimeoutMs !== undefined) config.rtspTimeoutMs = rtspTimeoutMs
  return config
}

/** camkit names fields as its config does (id, host, path); the seed's clients know these. */
const SEED_FIELD = { id: 'cameraId', host: 'ip', path: 'streamPath' }

/** A camkit INVALID_INPUT error from connect, with the field renamed to the seed's name. */
function seedFieldNames (err) {
  if (err && err.code === 'INVALID_INPUT') {
    const m = /^(\w+): /.exec(err.message)
    if (m && SEED_FIELD[m[1]]) err.message = SEED_FIELD[m[1]] + err.message.slice(m[1].length)
  }
  return err
}

/** `cameraId` of a disconnect body. */
function cameraIdOf (body) {
  if (!body || typeof body !== 'object') throw invalid('body', 'must be a JSON object (Content-Type: application/json)')
  const id = optionalString(body, 'cameraId', { max: 64 })
  if (!id) throw invalid('cameraId', 'missing')
  return id
}

/** Frame options from a query string: ?maxWidth=&quality= (and fps for streams). */
function frameOptions (query, { fps: defaultFps } = {}) {
  const opts = {}
  const maxWidth = optionalInt(query.maxWidth, 'maxWidth', 16, 16384)
  if (maxWidth !== undefined) opts.maxWidth = maxWidth
  const quality = optionalInt(query.quality, 'quality', 1, 100)
  if (quality !== undefined) opts.quality = quality
  if (defaultFps !== undefined) opts.fps = optionalNumber(query.fps, 'fps', 0.1, 60) ?? defaultFps
  return opts
}

module.exports = { connectConfig, seedFieldNames, cameraIdOf, frameOptions, optionalInt, optionalNumber, TRANSPORTS }
