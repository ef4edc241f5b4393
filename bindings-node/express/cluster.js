'use strict'
// Cluster mode for camkit/express: the environment a node is configured by, and the facade
// that lets every piece of camkit/express (routes, WebSocket, MJPEG, video, metrics, the
// frame fast path) serve the cameras of a whole cluster as they serve a CameraManager's.
//
//   CAMKIT_NATS_URL        NATS server(s) with JetStream (nats://host:4222; tls:// for TLS;
//                          several separated by commas). Unset: no cluster (as before).
//   CAMKIT_NODE_ID         this node's id, unique in the cluster (1-64 of A-Z a-z 0-9 _ -).
//   CAMKIT_CLUSTER_KEY     the secret sealing cameras' credentials in NATS, the same on
//                          every node, at least 16 characters.
//   CAMKIT_NATS_USER / CAMKIT_NATS_PASSWORD, CAMKIT_NATS_TOKEN, CAMKIT_NATS_NKEY_FILE
//                          NATS credentials (one kind, optional).
//   CAMKIT_NATS_CA_FILE    PEM file of the CA that signed the NATS servers' certificates
//                          (a private CA); implies TLS.
//   CAMKIT_CLUSTER_PREFIX  prefix of the subjects and buckets (default camkit).
//   CAMKIT_LEASE_TTL_MS    how long a dead node's cameras wait before they move (default 6000).
//   CAMKIT_NATS_REPLICAS   replicas of the JetStream buckets, 1-5 (default 1; 3 with a
//                          3-server NATS cluster).
//
// Errors name the environment variable (err.field), mapped from the binding's `field`:
// never from message text.
/** The binding's option (err.field) → the environment variable it comes from. */
const ENV_NAME = Object.freeze({
  natsUrl: 'CAMKIT_NATS_URL',
  nodeId: 'CAMKIT_NODE_ID',
  clusterKey: 'CAMKIT_CLUSTER_KEY',
  user: 'CAMKIT_NATS_USER',
  password: 'CAMKIT_NATS_PASSWORD',
  token: 'CAMKIT_NATS_TOKEN',
  nkeyFile: 'CAMKIT_NATS_NKEY_FILE',
  caFile: 'CAMKIT_NATS_CA_FILE',
  prefix: 'CAMKIT_CLUSTER_PREFIX',
  leaseTtlMs: 'CAMKIT_LEASE_TTL_MS',
  replicas: 'CAMKIT_NATS_REPLICAS'
})

function envError (code, name, problem) {
  return Object.assign(new Error(`${name}: ${problem}`), { code, field: name })
}

/** A set, non-blank variable's trimmed value, else undefined. */
function value (env, name) {
  const v = env[name]
  if (v === undefined || v === null || String(v).trim() === '') return undefined
  return String(v).trim()
}

/**
 * Cluster.join options from the environment, or null when CAMKIT_NATS_URL is unset (no
 * cluster). Throws INVALID_INPUT naming the variable for what is missing or malformed here;
 * the binding checks the rest when joining (see joinCluster).
 */
