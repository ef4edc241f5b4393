'use strict'
// Request validation: the seed's JSON fields in, camkit configs out. Every failure is a 400
// INVALID_INPUT naming the field, in the seed's vocabulary (cameraId, ip, streamPath).
const net = require('node:net')
const { invalid } = require('./errors')

const TRANSPORTS = ['tcp', 'udp', 'auto']
const DECODE_POLICIES = ['onDemand', 'continuous', 'keyframes']
const DECODERS = ['auto', 'openh264', 'libavcodec']

/** C0/C1 controls, and invisible characters that reorder or hide text (bidi, zero-width). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/
const LINE_BREAK_OR_NUL = /[\r\n\u0000]/
const MAX_ID_BYTES = 64

/**
 * A camera id (body field, route parameter or WebSocket field): 1–64 bytes of UTF-8, no
 * control or invisible characters, no `/` or `\`, not `.` or `..` (ids end up in URLs,
 * file names and log lines).
 */
function cameraIdValue (value, field = 'cameraId') {
  if (value === undefined || value === null || value === '') throw invalid(field, 'missing')
  if (typeof value !== 'string') throw invalid(field, 'must be a string')
  if (Buffer.byteLength(value) > MAX_ID_BYTES) throw invalid(field, `at most ${MAX_ID_BYTES} bytes`)
  if (CONTROL.test(value)) throw invalid(field, 'must not contain control characters')
  if (/[/\\]/.test(value) || value === '.' || value === '..') {
    throw invalid(field, "must not contain '/' or '\\' or be '.' or '..'")
  }
  return value
}

/**
 * A camera host: an IPv4 address (four decimal numbers), an IPv6 address (in brackets
 * when `bracketsRequired`, as inside a URL) or a host name (letters, digits, `-`, `_`,
 * dots). Nothing else: no scheme, port, path, user, spaces, `%` zone ids, or numeric forms
 * like `127.1` or `2130706433` that resolvers read as other addresses.
 */
function checkHost (host, field, { bracketsRequired = false } = {}) {
  const v6 = /^\[(.*)\]$/.exec(host)
  if (v6 || host.includes(':')) {
    const addr = v6 ? v6[1] : host
    if (!net.isIPv6(addr) || addr.includes('%')) throw invalid(field, 'is not a valid IPv6 address')
    if (!v6 && bracketsRequired) throw invalid(field, 'an IPv6 host must be in brackets: rtsp://[fd00::7]:554/…')
    return
  }
  if (host === '') throw invalid(field, 'has no host')
  if (host.length > 253) throw invalid(field, 'host name longer than 253 characters')
  if (!/^[A-Za-z0-9._-]+$/.test(host)) {
    throw invalid(field, 'must be an IP address or host name: letters, digits, dots, hyphens (no scheme, port, path, user or spaces)')
  }
  const labels = host.replace(/\.$/, '').split('.')
  if (labels.some((l) => l === '' || l.length > 63)) throw invalid(field, 'is not a valid host name (empty or over-long label)')
  if (/^\d+$/.test(labels[labels.length - 1]) && !net.isIPv4(host)) {
    throw invalid(field, 'is not a valid IPv4 address (four numbers 0-255 without leading zeros: a.b.c.d)')
  }
}

/**
 * An rtsp:// URL cut up exactly as camkit cuts it (core/src/address.rs, parse_rtsp_url):
 * the userinfo ends at the *last* `@`, so `rtsp://1.2.3.4/x@evil` is user `1.2.3.4/x` at
 * host `evil`. Returns {prefix, host, port, suffix} (prefix + host + suffix is the URL,
 * trimmed), or null when it is not rtsp:// or its port is not 1–65535.
 */
function rtspUrlParts (raw) {
  const s = raw.trim()
  const i = s.indexOf('://')
  if (i < 0 || s.slice(0, i).toLowerCase() !== 'rtsp') return null
  const rest = s.slice(i + 3)
  const at = rest.lastIndexOf('@')
  const hostStart = i + 3 + at + 1
  const hostpath = rest.slice(at + 1)
  const cut = hostpath.search(/[/?]/)
  const hostport = cut >= 0 ? hostpath.slice(0, cut) : hostpath
  let host
  let portText
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']')
    if (end < 0) return null
    host = hostport.slice(0, end + 1)
    const after = hostport.slice(end + 1)
    portText = after.startsWith(':') ? after.slice(1) : (after === '' ? undefined : null)
  } else {
    const colon = hostport.lastIndexOf(':')
    host = colon >= 0 ? hostport.slice(0, colon) : hostport
    portText = colon >= 0 ? hostport.slice(colon + 1) : undefined
  }
  let port = 554
  if (portText === null) return null
  if (portText !== undefined && portText !== '') {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return null
    port = Number(portText)
  }
  return { prefix: s.slice(0, hostStart), host, port, suffix: s.slice(hostStart + host.length) }
}

