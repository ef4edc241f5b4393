'use strict'
// Cluster mode of the server, configured by the environment (CAMKIT_NATS_URL and friends),
// against a real nats-server with JetStream on loopback:
//   - clusterFromEnv refuses bad values naming the variable;
//   - the server refuses to start, with one line naming the variable, when NATS is down
//     (CAMKIT_NATS_URL), NATS refuses the password (CAMKIT_NATS_USER / _PASSWORD), or a
//     node's CAMKIT_CLUSTER_KEY is not the cluster's;
//   - two nodes (in-process): a camera with a password connected through node 1 is listed
//     with its owner by node 2, a snapshot on the node that does not run it is the camera's
//     JPEG, and so are its WebSocket frames and MJPEG parts there; its video.mp4 there is
//     fragmented MP4; a Moondream question there (loopback Moondream) is about its
//     picture; GET /api/cluster and /metrics show both nodes, and the password is in no
//     response and no log line;
//   - lease health: the owner's lease renewals count up over a couple of seconds, with no
//     renewal failure, lost lease, fenced stop or NATS reconnect, the same figures in
//     GET /api/cluster (stats) and /metrics (this node's label only); a Moondream
//     question on the other node counts as forwarded (kind moondream), one on the owner
//     does not.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const WebSocket = require('ws')

const { startGstServer, closedPort, isJpeg, sleep } = require('./helpers')
const { MoondreamMock } = require('../../../bindings-node/test/moondream-mock')
const camkit = require('camkit/express')
const { start } = require('../server')

const SERVER = path.resolve(__dirname, '..', 'server.js')
const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((p) => fs.existsSync(p)) || 'nats-server'
const NATS_USER = 'camkit-node'
const NATS_PASSWORD = 'nats-Pa55word-never-shown'
const CLUSTER_KEY = 'cluster-key-0123456789-abcdef'
// The GStreamer server's DIGEST credentials (tests/gst/rtsp_server.py defaults).
const CAM_USER = 'camkit'
const CAM_PASSWORD = 's3cr@t:pass/word'

/** nats-server with JetStream on a free loopback port, in a temporary store directory. */
async function startNats (args = []) {
  const port = await closedPort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'camkit-nats-'))
  const child = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start within 10 s:\n${out}`)), 10000)
    child.on('error', reject)
    child.on('exit', (code) => reject(new Error(`nats-server exited (code ${code}):\n${out}`)))
    let ready = false
    const seen = (d) => {
      out += d
      if (!ready && out.includes('Server is ready')) {
        ready = true
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve()
      }
    }
    child.stdout.on('data', seen)
    child.stderr.on('data', seen)
  })
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => {
      child.once('exit', () => {
        fs.rmSync(dir, { recursive: true, force: true })
        resolve()
      })
      child.kill('SIGTERM')
    })
  }
}

/** The first WebSocket message on /ws of `port` after subscribing to `cameraId`, parsed. */
function firstWsMessage (port, cameraId) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`)
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no WebSocket message within 10 s')) }, 10000)
    ws.on('open', () => ws.send(JSON.stringify({ action: 'subscribe', cameraId, fps: 5 })))
    ws.on('message', (data) => {
      clearTimeout(timer)
      ws.close()
      resolve(JSON.parse(data.toString()))
    })
    ws.on('error', reject)
  })
}

/** Runs server.js with `env` until it exits (within 20 s): {code, out}. */
function runServer (env) {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', CAMKIT_DEMO: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { err += d })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`server.js still running after 20 s:\n${out}${err}`)) }, 20000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out, err })
    })
  })
}

function clusterEnv (nats, extra = {}) {
  return { CAMKIT_NATS_URL: nats.url, CAMKIT_NODE_ID: 'n1', CAMKIT_CLUSTER_KEY: CLUSTER_KEY, CAMKIT_NATS_USER: NATS_USER, CAMKIT_NATS_PASSWORD: NATS_PASSWORD, ...extra }
}