function clusterFromEnv (env = process.env) {
  const natsUrl = value(env, 'CAMKIT_NATS_URL')
  if (natsUrl === undefined) return null
  for (const u of natsUrl.split(',')) {
    if (!/^(nats|tls):\/\/[^\s/]+\/?$/.test(u.trim())) {
      throw envError('INVALID_INPUT', 'CAMKIT_NATS_URL', 'must be nats://host:port (tls:// for TLS), several separated by commas')
    }
  }
  const nodeId = value(env, 'CAMKIT_NODE_ID')
  if (nodeId === undefined) throw envError('INVALID_INPUT', 'CAMKIT_NODE_ID', 'missing: every node of a cluster needs its own id (CAMKIT_NATS_URL is set)')
  const clusterKey = env.CAMKIT_CLUSTER_KEY
  if (clusterKey === undefined || clusterKey === '') {
    throw envError('INVALID_INPUT', 'CAMKIT_CLUSTER_KEY', 'missing: the same secret on every node, at least 16 characters (openssl rand -base64 32)')
  }
  const options = { natsUrl, nodeId, clusterKey }
  const user = value(env, 'CAMKIT_NATS_USER')
  const password = env.CAMKIT_NATS_PASSWORD === '' ? undefined : env.CAMKIT_NATS_PASSWORD
  const token = env.CAMKIT_NATS_TOKEN === '' ? undefined : env.CAMKIT_NATS_TOKEN
  const nkeyFile = value(env, 'CAMKIT_NATS_NKEY_FILE')
  if (password !== undefined && user === undefined) throw envError('INVALID_INPUT', 'CAMKIT_NATS_USER', 'missing (CAMKIT_NATS_PASSWORD is set)')
  if (user !== undefined && password === undefined) throw envError('INVALID_INPUT', 'CAMKIT_NATS_PASSWORD', 'missing (CAMKIT_NATS_USER is set)')
  const kinds = [user !== undefined && 'CAMKIT_NATS_USER', token !== undefined && 'CAMKIT_NATS_TOKEN', nkeyFile !== undefined && 'CAMKIT_NATS_NKEY_FILE'].filter(Boolean)
  if (kinds.length > 1) throw envError('INVALID_INPUT', kinds[1], `give one kind of NATS credentials, not ${kinds.join(' and ')}`)
  if (user !== undefined) Object.assign(options, { user, password })
  if (token !== undefined) options.token = token
  if (nkeyFile !== undefined) options.nkeyFile = nkeyFile
  const caFile = value(env, 'CAMKIT_NATS_CA_FILE')
  if (caFile !== undefined) options.caFile = caFile
  const prefix = value(env, 'CAMKIT_CLUSTER_PREFIX')
  if (prefix !== undefined) options.prefix = prefix
  const ttl = value(env, 'CAMKIT_LEASE_TTL_MS')
  if (ttl !== undefined) {
    if (!/^\d+$/.test(ttl) || Number(ttl) < 2000 || Number(ttl) > 3600000) {
      throw envError('INVALID_INPUT', 'CAMKIT_LEASE_TTL_MS', 'must be a whole number of milliseconds, 2000-3600000')
    }
    options.leaseTtlMs = Number(ttl)
  }
  const replicas = value(env, 'CAMKIT_NATS_REPLICAS')
  if (replicas !== undefined) {
    if (!/^[1-5]$/.test(replicas)) {
      throw envError('INVALID_INPUT', 'CAMKIT_NATS_REPLICAS', 'must be 1-5 (3 with a 3-server NATS cluster)')
    }
    options.replicas = Number(replicas)
  }
  return options
}

/** The credentials variables in use, for an error about NATS refusing them. */
function credentialsEnv (options) {
  if (options.token !== undefined) return 'CAMKIT_NATS_TOKEN'
  if (options.nkeyFile !== undefined) return 'CAMKIT_NATS_NKEY_FILE'
  return 'CAMKIT_NATS_USER / CAMKIT_NATS_PASSWORD'
}

/**
 * A binding error of Cluster.join (or of the options) re-worded to name the environment
 * variable: `err.field` maps to it; the message keeps the binding's words after its own
 * `field: ` prefix. Errors without a field are returned as they are.
 */
function envErrorOf (err, options = {}) {
  if (!err || typeof err.field !== 'string') return err
  const name = err.field === 'natsCredentials' ? credentialsEnv(options) : ENV_NAME[err.field]
  if (name === undefined) return err
  let rest = String(err.message)
  if (rest.startsWith(`${err.field}: `)) rest = rest.slice(err.field.length + 2)
  const message = rest.startsWith(name) ? rest : `${name}: ${rest}`
  return Object.assign(new Error(message), { code: err.code, field: name, option: err.field })
}

/**
 * Joins the cluster the environment describes with `manager`: resolves to the Cluster, or
 * null when CAMKIT_NATS_URL is unset. Rejects naming the environment variable (err.field).
 */
