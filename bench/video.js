#!/usr/bin/env node
'use strict'
// Issue 13's measurements: live video as the camera sent it (fMP4, no decoding) against the
// JPEG paths, through camkit's Express server.
//
//   node bench/video.js viewers --base URL --pid PID --rtsp URL [--cams 8] [--secs 15] [--jpeg-secs 8]
//   node bench/video.js joins   --base URL --rtsp URL [--n 10] [--chromium /usr/bin/chromium]
//
// `viewers` connects N cameras (decode onDemand, the default) and opens one
// GET /api/cameras/:id/video.mp4 per camera; over `secs` it measures the server's CPU
// and RSS (its process tree, from /proc), the bytes each viewer received, how many frames
// the cameras decoded (their framesDecoded counters: none is the target), and the delay
// from each frame's arrival in camkit to its segment's write to the viewer's socket (the
// server's camkit_video_segment_delay_seconds histogram, the change over the window). Then
// the JPEG WebSocket path at one of the same cameras, full size at the camera's rate:
// bytes per second of one client, binary frames and the seed's base64 JSON.
//
// `joins` connects one camera, opens Chromium (Debian's, through playwright-core) on the
// server's origin and joins the camera n times at random GOP phases, each time first as the viewer page
// plays video (the /ws "video" action into Media Source Extensions, jumping to the live
// edge as the page does) and then as its JPEG fallback does (the /ws "subscribe" action,
// binary frames). Each join is timed from the WebSocket's creation to the first picture
// the browser presented (requestVideoFrameCallback's presentationTime for the <video>;
// the <img> decoded, then the next animation frame, for JPEG). Between JPEG joins the
// camera is left unwatched for longer than its decode grace (5 s), so each JPEG join
// finds a camera that decodes nothing, as a first viewer does.
const { parseArgs, sleep, rssMb, cpuOver, round, median } = require('./proc')

async function http (base, method, route, body) {
  const r = await fetch(base + route, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined
  })
  return { status: r.status, text: await r.text() }
}

const status = async (base, id) => JSON.parse((await http(base, 'GET', `/api/cameras/${id}/status`)).text)

/** The sum over `ids` of a per-camera counter in /metrics text. */
function sumMetric (text, name, ids) {
  let t = 0
  for (const m of text.matchAll(new RegExp(`^${name}\\{camera="([^"]+)"\\} (\\S+)$`, 'gm'))) if (ids.includes(m[1])) t += Number(m[2])
  return t
}

/** The server's segment delay histogram: cumulative counts per upper bound (s), and n. */
async function delayHistogram (base) {
  const text = (await http(base, 'GET', '/metrics')).text
  const buckets = [...text.matchAll(/^camkit_video_segment_delay_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)]
    .map((m) => [m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])])
  const sum = Number((/^camkit_video_segment_delay_seconds_sum (\S+)$/m.exec(text) || [])[1])
  return { buckets, sum }
}

/**
 * Quantile `q` (ms) of the segments counted between two histogram readings, interpolated
 * linearly inside its bucket (as Prometheus' histogram_quantile); also the share of
 * segments at most 5 ms.
 */
function delayBetween (a, b, q) {
  const counts = b.buckets.map(([le, c], i) => [le, c - (a.buckets[i] ? a.buckets[i][1] : 0)])
  const n = counts.length ? counts[counts.length - 1][1] : 0
  if (!n) return { n: 0 }
  const rank = q * n
  let prevLe = 0
  let prevC = 0
  let quantile = null
  for (const [le, c] of counts) {
    if (c >= rank) {
      quantile = le === Infinity ? prevLe : prevLe + (le - prevLe) * (c - prevC ? (rank - prevC) / (c - prevC) : 1)
      break
    }
    prevLe = le
    prevC = c
  }
  const at5 = counts.find(([le]) => le === 0.005)
  return {
    n,
    mean_ms: round((b.sum - a.sum) * 1000 / n, 3),
    [`p${Math.round(q * 100)}_ms`]: round(quantile * 1000, 2),
    share_le_5ms: at5 ? round(at5[1] / n, 4) : null
  }
}

