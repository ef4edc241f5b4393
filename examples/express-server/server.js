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
 * allowedCameraNets (overrides CAMKIT_ALLOWED_CAMERA_NETS).
 */
async function start (opts = {}) {
  const log = opts.log || defaultLog
  const port = opts.port ?? 5000
  const host = opts.host ?? '127.0.0.1'
  const configured = opts.cameras !== undefined ? opts.cameras : camkit.camerasFromEnv()
  // Bad security settings stop the start: never run more open than configured.
  const fromEnv = camkit.optionsFromEnv()
  const access = { ...fromEnv, ...opts.security, allowedCameraNets: opts.allowedCameraNets ?? fromEnv.allowedCameraNets, log }
  const demoWanted = opts.demo === true || ((opts.demo ?? 'auto') === 'auto' && !(configured && configured.length))

  const cameras = new CameraManager()
  const events = cameras.onEvent((e) => {
    log(`camera ${JSON.stringify(e.cameraId)}: ${e.state}${e.error ? ` (${e.error.code}: ${e.error.message})` : ''}`)
  })

  const app = express()
  app.disable('x-powered-by')
  app.use(camkit.securityHeaders())
  app.get('/health', (req, res) => {
    res.json({ status: 'ok', activeCameras: cameras.list().length })
  })
  app.get('/metrics', camkit.metricsHandler(cameras, access))
  app.use('/api/cameras', camkit.camerasRouter(cameras, access))
  app.use('/api/moondream', camkit.moondreamRouter(cameras, access))
  app.use('/api', camkit.notFound(access))
  camkit.mountViewer(app)
  app.use(camkit.notFound())

  // Plain frame requests skip Express (camkit/express frameFastPath); the rest is the app's.
  const fastFrame = camkit.frameFastPath(cameras, access)
  const server = http.createServer((req, res) => fastFrame(req, res) || app(req, res))
  const wss = camkit.attachWebSocket(server, cameras, access)
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, resolve)
  })
  const actualPort = server.address().port
  log(`camkit express server listening on http://${host}:${actualPort} (WebSocket ws://${host}:${actualPort}/ws)`)
  log(`access: ${camkit.describeAccess(access)}`)

  let demo = null
  const toConnect = [...(configured || [])]
  if (demoWanted) {
    const [width, height] = String(opts.demoSize || process.env.CAMKIT_DEMO_SIZE || '1280x720').split('x').map(Number)
    demo = await startDemoCamera({ width, height, fps: 15 })
    log(`demo camera serving ${demo.url} (${width}x${height} @ 15 fps)`)
    const decoder = camkit.defaultDecoder()
    toConnect.push({ id: 'demo', url: demo.url, persistent: true, ...(decoder && { decoder }) })
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
      events.remove()
      cameras.close()
      if (demo) await demo.stop()
    })()
    return closing
  }
  return { app, server, port: actualPort, cameras, demo, close }
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
      console.error(`camkit express server: cannot start: ${e.message}`)
      process.exit(1)
    })
}