async function joinFromEnv (manager, env = process.env, { Cluster = require('../loader').Cluster } = {}) {
  const options = clusterFromEnv(env)
  if (options === null) return null
  try {
    return await Cluster.join(manager, options)
  } catch (e) {
    throw envErrorOf(e, options)
  }
}

/** A NATS URL list as it may be logged: without user, password or token. */
function redactNatsUrl (natsUrl) {
  return String(natsUrl).split(',').map((u) => u.trim().replace(/^([a-z]+:\/\/)[^@/]*@/i, '$1')).join(',')
}

/** How long a node that left the live set stays listed (alive: false) by GET /api/cluster. */
const GONE_KEPT_MS = 10 * 60 * 1000

/**
 * The cameras of a cluster, for camkit/express: what a CameraManager offers (connect,
 * disconnect, list, status, snapshot, subscribe, subscribeVideo, moondream, onEvent,
 * closed), answered for every camera of the cluster. `list()` and `status()` return
 * promises here (a CameraManager's return values; callers await both). Statuses carry
 * `owner`, the node running the camera. Cameras this node owns run on `manager`.
 */
class ClusterCameras {
  constructor (cluster, manager) {
    if (!cluster || typeof cluster.view !== 'function' || typeof cluster.snapshot !== 'function') {
      throw new TypeError('clusterCameras: cluster: must be a camkit Cluster (Cluster.join)')
    }
    if (!manager || typeof manager.subscribe !== 'function' || typeof manager.list !== 'function') {
      throw new TypeError('clusterCameras: manager: must be the CameraManager the cluster was joined with')
    }
    this.cluster = cluster
    this.manager = manager
    /** connect() replaces a camera of the same id itself (no disconnect first). */
    this.connectReplaces = true
    /** Requests for a camera of another node, forwarded to it (by kind). */
    this.forwarded = { status: 0, snapshot: 0, subscribe: 0, video: 0, moondream: 0 }
    this.gone = new Map() // node id → {lastSeenAt, cameras} of nodes no longer live
    this.lastLive = new Map()
  }

  get nodeId () {
    return this.cluster.nodeId
  }

  /** Closed when the manager is, or this node left the cluster. */
  get closed () {
    return this.manager.closed || this.cluster.left
  }

  /**
   * The node owning camera `id` as this node sees it, or null: this node when it runs the
   * camera, else from the nodes' heartbeats (no NATS round trip; a camera that has just
   * moved shows its new owner after the owner's next heartbeat).
   */
  ownerOf (id, local = this.ownsLocally(id)) {
    if (local) return this.nodeId
    for (const n of this.cluster.view().nodes) if (!n.thisNode && n.cameras.includes(id)) return n.id
    return null
  }

  /** Whether this node's manager runs camera `id`. */
  ownsLocally (id) {
    try {
      this.manager.status(id)
      return true
    } catch {
      return false
    }
  }

  /**
   * Counts a request of `kind` for camera `id` when this node does not run it (it goes to
   * the owner). Only the local manager is asked: no cluster view per request.
   */
  count (kind, id) {
    const local = this.ownsLocally(id)
    if (!local) this.forwarded[kind]++
    return local
  }

  connect (config) {
    return this.cluster.connect(config)
  }

  disconnect (id) {
    return this.cluster.disconnect(id)
  }

  /** Every camera of the cluster: its status on its owner plus `owner` (see statusOf). */
  async list () {
    return (await this.cluster.list()).map((c) => statusOf(c.id, c.owner, c.status))
  }

  async status (id) {
    const local = this.count('status', id)
    const s = await this.cluster.status(id)
    return { ...s, owner: this.ownerOf(id, local) }
  }

  snapshot (id, options) {
    this.count('snapshot', id)
    return this.cluster.snapshot(id, options)
  }

