#!/usr/bin/env node
'use strict'
// The measurements of bench/run.sh that the shared harness does not make, and the report.
//
//   node bench/measure.js idle       --base URL --pid PID --rtsp URL [--counts 1,8,32] [--secs 20] [--ondemand 16] [--ttff 8] [--settle 8]
//   node bench/measure.js ffmpeg     --rtsp URL --n N [--secs 20] [--warmup 4] [--null]   (--null: decode only)
//   node bench/measure.js throughput --rtsp URL [--secs 20] [--warmup 3] [--decoder auto|openh264|libavcodec]
//   node bench/measure.js report     --dir RUN_DIR --out results.json
//
// Each measuring subcommand prints one JSON object on stdout. CPU is read from /proc
// (utime + stime of a process and all its descendants, in percent of one core), as the
// shared harness reads it, so the figures compare.
//
// `idle` talks to camkit's Express server over its HTTP API: CPU and RSS with 0 cameras,
// then with each count of cameras connected and nobody watching (decode `onDemand`, the
// default), the time to first frame of every camera, and the latency of snapshots of
// cameras nobody watched (each decodes the frames since the last keyframe).
// `ffmpeg` runs N copies of the issue's ffmpeg command (decode + JPEG of every frame).
// `throughput` is camkit in-process (the Node binding): one camera with decode
// `continuous`, first nobody watching (decode cost per frame), then a full-rate, full-size
// subscription (decode + JPEG), frames per CPU-second.
const fs = require('node:fs')
const path = require('node:path')
const { spawn } = require('node:child_process')

const { sleep, parseArgs, rssMb, cpuOver, round, median } = require('./proc')
const video = require('./video')

// ---------------------------------------------------------------------------------------
// idle: camkit's Express server, cameras nobody watches

async function http (base, method, route, body) {
  const r = await fetch(base + route, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined
  })
  const buf = Buffer.from(await r.arrayBuffer())
  return { status: r.status, headers: r.headers, body: buf }
}

/** Connects a camera and fetches its first frame; the time both took, in ms. */
async function connectFirstFrame (base, id, url) {
  const t0 = performance.now()
  const c = await http(base, 'POST', '/api/cameras/connect', { cameraId: id, url })
  if (c.status !== 200) throw new Error(`connect ${id}: ${c.status} ${c.body}`)
  const connected = performance.now()
  for (;;) {
    const f = await http(base, 'GET', `/api/cameras/${id}/frame`)
    if (f.status === 200) break
    if (performance.now() - t0 > 20000) throw new Error(`${id}: no frame within 20 s (${f.status} ${f.body})`)
    await sleep(10)
  }
  return { connect_ms: round(connected - t0, 1), first_frame_ms: round(performance.now() - t0, 1) }
}