describe('clusterFromEnv', () => {
  const good = { CAMKIT_NATS_URL: 'nats://127.0.0.1:4222', CAMKIT_NODE_ID: 'n1', CAMKIT_CLUSTER_KEY: CLUSTER_KEY }
  const refuses = (env, name) => assert.throws(() => camkit.clusterFromEnv(env), (e) => {
    assert.equal(e.code, 'INVALID_INPUT')
    assert.equal(e.field, name)
    assert.ok(e.message.startsWith(`${name}: `), e.message)
    for (const secret of [CLUSTER_KEY, NATS_PASSWORD, 'tok-en-secret']) assert.ok(!e.message.includes(secret), e.message)
    return true
  })

  it('is null without CAMKIT_NATS_URL, the options with it', () => {
    assert.equal(camkit.clusterFromEnv({}), null)
    assert.equal(camkit.clusterFromEnv({ CAMKIT_NATS_URL: '  ', CAMKIT_NODE_ID: 'n1' }), null)
    assert.deepEqual(camkit.clusterFromEnv({ ...good, CAMKIT_NATS_USER: 'u', CAMKIT_NATS_PASSWORD: 'p', CAMKIT_CLUSTER_PREFIX: 'site2', CAMKIT_LEASE_TTL_MS: '4000', CAMKIT_NATS_REPLICAS: '3' }),
      { natsUrl: good.CAMKIT_NATS_URL, nodeId: 'n1', clusterKey: CLUSTER_KEY, user: 'u', password: 'p', prefix: 'site2', leaseTtlMs: 4000, replicas: 3 })
    assert.deepEqual(camkit.clusterFromEnv({ ...good, CAMKIT_NATS_TOKEN: 't' }).token, 't')
    assert.deepEqual(camkit.clusterFromEnv({ ...good, CAMKIT_NATS_NKEY_FILE: '/etc/camkit/nkey' }).nkeyFile, '/etc/camkit/nkey')
  })

  it('refuses bad values naming the variable', () => {
    refuses({ ...good, CAMKIT_NATS_URL: 'http://127.0.0.1:4222' }, 'CAMKIT_NATS_URL')
    refuses({ ...good, CAMKIT_NATS_URL: 'nats://127.0.0.1:4222/path' }, 'CAMKIT_NATS_URL')
    refuses({ ...good, CAMKIT_NODE_ID: undefined }, 'CAMKIT_NODE_ID')
    refuses({ ...good, CAMKIT_CLUSTER_KEY: '' }, 'CAMKIT_CLUSTER_KEY')
    refuses({ ...good, CAMKIT_NATS_PASSWORD: NATS_PASSWORD }, 'CAMKIT_NATS_USER')
    refuses({ ...good, CAMKIT_NATS_USER: 'u' }, 'CAMKIT_NATS_PASSWORD')
    refuses({ ...good, CAMKIT_NATS_USER: 'u', CAMKIT_NATS_PASSWORD: NATS_PASSWORD, CAMKIT_NATS_TOKEN: 'tok-en-secret' }, 'CAMKIT_NATS_TOKEN')
    refuses({ ...good, CAMKIT_LEASE_TTL_MS: '6s' }, 'CAMKIT_LEASE_TTL_MS')
    refuses({ ...good, CAMKIT_LEASE_TTL_MS: '1000' }, 'CAMKIT_LEASE_TTL_MS')
    for (const bad of ['0', '6', 'three', '3.0']) refuses({ ...good, CAMKIT_NATS_REPLICAS: bad }, 'CAMKIT_NATS_REPLICAS')
  })

  it("re-words the binding's errors by their field, to the variable", async () => {
    const { CameraManager } = require('camkit')
    const manager = new CameraManager()
    try {
      // Refused by the binding (not by clusterFromEnv): err.field nodeId, clusterKey.
      await assert.rejects(camkit.joinClusterFromEnv(manager, { ...good, CAMKIT_NODE_ID: 'bad id' }), (e) => {
        assert.equal(e.field, 'CAMKIT_NODE_ID')
        assert.equal(e.code, 'INVALID_INPUT')
        assert.match(e.message, /^CAMKIT_NODE_ID/)
        return true
      })
      await assert.rejects(camkit.joinClusterFromEnv(manager, { ...good, CAMKIT_CLUSTER_KEY: 'short-key' }), (e) => {
        assert.equal(e.field, 'CAMKIT_CLUSTER_KEY')
        assert.ok(!e.message.includes('short-key'), e.message)
        return true
      })
      await assert.rejects(camkit.joinClusterFromEnv(manager, { ...good, CAMKIT_CLUSTER_PREFIX: 'a.b' }), (e) => e.field === 'CAMKIT_CLUSTER_PREFIX')
      // The binding's own check of `replicas` (clusterFromEnv lets only 1-5 through).
      await assert.rejects(require('camkit').Cluster.join(manager, { natsUrl: good.CAMKIT_NATS_URL, nodeId: 'n1', clusterKey: CLUSTER_KEY, replicas: 6 }), (e) => {
        assert.equal(e.code, 'INVALID_INPUT')
        assert.equal(e.field, 'replicas')
        return true
      })
    } finally {
      manager.close()
    }
  })

  it('redactNatsUrl drops credentials', () => {
    assert.equal(camkit.redactNatsUrl('nats://u:secret@127.0.0.1:4222, tls://tok@127.0.0.2:4222'), 'nats://127.0.0.1:4222,tls://127.0.0.2:4222')
  })
})