  /** Frames of any camera: on a non-owner fed by the owner over NATS while subscribed. */
  subscribe (id, options, callback) {
    this.count('subscribe', id)
    return this.cluster.subscribe(id, options, callback)
  }

  /** Live video of any camera: on a non-owner fed by the owner over NATS while subscribed. */
  subscribeVideo (id, callback, options) {
    this.count('video', id)
    return this.cluster.subscribeVideo(id, callback, options)
  }

  /**
   * Moondream on any camera of the cluster (the owner's picture, forwarded). Each call for
   * a camera another node owns counts as one forwarded `moondream` request (a watch once,
   * when it starts; a streamed answer once).
   */
  moondream (options) {
    const md = this.cluster.moondream(options)
    const counted = (method) => (cameraId, ...rest) => {
      this.count('moondream', cameraId)
      return md[method](cameraId, ...rest)
    }
    return {
      get baseUrl () { return md.baseUrl },
      query: counted('query'),
      caption: counted('caption'),
      detect: counted('detect'),
      point: counted('point'),
      queryStream: counted('queryStream'),
      captionStream: counted('captionStream'),
      watch: counted('watch')
    }
  }

  onEvent (callback) {
    return this.manager.onEvent(callback)
  }

  /**
   * The cluster for GET /api/cluster and /metrics: this node, its NATS connection, the live
   * nodes and, for GONE_KEPT_MS, the nodes seen live before that are no longer (alive:
   * false, with the time since they were last seen), and this node's lease health
   * (`stats`: counters since it joined, see Cluster.view()).
   */
  nodes () {
    const v = this.cluster.view()
    const now = Date.now()
    const nodes = v.nodes.map((n) => {
      this.lastLive.set(n.id, { lastSeenAt: now - n.lastSeenMs, version: n.version, startedAtMs: n.startedAtMs })
      this.gone.delete(n.id)
      return {
        id: n.id,
        thisNode: n.thisNode,
        alive: true,
        lastHeartbeatAgeMs: Math.round(n.lastSeenMs),
        startedAtMs: n.startedAtMs,
        version: n.version,
        cameras: n.cameras,
        streaming: n.streaming
      }
    })
    const live = new Set(v.nodes.map((n) => n.id))
    for (const [id, seen] of this.lastLive) {
      if (!live.has(id)) {
        this.gone.set(id, seen)
        this.lastLive.delete(id)
      }
    }
    for (const [id, seen] of this.gone) {
      if (now - seen.lastSeenAt > GONE_KEPT_MS) {
        this.gone.delete(id)
        continue
      }
      nodes.push({ id, thisNode: false, alive: false, lastHeartbeatAgeMs: now - seen.lastSeenAt, startedAtMs: seen.startedAtMs, version: seen.version, cameras: [], streaming: 0 })
    }
    nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    return { node: v.node, natsConnected: v.natsConnected, desired: v.desired, unowned: v.unowned, nodes, stats: v.stats }
  }
}

/**
 * A camera's status with its owner. A camera whose owner did not answer (or that has none
 * right now: moving, or failing to start) is listed with state 'unknown' and zero counters.
 */
function statusOf (id, owner, status) {
  if (status) return { ...status, owner: owner ?? null }
  return {
    id,
    owner: owner ?? null,
    state: 'unknown',
    url: null,
    framesReceived: 0,
    framesDecoded: 0,
    framesDropped: 0,
    reconnects: 0,
    fps: 0,
    bitrateBps: 0,
    lastError: owner ? null : { code: 'NOT_FOUND', message: `camera ${JSON.stringify(id)} has no live owner right now (moving to another node, or failing to start)`, atMs: Date.now() }
  }
}

/** The facade over `cluster` (Cluster.join) and the `manager` it was joined with. */
function clusterCameras (cluster, manager) {
  return new ClusterCameras(cluster, manager)
}

module.exports = { clusterFromEnv, joinFromEnv, envErrorOf, redactNatsUrl, clusterCameras, ClusterCameras, ENV_NAME, GONE_KEPT_MS }
