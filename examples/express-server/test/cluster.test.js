'use strict'
// Cluster mode end to end: three Express servers (server.js, each its own process) join one
// nats-server (started here on loopback, JetStream in a temporary directory) and share 12
// password-protected cameras of the GStreamer RTSP server, all connected through node 1.
// The RTSP server writes every session's open and close (--log-sessions), so the test sees
// what the cameras see: a camera open twice is a failure whenever it happens.
//
// Phases, in order (each leaves the cluster converged for the next):
//   1. every node owns 4 ± 2 cameras, exactly the rendezvous owners (same hashing as
//      core/src/cluster/rendezvous.rs); every camera has one session;
//   2. a snapshot of every camera through every node is a correct 320x180 JPEG (ffmpeg,
//      strict, decodes all 36);
//   3. a WebSocket client on node 3 receives frames of a camera owned by node 1;
//   4. `kill -9` of node 2: all its cameras stream again on the others within 15 s;
//   5. node 2 returns: only the cameras whose rendezvous owner it is move back;
//   6. SIGSTOP of node 3 for 20 s: its cameras move; after SIGCONT it stops its stale
//      sessions within 1 s and serves nothing stale; its lease counters (GET /api/cluster
//      stats) count each of them as fenced (or lost), the others' count the claims;
//   7. nats-server restarts: no session is dropped through the outage, the nodes reconnect
//      (natsReconnects counts it, fencedStops does not move) and the cluster converges
//      again;
//   8. no camera password (nor the NATS password) in any KV entry (read raw, every bucket),
//      any subject or payload seen on NATS during the whole run, the JetStream store on
//      disk, any node's log or nats-server's log.
// Failover times and session counts are printed as diagnostics (`# ...` lines).
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const WebSocket = require('ws')
const nats = require('nats')

const { startGstServer, closedPort, sleep, isJpeg } = require('./helpers')

const SERVER = path.resolve(__dirname, '..', 'server.js')
const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => fs.existsSync(p)) || 'nats-server'
const CAMERAS = 12
const NODES = ['node-1', 'node-2', 'node-3']
const CAM_USER = 'viewer'
// Distinctive, with the characters that URL encoding changes: found anywhere, in any form,
// it leaked.
const CAM_PASSWORD = `Cam-Pw:${process.pid}@e2e/${Math.random().toString(36).slice(2, 10)}`
const NATS_USER = 'camkit-node'
const NATS_PASSWORD = `Nats-Pw-${process.pid}-${Math.random().toString(36).slice(2, 10)}`
const CLUSTER_KEY = `cluster-key-of-the-e2e-test-${Math.random().toString(36).slice(2)}`
const camId = (i) => `cam-${i}`
const mountOf = (id) => `/cam/${id.slice(4)}`

// ---- rendezvous hashing, as core/src/cluster/rendezvous.rs ---------------------------------
const MASK = (1n << 64n) - 1n
function weight (node, camera) {
  let h = 0xcbf29ce484222325n
  for (const b of [...Buffer.from(node), 0xff, ...Buffer.from(camera)]) {
    h ^= BigInt(b)
    h = (h * 0x100000001b3n) & MASK
  }
  h ^= h >> 30n
  h = (h * 0xbf58476d1ce4e5b9n) & MASK
  h ^= h >> 27n
  h = (h * 0x94d049bb133111ebn) & MASK
  return h ^ (h >> 31n)
}
/** The owner of `camera` among `nodes`: highest weight, ties to the greater id. */
function rendezvousOwner (camera, nodes) {
  let best = null
  for (const n of nodes) {
    const w = weight(n, camera)
    if (!best || w > best.w || (w === best.w && n > best.n)) best = { w, n }
  }
  return best && best.n
}
const expectedOwners = (nodes) => new Map(Array.from({ length: CAMERAS }, (_, i) => [camId(i), rendezvousOwner(camId(i), nodes)]))

