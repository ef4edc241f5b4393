'use strict'
// camkit/express: camkit's camera API, WebSocket protocol, MJPEG, metrics, viewer page and
// Moondream routes for an Express app the user already has.
//
//   const { CameraManager } = require('camkit')
//   const camkit = require('camkit/express')
//   const cameras = new CameraManager()
//   app.use('/api/cameras', camkit.camerasRouter(cameras))
//   const server = app.listen(5000)
//   camkit.attachWebSocket(server, cameras)
//
// Every piece takes the same security options, with the safe defaults of camkit's server:
//   apiToken           null: no token. A string: /api routes, /metrics and /ws need
//                      `Authorization: Bearer <token>` (the WebSocket also ?token=).
//   corsOrigins        []: same-origin pages only; foreign pages may only read (GET), and
//                      get 403 for anything else. ['*'] or a list of origins to allow.
//   allowedCameraNets  null: connect may reach any host. A CIDR list (string or array):
//                      connect refuses cameras outside it (403 HOST_NOT_ALLOWED).
//   bodyLimit          64 KiB: the largest JSON body accepted (413 beyond).
//   log                (line) => void; default console.log with a timestamp.
// `optionsFromEnv()` reads them from CAMKIT_API_TOKEN, CAMKIT_CORS_ORIGINS and
// CAMKIT_ALLOWED_CAMERA_NETS, as camkit's example server does.
//
// Counters shared by the routes, the WebSocket and /metrics are kept per CameraManager, so
// the pieces need no object passed between them.
//
// Cluster mode: every piece takes `clusterCameras(cluster, manager)` in place of the
// CameraManager (cluster from `Cluster.join(manager, options)`, or `joinClusterFromEnv`);
// `clusterRouter` adds GET /api/cluster. See cluster.js.
const path = require('node:path')

// Peer dependencies: the app's own copies. Said clearly when one is missing.
for (const peer of ['express', 'ws']) {
  try {
    require.resolve(peer)
  } catch {
    throw new Error(`camkit/express needs the package "${peer}" (a peer dependency): npm install express ws`)
  }
}
const express = require('express')

const cameraRoutes = require('./routes/cameras')
const moondreamRoutes = require('./routes/moondream')
const ws = require('./ws')
const fastPath = require('./frame-fast-path')
const { createMetrics, renderMetrics } = require('./metrics')
const { errorMiddleware, BODY_LIMIT } = require('./errors')
const security = require('./security')
const { createAllowlist } = require('./allowlist')
const cameraConfig = require('./config')
const cluster = require('./cluster')
const clusterRoutes = require('./routes/cluster')
const { defaultDecoder } = require('./validate')

/** The directory of the viewer page's static files. */
const VIEWER_DIR = path.join(__dirname, 'public')

const metricsByManager = new WeakMap()

/** The counters of one CameraManager, made on first use. */
function metricsOf (cameras) {
  let m = metricsByManager.get(cameras)
  if (!m) {
    m = createMetrics()
    metricsByManager.set(cameras, m)
  }
  return m
}

function defaultLog (msg) {
  console.log(`${new Date().toISOString()} ${msg}`)
}

function checkCameras (cameras, where) {
  if (!cameras || typeof cameras.snapshot !== 'function' || typeof cameras.list !== 'function') {
    throw new TypeError(`${where}: cameras: must be a camkit CameraManager or clusterCameras()`)
  }
}