/** Reads one fMP4 HTTP stream: bytes and `moof` boxes. */
function readVideo (base, id) {
  const ac = new AbortController()
  const c = { bytes: 0, moofs: 0, status: null, stop: () => ac.abort() }
  let pending = Buffer.alloc(0)
  c.done = (async () => {
    const r = await fetch(`${base}/api/cameras/${id}/video.mp4`, { signal: ac.signal })
    c.status = r.status
    try {
      for await (const chunk of r.body) {
        c.bytes += chunk.length
        pending = pending.length ? Buffer.concat([pending, chunk]) : Buffer.from(chunk)
        while (pending.length >= 8) {
          const size = pending.readUInt32BE(0)
          if (size < 8 || pending.length < size) break
          if (pending.toString('latin1', 4, 8) === 'moof') c.moofs++
          pending = pending.subarray(size)
        }
      }
    } catch (e) {
      if (e.name !== 'AbortError') throw e
    }
  })()
  return c
}

/** One WebSocket client of the JPEG path: bytes and frames it received over `secs`. */
async function jpegClient (base, id, secs, binary) {
  const { WebSocket } = require('ws')
  const ws = new WebSocket(base.replace(/^http/, 'ws') + '/ws')
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  const got = { bytes: 0, frames: 0 }
  ws.on('message', (data) => {
    const b = Buffer.isBuffer(data) ? data : Buffer.from(data)
    if (!binary && b[0] !== 0x7b) return
    got.bytes += b.length
    got.frames++
  })
  ws.send(JSON.stringify({ action: 'subscribe', cameraId: id, fps: 15, ...(binary ? { binary: true } : {}) }))
  await sleep(2000)
  const g0 = { ...got }
  const t0 = performance.now()
  await sleep(secs * 1000)
  const s = (performance.now() - t0) / 1000
  ws.close()
  return { bytes_per_s: Math.round((got.bytes - g0.bytes) / s), fps: round((got.frames - g0.frames) / s, 1), bytes_per_frame: Math.round((got.bytes - g0.bytes) / Math.max(1, got.frames - g0.frames)) }
}

async function viewers (a) {
  const base = a.base
  const pids = [Number(a.pid)]
  const n = Number(a.cams || 8)
  const secs = Number(a.secs || 15)
  const out = { rtsp: a.rtsp, cams: n, secs }
  await sleep(2000)
  out.rss_mb_before = rssMb(pids)
  const ids = []
  for (let i = 0; i < n; i++) {
    const id = `video${i}`
    const c = await http(base, 'POST', '/api/cameras/connect', { cameraId: id, url: a.rtsp })
    if (c.status !== 200) throw new Error(`connect ${id}: ${c.status} ${c.text}`)
    ids.push(id)
  }
  await sleep(8000) // past the decode grace that follows connect's first picture
  out.idle = await cpuOver(pids, 5000)

  const readers = ids.map((id) => readVideo(base, id))
  await sleep(4000) // each viewer past its replayed GOP and its first live keyframe
  if (readers.some((r) => r.status !== 200)) throw new Error(`video.mp4: ${readers.map((r) => r.status)}`)
  const s0 = await Promise.all(ids.map((id) => status(base, id)))
  const m0 = (await http(base, 'GET', '/metrics')).text
  const h0 = await delayHistogram(base)
  const b0 = readers.map((r) => ({ bytes: r.bytes, moofs: r.moofs }))
  const c = await cpuOver(pids, secs * 1000)
  const b1 = readers.map((r) => ({ bytes: r.bytes, moofs: r.moofs }))
  const h1 = await delayHistogram(base)
  const s1 = await Promise.all(ids.map((id) => status(base, id)))
  const m1 = (await http(base, 'GET', '/metrics')).text
  out.rss_mb_streaming = rssMb(pids)
  const perViewer = b1.map((b, i) => ({ bytes_per_s: (b.bytes - b0[i].bytes) / c.secs, fps: (b.moofs - b0[i].moofs) / c.secs }))
  out.video = {
    cpu_pct: c.cpu_pct,
    secs: c.secs,
    bytes_per_s_per_viewer: Math.round(median(perViewer.map((v) => v.bytes_per_s))),
    fps_per_viewer_min: round(Math.min(...perViewer.map((v) => v.fps)), 1),
    fps_per_viewer_p50: round(median(perViewer.map((v) => v.fps)), 1),
    frames_decoded: s1.reduce((t, s, i) => t + s.framesDecoded - s0[i].framesDecoded, 0),
    frames_received: s1.reduce((t, s, i) => t + s.frames - s0[i].frames, 0),
    jpeg_encodes: sumMetric(m1, 'camkit_camera_jpeg_encodes_total', ids) - sumMetric(m0, 'camkit_camera_jpeg_encodes_total', ids),
    camera_bitrate_bps: Math.round(median(s1.map((s) => s.bitrateBps))),
    delay: { ...delayBetween(h0, h1, 0.99), p50_ms: delayBetween(h0, h1, 0.5).p50_ms }
  }
  for (const r of readers) r.stop()
  await Promise.all(readers.map((r) => r.done))

  await sleep(1000)
  const jsecs = Number(a['jpeg-secs'] || 8)
  out.jpeg_ws_binary = await jpegClient(base, ids[0], jsecs, true)
  out.jpeg_ws_base64 = await jpegClient(base, ids[0], jsecs, false)
  for (const id of ids) await http(base, 'POST', '/api/cameras/disconnect', { cameraId: id })
  return out
}

