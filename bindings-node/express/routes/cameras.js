'use strict'
// /api/cameras: the seed's routes and JSON shapes, served in-process by camkit, plus a list,
// an MJPEG stream, live fragmented MP4 (video.mp4, see ../video.js) and per-camera details.
//
// Seed shapes kept (examples/express-server/README.md has the table):
//   POST /connect          → {"success":true,"cameraId":"cam1"}
//   POST /disconnect       → {"success":true}
//   GET  /:cameraId/status → {"cameraId","connected","frames", …camkit details after them}
//   GET  /:cameraId/frame  → image/jpeg
//   GET  /websocket-url    → {"url":"ws://<this host>/ws"}
//   GET  /status           → {"running","port","baseUrl"}
const express = require('express')
const { connectConfig, seedFieldNames, cameraIdOf, cameraIdValue, frameOptions } = require('../validate')
const { invalid, route } = require('../errors')
const { mjpegHandler } = require('../mjpeg')
const { videoMp4Handler } = require('../video')

/**
 * The JSON view of one camera: the seed's three fields first, then camkit's status (and, in
 * cluster mode, `owner`: the node running it).
 */
function cameraView (s) {
  const view = {
    cameraId: s.id,
    connected: s.state === 'streaming',
    frames: s.framesReceived,
    state: s.state,
    url: s.url,
    transport: s.transport,
    decode: s.decode,
    decoder: s.decoder ?? null,
    codec: s.codec ?? null,
    profile: s.profile ?? null,
    width: s.width ?? null,
    height: s.height ?? null,
    fps: s.fps,
    bitrateBps: s.bitrateBps,
    framesDecoded: s.framesDecoded,
    framesDropped: s.framesDropped,
    reconnects: s.reconnects,
    connectedSinceMs: s.connectedSinceMs ?? null,
    lastFrameMs: s.lastFrameMs ?? null,
    lastError: s.lastError ? { code: s.lastError.code, message: s.lastError.message, atMs: s.lastError.atMs } : null,
    subStream: s.subStream ? subStreamView(s.subStream) : null
  }
  if (s.owner !== undefined) view.owner = s.owner
  return view
}

/** A camera's sub-stream (config `subStream`): its own state, size, counters and error. */
function subStreamView (s) {
  return {
    state: s.state,
    url: s.url,
    codec: s.codec ?? null,
    width: s.width ?? null,
    height: s.height ?? null,
    fps: s.fps,
    framesReceived: s.framesReceived,
    framesDecoded: s.framesDecoded,
    framesDropped: s.framesDropped,
    reconnects: s.reconnects,
    off: s.off ?? null,
    lastError: s.lastError ? { code: s.lastError.code, message: s.lastError.message, atMs: s.lastError.atMs } : null
  }
}

/** ws:// or wss:// URL of this server's WebSocket, as the client reached the server. */
function wsUrlFor (req) {
  const proto = req.secure ? 'wss' : 'ws'
  return `${proto}://${req.get('host') || `127.0.0.1:${req.socket.localPort}`}/ws`
}

/**
 * Answers with one frame's JPEG. Not `res.send()`: it would hash every JPEG for an ETag,
 * useless on a `no-store` picture. The Buffer is written as it is (camkit's own bytes).
 * Headers set earlier (security, CORS) are kept: writeHead() merges them.
 */
function sendJpeg (res, frame) {
  res.writeHead(200, {
    'Content-Type': 'image/jpeg',
    'Content-Length': frame.jpeg.length,
    'Cache-Control': 'no-store',
    'X-Frame-Seq': String(frame.seq),
    'X-Frame-Width': String(frame.width),
    'X-Frame-Height': String(frame.height),
    'X-Frame-Captured-At': String(frame.capturedAt)
  })
  res.end(frame.jpeg)
}

/**
 * The cameras router. `allowlist` (src/allowlist.js, optional) limits the hosts connect may
 * reach.
 */
function camerasRouter ({ cameras, metrics, log, allowlist = null }) {
  const r = express.Router()

  // Bodies are JSON, sent as such: anything else would arrive here as an empty object and be
  // misreported as missing fields (and a cross-site HTML form can only send other types).
  r.use((req, res, next) => {
    const hasBody = Number(req.headers['content-length'] || 0) > 0 || req.headers['transfer-encoding'] !== undefined
    if (req.method !== 'GET' && req.method !== 'HEAD' && hasBody && !req.is('application/json')) {
      return next(invalid('body', 'must be JSON, sent with Content-Type: application/json'))
    }
    next()
  })

  // Every :cameraId in a path is checked as a body's cameraId is (a 400 naming it, not a
  // lookup of an id that cannot exist).
  r.param('cameraId', (req, res, next, id) => {
    try {
      cameraIdValue(id)
      next()
    } catch (e) {
      next(e)
    }
  })

  // Beyond the seed: every camera with its status.
  // list() and status() are a CameraManager's values, a cluster's promises: awaited.
  r.get('/', route(async (req, res) => {
    res.json({ cameras: (await cameras.list()).map(cameraView) })
  }))

  r.post('/connect', route(async (req, res) => {
    let config = connectConfig(req.body)
    // Before anything is sent anywhere (and before a camera with this id is replaced).
    if (allowlist) config = await allowlist.check(config)
    // As the seed: connecting an id that is already connected replaces that camera (a
    // cluster's connect replaces it itself).
    if (!cameras.connectReplaces && (await cameras.list()).some((s) => s.id === config.id)) await cameras.disconnect(config.id).catch(() => {})
    const where = config.url ? 'its url' : `${config.host}:${config.port}${config.path}`
    log(`camera ${JSON.stringify(config.id)}: connecting to ${where}${config.username ? ` as ${JSON.stringify(config.username)}` : ''}`)
    try {
      await cameras.connect(config)
    } catch (e) {
      log(`camera ${JSON.stringify(config.id)}: connect failed: ${e.code}: ${e.message}`)
      throw seedFieldNames(e)
    }
    res.json({ success: true, cameraId: config.id })
  }))

  r.post('/disconnect', route(async (req, res) => {
    const id = cameraIdOf(req.body)
    await cameras.disconnect(id)
    log(`camera ${JSON.stringify(id)}: disconnected`)
    res.json({ success: true })
  }))

  r.get('/websocket-url', (req, res) => {
    res.json({ url: wsUrlFor(req) })
  })

  // The seed's service status; the service is now this process.
  r.get('/status', (req, res) => {
    const port = req.socket.localPort
    res.json({ running: true, port, baseUrl: `${req.protocol}://${req.get('host') || `127.0.0.1:${port}`}` })
  })

  r.get('/:cameraId/status', route(async (req, res) => {
    res.json(cameraView(await cameras.status(req.params.cameraId)))
  }))

  r.get('/:cameraId/frame', route(async (req, res) => {
    const opts = frameOptions(req.query)
    const frame = await cameras.snapshot(req.params.cameraId, opts)
    metrics.counters.snapshots++
    sendJpeg(res, frame)
  }))

  r.get('/:cameraId/mjpeg', mjpegHandler({ cameras, metrics }))

  // Live fragmented MP4 as the camera sent it (no decoding): <video src>, ffmpeg, VLC.
  r.get('/:cameraId/video.mp4', videoMp4Handler({ cameras, metrics }))

  r.get('/:cameraId', route(async (req, res) => {
    res.json(cameraView(await cameras.status(req.params.cameraId)))
  }))

  return r
}

module.exports = { camerasRouter, cameraView, sendJpeg }