// ---- processes --------------------------------------------------------------------------
const children = new Set()
// Whatever happens (a failed assertion, a crash of the runner), nothing started here
// outlives the test: SIGCONT first (a stopped process ignores SIGKILL until continued on
// some kernels' accounting of exit), then SIGKILL.
process.on('exit', () => {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGCONT'); process.kill(c.pid, 'SIGKILL') } catch {}
  }
})

function track (child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

const exited = (child) => new Promise((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) return resolve()
  child.once('exit', () => resolve())
})

const fatal = (msg) => Object.assign(new Error(msg), { fatal: true })

/** Polls `fn` until it returns something truthy; an error with `fatal` set ends it at once. */
async function waitFor (what, fn, timeoutMs, everyMs = 100) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      if (e.fatal) throw e
      last = e
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${last.message})` : ''}`)
    await sleep(everyMs)
  }
}

/** nats-server on loopback with JetStream in `dir`, user/password required. */
async function startNats (dir, port, monitorPort, logs) {
  const child = track(spawn(NATS_SERVER, ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort),
    '--user', NATS_USER, '--pass', NATS_PASSWORD], { stdio: ['ignore', 'pipe', 'pipe'] }))
  const log = { name: `nats-server:${port}`, text: '' }
  logs.push(log)
  child.stdout.on('data', (d) => { log.text += d })
  child.stderr.on('data', (d) => { log.text += d })
  await waitFor('nats-server ready', async () => {
    if (child.exitCode !== null) throw fatal(`nats-server exited:\n${log.text}`)
    return (await fetch(`http://127.0.0.1:${monitorPort}/healthz?js-enabled-only=true`)).ok
  }, 10000)
  return child
}

