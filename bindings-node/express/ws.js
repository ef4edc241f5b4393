'use strict'
// The seed's WebSocket protocol on /ws of the HTTP server's own port.
//
// Client → server (JSON text):
//   {"action":"subscribe","cameraId":"cam1","fps":15}    (fps optional, default 15)
//   {"action":"unsubscribe"}
//   {"action":"ping"}
// Server → client, byte for byte as the seed's FastAPI service sends them:
//   {"type":"frame","cameraId":"cam1","data":"<base64 JPEG>","timestamp":12345.678}
//   {"type":"pong"}
// `timestamp` is the seed's asyncio loop time: seconds of the monotonic clock, as a float,
// taken when the picture's message is built (once, for all the clients watching it).
// One subscription per socket, as in the seed: a new subscribe replaces the previous one.
//
// Beyond the seed:
//   - "binary": true in subscribe: each frame is a binary message instead,
//       [4 bytes: header length N, big-endian][N bytes: UTF-8 JSON header][JPEG bytes]
//     with header {"type":"frame","cameraId","timestamp","seq","width","height","capturedAt"}
//     (sent as two fragments, length + header then JPEG; clients see one message).
//   - "maxWidth" / "quality" in subscribe scale or re-encode the frames; "stream" ('auto',
//     'main', 'sub') picks a camera's sub-stream or main stream, as for GET /frame.
//   - Errors are reported instead of ignored:
//       {"type":"error","cameraId":"cam1","code":"NOT_FOUND","error":"…"}
//     (unknown camera, bad fps, camera disconnected — code CLOSED — or a bad message).
//   - {"action":"video","cameraId":"cam1"} (maxQueueBytes and stream optional; stream 'sub'
//       takes the sub-stream if it streams now, else the main stream, which 'auto' and
//       'main' take; the subscription keeps the stream it started on): the camera's live
//       video as the camera sent it, fragmented MP4 for Media Source Extensions: a text
//       message {"type":"video","cameraId","mimeType":"video/mp4; codecs=\"avc1.…\"","codec"}
//       (for MediaSource.isTypeSupported() / addSourceBuffer()), then the init segment and
//       one media segment per frame, each as one binary message. The text message and an
//       init segment come again when the stream's parameters change. It replaces the
//       socket's subscription like subscribe does; unsubscribe ends it. A client that
//       reads slowly is paused, and camkit's queue skips to the next keyframe (video.js).
//   - Backpressure: a frame is skipped for a client whose socket already holds more than
//     CAMKIT_WS_MAX_BUFFERED bytes (default 512 KiB) not yet sent.
//   - Access (src/security.js): with CAMKIT_API_TOKEN set the upgrade needs the token
//     (`Authorization: Bearer <token>` or `/ws?token=<token>`), else 401; a page from an
//     origin that is neither this server nor in CAMKIT_CORS_ORIGINS gets 403. Both are JSON
//     HTTP answers to the upgrade request; no socket is opened.
const { WebSocketServer, WebSocket } = require('ws')
const { optionalInt, optionalNumber, cameraIdValue, oneOf, STREAMS } = require('./validate')
const { checkUpgrade, refuseUpgrade } = require('./security')
const { sendVideo, videoOptions } = require('./video')

const MAX_BUFFERED = Number(process.env.CAMKIT_WS_MAX_BUFFERED) || 512 * 1024

/** Python's repr() of a float, as json.dumps writes it (1234.5 → "1234.5", 7.0 → "7.0"). */
function pyFloat (x) {
  return Number.isInteger(x) ? x.toFixed(1) : String(x)
}

/** The seed's timestamp: asyncio's loop.time() is time.monotonic(), CLOCK_MONOTONIC in seconds. */
function loopTime () {
  return Number(process.hrtime.bigint()) / 1e9
}

// Clients watching the same camera at the same size get the same picture, so they get the
// same message: built once per (camera, picture, options, format) and sent to each as it is
// (ws writes a Buffer to the socket without copying it). A camera reconnected under the
// same id starts again at seq 1, hence the capture time in the key. Its `timestamp` is the
// time the message was built, for every client. A few entries suffice.
const MESSAGE_CACHE_SIZE = 16
const messageCache = new Map()
function cached (key, build) {
  let m = messageCache.get(key)
  if (m === undefined) {
    m = build()
    messageCache.set(key, m)
    if (messageCache.size > MESSAGE_CACHE_SIZE) messageCache.delete(messageCache.keys().next().value)
  }
  return m
}
const keyOf = (kind, cameraId, frame, opts) =>
  `${kind} ${frame.seq} ${frame.capturedAt} ${opts.maxWidth ?? ''} ${opts.quality ?? ''} ${cameraId}`

/**
 * The seed's frame message, exactly as Starlette's send_json serialises it (compact, UTF-8),
 * as the UTF-8 bytes of a text message.
 */
function textFrame (cameraId, frame, timestamp, opts = {}) {
  return cached(keyOf('text', cameraId, frame, opts), () => {
    const head = `{"type":"frame","cameraId":${JSON.stringify(cameraId)},"data":"`
    const tail = `","timestamp":${pyFloat(timestamp)}}`
    const b64 = frame.jpeg.toString('base64')
    // One allocation and one copy of the base64 text (not a joined string, then its bytes).
    const headLen = Buffer.byteLength(head)
    const msg = Buffer.allocUnsafe(headLen + b64.length + Buffer.byteLength(tail))
    msg.write(head, 0)
    msg.write(b64, headLen, 'latin1')
    msg.write(tail, headLen + b64.length)
    return msg
  })
}

/**
 * The binary frame message (see the header comment) in two pieces: its header part
 * ([length][JSON header]) and the JPEG, sent as two fragments of one message so the JPEG is
 * never copied into a message of its own.
 */