/** Options with their defaults filled in; throws naming a bad option. */
function resolveOptions (options = {}, where) {
  if (options === null || typeof options !== 'object') throw new TypeError(`${where}: options: must be an object`)
  const apiToken = options.apiToken ?? null
  if (apiToken !== null && (typeof apiToken !== 'string' || apiToken === '' || /[\s\u0000-\u001f\u007f]/.test(apiToken))) {
    throw new TypeError(`${where}: apiToken: must be a non-empty string without spaces or control characters`)
  }
  let corsOrigins = options.corsOrigins ?? []
  if (typeof corsOrigins === 'string') corsOrigins = security.parseOrigins(corsOrigins)
  if (!Array.isArray(corsOrigins)) throw new TypeError(`${where}: corsOrigins: must be an array of origins or a comma-separated string`)
  corsOrigins = security.parseOrigins(corsOrigins.join(','))
  const bodyLimit = options.bodyLimit ?? BODY_LIMIT
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1) throw new TypeError(`${where}: bodyLimit: must be a positive number of bytes`)
  const log = options.log ?? defaultLog
  if (typeof log !== 'function') throw new TypeError(`${where}: log: must be a function`)
  let nets = options.allowedCameraNets ?? null
  if (Array.isArray(nets)) nets = nets.join(',')
  if (nets !== null && typeof nets !== 'string') throw new TypeError(`${where}: allowedCameraNets: must be a CIDR list (string or array)`)
  return { apiToken, corsOrigins, bodyLimit, log, allowedCameraNets: nets }
}

/** The security options from the environment, as camkit's server reads them. */
function optionsFromEnv (env = process.env) {
  const { apiToken, corsOrigins } = security.securityFromEnv(env)
  const nets = env.CAMKIT_ALLOWED_CAMERA_NETS
  return { apiToken, corsOrigins, allowedCameraNets: nets && nets.trim() !== '' ? nets : null }
}

/** The middlewares in front of every camkit route: headers, CORS, the token, the JSON body. */
function guard (o) {
  return [
    security.securityHeaders(),
    security.cors(o.corsOrigins),
    security.requireToken(o.apiToken),
    express.json({ limit: o.bodyLimit })
  ]
}

/**
 * The seed's camera API (mount it at /api/cameras): connect, disconnect, list, status,
 * frame (JPEG), MJPEG, websocket-url, with camkit's validation and `{error, code}` errors.
 */
function camerasRouter (cameras, options = {}) {
  checkCameras(cameras, 'camerasRouter')
  const o = resolveOptions(options, 'camerasRouter')
  const r = express.Router()
  r.use(guard(o))
  r.use(cameraRoutes.camerasRouter({ cameras, metrics: metricsOf(cameras), log: o.log, allowlist: createAllowlist(o.allowedCameraNets ?? '') }))
  r.use(errorMiddleware(o.log))
  return r
}

/**
 * The Moondream routes (mount them at /api/moondream): query, caption, detect, point,
 * streams and watches on a camera's current picture. Configured by `apiKey` / `baseUrl`
 * / `timeoutMs` / `maxRetries` options, else MOONDREAM_API_KEY / MOONDREAM_URL /
 * MOONDREAM_TIMEOUT_MS / MOONDREAM_MAX_RETRIES of `options.env` (default process.env).
 */
function moondreamRouter (cameras, options = {}) {
  checkCameras(cameras, 'moondreamRouter')
  const o = resolveOptions(options, 'moondreamRouter')
  const env = { ...(options.env ?? process.env) }
  const names = { apiKey: 'MOONDREAM_API_KEY', baseUrl: 'MOONDREAM_URL', timeoutMs: 'MOONDREAM_TIMEOUT_MS', maxRetries: 'MOONDREAM_MAX_RETRIES' }
  for (const [opt, name] of Object.entries(names)) {
    if (options[opt] !== undefined && options[opt] !== null) env[name] = String(options[opt])
  }
  const r = express.Router()
  r.use(guard(o))
  r.use(moondreamRoutes.moondreamRouter({ cameras, log: o.log, env }))
  r.use(errorMiddleware(o.log))
  return r
}

/**
 * GET /api/cluster (mount it at /api/cluster): this node, the nodes with their cameras and
 * health, the cameras with their owners. `cameras` is `clusterCameras(cluster, manager)`.
 */
function clusterRouter (cameras, options = {}) {
  if (!(cameras instanceof cluster.ClusterCameras)) throw new TypeError('clusterRouter: cameras: must be clusterCameras(cluster, manager)')
  const o = resolveOptions(options, 'clusterRouter')
  const r = express.Router()
  r.use(guard(o))
  r.use(clusterRoutes.clusterRouter({ cameras }))
  r.use(errorMiddleware(o.log))
  return r
}