/** One node: server.js as its own process (kill -9 and SIGSTOP need one). */
function startNode (id, port, natsPort, logs) {
  const child = track(spawn(process.execPath, [SERVER], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      CAMKIT_DEMO: '0',
      CAMKIT_NATS_URL: `nats://127.0.0.1:${natsPort}`,
      CAMKIT_NODE_ID: id,
      CAMKIT_CLUSTER_KEY: CLUSTER_KEY,
      CAMKIT_NATS_USER: NATS_USER,
      CAMKIT_NATS_PASSWORD: NATS_PASSWORD
    },
    stdio: ['ignore', 'pipe', 'pipe']
  }))
  const log = { name: id, text: '' }
  logs.push(log)
  child.stdout.on('data', (d) => { log.text += d })
  child.stderr.on('data', (d) => { log.text += d })
  const node = { id, port, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws`, child, log }
  return waitFor(`${id} listening`, () => {
    if (child.exitCode !== null) throw fatal(`${id} exited (${child.exitCode}):\n${log.text}`)
    return /listening on http:\/\/127\.0\.0\.1:\d+/.test(log.text) && node
  }, 20000, 50)
}

// ---- what the nodes and the cameras say ----------------------------------------------------
async function getJson (url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) })
  const body = await r.text()
  if (!r.ok) throw new Error(`${url}: ${r.status} ${body}`)
  return JSON.parse(body)
}

/** id → { owner, state } from a node's GET /api/cameras. */
async function camerasOn (node) {
  const body = await getJson(`${node.base}/api/cameras`)
  return new Map(body.cameras.map((c) => [c.cameraId, { owner: c.owner ?? null, state: c.state }]))
}

/** The live node ids a node sees (GET /api/cluster lists gone ones too, alive: false). */
async function liveNodesOn (node) {
  const body = await getJson(`${node.base}/api/cluster`)
  return body.nodes.filter((n) => n.alive).map((n) => n.id).sort()
}

/** A node's lease health counters since it joined (GET /api/cluster `stats`). */
async function statsOn (node) {
  return (await getJson(`${node.base}/api/cluster`)).stats
}

/** id → stats of every node in `nodes`. */
async function statsOf (nodes) {
  return new Map(await Promise.all(nodes.map(async (n) => [n.id, await statsOn(n)])))
}

/**
 * Resolves once every node in `nodes` lists all cameras streaming on the owner `expected`
 * gives, and sees exactly `nodes` live; returns the owner map.
 */
async function converged (nodes, expected, timeoutMs) {
  const ids = nodes.map((n) => n.id).sort()
  let seen = ''
  try {
    return await waitFor('cluster converged', async () => {
      for (const n of nodes) {
        const live = await liveNodesOn(n)
        const cams = await camerasOn(n)
        seen = `${n.id} sees nodes ${live.join(',')}; cameras ${[...cams].map(([k, v]) => `${k}@${v.owner}:${v.state}`).join(' ')}`
        if (live.join() !== ids.join()) return false
        for (const [id, owner] of expected) {
          const c = cams.get(id)
          if (!c || c.owner !== owner || c.state !== 'streaming') return false
        }
      }
      return new Map(expected)
    }, timeoutMs, 200)
  } catch (e) {
    e.message += `\n  last seen: ${seen}`
    throw e
  }
}

/** The RTSP server's session log: [{ t (ms since epoch), event, mount, count }]. */
function sessionLog (file) {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
  return text.split('\n').filter(Boolean).map((l) => {
    const [t, event, mount, count] = l.split(' ')
    return { t: Math.round(Number(t) * 1000), event, mount, count: Number(count) }
  })
}

/** Sessions playing each mount now. */
function openNow (file) {
  const now = new Map()
  for (const e of sessionLog(file)) now.set(e.mount, e.count)
  return now
}

/** Entries where a mount was open more than once, between `from` and `to` (ms). */
function doubleOpens (file, from = 0, to = Infinity) {
  return sessionLog(file).filter((e) => e.t >= from && e.t <= to && e.count > 1)
}

/** Width and height of a baseline or progressive JPEG's SOF segment. */
function jpegSize (buf) {
  let i = 2
  while (i + 9 < buf.length) {
    if (buf[i] !== 0xff) return null
    const marker = buf[i + 1]
    const len = buf.readUInt16BE(i + 2)
    if ((marker >= 0xc0 && marker <= 0xc3) || (marker >= 0xc5 && marker <= 0xc7)) {
      return { height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) }
    }
    i += 2 + len
  }
  return null
}

async function snapshot (node, id) {
  const r = await fetch(`${node.base}/api/cameras/${id}/frame`, { signal: AbortSignal.timeout(5000) })
  const body = Buffer.from(await r.arrayBuffer())
  return { status: r.status, body, capturedAt: Number(r.headers.get('x-frame-captured-at')) }
}

/** `count` frames of camera `id` through the WebSocket of `node`; rejects on an error message. */
function wsFrames (node, id, count, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(node.ws)
    const frames = []
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`${frames.length} of ${count} frames of ${id} on ${node.id} within ${timeoutMs} ms`)) }, timeoutMs)
    ws.on('open', () => ws.send(JSON.stringify({ action: 'subscribe', cameraId: id, fps: 10 })))
    ws.on('message', (data, binary) => {
      if (binary) return
      const m = JSON.parse(data)
      if (m.type === 'error') {
        clearTimeout(timer)
        ws.terminate()
        return reject(new Error(`${node.id}: ${m.code}: ${m.error}`))
      }
      if (m.type !== 'frame') return
      frames.push({ cameraId: m.cameraId, jpeg: Buffer.from(m.data, 'base64'), timestamp: m.timestamp })
      if (frames.length === count) {
        clearTimeout(timer)
        ws.close()
        resolve(frames)
      }
    })
    ws.on('error', (e) => { clearTimeout(timer); reject(e) })
  })
}

/** Every message on every subject, for the secrets check: [subject, payload]. */
async function wiretap (natsPort) {
  const nc = await nats.connect({ servers: `127.0.0.1:${natsPort}`, user: NATS_USER, pass: NATS_PASSWORD, maxReconnectAttempts: -1, reconnectTimeWait: 20 })
  const seen = { subjects: new Set(), leaks: [], messages: 0, events: [] }
  const sub = nc.subscribe('>')
  ;(async () => {
    for await (const m of sub) {
      seen.messages++
      seen.subjects.add(m.subject)
      // The cluster's events (owner changes, nodes joining), kept for the log on failure.
      if (/^camkit\.events\.(owner|node)\./.test(m.subject)) seen.events.push(`${new Date().toISOString()} ${Buffer.from(m.data).toString()}`)
      if (leaks(m.subject) || leaks(m.data) || (m.headers && leaks(m.headers.toString()))) seen.leaks.push(m.subject)
    }
  })().catch(() => {})
  return { nc, seen }
}

const SECRETS = [CAM_PASSWORD, NATS_PASSWORD]
/** Whether `data` holds a secret, as it is or URL-encoded. */
function leaks (data) {
  const buf = Buffer.isBuffer(data) || data instanceof Uint8Array ? Buffer.from(data) : Buffer.from(String(data))
  return SECRETS.some((s) => [s, encodeURIComponent(s)].some((form) => buf.includes(form)))
}

/**
 * The cluster's buckets as NATS holds them, read raw (stream messages, no KV client):
 * 'nodes' | 'cameras' | 'leases' → key → parsed JSON value.
 */
async function rawBuckets (nc) {
  const jsm = await nc.jetstreamManager()
  const out = new Map()
  for await (const si of jsm.streams.list()) {
    const m = /^KV_camkit_(\w+)$/.exec(si.config.name)
    if (!m) continue
    const entries = new Map()
    for (let seq = si.state.first_seq; si.state.messages > 0 && seq <= si.state.last_seq; seq++) {
      const msg = await jsm.streams.getMessage(si.config.name, { seq }).catch(() => null)
      if (!msg || msg.data.length === 0) continue
      const key = msg.subject.slice(`$KV.camkit_${m[1]}.`.length)
      try { entries.set(key, JSON.parse(Buffer.from(msg.data).toString())) } catch { entries.set(key, null) }
    }
    out.set(m[1], entries)
  }
  return out
}

/** Files under `dir`, recursively. */
function filesUnder (dir) {
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? filesUnder(p) : [p]
  })
}

// ---- the test ---------------------------------------------------------------------------
describe('cluster: 3 Express nodes, 12 cameras, one nats-server', { timeout: 240000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'camkit-cluster-'))
  const sessions = path.join(tmp, 'sessions.log')
  const jsDir = path.join(tmp, 'jetstream')
  const logs = []
  const nodes = {}
  let gst, natsServer, natsPort, monitorPort, tap
  let owners // the converged owner map of the last phase

  const all = () => NODES.map((id) => nodes[id])
  const diag = (msg) => console.log(`# ${msg}`)

  before(async () => {
    gst = await startGstServer(['--cameras', String(CAMERAS), '--user', CAM_USER, '--password', CAM_PASSWORD, '--log-sessions', sessions])
    natsPort = await closedPort()
    monitorPort = await closedPort()
    natsServer = await startNats(jsDir, natsPort, monitorPort, logs)
    tap = await wiretap(natsPort)
    const ports = await Promise.all(NODES.map(() => closedPort()))
    await Promise.all(NODES.map(async (id, i) => { nodes[id] = await startNode(id, ports[i], natsPort, logs) }))
    await waitFor('3 nodes see each other', async () => {
      for (const n of all()) if ((await liveNodesOn(n)).length !== 3) return false
      return true
    }, 15000)
  })

  after(async () => {
    for (const c of [...children]) {
      try { process.kill(c.pid, 'SIGCONT') } catch {}
      c.kill('SIGKILL')
    }
    await Promise.all([...children].map(exited))
    await tap?.nc.close().catch(() => {})
    await gst?.stop()
    if (process.env.CAMKIT_KEEP_TEST_LOGS) {
      for (const l of logs) fs.appendFileSync(path.join(tmp, 'logs.txt'), `==== ${l.name}\n${l.text}\n`)
      fs.writeFileSync(path.join(tmp, 'events.txt'), (tap?.seen.events || []).join('\n'))
      console.log(`# logs kept in ${tmp}`)
    } else {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })

  it('12 cameras connected through node 1 spread over the nodes, 4 ± 2 each, by rendezvous', async () => {
    const n1 = nodes['node-1']
    await Promise.all(Array.from({ length: CAMERAS }, async (_, i) => {
      const r = await fetch(`${n1.base}/api/cameras/connect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ cameraId: camId(i), url: `rtsp://127.0.0.1:${gst.port}/cam/${i}`, username: CAM_USER, password: CAM_PASSWORD, persistent: true })
      })
      assert.equal(r.status, 200, `connect ${camId(i)}: ${await r.text()}`)
    }))
    owners = await converged(all(), expectedOwners(NODES), 20000)
    const perNode = NODES.map((id) => [...owners.values()].filter((o) => o === id).length)
    diag(`cameras per node: ${NODES.map((id, i) => `${id} ${perNode[i]}`).join(', ')}`)
    for (const n of perNode) assert.ok(n >= 2 && n <= 6, `4 ± 2 per node: ${perNode}`)
    const open = openNow(sessions)
    for (let i = 0; i < CAMERAS; i++) assert.equal(open.get(`/cam/${i}`), 1, `one session of /cam/${i}`)
    assert.deepEqual(doubleOpens(sessions), [])
  })

  it('a snapshot of every camera through every node is a 320x180 JPEG that ffmpeg decodes', async () => {
    const jpegs = []
    for (const n of all()) {
      await Promise.all(Array.from({ length: CAMERAS }, async (_, i) => {
        const s = await snapshot(n, camId(i))
        assert.equal(s.status, 200, `${camId(i)} through ${n.id}: ${s.body.toString().slice(0, 300)}`)
        assert.ok(isJpeg(s.body), `${camId(i)} through ${n.id}: a JPEG`)
        assert.deepEqual(jpegSize(s.body), { width: 320, height: 180 }, `${camId(i)} through ${n.id}`)
        jpegs.push(s.body)
      }))
    }
    // All 36 through one independent decoder, strict (-err_detect explode: a damaged or cut
    // picture fails it; without, ffmpeg conceals the damage and decodes on).
    const ff = spawnSync('ffmpeg', ['-v', 'error', '-err_detect', 'explode+bitstream+buffer', '-xerror', '-f', 'mjpeg', '-i', 'pipe:0', '-f', 'framemd5', 'pipe:1'], { input: Buffer.concat(jpegs) })
    assert.equal(ff.status, 0, `ffmpeg: ${ff.stderr}`)
    const decoded = ff.stdout.toString().split('\n').filter((l) => /^0,/.test(l)).length
    assert.equal(decoded, jpegs.length, `ffmpeg decoded ${decoded} of ${jpegs.length} pictures`)
  })

  it('a WebSocket client on node 3 receives frames of a camera owned by node 1', async () => {
    const id = [...owners].find(([, o]) => o === 'node-1')[0]
    const frames = await wsFrames(nodes['node-3'], id, 5)
    for (const f of frames) {
      assert.equal(f.cameraId, id)
      assert.ok(isJpeg(f.jpeg))
      assert.deepEqual(jpegSize(f.jpeg), { width: 320, height: 180 })
    }
    assert.ok(new Set(frames.map((f) => f.timestamp)).size === frames.length, 'distinct frames')
  })

  it('kill -9 of node 2: all its cameras stream again on the others within 15 s', async () => {
    const victim = nodes['node-2']
    const moved = [...owners].filter(([, o]) => o === 'node-2').map(([id]) => id)
    assert.ok(moved.length > 0)
    const killedAt = Date.now()
    victim.child.kill('SIGKILL')
    await exited(victim.child)
    const rest = [nodes['node-1'], nodes['node-3']]
    const expected = expectedOwners(['node-1', 'node-3'])
    // When each moved camera was first seen streaming on its new owner (through node 1).
    const back = new Map()
    await waitFor('the dead node\'s cameras stream again', async () => {
      const cams = await camerasOn(nodes['node-1'])
      for (const id of moved) {
        const c = cams.get(id)
        if (!back.has(id) && c && c.owner === expected.get(id) && c.state === 'streaming') back.set(id, Date.now() - killedAt)
      }
      return back.size === moved.length
    }, 15000, 100)
    const worst = Math.max(...back.values())
    diag(`kill -9: ${moved.length} cameras failed over in ${[...back.values()].sort((a, b) => a - b).join(', ')} ms (worst ${worst} ms)`)
    const opens = sessionLog(sessions).filter((e) => e.t >= killedAt && e.event === 'open')
    diag(`kill -9: RTSP sessions opened after the kill: ${opens.length} (for ${moved.length} moved cameras), first frames of the new owners at ${opens.map((e) => e.t - killedAt).join(', ')} ms`)
    assert.ok(worst <= 15000)
    owners = await converged(rest, expected, 10000)
    assert.deepEqual(doubleOpens(sessions, killedAt), [], 'no camera open twice')
    assert.equal(opens.length, moved.length, 'one new session per moved camera, no churn')
  })

  it('node 2 returns: only the cameras whose rendezvous owner it is move back, never open twice', async () => {
    const startedAt = Date.now()
    const before = owners
    nodes['node-2'] = await startNode('node-2', nodes['node-2'].port, natsPort, logs)
    const expected = expectedOwners(NODES)
    owners = await converged(all(), expected, 20000)
    const moved = [...owners].filter(([id, o]) => before.get(id) !== o).map(([id]) => id)
    const shouldMove = [...expected].filter(([id, o]) => o !== before.get(id)).map(([id]) => id)
    diag(`rejoin: ${moved.length} cameras moved back in ${Date.now() - startedAt} ms (rendezvous says ${shouldMove.length})`)
    assert.deepEqual(moved.sort(), shouldMove.sort())
    const opens = sessionLog(sessions).filter((e) => e.t >= startedAt && e.event === 'open')
    assert.equal(opens.length, moved.length, `one new session per moved camera: ${opens.map((e) => e.mount)}`)
    assert.deepEqual(doubleOpens(sessions, startedAt), [], 'no camera open twice')
    assert.deepEqual(doubleOpens(sessions), [], 'no camera open twice, whole run so far')
  })

  it('SIGSTOP of node 3 for 20 s: its cameras move; on SIGCONT it stops its stale sessions within 1 s and serves nothing stale', async () => {
    const paused = nodes['node-3']
    const mine = [...owners].filter(([, o]) => o === 'node-3').map(([id]) => id)
    assert.ok(mine.length > 0)
    const statsBefore = await statsOf(all())
    const stoppedAt = Date.now()
    process.kill(paused.child.pid, 'SIGSTOP')
    let continued = false
    let contAt
    try {
      const rest = [nodes['node-1'], nodes['node-2']]
      const expected = expectedOwners(['node-1', 'node-2'])
      await waitFor('the paused node\'s cameras move', async () => {
        const cams = await camerasOn(nodes['node-1'])
        return mine.every((id) => cams.get(id)?.owner === expected.get(id) && cams.get(id)?.state === 'streaming')
      }, 18000, 200)
      const movedIn = Date.now() - stoppedAt
      await converged(rest, expected, 20000 - (Date.now() - stoppedAt))
      // The paused node cannot close its sessions: the moved cameras have two now.
      const open = openNow(sessions)
      diag(`SIGSTOP: ${mine.length} cameras moved in ${movedIn} ms; sessions of them while node 3 sleeps: ${mine.map((id) => open.get(mountOf(id))).join(', ')}`)
      await sleep(Math.max(0, 20000 - (Date.now() - stoppedAt)))
      // Taken before the signal: the node may close its sessions within the millisecond.
      contAt = Date.now()
      process.kill(paused.child.pid, 'SIGCONT')
      continued = true
    } finally {
      if (!continued) process.kill(paused.child.pid, 'SIGCONT')
    }
    // Whatever node 3 answers for its former cameras from now on is fresh: forwarded to the
    // new owner, or an error; never a picture its stale session held.
    const stale = []
    const answers = { fresh: 0, refused: 0 }
    const probe = (async () => {
      while (Date.now() - contAt < 3000) {
        await Promise.all(mine.map(async (id) => {
          const s = await snapshot(paused, id).catch(() => null)
          if (!s || s.status !== 200) { answers.refused++; return }
          const age = Date.now() - s.capturedAt
          if (age > 2000) stale.push(`${id}: a picture ${age} ms old`)
          else answers.fresh++
        }))
      }
    })()
    await waitFor('stale sessions closed', () => {
      const open = openNow(sessions)
      return mine.every((id) => open.get(mountOf(id)) === 1)
    }, 5000, 20)
    // When each of those mounts was back to one session (the stale one closed).
    const single = mine.map((id) => sessionLog(sessions).find((e) => e.t >= contAt && e.mount === mountOf(id) && e.event === 'close' && e.count === 1) || { t: Infinity })
    const stopIn = Math.max(...single.map((e) => e.t - contAt))
    diag(`SIGCONT: stale sessions closed ${single.map((e) => e.t - contAt).join(', ')} ms after SIGCONT`)
    await probe
    diag(`SIGCONT: node 3 answered ${answers.fresh} fresh snapshots of its former cameras, refused ${answers.refused}, stale ${stale.length}`)
    assert.deepEqual(stale, [])
    assert.ok(stopIn <= 1000, `stale sessions closed within 1 s of SIGCONT (${stopIn} ms)`)
    // Lease health says so too: node 3 stopped each of its cameras because it could not
    // renew its lease (fenced, or found lost by a renewal that was under way at SIGSTOP),
    // and the two others claimed them.
    const statsAfter = await statsOf(all())
    const delta = (node, k) => statsAfter.get(node)[k] - statsBefore.get(node)[k]
    diag(`SIGCONT: node 3 counted ${delta('node-3', 'fencedStops')} fenced stops, ${delta('node-3', 'leasesLost')} leases lost, ${delta('node-3', 'leaseRenewalFailures')} renewal failures`)
    assert.equal(delta('node-3', 'fencedStops') + delta('node-3', 'leasesLost'), mine.length, JSON.stringify(statsAfter.get('node-3')))
    assert.ok(delta('node-1', 'leaseClaims') + delta('node-2', 'leaseClaims') >= mine.length, JSON.stringify([...statsAfter]))
    for (const id of ['node-1', 'node-2']) assert.equal(delta(id, 'fencedStops'), 0, `${id} never fenced`)
    // Node 3 is back: its cameras return to it, never open twice.
    const backAt = Date.now()
    owners = await converged(all(), expectedOwners(NODES), 20000)
    assert.deepEqual(doubleOpens(sessions, backAt), [], 'no camera open twice when they return')
  })

  it('nats-server restarts: sessions stay up through the outage; nodes reconnect and the buckets hold the cluster again', async () => {
    const statsBefore = await statsOf(all())
    const downAt = Date.now()
    natsServer.kill('SIGTERM')
    await exited(natsServer)
    natsServer = await startNats(jsDir, natsPort, monitorPort, logs)
    const upAt = Date.now()
    diag(`nats-server restart: down for ${upAt - downAt} ms`)
    // Converged in NATS itself, not only in the nodes' memory: the in-memory buckets
    // (heartbeats, leases) were lost with the server; every node's heartbeat and every
    // camera's lease, held by its rendezvous owner, must be written again.
    const expected = expectedOwners(NODES)
    const nc = await nats.connect({ servers: `127.0.0.1:${natsPort}`, user: NATS_USER, pass: NATS_PASSWORD })
    let seen = ''
    try {
      await waitFor('heartbeats and leases back in NATS', async () => {
        const b = await rawBuckets(nc)
        const heartbeats = [...(b.get('nodes') || new Map()).keys()].sort()
        const leases = b.get('leases') || new Map()
        seen = `buckets ${[...b.keys()]}; heartbeats of ${heartbeats}; leases ${[...leases].map(([k, v]) => `${k}@${v.node}`).join(' ')}`
        if (heartbeats.join() !== NODES.join()) return false
        return [...expected].every(([id, owner]) => leases.get(`cam.${Buffer.from(id).toString('base64url')}`)?.node === owner)
      }, 15000, 250)
    } catch (e) {
      e.message += `\n  last seen: ${seen}`
      throw e
    } finally {
      await nc.close()
    }
    const inNats = Date.now() - upAt
    // Past a whole lease TTL after the restart, so a node that could not renew has fenced
    // its cameras by now if it was going to.
    await sleep(Math.max(0, 8000 - (Date.now() - upAt)))
    owners = await converged(all(), expected, 10000)
    const log = sessionLog(sessions).filter((e) => e.t >= downAt)
    diag(`after the nats-server restart: state back in NATS in ${inNats} ms; sessions since: opened ${log.filter((e) => e.event === 'open').length}, closed ${log.filter((e) => e.event === 'close').length}`)
    assert.deepEqual(log, [], 'no session closed or opened: cameras streamed through the outage')
    // Every node reconnected to NATS, and none fenced a camera through the outage.
    const statsAfter = await statsOf(all())
    for (const [id, st] of statsAfter) {
      const was = statsBefore.get(id)
      diag(`after the nats-server restart: ${id}: ${st.natsReconnects - was.natsReconnects} NATS reconnects, ${st.leaseRenewalFailures - was.leaseRenewalFailures} renewal failures`)
      assert.ok(st.natsReconnects > was.natsReconnects, `${id} reconnected: ${JSON.stringify(st)}`)
      assert.equal(st.fencedStops, was.fencedStops, `${id} fenced nothing: ${JSON.stringify(st)}`)
      assert.ok(st.leaseRenewals > was.leaseRenewals, `${id} renews again: ${JSON.stringify(st)}`)
    }
    // And the cluster works again: a snapshot through a non-owner.
    const [id, owner] = [...owners][0]
    const other = all().find((n) => n.id !== owner)
    const s = await snapshot(other, id)
    assert.equal(s.status, 200, s.body.toString().slice(0, 300))
    assert.ok(isJpeg(s.body))
  })

  it('no password in any KV entry, subject, payload, store file or log line', async () => {
    const nc = await nats.connect({ servers: `127.0.0.1:${natsPort}`, user: NATS_USER, pass: NATS_PASSWORD })
    try {
      const jsm = await nc.jetstreamManager()
      const streams = []
      for await (const si of jsm.streams.list()) streams.push(si)
      const kv = streams.filter((s) => s.config.name.startsWith('KV_'))
      assert.ok(kv.some((s) => s.config.name.endsWith('_cameras')), `buckets: ${streams.map((s) => s.config.name)}`)
      let entries = 0
      for (const s of kv) {
        for (let seq = s.state.first_seq; seq <= s.state.last_seq && s.state.messages > 0; seq++) {
          const m = await jsm.streams.getMessage(s.config.name, { seq }).catch(() => null)
          if (!m) continue // removed (max age, one per subject)
          entries++
          assert.ok(!leaks(m.subject) && !leaks(m.data) && !(m.header && leaks(m.header.toString())), `${s.config.name} #${seq} (${m.subject}) holds a password`)
        }
      }
      const cameras = kv.find((s) => s.config.name.endsWith('_cameras'))
      assert.ok(cameras.state.messages >= CAMERAS, `the cameras bucket holds the ${CAMERAS} cameras`)
      diag(`raw KV read: ${entries} entries in ${kv.map((s) => s.config.name).join(', ')}; wiretap: ${tap.seen.messages} messages on ${tap.seen.subjects.size} subjects`)
    } finally {
      await nc.close()
    }
    assert.ok(tap.seen.messages > 0)
    assert.deepEqual(tap.seen.leaks, [], 'no password on any subject or in any payload')
    for (const f of filesUnder(jsDir)) assert.ok(!leaks(fs.readFileSync(f)), `${f} holds a password`)
    for (const l of logs) {
      assert.ok(l.text.length > 0, `${l.name} logged something`)
      const bad = l.text.split('\n').filter((line) => leaks(line))
      assert.deepEqual(bad, [], `${l.name}: no password in its log`)
    }
  })
})

// A machine without nats-server fails here with the command that installs it (scripts/test.sh
// installs it through `need`); the test never skips.
if (spawnSync(NATS_SERVER, ['--version']).status !== 0) {
  throw new Error('nats-server is missing: apt-get install -y nats-server')
}