// ---------------------------------------------------------------------------------------
// joins: first picture in Chromium

/** In the page: joins `cameraId` as the viewer page plays video; resolves with timings. */
function joinVideo ({ cameraId, timeoutMs }) {
  const LIVE_LAG = 1.0 // the viewer page's: further behind the newest frame, it jumps
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const video = document.createElement('video')
    video.muted = true
    video.autoplay = true
    document.body.appendChild(video)
    const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws')
    ws.binaryType = 'arraybuffer'
    let ms = null
    let sb = null
    const pending = []
    let segments = 0
    let firstSegmentAt = null
    const result = {}
    const finish = (r) => {
      clearTimeout(timer)
      ws.onmessage = null
      ws.close()
      video.remove()
      resolve(r)
    }
    const timer = setTimeout(() => finish({ ...result, timeout: true }), timeoutMs)
    const pump = () => {
      if (!sb || sb.updating || ms.readyState !== 'open') return
      const next = pending.shift()
      if (next) sb.appendBuffer(next)
    }
    const jumpToLive = () => {
      if (!video.buffered.length) return
      const end = video.buffered.end(video.buffered.length - 1)
      const start = video.buffered.start(video.buffered.length - 1)
      if (end - video.currentTime > LIVE_LAG || video.currentTime < start) video.currentTime = Math.max(start, end - 0.2)
      if (video.paused) video.play().catch(() => {})
    }
    const onFrame = (now, meta) => {
      const end = video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0
      if (result.first_ms === undefined) {
        result.first_ms = meta.presentationTime - t0
        result.segments_before_first = segments
        result.first_behind_s = end - meta.mediaTime
      }
      if (end - meta.mediaTime <= LIVE_LAG / 2) {
        result.live_ms = meta.presentationTime - t0
        result.first_segment_ms = firstSegmentAt - t0
        return finish(result)
      }
      video.requestVideoFrameCallback(onFrame)
    }
    video.requestVideoFrameCallback(onFrame)
    ws.onopen = () => ws.send(JSON.stringify({ action: 'video', cameraId }))
    ws.onerror = () => reject(new Error('WebSocket error'))
    ws.onmessage = (msg) => {
      if (typeof msg.data === 'string') {
        const m = JSON.parse(msg.data)
        if (m.type === 'video' && !ms) {
          ms = new MediaSource()
          video.src = URL.createObjectURL(ms)
          ms.addEventListener('sourceopen', () => {
            sb = ms.addSourceBuffer(m.mimeType)
            sb.mode = 'segments'
            sb.addEventListener('updateend', () => { jumpToLive(); pump() })
            pump()
          }, { once: true })
        } else if (m.type === 'error') reject(new Error(m.error))
        return
      }
      segments++
      if (firstSegmentAt === null) firstSegmentAt = performance.now()
      pending.push(msg.data)
      pump()
    }
  })
}

/** In the page: joins `cameraId` as the viewer page's JPEG fallback; resolves with timings. */
function joinJpeg ({ cameraId, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const img = document.createElement('img')
    document.body.appendChild(img)
    const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws')
    ws.binaryType = 'arraybuffer'
    const timer = setTimeout(() => { ws.close(); resolve({ timeout: true }) }, timeoutMs)
    ws.onopen = () => ws.send(JSON.stringify({ action: 'subscribe', cameraId, binary: true, fps: 10, maxWidth: 960 }))
    ws.onerror = () => reject(new Error('WebSocket error'))
    ws.onmessage = async (msg) => {
      if (typeof msg.data === 'string') {
        const m = JSON.parse(msg.data)
        if (m.type === 'error') reject(new Error(m.error))
        return
      }
      ws.onmessage = null
      const arrived = performance.now()
      const view = new DataView(msg.data)
      const headerLength = view.getUint32(0)
      img.src = URL.createObjectURL(new Blob([new Uint8Array(msg.data, 4 + headerLength)], { type: 'image/jpeg' }))
      await img.decode()
      requestAnimationFrame((t) => {
        clearTimeout(timer)
        ws.close()
        img.remove()
        resolve({ first_ms: t - t0, first_message_ms: arrived - t0 })
      })
    }
  })
}

