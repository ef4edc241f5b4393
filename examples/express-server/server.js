'use strict'
// The unified backend: Express + WebSocket on one port, cameras in-process through camkit's
// Node binding (no Python, no subprocess).
//
//   PORT=5000 node server.js          (or `npm start` at the repository root)
//
// Environment: PORT (default 5000), HOST (default 127.0.0.1; 0.0.0.0 to serve the network),
// CAMKIT_CAMERAS_FILE / CAMKIT_CAMERAS (cameras to connect at start, see
// bindings-node/express/config.js), CAMKIT_DEMO (1: also start the demo camera; 0: never),
// CAMKIT_DEMO_SIZE (default 1280x720). MOONDREAM_API_KEY or MOONDREAM_URL enable
// /api/moondream (bindings-node/express/routes/moondream.js). CAMKIT_API_TOKEN,
// CAMKIT_CORS_ORIGINS and CAMKIT_ALLOWED_CAMERA_NETS restrict who may use the API and which
// cameras it may reach. Everything but the start-up is camkit/express (bindings-node/express).
// Without configured cameras the built-in demo camera is started and connected as `demo`.
//
// Cluster mode (several servers sharing cameras through NATS JetStream, docs/cluster.md):
// CAMKIT_NATS_URL (nats://host:4222, tls:// for TLS, several separated by commas) turns it
// on; then CAMKIT_NODE_ID (this node's id, unique) and CAMKIT_CLUSTER_KEY (the same secret
// on every node, at least 16 characters) are required, and NATS credentials are given by
// CAMKIT_NATS_USER + CAMKIT_NATS_PASSWORD, CAMKIT_NATS_TOKEN or CAMKIT_NATS_NKEY_FILE;
// CAMKIT_NATS_CA_FILE for NATS servers whose certificates a private CA signed.
// Optional: CAMKIT_CLUSTER_PREFIX (subjects and buckets, default camkit), CAMKIT_LEASE_TTL_MS
// (default 6000: how long a dead node's cameras wait before moving). Every node serves every
// camera; GET /api/cluster shows the nodes. Start-up cameras are connected through the
// cluster unless the cluster already has them (a restarting node does not restart them).
// The demo camera only with CAMKIT_DEMO=1, as `demo-<node id>`: its URL is this machine's
// 127.0.0.1, so it suits nodes on one machine only. A node that cannot join (NATS down,
// wrong credentials or cluster key) does not start; the error names the variable.
const http = require('node:http')
const express = require('express')

const { CameraManager, startDemoCamera } = require('camkit')
const camkit = require('camkit/express')

function defaultLog (msg) {
  console.log(`${new Date().toISOString()} ${msg}`)
}

/**
 * Starts the server. Resolves once it listens and its start-up cameras are connected (or
 * have failed, which is logged). Options: port, host, cameras (camkit configs; default from
 * the environment), demo (true / false / 'auto': when no camera is configured), demoSize,
 * log, security ({apiToken, corsOrigins}: override CAMKIT_API_TOKEN / CAMKIT_CORS_ORIGINS),
 * allowedCameraNets (overrides CAMKIT_ALLOWED_CAMERA_NETS), env (the environment read for
 * everything else, default process.env). With CAMKIT_NATS_URL in it, the server joins the
 * cluster before it listens; a failure rejects with `field` naming the variable.
 */