function binaryFrame (cameraId, frame, timestamp, opts = {}) {
  const head = cached(keyOf('binary', cameraId, frame, opts), () => {
    const header = Buffer.from(`{"type":"frame","cameraId":${JSON.stringify(cameraId)},"timestamp":${pyFloat(timestamp)},"seq":${frame.seq},"width":${frame.width},"height":${frame.height},"capturedAt":${frame.capturedAt}}`)
    const out = Buffer.allocUnsafe(4 + header.length)
    out.writeUInt32BE(header.length, 0)
    header.copy(out, 4)
    return out
  })
  return [head, frame.jpeg]
}

function attachWebSocket (server, { cameras, metrics, apiToken = null, corsOrigins = [] }) {
  // No per-message deflate (the default, said here on purpose): JPEGs do not compress, and
  // deflating every frame for every client would cost more than all the rest.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false })
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => {})
    let pathname
    try {
      pathname = new URL(req.url, 'http://x').pathname
    } catch {
      return refuseUpgrade(socket, 400, { error: 'path: not a valid URL', code: 'INVALID_INPUT' })
    }
    if (pathname !== '/ws') {
      // Another upgrade handler (a later route) may want it; if none, say so.
      if (server.listenerCount('upgrade') === 1) {
        refuseUpgrade(socket, 404, { error: `no WebSocket at ${pathname}; it is /ws`, code: 'NOT_FOUND' })
      }
      return
    }
    const refused = checkUpgrade(req, { apiToken, corsOrigins })
    if (refused) return refuseUpgrade(socket, refused.status, refused.body)
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  })

  wss.on('connection', (ws) => {
    metrics.gauges.wsClients++
    let sub = null
    const stop = () => {
      if (sub) sub.unsubscribe()
      sub = null
    }
    const sendError = (cameraId, code, error) => {
      if (ws.readyState !== WebSocket.OPEN) return
      const msg = { type: 'error' }
      if (cameraId !== undefined) msg.cameraId = cameraId
      msg.code = code
      msg.error = error
      ws.send(JSON.stringify(msg))
    }

    const subscribe = (m) => {
      stop()
      const cameraId = m.cameraId
      try {
        cameraIdValue(cameraId)
      } catch (e) {
        return sendError(undefined, e.code, e.message) // an id that is not one is not echoed
      }
      let opts
      try {
        opts = { fps: optionalNumber(m.fps, 'fps', 0.1, 60) ?? 15 }
        const maxWidth = optionalInt(m.maxWidth, 'maxWidth', 16, 16384)
        if (maxWidth !== undefined) opts.maxWidth = maxWidth
        const quality = optionalInt(m.quality, 'quality', 1, 100)
        if (quality !== undefined) opts.quality = quality
        const stream = oneOf(m.stream, 'stream', STREAMS)
        if (stream) opts.stream = stream
        if (m.binary !== undefined && typeof m.binary !== 'boolean') {
          throw Object.assign(new Error('binary: must be true or false'), { code: 'INVALID_INPUT' })
        }
      } catch (e) {
        return sendError(cameraId, e.code, e.message)
      }
      const binary = m.binary === true
      try {
        const mine = cameras.subscribe(cameraId, opts, (err, frame) => {
          if (err) {
            if (err.code === 'CLOSED') {
              if (sub === mine) sub = null
              sendError(cameraId, err.code, err.message)
            }
            return
          }
          // A frame of a subscription this socket has since replaced or ended.
          if (sub !== mine || ws.readyState !== WebSocket.OPEN) return
          if (ws.bufferedAmount > MAX_BUFFERED) {
            metrics.counters.wsFramesSkipped++
            return
          }
          if (binary) {
            const [head, jpeg] = binaryFrame(cameraId, frame, loopTime(), opts)
            ws.send(head, { binary: true, fin: false })
            ws.send(jpeg, { binary: true, fin: true })
          } else {
            ws.send(textFrame(cameraId, frame, loopTime(), opts), { binary: false })
          }
          metrics.counters.wsFramesSent++
        })
        sub = mine
      } catch (e) {
        sendError(cameraId, e.code || 'INTERNAL', e.message)
      }
    }

    const video = (m) => {
      stop()
      const cameraId = m.cameraId
      try {
        cameraIdValue(cameraId)
      } catch (e) {
        return sendError(undefined, e.code, e.message)
      }
      let opts
      try {
        opts = videoOptions(m)
      } catch (e) {
        return sendError(cameraId, e.code, e.message)
      }
      try {
        const mine = sendVideo({
          cameras,
          metrics,
          ws,
          cameraId,
          opts,
          maxBuffered: MAX_BUFFERED,
          onEnd: (err) => {
            if (sub === mine) sub = null
            sendError(cameraId, err.code, err.message)
          }
        })
        sub = mine
      } catch (e) {
        sendError(cameraId, e.code || 'INTERNAL', e.message)
      }
    }

    ws.on('message', (data, isBinary) => {
      let m
      try {
        m = JSON.parse(isBinary ? Buffer.from(data).toString('utf8') : data.toString())
      } catch {
        return sendError(undefined, 'INVALID_INPUT', 'message: not valid JSON')
      }
      const action = m && typeof m === 'object' ? m.action : undefined
      if (action === 'subscribe') subscribe(m)
      else if (action === 'video') video(m)
      else if (action === 'unsubscribe') stop()
      else if (action === 'ping') ws.send('{"type":"pong"}')
      else sendError(undefined, 'INVALID_INPUT', 'action: must be one of subscribe, video, unsubscribe, ping')
    })
    ws.on('close', () => {
      stop()
      metrics.gauges.wsClients--
    })
    ws.on('error', () => {})
  })

  return wss
}

module.exports = { attachWebSocket, pyFloat, textFrame, binaryFrame }
