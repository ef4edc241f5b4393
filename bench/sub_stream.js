#!/usr/bin/env node
'use strict'
// Moondream-sized snapshots (at most 768 px wide, from the sub-stream as camkit's Moondream
// takes them) of a 1080p camera with a 640x360 sub-stream, against the same camera without
// one: camkit's CPU per snapshot, both measured in this one run.
//
//   node bench/sub_stream.js [--secs 20] [--interval-ms 1000] [--settle 7]
//
// The streams come from tests/gst/rtsp_server.py (x264 at 15 fps, 2 s GOP: /h264-1080 and
// /high), a process of its own whose encoding is not counted: the CPU figures are this
// process's (process.cpuUsage(): every thread, camkit's RTSP, decode and JPEG threads
// included). Each camera is connected alone, left to settle past its decode grace, then
// asked for a snapshot every interval for `secs` (decode onDemand, the default: a snapshot
// decodes what was buffered since the last keyframe, then the camera decodes for 5 s).
// Prints one JSON object.
const path = require('node:path')
const { spawn } = require('node:child_process')

const REPO = path.resolve(__dirname, '..')
const { CameraManager } = require(path.join(REPO, 'bindings-node'))

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function arg (name, dflt) {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}

function startGst () {
  const child = spawn('/usr/bin/python3', [path.join(REPO, 'tests', 'gst', 'rtsp_server.py'), '--port', '0'], {
    stdio: ['pipe', 'pipe', 'inherit']
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.on('exit', (code) => reject(new Error(`rtsp_server.py exited (${code})`)))
    child.stdout.on('data', (d) => {
      out += d
      const m = /READY (\d+)/.exec(out)
      if (m) {
        child.removeAllListeners('exit')
        resolve({ port: Number(m[1]), stop: () => { child.stdin.end(); child.kill('SIGTERM') } })
      }
    })
  })
}

const cpuMs = (u) => (u.user + u.system) / 1000

async function measure (cams, id, config, { secs, intervalMs, settle }) {
  await cams.connect({ id, ...config })
  await sleep(settle * 1000)
  const st0 = cams.status(id)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const latencies = []
  let width = 0
  while (performance.now() - t0 < secs * 1000) {
    const s = performance.now()
    const f = await cams.snapshot(id, { maxWidth: 768, stream: 'sub' })
    latencies.push(performance.now() - s)
    width = f.width
    const next = t0 + latencies.length * intervalMs
    await sleep(Math.max(0, next - performance.now()))
  }
  const cpu = cpuMs(process.cpuUsage(cpu0))
  const wall = (performance.now() - t0) / 1000
  const st1 = cams.status(id)
  await cams.disconnect(id)
  latencies.sort((a, b) => a - b)
  const sub = st1.subStream
  return {
    snapshots: latencies.length,
    width,
    cpu_ms_per_snapshot: +(cpu / latencies.length).toFixed(2),
    cpu_pct: +(cpu / 10 / wall).toFixed(1),
    latency_ms_p50: +latencies[Math.floor(latencies.length / 2)].toFixed(1),
    main_frames_decoded: st1.framesDecoded - st0.framesDecoded,
    sub_frames_decoded: sub ? sub.framesDecoded - st0.subStream.framesDecoded : 0
  }
}

async function main () {
  const opts = { secs: arg('secs', 20), intervalMs: arg('interval-ms', 1000), settle: arg('settle', 7) }
  const gst = await startGst()
  const cams = new CameraManager()
  try {
    const url = `rtsp://127.0.0.1:${gst.port}/h264-1080`
    const main = await measure(cams, 'main-only', { url }, opts)
    const withSub = await measure(cams, 'with-sub', { url, subStream: '/high' }, opts)
    console.log(JSON.stringify({
      ...opts,
      main_only: main,
      with_sub_stream: withSub,
      cpu_ratio_main_over_sub: +(main.cpu_ms_per_snapshot / withSub.cpu_ms_per_snapshot).toFixed(2)
    }, null, 2))
  } finally {
    cams.close()
    gst.stop()
  }
}

main().catch((e) => { console.error(e); process.exit(1) })