describe('the server refuses to start on a bad cluster setting', () => {
  let nats
  before(async () => {
    nats = await startNats(['--user', NATS_USER, '--pass', NATS_PASSWORD])
  })
  after(async () => {
    await nats?.stop()
  })

  const oneLine = (r, name, secrets) => {
    assert.equal(r.code, 1, r.out + r.err)
    const lines = r.err.trim().split('\n')
    assert.equal(lines.length, 1, r.err)
    assert.match(lines[0], /^camkit express server: cannot start: /)
    assert.ok(lines[0].includes(name), lines[0])
    for (const s of secrets) assert.ok(!(r.out + r.err).includes(s), 'a secret was printed')
    assert.ok(!/listening on/.test(r.out), 'it must not listen')
  }

  it('NATS down: names CAMKIT_NATS_URL', async () => {
    const down = `nats://127.0.0.1:${await closedPort()}`
    oneLine(await runServer(clusterEnv({ url: down })), 'CAMKIT_NATS_URL', [NATS_PASSWORD, CLUSTER_KEY])
  })

  it('wrong NATS password: names CAMKIT_NATS_USER / CAMKIT_NATS_PASSWORD', async () => {
    const wrong = 'wrong-Pa55word-never-shown'
    const r = await runServer(clusterEnv(nats, { CAMKIT_NATS_PASSWORD: wrong }))
    oneLine(r, 'CAMKIT_NATS_USER / CAMKIT_NATS_PASSWORD', [wrong, NATS_PASSWORD, CLUSTER_KEY])
  })

  it('tls:// in CAMKIT_NATS_URL: TLS is used (refused by this plain server), naming the variable', async () => {
    const { CameraManager } = require('camkit')
    const manager = new CameraManager()
    try {
      const env = clusterEnv({ url: nats.url.replace(/^nats:/, 'tls:') })
      await assert.rejects(camkit.joinClusterFromEnv(manager, env), (e) => {
        assert.equal(e.field, 'CAMKIT_NATS_URL')
        assert.equal(e.code, 'UNREACHABLE')
        assert.ok(e.message.includes('tls://127.0.0.1:'), e.message)
        assert.ok(!e.message.includes(NATS_PASSWORD), e.message)
        return true
      })
    } finally {
      manager.close()
    }
  })

  it('a bad value: names the variable before connecting anywhere', async () => {
    oneLine(await runServer(clusterEnv(nats, { CAMKIT_NODE_ID: '' })), 'CAMKIT_NODE_ID', [NATS_PASSWORD, CLUSTER_KEY])
  })
})