/** A `url` field: rtsp://[user:password@]host[:port][/path], checked as camkit will read it. */
function checkRtspUrl (url) {
  if (CONTROL.test(url)) throw invalid('url', 'must not contain control characters')
  if (!/^\s*rtsp:\/\//i.test(url)) throw invalid('url', 'must start with rtsp:// (e.g. rtsp://192.168.1.20:554/stream1)')
  const parts = rtspUrlParts(url)
  if (!parts) throw invalid('url', 'must be rtsp://[user:password@]host[:port]/path with a port from 1 to 65535')
  checkHost(parts.host, 'url', { bracketsRequired: true })
}

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
 * The server's default H.264 decoder: CAMKIT_DECODER (auto, openh264, libavcodec), or
 * undefined for camkit's own default (auto: libavcodec when the system has it).
 */
function defaultDecoder (env = process.env) {
  const v = env.CAMKIT_DECODER
  if (v === undefined || v === '') return undefined
  if (!DECODERS.includes(v)) throw new Error(`CAMKIT_DECODER: must be one of ${DECODERS.join(', ')}`)
  return v
}

/**
 * The connect body's name of each camkit config field that the seed named otherwise; every
 * other field has camkit's name (camkit's CameraConfig FIELDS, checked by the tests).
 */
const SEED_FIELD = Object.freeze({ id: 'cameraId', host: 'ip', path: 'streamPath' })

/**
 * Durations in ms beyond rtspTimeoutMs: integers passed on as they are, which camkit checks
 * (more than 0, at most one day) naming the field.
 */
const DURATION_FIELDS = ['frameTimeoutMs', 'backoffInitialMs', 'backoffMaxMs', 'decodeGraceMs', 'connectTimeoutMs', 'snapshotTimeoutMs']
const ONE_DAY_MS = 24 * 3600 * 1000
/** The RTSP quirk options of camkit's config, and their values. */
const QUIRKS = {
  teardown: ['auto', 'always', 'never'],
  unassignedChannelData: ['auto', 'assumeStaleSession', 'error', 'ignore'],
  unknownRtcpSsrc: ['dropPackets', 'abortSession', 'processPackets']
}

/**
 * The seed's connect body → a camkit CameraConfig.
 *
 * Fields (the seed's): cameraId, ip, username, password, streamPath (default "/1"), and
 * port (default 554). Beyond the seed, every other camkit config field by camkit's name:
 * url (a full rtsp:// URL instead of ip/port/streamPath), transport, decode, decoder
 * (default CAMKIT_DECODER, else camkit's auto), persistent, jpegQuality, rtspTimeoutMs,
 * the durations of DURATION_FIELDS, the RTSP quirk options of QUIRKS, and subStream (the
 * camera's second stream: a path on the same host and port, or an rtsp:// URL; camkit checks
 * it naming the field). No credentials are invented: without username and password camkit
 * connects without authentication.
 */
function connectConfig (body, env = process.env) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid('body', 'must be a JSON object (Content-Type: application/json)')
  }
  const cameraId = cameraIdValue(body.cameraId)
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
  if (ip) checkHost(ip, 'ip')
  if (url) checkRtspUrl(url)
  if (streamPath && CONTROL.test(streamPath)) throw invalid('streamPath', 'must not contain control characters')
  if (username && CONTROL.test(username)) throw invalid('username', 'must not contain control characters')
  if (password && LINE_BREAK_OR_NUL.test(password)) throw invalid('password', 'must not contain line breaks or NUL')
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
  const decoder = oneOf(body.decoder, 'decoder', DECODERS) ?? defaultDecoder(env)
  if (decoder) config.decoder = decoder
  if (body.persistent !== undefined) {
    if (typeof body.persistent !== 'boolean') throw invalid('persistent', 'must be true or false')
    config.persistent = body.persistent
  }
  const rtspTimeoutMs = optionalInt(body.rtspTimeoutMs, 'rtspTimeoutMs', 100, 120000)
  if (rtspTimeoutMs !== undefined) config.rtspTimeoutMs = rtspTimeoutMs
  for (const field of DURATION_FIELDS) {
    const ms = optionalInt(body[field], field, 0, ONE_DAY_MS)
    if (ms !== undefined) config[field] = ms
  }
  const jpegQuality = optionalInt(body.jpegQuality, 'jpegQuality', 1, 100)
  if (jpegQuality !== undefined) config.jpegQuality = jpegQuality
  for (const [field, allowed] of Object.entries(QUIRKS)) {
    const v = oneOf(body[field], field, allowed)
    if (v) config[field] = v
  }
  const subStream = optionalString(body, 'subStream', { max: 2048 })
  if (subStream) {
    if (CONTROL.test(subStream)) throw invalid('subStream', 'must not contain control characters')
    config.subStream = subStream
  }
  return config
}

/** The streams a request may ask for (camkit's StreamChoice). */
const STREAMS = ['auto', 'main', 'sub']

/**
 * A camkit INVALID_INPUT error from connect, with the field (camkit's `err.field`, as
 * spelled in its config) renamed to the seed's name, in `err.field` and the message.
 */
function seedFieldNames (err) {
  const seed = err && err.code === 'INVALID_INPUT' && SEED_FIELD[err.field]
  if (seed) {
    if (err.message.startsWith(`${err.field}: `)) err.message = seed + err.message.slice(err.field.length)
    err.field = seed
  }
  return err
}

/** `cameraId` of a disconnect body. */
function cameraIdOf (body) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid('body', 'must be a JSON object (Content-Type: application/json)')
  }
  return cameraIdValue(body.cameraId)
}

/** Frame options from a query string: ?maxWidth=&quality=&stream= (and fps for streams). */
function frameOptions (query, { fps: defaultFps } = {}) {
  const opts = {}
  const maxWidth = optionalInt(query.maxWidth, 'maxWidth', 16, 16384)
  if (maxWidth !== undefined) opts.maxWidth = maxWidth
  const quality = optionalInt(query.quality, 'quality', 1, 100)
  if (quality !== undefined) opts.quality = quality
  const stream = oneOf(query.stream, 'stream', STREAMS)
  if (stream) opts.stream = stream
  if (defaultFps !== undefined) opts.fps = optionalNumber(query.fps, 'fps', 0.1, 60) ?? defaultFps
  return opts
}

module.exports = {
  connectConfig,
  SEED_FIELD,
  seedFieldNames,
  cameraIdOf,
  cameraIdValue,
  checkHost,
  rtspUrlParts,
  frameOptions,
  optionalInt,
  optionalNumber,
  defaultDecoder,
  oneOf,
  TRANSPORTS,
  DECODERS,
  STREAMS
}
