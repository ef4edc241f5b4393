'use strict'
// Live video as the camera sent it, without decoding: fragmented MP4 from
// cameras.subscribeVideo(), over HTTP (GET /api/cameras/:cameraId/video.mp4) and over the
// WebSocket (the "video" action of ws.js).
//
// Backpressure, the same on both: when the client's socket is backed up (res.write()
// returns false; the WebSocket holds more than its limit unsent) the subscription is
// paused, so nothing more is taken from camkit's queue; that queue is bounded
// (maxQueueBytes) and skips to the next keyframe when full. A client that stops reading
// therefore costs at most that bound plus what the socket holds, and never slows the
// camera or the other viewers. Resumed on 'drain' (HTTP) or once the WebSocket's sends
// have gone out.
//
// A camera reconnected with the same parameters sends the same init segment again; the
// HTTP stream leaves it out (one MP4 file has one `moov`). New parameters (another size or
// profile) end the HTTP response, whose client reconnects to get the new init segment; a
// WebSocket client gets a new "video" message and init segment in-band.
//
// Each live segment's delay, from its frame's arrival in camkit (chunk.ageMs) to the return
// of the write to the client's socket, goes into /metrics' histogram
// camkit_video_segment_delay_seconds. On a backed-up socket the write only queues the bytes
// in Node (and the subscription is paused): such a client's delay is not what it sees.

const { optionalInt, oneOf, STREAMS } = require('./validate')
const { observeVideoDelay } = require('./metrics')

/**
 * Tells which media segments of a subscription are live, for the delay histogram: a new
 * subscriber first gets the frames since the last keyframe (up to a GOP old); from the next
 * keyframe on, each segment is written as its frame arrives.
 */
function liveTracker () {
  let keyframes = 0
  return (chunk) => {
    if (chunk.kind !== 'media') return false
    if (chunk.keyframe) keyframes++
    return keyframes >= 2
  }
}

/**
 * Options of a video subscription from a request's query or a WebSocket message:
 * maxQueueBytes, and stream ('sub' for a camera's sub-stream when it streams as the
 * subscription starts, else its main stream; 'main' and 'auto', the default, for the main
 * stream). A bad one is an INVALID_INPUT error naming the field.
 */
function videoOptions (src) {
  const opts = {}
  const maxQueueBytes = optionalInt(src.maxQueueBytes, 'maxQueueBytes', 65536, 256 * 1024 * 1024)
  if (maxQueueBytes !== undefined) opts.maxQueueBytes = maxQueueBytes
  const stream = oneOf(src.stream, 'stream', STREAMS)
  if (stream) opts.stream = stream
  return opts
}

/** GET /:cameraId/video.mp4: the live stream as one endless fragmented MP4. */
function videoMp4Handler ({ cameras, metrics }) {
  return (req, res, next) => {
    let sub
    let init = null
    let counted = false
    const isLive = liveTracker()
    let opts
    try {
      opts = videoOptions(req.query)
    } catch (e) {
      return next(e)
    }
    if (req.method === 'HEAD') {
      // The headers only; the camera's codec string needs its first chunk, so it is left out.
      // status() is a CameraManager's value, a cluster's promise.
      return Promise.resolve().then(() => cameras.status(req.params.cameraId)).then(() => {
        res.writeHead(200, { 'Content-Type': 'video/mp4', 'Cache-Control': 'no-store' })
        res.end()
      }, next)
    }
    const end = () => {
      if (!res.headersSent) return
      if (!res.writableEnded) res.end()
    }
    try {
      sub = cameras.subscribeVideo(req.params.cameraId, (err, chunk) => {
        if (err) {
          // CLOSED: the camera was disconnected (or the manager closed).
          if (!res.headersSent) return next(err)
          return end()
        }
        if (res.destroyed || res.writableEnded) return
        if (chunk.kind === 'init') {
          if (init !== null) {
            if (init.equals(chunk.data)) return // the same parameters after a reconnect
            sub.unsubscribe() // new parameters: the client reconnects for them
            return end()
          }
          init = Buffer.from(chunk.data) // kept for the comparison: a copy of a few hundred bytes
          res.writeHead(200, {
            'Content-Type': 'video/mp4',
            'X-Video-Codecs': chunk.codec,
            'X-Video-Mime-Type': chunk.mimeType,
            'Cache-Control': 'no-store, no-cache, must-revalidate',
            Pragma: 'no-cache',
            'X-Accel-Buffering': 'no'
          })
          metrics.gauges.videoClients++
          counted = true
        } else if (init === null) {
          return // no media before its init segment (never happens: camkit sends it first)
        }
        const arrived = performance.now() - chunk.ageMs
        const ok = res.write(chunk.data)
        if (isLive(chunk)) observeVideoDelay(metrics, performance.now() - arrived)
        metrics.counters.videoSegmentsSent++
        metrics.counters.videoBytesSent += chunk.data.length
        if (!ok) {
          sub.pause()
          res.once('drain', () => sub.resume())
        }
      }, opts)
    } catch (e) {
      return next(e)
    }
    res.on('close', () => {
      sub.unsubscribe()
      if (counted) metrics.gauges.videoClients--
    })
  }
}

/**
 * Sends a camera's video on WebSocket `ws`: a text message
 *   {"type":"video","cameraId","mimeType":"video/mp4; codecs=\"avc1.…\"","codec"}
 * before each init segment, then each segment as one binary message. Returns the
 * subscription. `onEnd(err)` is called once the camera is gone (err has code CLOSED).
 */
function sendVideo ({ cameras, metrics, ws, cameraId, opts, maxBuffered, onEnd }) {
  let sub = null
  let waiting = false
  const isLive = liveTracker()
  const sent = () => {
    if (waiting && sub && ws.bufferedAmount <= maxBuffered / 2) {
      waiting = false
      sub.resume()
    }
  }
  sub = cameras.subscribeVideo(cameraId, (err, chunk) => {
    if (err) return onEnd(err)
    if (ws.readyState !== 1 /* OPEN */) return
    if (chunk.kind === 'init') {
      ws.send(JSON.stringify({ type: 'video', cameraId, mimeType: chunk.mimeType, codec: chunk.codec }))
    }
    const arrived = performance.now() - chunk.ageMs
    ws.send(chunk.data, { binary: true }, sent)
    if (isLive(chunk)) observeVideoDelay(metrics, performance.now() - arrived)
    metrics.counters.videoSegmentsSent++
    metrics.counters.videoBytesSent += chunk.data.length
    if (ws.bufferedAmount > maxBuffered) {
      waiting = true
      sub.pause()
    }
  }, opts)
  return sub
}

module.exports = { videoMp4Handler, sendVideo, videoOptions }