async function joins (a) {
  const { chromium } = require(require.resolve('playwright-core', { paths: [require('node:path').join(__dirname, '..', 'examples', 'express-server')] }))
  const n = Number(a.n || 10)
  const camera = 'join0'
  const c = await http(a.base, 'POST', '/api/cameras/connect', { cameraId: camera, url: a.rtsp })
  if (c.status !== 200) throw new Error(`connect ${camera}: ${c.status} ${c.text}`)
  await sleep(6000) // past the decode grace that follows connect's first picture
  const browser = await chromium.launch({
    executablePath: a.chromium || process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--autoplay-policy=no-user-gesture-required']
  })
  const out = { rtsp: a.rtsp, n, video: [], jpeg: [] }
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
    await page.goto(a.base + '/api/cameras')
    // A first join that is not counted: Chromium loads its media pipeline once.
    await page.evaluate(joinVideo, { cameraId: camera, timeoutMs: 10000 })
    await sleep(6000)
    for (let i = 0; i < n; i++) {
      await sleep(Math.random() * 2000) // a random phase of the 2 s GOP
      out.video.push(await page.evaluate(joinVideo, { cameraId: camera, timeoutMs: 5000 }))
      await sleep(Math.random() * 2000)
      out.jpeg.push(await page.evaluate(joinJpeg, { cameraId: camera, timeoutMs: 10000 }))
      await sleep(6000) // past the decode grace of the JPEG viewer that left
    }
  } finally {
    await browser.close()
    await http(a.base, 'POST', '/api/cameras/disconnect', { cameraId: camera })
  }
  const summary = (xs, k) => {
    const v = xs.map((x) => x[k]).filter(Number.isFinite)
    return { n: v.length, p50: round(median(v), 1), max: v.length ? round(Math.max(...v), 1) : null, min: v.length ? round(Math.min(...v), 1) : null }
  }
  out.summary = {
    video_first: summary(out.video, 'first_ms'),
    video_live: summary(out.video, 'live_ms'),
    video_segments_before_first: summary(out.video, 'segments_before_first'),
    video_first_behind_s: summary(out.video, 'first_behind_s'),
    jpeg_first: summary(out.jpeg, 'first_ms'),
    timeouts: out.video.filter((x) => x.timeout).length + out.jpeg.filter((x) => x.timeout).length
  }
  return out
}

// ---------------------------------------------------------------------------------------
// report rows (called by measure.js report)