async function idle (a) {
  const base = a.base
  const pids = [Number(a.pid)]
  const url = a.rtsp
  const counts = String(a.counts || '1,8,32').split(',').map(Number)
  const secs = Number(a.secs || 20)
  const settle = Number(a.settle || 8) * 1000 // > the 5 s decode grace after a snapshot
  const nOnDemand = Number(a.ondemand ?? 16)
  const out = { rtsp: url, counts, secs }

  await sleep(3000)
  out.baseline = { ...(await cpuOver(pids, secs * 1000)), rss_mb: rssMb(pids) }

  // Time to first frame (connect, which waits for the first picture, then the first
  // snapshot), one camera at a time on an otherwise idle server: each session starts at
  // a keyframe (the per-session mount), like a camera that sends one to a new client.
  const nTtff = Number(a.ttff ?? 8)
  const ttff = []
  for (let i = 0; i < nTtff; i++) {
    ttff.push(await connectFirstFrame(base, `ttff${i}`, url))
    await http(base, 'POST', '/api/cameras/disconnect', { cameraId: `ttff${i}` })
    await sleep(300)
  }
  const ff = ttff.map((t) => t.first_frame_ms)
  out.ttff_ms = { n: ff.length, p50: median(ff), max: ff.length ? round(Math.max(...ff), 1) : null, samples: ttff }

  await sleep(settle)

  // Cameras nobody watches: connected (connect waits for the first picture) and never
  // asked for a frame, so each decodes nothing (onDemand).
  const ids = []
  const connectMs = []
  out.levels = []
  for (const n of counts) {
    while (ids.length < n) {
      const id = `idle${ids.length}`
      const t0 = performance.now()
      const c = await http(base, 'POST', '/api/cameras/connect', { cameraId: id, url })
      if (c.status !== 200) throw new Error(`connect ${id}: ${c.status} ${c.body}`)
      connectMs.push(round(performance.now() - t0, 1))
      ids.push(id)
    }
    await sleep(settle)
    const c = await cpuOver(pids, secs * 1000)
    const rss = rssMb(pids)
    const level = {
      cameras: n,
      cpu_pct: c.cpu_pct,
      cpu_pct_per_camera: round((c.cpu_pct - out.baseline.cpu_pct) / n, 3),
      rss_mb: rss,
      rss_mb_per_camera: round((rss - out.baseline.rss_mb) / n, 2),
      secs: c.secs
    }
    // Everything connected is still streaming and decoding nothing.
    const list = JSON.parse((await http(base, 'GET', '/api/cameras')).body).cameras
    level.streaming = list.filter((s) => s.state === 'streaming').length
    level.fps_received = round(list.reduce((s, x) => s + x.fps, 0) / list.length, 1)
    out.levels.push(level)

    // Snapshots of cameras nobody watched, at the first level with 8 cameras or more (or
    // the last level), at random GOP phases: each camera at most once per 6 s, so that
    // the 5 s of decoding that follow a snapshot have lapsed.
    if (!out.ondemand && nOnDemand > 0 && (n >= 8 || n === counts[counts.length - 1])) {
      const samples = []
      const lastAt = new Map()
      for (let i = 0; i < nOnDemand; i++) {
        const id = ids[i % ids.length]
        const wait = Math.max(500 + Math.random() * 2000, (lastAt.get(id) ?? -1e9) + 6000 - performance.now())
        await sleep(wait)
        const before = JSON.parse((await http(base, 'GET', `/api/cameras/${id}/status`)).body)
        const t0 = performance.now()
        const f = await http(base, 'GET', `/api/cameras/${id}/frame`)
        const ms = performance.now() - t0
        const after = JSON.parse((await http(base, 'GET', `/api/cameras/${id}/status`)).body)
        lastAt.set(id, performance.now())
        if (f.status !== 200) throw new Error(`snapshot ${id}: ${f.status} ${f.body}`)
        samples.push({ id, ms: round(ms, 2), frames_decoded: after.framesDecoded - before.framesDecoded, jpeg_bytes: f.body.length })
      }
      const ms = samples.map((s) => s.ms)
      const frames = samples.map((s) => s.frames_decoded)
      out.ondemand = {
        n: samples.length,
        p50_ms: median(ms),
        max_ms: round(Math.max(...ms)),
        frames_decoded_p50: median(frames),
        frames_decoded_max: Math.max(...frames),
        // latency / frames decoded for it: the decode cost per frame as a snapshot sees it
        ms_per_frame_p50: median(samples.filter((s) => s.frames_decoded > 0).map((s) => s.ms / s.frames_decoded)),
        at_cameras: n,
        samples
      }
      await sleep(settle)
    }
  }
  out.connect_ms = { n: connectMs.length, p50: median(connectMs), max: round(Math.max(...connectMs), 1), samples: connectMs }
  for (const id of ids) await http(base, 'POST', '/api/cameras/disconnect', { cameraId: id })
  return out
}

// ---------------------------------------------------------------------------------------
// ffmpeg: the issue's command, N processes

const FFMPEG_ARGS = (url) => ['-hide_banner', '-loglevel', 'error', '-threads', '1', '-rtsp_transport', 'tcp', '-i', url,
  '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', '5', '-']
// Decode only, for the decoder's cost per frame: frames counted from -progress.
const FFMPEG_NULL_ARGS = (url) => ['-hide_banner', '-loglevel', 'error', '-nostats', '-threads', '1', '-rtsp_transport', 'tcp', '-i', url,
  '-f', 'null', '-', '-progress', 'pipe:1']

/** Counts frames from ffmpeg's -progress output (frame=N lines). */
function progressCounter (stream) {
  const c = { frames: 0, bytes: 0 }
  let tail = ''
  stream.on('data', (buf) => {
    const text = tail + buf.toString('latin1')
    const lines = text.split('\n')
    tail = lines.pop()
    for (const l of lines) {
      const m = /^frame=(\d+)/.exec(l)
      if (m) c.frames = Number(m[1])
    }
  })
  return c
}

