'use strict'
// Test support: the GStreamer RTSP server, a NATS server, free and silent ports.
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const REPO = path.resolve(__dirname, '..', '..')

/**
 * Starts tests/gst/rtsp_server.py (gst-rtsp-server) on a free port. Its stdin stays a pipe:
 * the server exits when it closes, so it cannot outlive this process.
 * Mounts: /h264-720, /h264-1080, /auth/h264-1080 (digest auth, user `camkit`, password
 * `s3cr@t:pass/word`), /h265; `args` are more of its options (`--cameras 12`, ...).
 */
function startGstServer (args = []) {
  const child = spawn('/usr/bin/python3', [path.join(REPO, 'tests', 'gst', 'rtsp_server.py'), '--port', '0', ...args], {
    stdio: ['pipe', 'pipe', 'inherit']
  })
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('GStreamer RTSP server did not print READY within 20 s')), 20000)
    child.on('error', reject)
    child.on('exit', (code) => reject(new Error(`GStreamer RTSP server exited early (code ${code})`)))
    child.stdout.on('data', (d) => {
      out += d
      const m = /READY (\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve({
          port: Number(m[1]),
          stop: () => new Promise((res) => {
            child.once('exit', res)
            child.stdin.end()
            child.kill('SIGTERM')
          })
        })
      }
    })
  })
}

/** A free TCP port on 127.0.0.1. */
async function freePort () {
  const srv = net.createServer()
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address()
  await new Promise((resolve) => srv.close(resolve))
  return port
}

/**
 * Starts nats-server (Debian package; PATH or /usr/sbin) with JetStream on 127.0.0.1, a
 * free port and a store directory of its own; resolves once it accepts connections.
 * `stop()` kills it and removes the store.
 */
async function startNats () {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'camkit-nats-'))
  const bin = fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server'
  const child = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' })
  let failed = false
  const exited = new Promise((resolve) => {
    child.once('exit', resolve)
    child.once('error', () => { failed = true; resolve() })
  })
  const stop = async () => {
    child.kill('SIGTERM')
    await exited
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 10000
  for (;;) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (up) break
    if (Date.now() > deadline || failed || child.exitCode !== null) {
      await stop()
      throw new Error('nats-server did not start within 10 s (apt-get install nats-server)')
    }
    await sleep(50)
  }
  return { url: `nats://127.0.0.1:${port}`, stop }
}

/** A TCP port nothing listens on (bound, then closed). */
async function closedPort () {
  const srv = net.createServer()
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  const { port } = srv.address()
  await new Promise((resolve) => srv.close(resolve))
  return port
}

/** A TCP server that accepts connections and never answers: a camera that hangs. */
async function silentServer () {
  const sockets = new Set()
  const srv = net.createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}) })
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve))
  return {
    port: srv.address().port,
    close: () => { for (const s of sockets) s.destroy(); return new Promise((resolve) => srv.close(resolve)) }
  }
}

/** Resolves with the rejection (or throw) of `fn`; fails if it succeeds. */
async function failure (fn) {
  try {
    await fn()
  } catch (e) {
    return e
  }
  throw new Error('expected an error, got success')
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const isJpeg = (buf) => Buffer.isBuffer(buf) && buf.length > 100 && buf[0] === 0xff && buf[1] === 0xd8 && buf[buf.length - 2] === 0xff && buf[buf.length - 1] === 0xd9

module.exports = { REPO, startGstServer, startNats, closedPort, silentServer, failure, sleep, isJpeg }