function rows (r, row, { fmt, ratio, g }) {
  const v = r['camkit-video-1080p-8cam']
  const sd = r['seed-1080p-8cam'] || {}
  const ck = r['camkit-1080p-8cam'] || {}
  if (v) {
    const cpuR = ratio(g(v, 'video.cpu_pct'), g(sd, 'stream.cpu_pct'))
    row(13, `8 cameras 1080p15, 8 fMP4 viewers (video.mp4, one per camera): server CPU`, fmt(g(v, 'video.cpu_pct'), '%', 2),
      `seed, 8 JPEG WebSocket clients: ${fmt(g(sd, 'stream.cpu_pct'), '%')}`, cpuR, '≤ 1/20 of the seed', cpuR === null ? null : cpuR <= 1 / 20,
      `camkit's own JPEG path, 8 WS clients: ${fmt(g(ck, 'stream.cpu_pct'), '%')}; with nobody watching: ${fmt(g(v, 'idle.cpu_pct'), '%', 2)}; ${fmt(g(v, 'video.fps_per_viewer_p50'), ' fps')} per viewer (min ${fmt(g(v, 'video.fps_per_viewer_min'), '')})`)
    const dec = g(v, 'video.frames_decoded')
    row(13, '8 cameras, only video viewers: frames decoded (framesDecoded counters, all cameras)', `${dec ?? 'n/a'} of ${g(v, 'video.frames_received') ?? '?'} received`, '', null, '0', Number.isFinite(dec) ? dec === 0 : null,
      `JPEG encodes in the window: ${g(v, 'video.jpeg_encodes') ?? '?'}`)
    const bps = g(v, 'video.bytes_per_s_per_viewer')
    const jb = g(v, 'jpeg_ws_binary.bytes_per_s')
    const bR = ratio(bps, jb)
    row(13, 'bytes per second per viewer, same 1080p camera', fmt(bps / 1e6, ' MB/s', 3), `JPEG WebSocket, full size, 15 fps: ${fmt(jb / 1e6, ' MB/s', 2)} (binary); ${fmt(g(v, 'jpeg_ws_base64.bytes_per_s') / 1e6, ' MB/s', 2)} (seed's base64 JSON)`,
      bR, '≤ 1/2 of the JPEG path', bR === null ? null : bR <= 0.5,
      `camera's own bit rate ${fmt(g(v, 'video.camera_bitrate_bps') / 1e6, ' Mb/s', 2)}; JPEG ${fmt(g(v, 'jpeg_ws_binary.bytes_per_frame') / 1024, ' KiB', 0)} a frame at ${fmt(g(v, 'jpeg_ws_binary.fps'), ' fps')}`)
    const d = g(v, 'video.delay') || {}
    row(13, 'frame arrival in camkit → its segment written to the viewer\'s socket (video.mp4 handler), p99', fmt(d.p99_ms, ' ms', 2), '', null, '≤ 5 ms',
      Number.isFinite(d.p99_ms) ? d.p99_ms <= 5 : null,
      `${d.n ?? 0} segments of 8 viewers; p50 ${fmt(d.p50_ms, ' ms', 2)}, mean ${fmt(d.mean_ms, ' ms', 2)}; ${fmt(d.share_le_5ms * 100, '%', 2)} within 5 ms (server histogram, interpolated in its bucket)`)
    const rssR = ratio(v.rss_mb_streaming, sd.rss_mb_streaming)
    row(13, 'RSS, 8 cameras 1080p + 8 video viewers', fmt(v.rss_mb_streaming, ' MB', 0), `seed streaming to 8 JPEG clients: ${fmt(sd.rss_mb_streaming, ' MB', 0)}`, rssR, '≤ 1/3 of the seed', rssR === null ? null : rssR <= 1 / 3,
      `camkit's JPEG path, 8 WS clients: ${fmt(ck.rss_mb_streaming, ' MB', 0)}; server before connecting: ${fmt(v.rss_mb_before, ' MB', 0)}`)
  }
  const j = r['camkit-video-joins']
  if (j) {
    const s = j.summary || {}
    const jr = ratio(g(s, 'video_first.p50'), g(s, 'jpeg_first.p50'))
    row(13, `new viewer of a 2 s GOP camera (1080p), first picture shown in Chromium, median of ${g(s, 'video_first.n') ?? 0} joins at random GOP phases`,
      `${fmt(g(s, 'video_first.p50'), ' ms', 0)} (max ${fmt(g(s, 'video_first.max'), ' ms', 0)})`, `JPEG path (viewer's fallback, onDemand camera): ${fmt(g(s, 'jpeg_first.p50'), ' ms', 0)} (max ${fmt(g(s, 'jpeg_first.max'), ' ms', 0)})`,
      jr, '≤ 300 ms', Number.isFinite(g(s, 'video_first.p50')) ? s.video_first.p50 <= 300 : null,
      `when the first picture shows, ${fmt(g(s, 'video_segments_before_first.p50'), '', 0)} segments (p50) have arrived, the GOP so far, and it is ${fmt(g(s, 'video_first_behind_s.p50') * 1000, ' ms', 0)} (p50) behind the newest; within 0.5 s of the newest frame received after ${fmt(g(s, 'video_live.p50'), ' ms', 0)} (max ${fmt(g(s, 'video_live.max'), ' ms', 0)}); ${s.timeouts ?? 0} joins not there within 5 s`)
  }
}

module.exports = { viewers, joins, rows, delayBetween }

if (require.main === module) {
  const a = parseArgs(process.argv.slice(2))
  const cmd = a._[0]
  const run = cmd === 'viewers' ? viewers : cmd === 'joins' ? joins : null
  if (!run) {
    console.error('usage: video.js viewers|joins [options] (see the top of this file)')
    process.exit(2)
  }
  run(a).then((out) => {
    console.log(JSON.stringify(out))
    process.exit(0)
  }, (e) => {
    console.error(`video.js: ${e.stack || e}`)
    process.exit(1)
  })
}