/** GET handler for Prometheus metrics (mount it at /metrics). Needs the token when one is set. */
function metricsHandler (cameras, options = {}) {
  checkCameras(cameras, 'metricsHandler')
  const o = resolveOptions(options, 'metricsHandler')
  const token = security.requireToken(o.apiToken)
  return (req, res, next) => token(req, res, () => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next()
    // Written raw: res.send() would reorder the parameters of this exact content type.
    renderMetrics(cameras, metricsOf(cameras)).then((text) => {
      res.set('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
      res.end(Buffer.from(text))
    }, next)
  })
}

/**
 * The seed's WebSocket protocol on `/ws` of `httpServer` (the value of `app.listen()` or
 * `http.createServer()`). Returns the `ws` WebSocketServer.
 */
function attachWebSocket (httpServer, cameras, options = {}) {
  if (!httpServer || typeof httpServer.on !== 'function') throw new TypeError('attachWebSocket: httpServer: must be a node:http server')
  checkCameras(cameras, 'attachWebSocket')
  const o = resolveOptions(options, 'attachWebSocket')
  return ws.attachWebSocket(httpServer, { cameras, metrics: metricsOf(cameras), apiToken: o.apiToken, corsOrigins: o.corsOrigins })
}

/**
 * A `node:http` request handler for in front of the app: answers plain
 * `GET /api/cameras/:id/frame` requests without Express (returns true), leaves every
 * other request to the app (returns false). Use it as
 * `http.createServer((req, res) => fast(req, res) || app(req, res))`; it skips the app's
 * own middlewares for those requests, so it is opt-in.
 */
function frameFastPath (cameras, options = {}) {
  checkCameras(cameras, 'frameFastPath')
  const o = resolveOptions(options, 'frameFastPath')
  return fastPath.frameFastPath({ cameras, metrics: metricsOf(cameras), apiToken: o.apiToken, log: o.log })
}

/** The viewer page's static files, as an Express middleware: `app.use(viewer())`. */
function viewer (options = {}) {
  return express.static(VIEWER_DIR, options)
}

/** Mounts the viewer page at `at` (default '/') of `app`. */
function mountViewer (app, at = '/') {
  app.use(at, viewer())
  return app
}

/**
 * The JSON 404 `{error, code: 'NOT_FOUND'}` for what no route answered; with options, after
 * the same CORS and token checks as the routes (for `app.use('/api', notFound(options))`).
 */
function notFound (options) {
  const tail = (req, res) => {
    res.status(404).json({ error: `no such ${req.baseUrl.startsWith('/api') ? 'API ' : ''}route: ${req.method} ${req.originalUrl.split('?')[0]}`, code: 'NOT_FOUND' })
  }
  if (options === undefined) return tail
  const o = resolveOptions(options, 'notFound')
  return [security.cors(o.corsOrigins), security.requireToken(o.apiToken), tail]
}

/** One line for a start-up log: what access requires, never the token itself. */
function describeAccess (options = {}) {
  const o = resolveOptions(options, 'describeAccess')
  const cams = o.allowedCameraNets ? createAllowlist(o.allowedCameraNets).describe() : 'cameras: any host (no allowedCameraNets)'
  return `${security.describeSecurity(o)}; ${cams}`
}

module.exports = {
  camerasRouter,
  clusterRouter,
  clusterCameras: cluster.clusterCameras,
  clusterFromEnv: cluster.clusterFromEnv,
  joinClusterFromEnv: cluster.joinFromEnv,
  redactNatsUrl: cluster.redactNatsUrl,
  moondreamRouter,
  metricsHandler,
  attachWebSocket,
  frameFastPath,
  viewer,
  mountViewer,
  optionsFromEnv,
  describeAccess,
  notFound,
  camerasFromEnv: cameraConfig.fromEnv,
  defaultDecoder,
  securityHeaders: security.securityHeaders,
  errorMiddleware,
  VIEWER_DIR
}
