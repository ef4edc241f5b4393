'use strict'
// GET /api/cameras/:cameraId/mjpeg?fps=&maxWidth=&quality=: multipart/x-mixed-replace, the
// format an <img src> shows as live video. Each part is one JPEG. A client that reads slower
// than the camera sends skips frames (the response is not written while the socket is
// backed up), and the stream ends when the camera is disconnected.
const { frameOptions } = require('./validate')

const BOUNDARY = 'camkitframe'

function mjpegHandler ({ cameras, metrics }) {
  return (req, res, next) => {
    let opts
    let sub
    let backedUp = false
    try {
      opts = frameOptions(req.query, { fps: 10 })
      sub = cameras.subscribe(req.params.cameraId, opts, (err, frame) => {
        if (err) {
          // CLOSED: the camera was disconnected; other errors skip one frame.
          if (err.code === 'CLOSED') res.end()
          return
        }
        if (res.destroyed || res.writableEnded) return
        if (backedUp) {
          metrics.counters.mjpegFramesSkipped++
          return
        }
        // Three writes in one socket write (corked), the JPEG as camkit's own bytes: no copy.
        res.cork()
        res.write(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${frame.jpeg.length}\r\n\r\n`)
        res.write(frame.jpeg)
        const ok = res.write('\r\n')
        res.uncork()
        metrics.counters.mjpegFramesSent++
        if (!ok) {
          backedUp = true
          res.once('drain', () => { backedUp = false })
        }
      })
    } catch (e) {
      return next(e)
    }
    metrics.gauges.mjpegClients++
    res.writeHead(200, {
      'Content-Type': `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
      'Cache-Control': 'no-store, no-cache, must-revalidate',
      Pragma: 'no-cache',
      Connection: 'close',
      'X-Accel-Buffering': 'no'
    })
    res.on('close', () => {
      sub.unsubscribe()
      metrics.gauges.mjpegClients--
    })
  }
}

module.exports = { mjpegHandler, BOUNDARY }