async function start (opts = {}) {
  const log = opts.log || defaultLog
  const env = opts.env ?? process.env
  const port = opts.port ?? 5000
  const host = opts.host ?? '127.0.0.1'
  const configured = opts.cameras !== undefined ? opts.cameras : camkit.camerasFromEnv(env)
  // Bad security settings stop the start: never run more open than configured.
  const fromEnv = camkit.optionsFromEnv(env)
  const access = { ...fromEnv, ...opts.security, allowedCameraNets: opts.allowedCameraNets ?? fromEnv.allowedCameraNets, log }
  // Bad cluster settings too, before anything is started.
  const clusterOptions = camkit.clusterFromEnv(env)
  const clustered = clusterOptions !== null
  // A demo camera's URL is this machine's 127.0.0.1: in a cluster only when asked for.
  const demoWanted = opts.demo === true || (!clustered && (opts.demo ?? 'auto') === 'auto' && !(configured && configured.length))

  const manager = new CameraManager()
  const events = manager.onEvent((e) => {
    log(`camera ${JSON.stringify(e.cameraId)}: ${e.state}${e.error ? ` (${e.error.code}: ${e.error.message})` : ''}`)
  })
  let cluster = null
  if (clustered) {
    try {
      cluster = await camkit.joinClusterFromEnv(manager, env)
    } catch (e) {
      events.remove()
      manager.close()
      throw e
    }
    log(`cluster: node ${JSON.stringify(cluster.nodeId)} joined through NATS at ${camkit.redactNatsUrl(clusterOptions.natsUrl)}`)
  }
  // Every piece below serves the cluster's cameras in cluster mode, this process's otherwise.
  const cameras = cluster ? camkit.clusterCameras(cluster, manager) : manager

  const app = express()
  app.disable('x-powered-by')
  app.use(camkit.securityHeaders())
  app.get('/health', (req, res) => {
    // In cluster mode the cluster's cameras, from this node's view: no request to other
    // nodes per probe.
    const activeCameras = cluster ? cluster.view().desired : manager.list().length
    res.json({ status: 'ok', activeCameras, ...(cluster && { node: cluster.nodeId }) })
  })
  app.get('/metrics', camkit.metricsHandler(cameras, access))
  app.use('/api/cameras', camkit.camerasRouter(cameras, access))
  if (cluster) app.use('/api/cluster', camkit.clusterRouter(cameras, access))
  app.use('/api/moondream', camkit.moondreamRouter(cameras, { ...access, env }))
  app.use('/api', camkit.notFound(access))
  camkit.mountViewer(app)
  app.use(camkit.notFound())

  // Plain frame requests skip Express (camkit/express frameFastPath); the rest is the app's.
  const fastFrame = camkit.frameFastPath(cameras, access)
  const server = http.createServer((req, res) => fastFrame(req, res) || app(req, res))
  const wss = camkit.attachWebSocket(server, cameras, access)
  try {
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, resolve)
    })
  } catch (e) {
    wss.close()
    if (cluster) await cluster.leave()
    events.remove()
    manager.close()
    throw e
  }
  const actualPort = server.address().port
  log(`camkit express server listening on http://${host}:${actualPort} (WebSocket ws://${host}:${actualPort}/ws)`)
  log(`access: ${camkit.describeAccess(access)}`)

  let demo = null
  let demoId = null
  let toConnect = [...(configured || [])]
  if (cluster && toConnect.length) {
    // Cameras the cluster already has are left as they are: connecting them again would
    // restart them on their owner every time a node starts.
    const known = new Set((await cameras.list()).map((s) => s.id))
    toConnect = toConnect.filter((config) => {
      if (known.has(config.id)) log(`camera ${JSON.stringify(config.id)}: already in the cluster, left as it is`)
      return !known.has(config.id)
    })
  }
  if (demoWanted) {
    const [width, height] = String(opts.demoSize || env.CAMKIT_DEMO_SIZE || '1280x720').split('x').map(Number)
    demo = await startDemoCamera({ width, height, fps: 15 })
    log(`demo camera serving ${demo.url} (${width}x${height} @ 15 fps)`)
    const decoder = camkit.defaultDecoder(env)
    demoId = cluster ? `demo-${cluster.nodeId}` : 'demo'
    toConnect.push({ id: demoId, url: demo.url, persistent: true, ...(decoder && { decoder }) })
  }
  await Promise.all(toConnect.map(async (config) => {
    try {
      const s = await cameras.connect(config)
      if (s.lastError && s.state !== 'streaming') {
        log(`camera ${JSON.stringify(config.id)}: not reachable yet, retrying in the background (${s.lastError.code}: ${s.lastError.message})`)
      }
    } catch (e) {
      log(`camera ${JSON.stringify(config.id)}: cannot connect: ${e.code}: ${e.message}`)
    }
  }))

  let closing = null
  const close = () => {
    closing ??= (async () => {
      for (const client of wss.clients) client.terminate()
      wss.close()
      server.closeAllConnections?.()
      await new Promise((resolve) => server.close(() => resolve()))
      if (cluster) {
        // This node's demo camera goes with it; the other cameras move to the other nodes.
        if (demoId) await cluster.disconnect(demoId).catch(() => {})
        await cluster.leave()
      }
      events.remove()
      manager.close()
      if (demo) await demo.stop()
    })()
    return closing
  }
  return { app, server, port: actualPort, cameras, manager, cluster, demo, close }
}

module.exports = { start }

if (require.main === module) {
  const port = process.env.PORT === undefined ? 5000 : Number(process.env.PORT)
  start({ port, host: process.env.HOST || '127.0.0.1', demo: process.env.CAMKIT_DEMO === '1' ? true : process.env.CAMKIT_DEMO === '0' ? false : 'auto' })
    .then((srv) => {
      const stop = (signal) => {
        defaultLog(`${signal}: shutting down`)
        setTimeout(() => process.exit(0), 3000).unref()
        srv.close().then(() => process.exit(0))
      }
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    .catch((e) => {
      // One line; a cluster setting's error names its variable (e.field).
      console.error(`camkit express server: cannot start: ${String(e.message).replace(/\s*\n\s*/g, ' ')}`)
      process.exit(1)
    })
}
