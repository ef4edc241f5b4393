'use strict'
// The npm package as a new user meets it: the tarballs `npm run package` writes, installed
// in an empty folder outside the repository with no Rust, nasm or cmake on PATH, into an
// Express app of the seed's shape (tests/npm-app: its own server.js and /api/moondream
// route) that mounts camkit/express; then a GStreamer camera through the seed's API, a
// JPEG with the right colours, frames over /ws in the seed's protocol, the viewer page,
// the TypeScript types under `tsc --strict`, and the loader's error when no binary fits.
//
// The tarballs hold the debug addon the Node tests built just before (scripts/test-node.sh),
// packed by the same script with `--addon`: a release build would cost minutes on every
// test run and packs the same way (`npm run package` without --addon builds it).
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { createRequire } = require('node:module')

const { REPO, startGstServer, isJpeg } = require('../../bindings-node/test/helpers')

const BINDING = path.join(REPO, 'bindings-node')
const OUT = path.join(REPO, 'target', 'npm')
const pkg = require(path.join(BINDING, 'package.json'))

/**
 * Bar colours of the /baseline mount (BT.601, 640x360) in camkit's JPEGs: the server's
 * limited-range values (tests/src/smpte.rs) expanded to full range, as camkit does.
 */
const BARS_BT601 = [[235, 235, 235], [235, 235, 11], [12, 235, 237], [13, 237, 13], [237, 12, 237], [238, 14, 13], [15, 14, 239]]
  .map((rgb) => rgb.map((c) => Math.min(255, Math.max(0, Math.floor((c - 16) * 255 / 219)))))

let app
let shimPath
let gst
let server
let base

/** A PATH with node and npm only: no cargo, rustc, nasm or cmake. */
function makeShimPath (dir) {
  fs.mkdirSync(dir)
  for (const tool of ['node', 'npm', 'npx', 'sh', 'bash']) {
    const found = execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim()
    fs.symlinkSync(found, path.join(dir, tool))
  }
  return dir
}

function appEnv (extra = {}) {
  const env = { ...process.env, PATH: shimPath, ...extra }
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH
  delete env.CARGO_HOME
  return env
}

/** Decodes a JPEG to packed RGB with ffmpeg. */
function decodeJpeg (jpeg) {
  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', '-i', 'pipe:0'], { input: jpeg }))
  const { width, height } = probe.streams[0]
  const rgb = execFileSync('ffmpeg', ['-v', 'error', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { input: jpeg, maxBuffer: 64 << 20 })
  return { width, height, rgb }
}

function meanRgb ({ width, rgb }, cx, cy, r = 3) {
  const sum = [0, 0, 0]
  let n = 0
  for (let y = cy - r; y <= cy + r; y++) {
    for (let x = cx - r; x <= cx + r; x++) {
      const i = (y * width + x) * 3
      for (let c = 0; c < 3; c++) sum[c] += rgb[i + c]
      n++
    }
  }
  return sum.map((s) => s / n)
}

before(async () => {
  const addon = path.join(BINDING, `${pkg.napi.binaryName}.linux-x64-gnu.node`)
  assert.ok(fs.existsSync(addon), `${addon} is missing: scripts/test-node.sh builds it (napi build --platform) before this test`)
  fs.rmSync(OUT, { recursive: true, force: true })
  execFileSync(process.execPath, [path.join(BINDING, 'scripts', 'package.js'), '--addon', addon], { cwd: BINDING, stdio: ['ignore', 'ignore', 'inherit'] })
  const main = path.join(OUT, `${pkg.name}-${pkg.version}.tgz`)
  const platform = path.join(OUT, `${pkg.name}-linux-x64-gnu-${pkg.version}.tgz`)
  assert.ok(fs.existsSync(main) && fs.existsSync(platform), 'npm run package wrote both tarballs')

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'camkit-npm-user-'))
  shimPath = makeShimPath(path.join(root, 'bin'))
  app = path.join(root, 'app')
  fs.cpSync(path.join(__dirname, '..', 'npm-app'), app, { recursive: true })
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({
    name: 'my-backend',
    private: true,
    main: 'server.js',
    dependencies: { camkit: `file:${main}`, 'camkit-linux-x64-gnu': `file:${platform}`, express: '^4.21.2', ws: '^8.18.0' },
    devDependencies: { typescript: '^5.6.0', '@types/express': '^4.17.21', '@types/ws': '^8.5.13', '@types/node': '^20.0.0' }
  }, null, 2))

  const tools = spawnSync('sh', ['-c', 'command -v cargo rustc nasm cmake'], { env: appEnv(), encoding: 'utf8' })
  assert.equal(tools.stdout, '', 'no build tool on the app\'s PATH')
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, env: appEnv(), stdio: ['ignore', 'ignore', 'inherit'], timeout: 240000 })
  gst = await startGstServer()
})

after(async () => {
  if (server) await server.stop()
  if (gst) await gst.stop()
  if (app) fs.rmSync(path.dirname(app), { recursive: true, force: true })
})

