'use strict'
// Test support: the real server as a child process and a PNG decoder; ports, misbehaving
// TCP servers and the GStreamer camera come from the binding's test helpers (one copy).
const { spawn } = require('node:child_process')
const path = require('node:path')
const zlib = require('node:zlib')

const SERVER = path.resolve(__dirname, '..', 'server.js')

/**
 * Starts server.js on a free port (PORT=0) with `env` added, and resolves once it listens
 * and its start-up cameras are connected. `output()` is everything it printed so far.
 */
function startServer (env = {}) {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', CAMKIT_DEMO_SIZE: '640x360', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start within 20 s:\n${out}`)), 20000)
    child.on('exit', (code) => reject(new Error(`server exited (code ${code}):\n${out}`)))
    const check = () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
      // Start-up cameras are connected (or failed) once /health answers with them.
      if (!m) return setTimeout(check, 50)
      const base = `http://127.0.0.1:${m[1]}`
      fetch(`${base}/health`).then((r) => r.json()).then((h) => {
        const expected = env.EXPECT_CAMERAS === undefined ? 1 : Number(env.EXPECT_CAMERAS)
        if (h.activeCameras < expected) return setTimeout(check, 100)
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve({
          base,
          port: Number(m[1]),
          ws: `ws://127.0.0.1:${m[1]}/ws`,
          output: () => out,
          stop: () => new Promise((res) => {
            if (child.exitCode !== null) return res(child.exitCode)
            child.once('exit', (code) => res(code))
            child.kill('SIGTERM')
          })
        })
      }, () => setTimeout(check, 100))
    }
    check()
  })
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's screenshots are). */
function decodePng (buf) {
  let pos = 8
  let width, height, colorType
  const idat = []
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos)
    const type = buf.toString('latin1', pos + 4, pos + 8)
    const data = buf.subarray(pos + 8, pos + 8 + len)
    if (type === 'IHDR') {
      width = data.readUInt32BE(0)
      height = data.readUInt32BE(4)
      if (data[8] !== 8 || data[12] !== 0) throw new Error('only 8-bit non-interlaced PNGs')
      colorType = data[9]
    } else if (type === 'IDAT') {
      idat.push(data)
    }
    pos += 12 + len
  }
  const bpp = { 2: 3, 6: 4 }[colorType]
  if (!bpp) throw new Error(`PNG colour type ${colorType} not supported`)
  const raw = zlib.inflateSync(Buffer.concat(idat))
  const stride = width * bpp
  const px = Buffer.alloc(height * stride)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0
      const b = y > 0 ? px[(y - 1) * stride + x] : 0
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp] : 0
      let v = line[x]
      if (filter === 1) v += a
      else if (filter === 2) v += b
      else if (filter === 3) v += (a + b) >> 1
      else if (filter === 4) {
        const p = a + b - c
        const pa = Math.abs(p - a); const pb = Math.abs(p - b); const pc = Math.abs(p - c)
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c
      }
      px[y * stride + x] = v & 0xff
    }
  }
  /** [r, g, b] at (x, y). */
  const rgb = (x, y) => { const i = y * stride + x * bpp; return [px[i], px[i + 1], px[i + 2]] }
  return { width, height, rgb }
}

const { startGstServer, closedPort, silentServer, sleep, isJpeg } = require('../../../bindings-node/test/helpers')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'

/**
 * Debian's chromium, headless, through playwright-core (never a downloaded browser), with
 * the flags that keep it off the network: without them it keeps trying Google's hosts on a
 * machine with no route out. `extraArgs` go after them.
 */
async function launchChromium (extraArgs = []) {
  const fs = require('node:fs')
  const { chromium } = require('playwright-core')
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`)
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', ...extraArgs]
  })
}

module.exports = { launchChromium, startServer, startGstServer, closedPort, silentServer, sleep, isJpeg, decodePng }