/** Counts JPEGs (EOI markers) and bytes in a stream of concatenated JPEGs. */
function jpegCounter (stream) {
  const c = { frames: 0, bytes: 0 }
  let lastFF = false
  stream.on('data', (buf) => {
    c.bytes += buf.length
    if (lastFF && buf[0] === 0xd9) c.frames++
    let i = buf.indexOf(0xff)
    while (i !== -1 && i < buf.length - 1) {
      if (buf[i + 1] === 0xd9) c.frames++
      i = buf.indexOf(0xff, i + 1)
    }
    lastFF = buf[buf.length - 1] === 0xff
  })
  return c
}

async function ffmpeg (a) {
  const n = Number(a.n || 1)
  const secs = Number(a.secs || 20)
  const warmup = Number(a.warmup || 4) * 1000
  const decodeOnly = Boolean(a.null)
  const argsOf = decodeOnly ? FFMPEG_NULL_ARGS : FFMPEG_ARGS
  const procs = []
  for (let i = 0; i < n; i++) {
    const p = spawn('ffmpeg', argsOf(a.rtsp), { stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    p.stderr.on('data', (d) => { err = (err + d).slice(-2000) })
    procs.push({ p, count: decodeOnly ? progressCounter(p.stdout) : jpegCounter(p.stdout), err: () => err })
  }
  try {
    await sleep(warmup)
    const pids = procs.map((x) => x.p.pid)
    const f0 = procs.map((x) => ({ ...x.count }))
    const c = await cpuOver(pids, secs * 1000)
    const frames = procs.reduce((s, x, i) => s + x.count.frames - f0[i].frames, 0)
    const bytes = procs.reduce((s, x, i) => s + x.count.bytes - f0[i].bytes, 0)
    const dead = procs.filter((x) => x.p.exitCode !== null)
    if (dead.length) throw new Error(`ffmpeg exited early: ${dead[0].err()}`)
    return {
      command: `ffmpeg ${argsOf(a.rtsp).filter((x) => !['-hide_banner', '-loglevel', 'error', '-nostats'].includes(x)).join(' ')}`,
      rtsp: a.rtsp,
      n,
      secs: c.secs,
      cpu_pct: c.cpu_pct,
      cpu_pct_per_camera: round(c.cpu_pct / n, 2),
      fps_per_process: round(frames / n / c.secs, 2),
      frames_per_cpu_s: round(frames / c.cpu_s, 1),
      cpu_ms_per_frame: round(c.cpu_s * 1000 / frames, 2),
      jpeg_bytes_avg: frames && !decodeOnly ? Math.round(bytes / frames) : null,
      rss_mb_per_process: round(rssMb(pids) / n, 1)
    }
  } finally {
    for (const x of procs) x.p.kill('SIGTERM')
  }
}

// ---------------------------------------------------------------------------------------
// throughput: camkit in-process, continuous decode (+ full-size JPEG at full rate)

async function throughput (a) {
  const { CameraManager } = require(path.join(__dirname, '..', 'bindings-node'))
  const secs = Number(a.secs || 20)
  const warmup = Number(a.warmup || 3) * 1000
  const me = [process.pid]
  const cams = new CameraManager()
  const out = { rtsp: a.rtsp, secs }
  try {
    await cams.connect({ id: 'tp', url: a.rtsp, decode: 'continuous', ...(a.decoder ? { decoder: a.decoder } : {}) })
    await sleep(warmup)
    out.decoder = cams.status('tp').decoder

    // 1. decode only: continuous, nobody watching (JPEG is made only when asked for).
    let s0 = cams.status('tp')
    let c = await cpuOver(me, secs * 1000)
    let s1 = cams.status('tp')
    const decoded = s1.framesDecoded - s0.framesDecoded
    out.decode_only = {
      cpu_pct: c.cpu_pct,
      fps_decoded: round(decoded / c.secs, 2),
      cpu_ms_per_frame: round(c.cpu_s * 1000 / decoded, 2),
      jpeg_encodes: s1.jpegEncodes - s0.jpegEncodes,
      width: s1.width,
      height: s1.height
    }

    // 2. decode + full-size JPEG of every frame, delivered to JS.
    const got = { frames: 0, bytes: 0 }
    const sub = cams.subscribe('tp', { fps: 60 }, (err, f) => {
      if (!err && f) {
        got.frames++
        got.bytes += f.jpeg.length
      }
    })
    await sleep(2000)
    s0 = cams.status('tp')
    const g0 = { ...got }
    c = await cpuOver(me, secs * 1000)
    s1 = cams.status('tp')
    const frames = got.frames - g0.frames
    out.decode_jpeg = {
      cpu_pct: c.cpu_pct,
      fps_delivered: round(frames / c.secs, 2),
      frames_per_cpu_s: round(frames / c.cpu_s, 1),
      jpeg_bytes_avg: frames ? Math.round((got.bytes - g0.bytes) / frames) : null,
      jpeg_encodes: s1.jpegEncodes - s0.jpegEncodes,
      frames_decoded: s1.framesDecoded - s0.framesDecoded,
      quality: 80
    }
    sub.unsubscribe()
    await cams.disconnect('tp')
  } finally {
    cams.close()
  }
  return out
}

// ---------------------------------------------------------------------------------------
// report

function readJson (file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch {
    return null
  }
}

/** Least squares y = a + b x over [x, y] pairs (null with fewer than 3 or no spread in x). */
function linearFit (pts) {
  if (pts.length < 3) return null
  const mx = pts.reduce((s, p) => s + p[0], 0) / pts.length
  const my = pts.reduce((s, p) => s + p[1], 0) / pts.length
  let sxy = 0
  let sxx = 0
  for (const [x, y] of pts) {
    sxy += (x - mx) * (y - my)
    sxx += (x - mx) ** 2
  }
  if (sxx === 0) return null
  const b = sxy / sxx
  return { a: my - b * mx, b }
}

const fmt = (x, unit = '', d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : `${+x.toFixed(d)}${unit}`)

/**
 * Issue 12: criterion's decode cost per frame (bench/run.sh --criterion writes
 * criterion.json): H.265 beside H.264 at 720p and 1080p, the same x264/x265 clip source.
 */
function decoderRows (r, row, { fmt, ratio, g }) {
  // End to end: one camera with decode `continuous`, the server's CPU per decoded frame.
  for (const size of ['720p', '1080p']) {
    const hevc = r[`camkit-throughput-hevc${size}`]
    const avc = r[`camkit-throughput-${size}`]
    if (!hevc) continue
    const h = g(hevc, 'decode_only.cpu_ms_per_frame')
    const a = g(avc, 'decode_only.cpu_ms_per_frame')
    row(12, `H.265 decode alone, ${size}, end to end (RTSP from GStreamer, camkit in-process, decode continuous), CPU per frame`, fmt(h, ' ms', 2),
      `H.264 (same pictures, x264): ${fmt(a, ' ms', 2)}; ffmpeg -f null on the H.265 stream: ${fmt(g(r[`ffmpeg-null-hevc${size}-1`], 'cpu_ms_per_frame'), ' ms', 2)}`, ratio(h, a), '(no target)', null,
      `${g(hevc, 'decoder') || '?'}; ${fmt(g(hevc, 'decode_only.fps_decoded'), ' fps')} decoded; decode + full-size JPEG: ${fmt(g(hevc, 'decode_jpeg.frames_per_cpu_s'), '', 1)} frames per CPU-second (H.264: ${fmt(g(avc, 'decode_jpeg.frames_per_cpu_s'), '', 1)})`)
  }
  const c = r.criterion
  if (!c || !c.ms_per_frame) return
  const m = c.ms_per_frame
  for (const size of ['720p', '1080p']) {
    const hevc = m[`h265_decode_per_frame/libavcodec/x265_main_${size}`]
    const avc = m[`h264_decode_per_frame/libavcodec/x264_high_${size}`]
    const oh = m[`h264_decode_per_frame/openh264/x264_high_${size}`]
    if (!Number.isFinite(hevc) && !Number.isFinite(avc)) continue
    row(12, `H.265 decode per frame, ${size} (criterion, libavcodec, x265 Main, 2 s GOP, 4 Mb/s)`, fmt(hevc, ' ms', 2),
      `H.264 (x264 High, same clip): libavcodec ${fmt(avc, ' ms', 2)}, OpenH264 ${fmt(oh, ' ms', 2)}`, ratio(hevc, avc), '(no target)', null,
      'ratio: H.265 over H.264, both libavcodec; one GOP decoded from a fresh decoder per iteration')
  }
}

function report (a) {
  const dir = a.dir
  const r = {}
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.json')) r[f.replace(/\.json$/, '')] = readJson(path.join(dir, f))
  const ck7 = r['camkit-720p-1cam'] || {}
  const ck10 = r['camkit-1080p-8cam'] || {}
  const sd7 = r['seed-720p-1cam'] || {}
  const sd10 = r['seed-1080p-8cam'] || {}
  const ff1 = r['ffmpeg-1080p-1'] || {}
  const ff8 = r['ffmpeg-1080p-8'] || {}
  const tp = r['camkit-throughput-1080p'] || {}
  const idl = r['camkit-idle-1080p'] || {}
  const level = (n) => (idl.levels || []).find((l) => l.cameras === n) || (idl.levels || [])[(idl.levels || []).length - 1] || {}
  const g = (o, p) => p.split('.').reduce((x, k) => (x == null ? undefined : x[k]), o)
  const ratio = (x, y) => (Number.isFinite(x) && Number.isFinite(y) && y > 0 ? x / y : null)

  const rows = []
  // kind: 'le' measured ≤ limit, 'ge' measured ≥ limit
  function row (issue, what, measured, reference, rat, limitText, pass, note = '') {
    rows.push({ issue, what, measured, reference, ratio: rat, target: limitText, result: pass === null ? 'n/a' : pass ? 'pass' : '**miss**', note })
  }
  const l1 = level(1)
  const l8 = level(8)
  const l32 = level(32)
  const gopFrames = Number(a.gop || 30)
  const gopDecodeMs = Number.isFinite(g(tp, 'decode_only.cpu_ms_per_frame')) ? tp.decode_only.cpu_ms_per_frame * gopFrames : null

  row(5, `idle CPU, 1 camera 1080p15 nobody watches (above the server's own ${fmt(g(idl, 'baseline.cpu_pct'), '%', 2)})`,
    Number.isFinite(l1.cpu_pct_per_camera) && l1.cpu_pct_per_camera < 0.05 ? '< 0.05% of a core (1 tick in 20 s)' : fmt(l1.cpu_pct_per_camera, '% of a core', 2), `ffmpeg: ${fmt(g(ff1, 'cpu_pct_per_camera'), '%')}`, null, '≤ 0.5%',
    Number.isFinite(l1.cpu_pct_per_camera) ? l1.cpu_pct_per_camera <= 0.5 : null,
    `whole server with 1 camera: ${fmt(l1.cpu_pct, '%', 2)}`)
  row(5, 'idle CPU, 8 cameras, whole server', fmt(l8.cpu_pct, '%', 2), `ffmpeg ×8: ${fmt(g(ff8, 'cpu_pct'), '%')}`,
    ratio(l8.cpu_pct, g(ff8, 'cpu_pct')), '(no target)', null, `${fmt(l8.cpu_pct_per_camera, '%', 3)} per camera above the server's own`)
  row(5, 'idle CPU, 32 cameras 1080p15, whole server', fmt(l32.cpu_pct, '% of a core', 2), '', null, '≤ 25%',
    Number.isFinite(l32.cpu_pct) && l32.cameras === 32 ? l32.cpu_pct <= 25 : null,
    `${fmt(l32.cpu_pct_per_camera, '%', 3)} per camera above the server's own; ${l32.streaming ?? '?'}/${l32.cameras ?? '?'} streaming at ${fmt(l32.fps_received, ' fps')}`)
  const fpc = g(tp, 'decode_jpeg.frames_per_cpu_s')
  const ffpc = g(ff1, 'frames_per_cpu_s')
  row(5, 'continuous decode + full-size JPEG, 1080p: frames per CPU-second', fmt(fpc, '', 1), `ffmpeg: ${fmt(ffpc, '', 1)}`,
    ratio(fpc, ffpc), '≥ 1.0× ffmpeg', Number.isFinite(ratio(fpc, ffpc)) ? ratio(fpc, ffpc) >= 1.0 : null,
    `JPEG ${fmt(g(tp, 'decode_jpeg.jpeg_bytes_avg') / 1024, ' KiB', 0)} (camkit q80) vs ${fmt(g(ff1, 'jpeg_bytes_avg') / 1024, ' KiB', 0)} (ffmpeg -q:v 5); camkit ${fmt(g(tp, 'decode_jpeg.fps_delivered'), ' fps')}, ffmpeg ${fmt(g(ff1, 'fps_per_process'), ' fps')}`)
  const idleR = ratio(ck10.idle, sd10.idle)
  row(5, 'harness, 8 cameras 1080p: CPU with nobody watching', fmt(ck10.idle, '%'), `seed: ${fmt(sd10.idle, '%')}`, idleR, '≤ 1/10 of the seed', idleR === null ? null : idleR <= 0.1)
  const stR = ratio(g(ck10, 'stream.cpu_pct'), g(sd10, 'stream.cpu_pct'))
  row(5, 'harness, 8 cameras 1080p, 8 WebSocket clients: streaming CPU', fmt(g(ck10, 'stream.cpu_pct'), '%'), `seed: ${fmt(g(sd10, 'stream.cpu_pct'), '%')}`, stR, '≤ 1/3 of the seed', stR === null ? null : stR <= 1 / 3)
  const fps10 = g(ck10, 'stream.frames_per_client_per_s')
  row(5, 'harness, 8 cameras 1080p, 8 clients: fps delivered per client (asked 15)', fmt(fps10, ' fps'), `seed: ${fmt(g(sd10, 'stream.frames_per_client_per_s'), ' fps')}`, null, '≥ 14.5 fps', Number.isFinite(fps10) ? fps10 >= 14.5 : null,
    `gap p99 ${fmt(g(ck10, 'stream.gap_p99_ms'), ' ms', 0)} (seed ${fmt(g(sd10, 'stream.gap_p99_ms'), ' ms', 0)})`)
  const rssR = ratio(ck10.rss_mb_streaming, sd10.rss_mb_streaming)
  row(5, 'harness, 8 cameras 1080p: RSS while streaming', fmt(ck10.rss_mb_streaming, ' MB', 0), `seed: ${fmt(sd10.rss_mb_streaming, ' MB', 0)}`, rssR, '≤ 1/3 of the seed', rssR === null ? null : rssR <= 1 / 3,
    `idle: ${fmt(ck10.rss_mb_idle, ' MB', 0)} vs ${fmt(sd10.rss_mb_idle, ' MB', 0)}`)
  const p50 = g(ck10, 'snapshot.p50_ms')
  row(5, 'harness, 8 cameras 1080p: snapshot latency p50', fmt(p50, ' ms', 2), `seed: ${fmt(g(sd10, 'snapshot.p50_ms'), ' ms', 2)}`, ratio(p50, g(sd10, 'snapshot.p50_ms')), '≤ 1 ms', Number.isFinite(p50) ? p50 <= 1 : null,
    `p99 ${fmt(g(ck10, 'snapshot.p99_ms'), ' ms', 1)} (seed ${fmt(g(sd10, 'snapshot.p99_ms'), ' ms', 1)})`)
  const thR = ratio(g(ck10, 'snapshot_16_concurrent.per_s'), g(sd10, 'snapshot_16_concurrent.per_s'))
  row(5, 'harness, 8 cameras 1080p: 16 concurrent snapshots', fmt(g(ck10, 'snapshot_16_concurrent.per_s'), '/s', 0), `seed: ${fmt(g(sd10, 'snapshot_16_concurrent.per_s'), '/s', 0)}`, thR, '≥ 10× the seed', thR === null ? null : thR >= 10)
  const od = idl.ondemand || {}
  // Latency against the frames each snapshot had to decode (keyframe .. now): a straight
  // line, whose value at a whole GOP is the worst case without the noise of one sample.
  const fit = linearFit((od.samples || []).map((x) => [x.frames_decoded, x.ms]))
  const fullGop = fit ? fit.a + fit.b * gopFrames : null
  row(5, `onDemand snapshot of a camera nobody watched (1080p, ${od.at_cameras ?? '?'} cameras connected)`,
    `${fmt(fullGop, ' ms', 0)} for a whole GOP (fit); p50 ${fmt(od.p50_ms, ' ms', 0)}, max ${fmt(od.max_ms, ' ms', 0)}`,
    `one GOP (${gopFrames} frames) decodes in ${fmt(gopDecodeMs, ' ms', 0)}`, ratio(fullGop, gopDecodeMs), '≤ decode time of one GOP',
    Number.isFinite(fullGop) && gopDecodeMs ? fullGop <= gopDecodeMs : null,
    `${od.n ?? 0} snapshots at random GOP phases, decoding ${od.frames_decoded_p50 ?? '?'} frames (p50), ${od.frames_decoded_max ?? '?'} (max); latency ≈ ${fit ? fit.a.toFixed(0) : '?'} ms + ${fit ? fit.b.toFixed(1) : '?'} ms per frame decoded (the keyframe costs the most); steady decode ${fmt(g(tp, 'decode_only.cpu_ms_per_frame'), ' ms', 2)}/frame on this clip (${g(tp, 'decoder') || 'default decoder'})`)
  const p50s = g(ck7, 'snapshot.p50_ms')
  row(3, 'harness, 1 camera 720p: snapshot latency p50', fmt(p50s, ' ms', 2), `seed: ${fmt(g(sd7, 'snapshot.p50_ms'), ' ms', 2)}`, ratio(p50s, g(sd7, 'snapshot.p50_ms')), '≤ 1.5 ms', Number.isFinite(p50s) ? p50s <= 1.5 : null)
  const st7R = ratio(g(ck7, 'stream.cpu_pct'), g(sd7, 'stream.cpu_pct'))
  const fps7 = g(ck7, 'stream.frames_per_client_per_s')
  row(3, 'harness, 1 camera 720p, 4 WebSocket clients at 15 fps: streaming CPU', fmt(g(ck7, 'stream.cpu_pct'), '%'), `seed: ${fmt(g(sd7, 'stream.cpu_pct'), '%')}`, st7R, '≤ 1/3 of the seed', st7R === null ? null : st7R <= 1 / 3)
  row(3, 'harness, 1 camera 720p, 4 clients: fps delivered per client', fmt(fps7, ' fps'), `seed: ${fmt(g(sd7, 'stream.frames_per_client_per_s'), ' fps')}`, null, '≥ 14.5 fps', Number.isFinite(fps7) ? fps7 >= 14.5 : null)
  row(3, 'harness, 8 cameras 1080p: connect all (one after another, each waits for its first picture)', fmt(ck10.connect_ms / 1000, ' s', 2), `seed: ${fmt(sd10.connect_ms / 1000, ' s', 2)}`, ratio(ck10.connect_ms, sd10.connect_ms), '≤ 2 s', Number.isFinite(ck10.connect_ms) ? ck10.connect_ms <= 2000 : null,
    `first frame of the last camera at ${fmt(ck10.first_frame_ms / 1000, ' s', 2)} (seed ${fmt(sd10.first_frame_ms / 1000, ' s', 2)})`)
  video.rows(r, row, { fmt, ratio, g })
  decoderRows(r, row, { fmt, ratio, g })
  // Information rows
  const tt = idl.ttff_ms || {}
  row('—', 'time to first frame, per camera (connect + first snapshot), stream starting at a keyframe', `p50 ${fmt(tt.p50, ' ms', 0)}, max ${fmt(tt.max, ' ms', 0)}`, `seed: ${fmt(sd7.first_frame_ms, ' ms', 0)} (1 camera 720p)`, null, '(no target)', null, `${tt.n ?? 0} cameras one at a time; harness, 1 camera 720p: camkit ${fmt(ck7.first_frame_ms, ' ms', 0)}`)
  const cm = idl.connect_ms || {}
  row('—', `connect, cameras one after another while the others idle (up to ${cm.n ?? '?'} cameras)`, `p50 ${fmt(cm.p50, ' ms', 0)}, max ${fmt(cm.max, ' ms', 0)}`, '', null, '(no target)', null, 'connect returns once the first picture is decoded')
  row('—', 'RSS per camera, nobody watching (1080p)', `${fmt(l32.rss_mb_per_camera, ' MB', 2)} (32 cameras), ${fmt(l8.rss_mb_per_camera, ' MB', 2)} (8)`, `seed: ${fmt((sd10.rss_mb_idle - sd10.rss_mb_before) / 8, ' MB', 1)} (8 cameras); ffmpeg: ${fmt(g(ff8, 'rss_mb_per_process'), ' MB', 1)}`, null, '(no target)', null, `server with 0 cameras: ${fmt(g(idl, 'baseline.rss_mb'), ' MB', 0)}`)
  const tp7 = r['camkit-throughput-720p'] || {}
  const ff7 = r['ffmpeg-720p-1'] || {}
  row('—', 'continuous decode + full-size JPEG, 720p: frames per CPU-second', fmt(g(tp7, 'decode_jpeg.frames_per_cpu_s'), '', 1), `ffmpeg: ${fmt(g(ff7, 'frames_per_cpu_s'), '', 1)}`, ratio(g(tp7, 'decode_jpeg.frames_per_cpu_s'), g(ff7, 'frames_per_cpu_s')), '(no target)', null,
    `JPEG ${fmt(g(tp7, 'decode_jpeg.jpeg_bytes_avg') / 1024, ' KiB', 0)} vs ${fmt(g(ff7, 'jpeg_bytes_avg') / 1024, ' KiB', 0)}`)
  const tpo = r['camkit-throughput-1080p-openh264']
  if (tpo) {
    row('—', `camkit with OpenH264 instead (decoder: openh264), 1080p: decode alone, CPU per frame; decode + full-size JPEG, frames per CPU-second`, `${fmt(g(tpo, 'decode_only.cpu_ms_per_frame'), ' ms', 2)}; ${fmt(g(tpo, 'decode_jpeg.frames_per_cpu_s'), '', 1)}`,
      `${g(tp, 'decoder') || 'default decoder'}: ${fmt(g(tp, 'decode_only.cpu_ms_per_frame'), ' ms', 2)}; ${fmt(g(tp, 'decode_jpeg.frames_per_cpu_s'), '', 1)}`,
      ratio(g(tpo, 'decode_only.cpu_ms_per_frame'), g(tp, 'decode_only.cpu_ms_per_frame')), '(no target)', null, 'the built-in decoder, used where libavcodec cannot be loaded; ratio: its decode cost over the default\'s')
  }
  row('—', `camkit H.264 decode alone (${g(tp, 'decoder') || '?'}), CPU per frame`, `${fmt(g(tp, 'decode_only.cpu_ms_per_frame'), ' ms', 2)} (1080p), ${fmt(g(tp7, 'decode_only.cpu_ms_per_frame'), ' ms', 2)} (720p)`,
    `ffmpeg decode alone: ${fmt(g(r['ffmpeg-null-1080p-1'], 'cpu_ms_per_frame'), ' ms', 2)} (1080p), ${fmt(g(r['ffmpeg-null-720p-1'], 'cpu_ms_per_frame'), ' ms', 2)} (720p); decode + JPEG: ${fmt(1000 / g(ff1, 'frames_per_cpu_s'), ' ms', 2)}, ${fmt(1000 / g(ff7, 'frames_per_cpu_s'), ' ms', 2)}`,
    ratio(g(tp, 'decode_only.cpu_ms_per_frame'), g(r['ffmpeg-null-1080p-1'], 'cpu_ms_per_frame')), '(no target)', null,
    `continuous decode of one camera nobody watches: ${fmt(g(tp, 'decode_only.cpu_pct'), '%')} (1080p), ${fmt(g(tp7, 'decode_only.cpu_pct'), '%')} (720p) of a core`)
  row('—', 'ffmpeg per camera (decodes and encodes every frame; it cannot idle)', `${fmt(g(ff1, 'cpu_pct_per_camera'), '%')} (1), ${fmt(g(ff8, 'cpu_pct_per_camera'), '%')} (8)`, '', null, '(no target)', null, `fps per process ${fmt(g(ff1, 'fps_per_process'))} (1), ${fmt(g(ff8, 'fps_per_process'))} (8: the 2 cores are saturated, frames come in bursts)`)

  const lines = []
  lines.push('| issue | measure | camkit | reference | ratio | target | result | notes |')
  lines.push('|---|---|---|---|---|---|---|---|')
  for (const x of rows) {
    lines.push(`| ${x.issue} | ${x.what} | ${x.measured} | ${x.reference} | ${x.ratio === null ? '' : `${x.ratio.toFixed(x.ratio < 0.1 ? 3 : 2)}×`} | ${x.target} | ${x.result} | ${x.note} |`)
  }
  const table = lines.join('\n')
  const results = { meta: r.meta || null, rows, raw: r }
  if (a.out) fs.writeFileSync(a.out, JSON.stringify(results, null, 2) + '\n')
  return table
}

// ---------------------------------------------------------------------------------------

async function main () {
  const a = parseArgs(process.argv.slice(2))
  const cmd = a._[0]
  let out
  if (cmd === 'idle') out = await idle(a)
  else if (cmd === 'ffmpeg') out = await ffmpeg(a)
  else if (cmd === 'throughput') out = await throughput(a)
  else if (cmd === 'report') {
    console.log(report(a))
    return
  } else {
    console.error('usage: measure.js idle|ffmpeg|throughput|report [options] (see the top of this file)')
    process.exit(2)
  }
  console.log(JSON.stringify(out))
}

main().then(() => process.exit(0), (e) => {
  console.error(`measure.js: ${e.stack || e}`)
  process.exit(1)
})