/** Starts the app's server.js on a free port; resolves once it listens. */
function startApp () {
  const child = spawn(process.execPath, ['server.js'], { cwd: app, env: appEnv({ PORT: '0' }), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the app did not start within 20 s:\n${out}`)), 20000)
    child.on('exit', (code) => reject(new Error(`the app exited (code ${code}):\n${out}`)))
    child.stdout.on('data', () => {
      const m = /running on port (\d+)/.exec(out)
      if (!m) return
      clearTimeout(timer)
      child.removeAllListeners('exit')
      resolve({
        port: Number(m[1]),
        stop: () => new Promise((res) => {
          if (child.exitCode !== null) return res()
          child.once('exit', res)
          child.kill('SIGTERM')
        })
      })
    })
  })
}

test('the installed package serves a GStreamer camera through the seed API', async (t) => {
  server = await startApp()
  base = `http://127.0.0.1:${server.port}`

  const connect = await fetch(`${base}/api/cameras/connect`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ cameraId: 'gst', ip: '127.0.0.1', port: gst.port, streamPath: '/baseline' })
  })
  assert.equal(connect.status, 200)
  assert.deepEqual(await connect.json(), { success: true, cameraId: 'gst' })

  await t.test('a JPEG of the right picture from /frame', async () => {
    const res = await fetch(`${base}/api/cameras/gst/frame`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'image/jpeg')
    const jpeg = Buffer.from(await res.arrayBuffer())
    assert.ok(isJpeg(jpeg))
    const img = decodeJpeg(jpeg)
    assert.deepEqual([img.width, img.height], [640, 360])
    BARS_BT601.forEach((want, i) => {
      const got = meanRgb(img, Math.floor((2 * i + 1) * img.width / 14), Math.floor(img.height / 3))
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(got[c] - want[c]) <= 16, `bar ${i}: ${got.map(Math.round)} is not ${want}`)
    })
  })

  await t.test('frames over /ws in the seed protocol', async () => {
    const WebSocket = createRequire(path.join(app, 'package.json'))('ws')
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`)
    const msg = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no frame within 10 s')), 10000)
      ws.on('open', () => ws.send(JSON.stringify({ action: 'subscribe', cameraId: 'gst', fps: 5 })))
      ws.on('message', (data, isBinary) => {
        clearTimeout(timer)
        resolve({ isBinary, m: JSON.parse(data.toString()) })
      })
      ws.on('error', reject)
    })
    ws.close()
    assert.equal(msg.isBinary, false)
    assert.deepEqual(Object.keys(msg.m), ['type', 'cameraId', 'data', 'timestamp'])
    assert.equal(msg.m.type, 'frame')
    assert.equal(msg.m.cameraId, 'gst')
    assert.equal(typeof msg.m.timestamp, 'number')
    assert.ok(isJpeg(Buffer.from(msg.m.data, 'base64')))
  })

  await t.test('the viewer page and the app\'s own routes', async () => {
    const page = await fetch(`${base}/`)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type'), /text\/html/)
    const html = await page.text()
    assert.match(html, /<script[^>]+app\.js/)
    const js = await fetch(`${base}/app.js`)
    assert.equal(js.status, 200)
    assert.match(await js.text(), /\/api\/cameras/)
    const mine = await fetch(`${base}/api/moondream/ask`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"question":"hi"}' })
    assert.deepEqual(await mine.json(), { mine: true, question: 'hi' })
    const health = await (await fetch(`${base}/health`)).json()
    assert.equal(health.services.cameras, 1)
  })
})

test('the TypeScript types compile (tsc --noEmit, strict)', () => {
  const r = spawnSync(process.execPath, [path.join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app, env: appEnv(), encoding: 'utf8' })
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`)
})

/** What `require('camkit')` throws in the app, with `preload` run first (or null). */
function loadError (preload) {
  const args = preload ? ['--require', preload] : []
  const probe = 'try { require("camkit"); console.log("null") } catch (e) { console.log(JSON.stringify({ code: e.code, platform: e.platform, message: e.message })) }'
  const r = spawnSync(process.execPath, [...args, '-e', probe], { cwd: app, env: appEnv(), encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('the loader names the platform and what to do when no binary fits', () => {
  // A platform without a prebuilt binary.
  const fake = path.join(app, 'fake-arch.js')
  fs.writeFileSync(fake, "Object.defineProperty(process, 'arch', { value: 'mips64el' })\n")
  const other = loadError(fake)
  assert.equal(other.code, 'ERR_CAMKIT_NO_BINARY')
  assert.equal(other.platform, 'linux-mips64el-gnu')
  assert.match(other.message, /linux-mips64el-gnu/)
  assert.match(other.message, /linux-x64-gnu, linux-arm64-gnu/)
  assert.match(other.message, /build it from source/)

  // This platform, installed without its optional platform package.
  const dir = path.join(app, 'node_modules', 'camkit-linux-x64-gnu')
  fs.renameSync(dir, `${dir}.away`)
  try {
    const missing = loadError(null)
    assert.equal(missing.code, 'ERR_CAMKIT_NO_BINARY')
    assert.equal(missing.platform, 'linux-x64-gnu')
    assert.match(missing.message, /camkit-linux-x64-gnu/)
    assert.match(missing.message, /npm install camkit/)
  } finally {
    fs.renameSync(`${dir}.away`, dir)
  }
  assert.equal(loadError(null), null)
})