describe('NATS over TLS with a private CA (CAMKIT_NATS_CA_FILE)', () => {
  // A CA and a certificate for 127.0.0.1 made with openssl now; nats-server requires TLS.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'camkit-nats-tls-'))
  const file = (name) => path.join(dir, name)
  let nats

  before(async () => {
    const openssl = (args) => {
      const r = require('node:child_process').spawnSync('openssl', args, { encoding: 'utf8' })
      if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`)
    }
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=camkit test CA', '-keyout', file('ca.key'), '-out', file('ca.pem')])
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr')])
    fs.writeFileSync(file('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n')
    openssl(['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', file('ext.cnf'), '-out', file('server.pem')])
    nats = await startNats(['--tls', '--tlscert', file('server.pem'), '--tlskey', file('server.key')])
  })

  after(async () => {
    await nats?.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const env = (extra) => ({ CAMKIT_NATS_URL: nats.url.replace(/^nats:/, 'tls:'), CAMKIT_NODE_ID: 'tls-node', CAMKIT_CLUSTER_KEY: CLUSTER_KEY, ...extra })

  it('joins with the CA file; without it, the error names CAMKIT_NATS_URL and says CAMKIT_NATS_CA_FILE', async () => {
    const { CameraManager } = require('camkit')
    const manager = new CameraManager()
    try {
      const cluster = await camkit.joinClusterFromEnv(manager, env({ CAMKIT_NATS_CA_FILE: file('ca.pem') }))
      assert.equal(cluster.view().natsConnected, true)
      assert.equal(cluster.nodeId, 'tls-node')
      await cluster.leave()
      await assert.rejects(camkit.joinClusterFromEnv(manager, env({})), (e) => {
        assert.equal(e.code, 'UNREACHABLE')
        assert.equal(e.field, 'CAMKIT_NATS_URL')
        assert.ok(e.message.includes('CAMKIT_NATS_CA_FILE'), e.message)
        return true
      })
      await assert.rejects(camkit.joinClusterFromEnv(manager, env({ CAMKIT_NATS_CA_FILE: file('missing.pem') })), (e) => {
        assert.equal(e.code, 'INVALID_INPUT')
        assert.equal(e.field, 'CAMKIT_NATS_CA_FILE')
        assert.ok(e.message.includes('missing.pem'), e.message)
        return true
      })
    } finally {
      manager.close()
    }
  })
})

describe('two nodes', () => {
  let nats
  let gst
  let mock
  let n1
  let n2
  let owner
  let other
  let otherId
  const lines = []
  const bodies = []
  const nodeLog = (id) => (l) => lines.push(`${id} ${l}`)

  async function get (srv, p) {
    const r = await fetch(`http://127.0.0.1:${srv.port}${p}`)
    const buf = Buffer.from(await r.arrayBuffer())
    bodies.push(buf.toString('latin1'))
    return { status: r.status, headers: r.headers, buf, json: () => JSON.parse(buf.toString()) }
  }

  before(async () => {
    ;[nats, gst, mock] = await Promise.all([startNats(['--user', NATS_USER, '--pass', NATS_PASSWORD]), startGstServer(), MoondreamMock.start()])
    const md = { MOONDREAM_URL: mock.baseUrl, MOONDREAM_TIMEOUT_MS: '5000', MOONDREAM_MAX_RETRIES: '0' }
    n1 = await start({ port: 0, cameras: [], env: clusterEnv(nats, { CAMKIT_NODE_ID: 'n1', ...md }), log: nodeLog('n1') })
    n2 = await start({ port: 0, cameras: [], env: clusterEnv(nats, { CAMKIT_NODE_ID: 'n2', ...md }), log: nodeLog('n2') })
  })
  after(async () => {
    await n2?.close()
    await n1?.close()
    await mock?.close()
    await gst?.stop()
    await nats?.stop()
  })

  it('logs the node id and the NATS server, never a credential', () => {
    assert.ok(lines.some((l) => l.startsWith('n1 ') && l.includes('node "n1"') && l.includes(nats.url)), lines.join('\n'))
  })

  it('starts without a demo camera (only on request in cluster mode)', async () => {
    const h = (await get(n1, '/health')).json()
    assert.deepEqual(h, { status: 'ok', activeCameras: 0, node: 'n1' })
  })

  it('a third node with another CAMKIT_CLUSTER_KEY is refused, naming it', async () => {
    const other = 'another-cluster-key-987654321'
    await assert.rejects(start({ port: 0, cameras: [], env: clusterEnv(nats, { CAMKIT_NODE_ID: 'n3', CAMKIT_CLUSTER_KEY: other }), log: nodeLog('n3') }), (e) => {
      assert.equal(e.field, 'CAMKIT_CLUSTER_KEY')
      assert.equal(e.code, 'UNAUTHORIZED')
      assert.ok(!e.message.includes(other) && !e.message.includes(CLUSTER_KEY), e.message)
      return true
    })
  })

  it('serves a camera connected through node 1 on both nodes', async () => {
    const r = await fetch(`http://127.0.0.1:${n1.port}/api/cameras/connect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cameraId: 'gate', url: `rtsp://127.0.0.1:${gst.port}/auth/h264-360`, username: CAM_USER, password: CAM_PASSWORD })
    })
    const text = await r.text()
    bodies.push(text)
    assert.equal(r.status, 200, text)

    // Node 2 lists it, with the node that runs it.
    const list = (await get(n2, '/api/cameras')).json().cameras
    assert.equal(list.length, 1, JSON.stringify(list))
    assert.equal(list[0].cameraId, 'gate')
    assert.equal(list[0].state, 'streaming')
    assert.ok(['n1', 'n2'].includes(list[0].owner), JSON.stringify(list[0]))
    owner = list[0].owner === 'n1' ? n1 : n2
    other = owner === n1 ? n2 : n1
    otherId = owner === n1 ? 'n2' : 'n1'
    assert.equal(owner.manager.list().length, 1, 'the owner runs it')
    assert.equal(other.manager.list().length, 0, 'the other node does not')

    // The other node knows the owner from its heartbeats (sent every second or so).
    for (let i = 0; i < 50; i++) {
      const c = (await get(other, '/api/cluster')).json()
      if (c.nodes.find((n) => n.id === list[0].owner)?.cameras.includes('gate')) break
      await sleep(100)
    }
    // Its status and a snapshot on the node that does not run it come from the owner.
    const s = (await get(other, '/api/cameras/gate/status')).json()
    assert.equal(s.state, 'streaming')
    assert.equal(s.owner, list[0].owner)
    assert.deepEqual([s.width, s.height], [640, 360])
    const f = await get(other, '/api/cameras/gate/frame')
    assert.equal(f.status, 200)
    assert.ok(isJpeg(f.buf), 'a JPEG')
    assert.deepEqual([f.headers.get('x-frame-width'), f.headers.get('x-frame-height')], ['640', '360'])
    // SOF0/SOF2 of the JPEG itself says 640x360 too.
    const sof = f.buf.findIndex((b, i) => b === 0xff && (f.buf[i + 1] === 0xc0 || f.buf[i + 1] === 0xc2))
    assert.ok(sof > 0)
    assert.deepEqual([f.buf.readUInt16BE(sof + 7), f.buf.readUInt16BE(sof + 5)], [640, 360])
    // Options go to the owner with the request.
    const scaled = await get(other, '/api/cameras/gate/frame?maxWidth=320')
    assert.equal(scaled.status, 200)
    assert.equal(scaled.headers.get('x-frame-width'), '320')

    // Frames over the WebSocket of the owner.
    const m = await firstWsMessage(owner.port, 'gate')
    assert.equal(m.type, 'frame', JSON.stringify(m))
    assert.ok(isJpeg(Buffer.from(m.data, 'base64')))

    // GET /api/cluster on either node: both nodes alive, the camera with its owner.
    for (const srv of [n1, n2]) {
      const c = (await get(srv, '/api/cluster')).json()
      assert.equal(c.node, srv === n1 ? 'n1' : 'n2')
      assert.equal(c.natsConnected, true)
      assert.deepEqual(c.nodes.map((n) => [n.id, n.alive, n.thisNode]), [['n1', true, srv === n1], ['n2', true, srv === n2]])
      for (const n of c.nodes) assert.ok(n.lastHeartbeatAgeMs >= 0 && n.lastHeartbeatAgeMs < 5000, JSON.stringify(n))
      assert.deepEqual(c.nodes.find((n) => n.id === list[0].owner).cameras, ['gate'])
      assert.deepEqual(c.cameras, [{ id: 'gate', owner: list[0].owner, state: 'streaming' }])
    }

    // /metrics: per-camera figures on the owner only; the cluster's on both.
    const mOwner = (await get(owner, '/metrics')).buf.toString()
    const mOther = (await get(other, '/metrics')).buf.toString()
    assert.match(mOwner, /^camkit_cameras 1$/m)
    assert.match(mOther, /^camkit_cameras 0$/m)
    for (const m of [mOwner, mOther]) {
      assert.match(m, /^camkit_cluster_nodes 2$/m)
      assert.match(m, new RegExp(`^camkit_cluster_cameras_owned\\{node="${list[0].owner}"\\} 1$`, 'm'))
      assert.match(m, new RegExp(`^camkit_cluster_cameras_owned\\{node="${otherId}"\\} 0$`, 'm'))
    }
    const forwarded = Number(new RegExp(`^camkit_cluster_forwarded_requests_total\\{node="${otherId}",kind="snapshot"\\} (\\d+)$`, 'm').exec(mOther)[1])
    assert.ok(forwarded >= 1, 'the snapshot on the other node was forwarded')
  })

  it('shows lease health: renewals counting up on the owner, no failure, in /api/cluster and /metrics', async () => {
    const ownerId = owner === n1 ? 'n1' : 'n2'
    const FIGURES = ['leaseClaims', 'leaseRenewals', 'leaseRenewalFailures', 'leasesLost', 'leasesReleased', 'fencedStops', 'natsReconnects']
    const COUNTERS = {
      leaseClaims: 'camkit_cluster_lease_claims_total',
      leaseRenewals: 'camkit_cluster_lease_renewals_total',
      leaseRenewalFailures: 'camkit_cluster_lease_renewal_failures_total',
      leasesLost: 'camkit_cluster_leases_lost_total',
      leasesReleased: 'camkit_cluster_leases_released_total',
      fencedStops: 'camkit_cluster_fenced_stops_total',
      natsReconnects: 'camkit_cluster_nats_reconnects_total'
    }
    const stats = async (srv) => {
      const st = (await get(srv, '/api/cluster')).json().stats
      assert.deepEqual(Object.keys(st).sort(), [...FIGURES].sort())
      for (const k of FIGURES) assert.ok(Number.isInteger(st[k]) && st[k] >= 0, `${k}: ${JSON.stringify(st)}`)
      return st
    }
    /** This node's counter `name` in its /metrics (one sample, labelled with the node). */
    const counter = (text, name, node) => {
      assert.match(text, new RegExp(`^# TYPE ${name} counter$`, 'm'))
      const m = new RegExp(`^${name}\\{node="${node}"\\} (\\d+)$`, 'm').exec(text)
      assert.ok(m, `${name}{node="${node}"} in /metrics`)
      return Number(m[1])
    }
    const before = await stats(owner)
    assert.ok(before.leaseClaims >= 1, JSON.stringify(before))
    await sleep(2500)
    const after = await stats(owner)
    // One renewal per owned camera every heartbeat (about a second).
    assert.ok(after.leaseRenewals >= before.leaseRenewals + 1, `renewals ${before.leaseRenewals} -> ${after.leaseRenewals}`)
    for (const [srv, id] of [[owner, ownerId], [other, otherId]]) {
      const st = await stats(srv)
      assert.deepEqual([st.leaseRenewalFailures, st.leasesLost, st.fencedStops, st.natsReconnects], [0, 0, 0, 0], JSON.stringify(st))
      const text = (await get(srv, '/metrics')).buf.toString()
      for (const k of FIGURES) {
        // Read after the JSON: a counter can only have grown meanwhile.
        assert.ok(counter(text, COUNTERS[k], id) >= st[k], `${COUNTERS[k]} on ${id}`)
      }
      // Only this node's figures: no sample for the other node.
      assert.ok(!new RegExp(`^camkit_cluster_lease_renewals_total\\{node="${id === 'n1' ? 'n2' : 'n1'}"`, 'm').test(text))
    }
    assert.equal((await stats(other)).leaseRenewals, 0, 'the node that runs no camera renews no lease')
  })

  it('streams it on the node that does not run it: WebSocket, MJPEG, video.mp4, Moondream', async () => {
    // WebSocket frames, fed by the owner over NATS.
    const m = await firstWsMessage(other.port, 'gate')
    assert.equal(m.type, 'frame', JSON.stringify(m))
    assert.equal(m.cameraId, 'gate')
    const jpeg = Buffer.from(m.data, 'base64')
    assert.ok(isJpeg(jpeg))
    const sof = jpeg.findIndex((b, i) => b === 0xff && (jpeg[i + 1] === 0xc0 || jpeg[i + 1] === 0xc2))
    assert.deepEqual([jpeg.readUInt16BE(sof + 7), jpeg.readUInt16BE(sof + 5)], [640, 360])

    // The first MJPEG part, then the stream is closed.
    const ac = new AbortController()
    const r = await fetch(`http://127.0.0.1:${other.port}/api/cameras/gate/mjpeg?fps=5`, { signal: ac.signal })
    assert.equal(r.status, 200)
    assert.match(r.headers.get('content-type'), /^multipart\/x-mixed-replace/)
    let got = Buffer.alloc(0)
    const reader = r.body.getReader()
    while (!/Content-Length: (\d+)\r\n\r\n/.test(got.toString('latin1')) || got.length < 200) {
      const { value, done } = await reader.read()
      assert.ok(!done, 'the MJPEG stream ended')
      got = Buffer.concat([got, value])
    }
    const head = /Content-Length: (\d+)\r\n\r\n/.exec(got.toString('latin1'))
    const start = head.index + head[0].length
    while (got.length < start + Number(head[1])) {
      const { value } = await reader.read()
      got = Buffer.concat([got, value])
    }
    assert.ok(isJpeg(got.subarray(start, start + Number(head[1]))), 'an MJPEG part is a JPEG')
    ac.abort()

    // video.mp4: the init segment (ftyp, moov) then media segments (moof).
    const vc = new AbortController()
    const v = await fetch(`http://127.0.0.1:${other.port}/api/cameras/gate/video.mp4`, { signal: vc.signal })
    assert.equal(v.status, 200)
    assert.equal(v.headers.get('content-type'), 'video/mp4')
    assert.match(v.headers.get('x-video-codecs'), /^avc1\./)
    let mp4 = Buffer.alloc(0)
    const vr = v.body.getReader()
    while (!mp4.includes('moof')) {
      const { value, done } = await vr.read()
      assert.ok(!done, 'video.mp4 ended')
      mp4 = Buffer.concat([mp4, value])
    }
    assert.equal(mp4.toString('latin1', 4, 8), 'ftyp')
    assert.ok(mp4.includes('moov'))
    vc.abort()

    // Moondream about the camera's picture, asked on the node that does not run it.
    mock.push({ answer: 'A test pattern.' })
    const q = await fetch(`http://127.0.0.1:${other.port}/api/moondream/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cameraId: 'gate', question: 'What is this?' })
    })
    const answer = await q.json()
    assert.equal(q.status, 200, JSON.stringify(answer))
    assert.equal(answer.answer, 'A test pattern.')
    assert.deepEqual([answer.width, answer.height], [640, 360])
    assert.deepEqual(mock.violations, [])
    assert.equal(mock.requests.length, 1)
    // Asked on the owner: answered there, not forwarded.
    mock.push({ answer: 'Still a test pattern.' })
    const q2 = await fetch(`http://127.0.0.1:${owner.port}/api/moondream/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cameraId: 'gate', question: 'And now?' })
    })
    assert.equal(q2.status, 200, await q2.text())
    assert.equal(mock.requests.length, 2)

    // Counted as forwarded on that node.
    const metrics = (await get(other, '/metrics')).buf.toString()
    for (const kind of ['subscribe', 'video']) {
      const n = Number(new RegExp(`^camkit_cluster_forwarded_requests_total\\{node="${otherId}",kind="${kind}"\\} (\\d+)$`, 'm').exec(metrics)[1])
      assert.ok(n >= 1, `${kind} forwarded`)
    }
    const moondreamOn = async (srv, id) => Number(new RegExp(`^camkit_cluster_forwarded_requests_total\\{node="${id}",kind="moondream"\\} (\\d+)$`, 'm').exec((await get(srv, '/metrics')).buf.toString())[1])
    assert.equal(await moondreamOn(other, otherId), 1, 'the question on the other node was forwarded')
    assert.equal(await moondreamOn(owner, owner === n1 ? 'n1' : 'n2'), 0, 'the question on the owner was not')
  })

  it('disconnects through either node', async () => {
    const r = await fetch(`http://127.0.0.1:${n2.port}/api/cameras/disconnect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cameraId: 'gate' })
    })
    assert.equal(r.status, 200, await r.text())
    assert.deepEqual((await get(n1, '/api/cameras')).json(), { cameras: [] })
    const gone = await get(n1, '/api/cameras/gate/status')
    assert.equal(gone.status, 404)
  })

  it('no password in any response or log line', () => {
    const all = [...bodies, ...lines].join('\n')
    for (const secret of [CAM_PASSWORD, NATS_PASSWORD, CLUSTER_KEY, encodeURIComponent(CAM_PASSWORD)]) {
      assert.ok(!all.includes(secret), `${secret.slice(0, 4)}… appeared`)
    }
  })
})
