'use strict'
// /api/moondream: ask Moondream about a camera's current picture, in-process through
// camkit's binding (the picture never leaves the server except to Moondream itself).
//
//   GET    /status                    → {configured, flavour, baseUrl, message}
//   POST   /query   {cameraId, question}        → {cameraId, seq, capturedAt, width, height, answer, requestId}
//   POST   /caption {cameraId, length}          → {…, caption}       (length: short | normal | long)
//   POST   /detect  {cameraId, object}          → {…, objects: [{xMin, yMin, xMax, yMax}]}  (0–1)
//   POST   /point   {cameraId, object}          → {…, points: [{x, y}]}                     (0–1)
//   POST   /query?stream=1, /caption?stream=1   → text/event-stream (also with Accept: text/event-stream)
//   GET    /query/stream?cameraId=&question=    → text/event-stream, for EventSource
//   POST   /watch   {cameraId, question, everyMs, onlyWhenChanged, changeThreshold} → 201 {watchId, …}
//   GET    /watches                    → {watches: […]}
//   GET    /watches/:watchId           → the watch, with its recent answers
//   GET    /watches/:watchId/events    → text/event-stream of its answers
//   DELETE /watches/:watchId  (or POST /watch/stop {watchId}) → {success: true}
//
// Streams: `event: chunk` `data: {"text":"…"}` per piece, then `event: done` with the whole
// result, or `event: error` `data: {"code","error"}` when the answer fails half way. A failure
// before the first piece is an ordinary JSON error with its HTTP status.
//
// Configuration (environment): MOONDREAM_API_KEY (the cloud) or MOONDREAM_URL (e.g. a
// Moondream Station, http://localhost:2020/v1; with MOONDREAM_API_KEY too, the key is sent
// there), MOONDREAM_TIMEOUT_MS, MOONDREAM_MAX_RETRIES. Without either, every route but
// /status answers 503 MOONDREAM_NOT_CONFIGURED saying what to set. The key is never in a
// response or a log line: camkit's messages never contain it, and nothing here echoes it.
const express = require('express')
const { HttpError, invalid, route } = require('../errors')
const { optionalInt, optionalNumber } = require('../validate')

const CLOUD_HOST = 'api.moondream.ai'
/** Running watches at most (each one calls Moondream every everyMs). */
const MAX_WATCHES = 8
/** Watches kept in the list, running or ended. */
const MAX_LISTED = 32
/** Answers and errors kept per watch. */
const RECENT = 20
const LENGTHS = ['short', 'normal', 'long']
/** Errors after which a watch has ended (camkit stops it). */
const FATAL = new Set(['UNAUTHORIZED', 'INVALID_INPUT', 'NOT_FOUND', 'CLOSED'])
/** camkit's option names → the environment variables they come from. */
const ENV_NAME = { apiKey: 'MOONDREAM_API_KEY', baseUrl: 'MOONDREAM_URL', timeoutMs: 'MOONDREAM_TIMEOUT_MS', maxRetries: 'MOONDREAM_MAX_RETRIES' }

const NOT_CONFIGURED = 'Moondream is not configured: set MOONDREAM_API_KEY to a Moondream cloud API key ' +
  '(https://moondream.ai/c/cloud/api-keys), or MOONDREAM_URL to a Moondream Station ' +
  '(e.g. http://localhost:2020/v1), and restart the server'

/** An integer environment variable, or undefined; throws a message naming it. */
function envInt (env, name, min, max) {
  const v = env[name]
  if (v === undefined || v.trim() === '') return undefined
  if (!/^\s*\d+\s*$/.test(v) || Number(v) < min || Number(v) > max) throw new Error(`${name}: must be an integer from ${min} to ${max}`)
  return Number(v)
}

/**
 * Moondream for `cameras`, from the environment: `{md, status}`. `md` is null when not
 * configured (or misconfigured: `status.message` says why, naming the variable).
 */
function moondreamFromEnv (cameras, env = process.env) {
  const apiKey = (env.MOONDREAM_API_KEY || '').trim()
  const url = (env.MOONDREAM_URL || '').trim()
  if (!apiKey && !url) return { md: null, status: { configured: false, flavour: null, baseUrl: null, message: NOT_CONFIGURED } }
  const options = {}
  if (apiKey) options.apiKey = apiKey
  if (url) options.baseUrl = url
  let host = null
  try {
    host = url ? new URL(url).hostname : CLOUD_HOST
  } catch {}
  const flavour = host === CLOUD_HOST ? 'cloud' : 'station'
  try {
    const timeoutMs = envInt(env, 'MOONDREAM_TIMEOUT_MS', 100, 600000)
    if (timeoutMs !== undefined) options.timeoutMs = timeoutMs
    const maxRetries = envInt(env, 'MOONDREAM_MAX_RETRIES', 0, 10)
    if (maxRetries !== undefined) options.maxRetries = maxRetries
    const md = cameras.moondream(options)
    return { md, status: { configured: true, flavour, baseUrl: md.baseUrl, message: null } }
  } catch (e) {
    // camkit names its option (`baseUrl: …`); the operator set an environment variable.
    const m = /^(\w+): /.exec(e.message)
    const message = m && ENV_NAME[m[1]] ? ENV_NAME[m[1]] + e.message.slice(m[1].length) : e.message
    return { md: null, status: { configured: false, flavour, baseUrl: null, message: `Moondream is not configured: ${message}` } }
  }
}

function bodyOf (req) {
  const b = req.body
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw invalid('body', 'must be a JSON object (Content-Type: application/json)')
  return b
}

/** A required, non-blank string field of at most `max` characters. */
function text (obj, field, max) {
  const v = obj[field]
  if (v === undefined || v === null || v === '') throw invalid(field, 'missing')
  if (typeof v !== 'string') throw invalid(field, 'must be a string')
  if (v.trim() === '') throw invalid(field, 'must not be blank')
  if (v.length > max) throw invalid(field, `at most ${max} characters`)
  return v
}

const cameraIdOf = (obj) => text(obj, 'cameraId', 64)

function lengthOf (obj) {
  const v = obj.length
  if (v === undefined || v === null || v === '') return 'normal'
  if (!LENGTHS.includes(v)) throw invalid('length', `must be one of ${LENGTHS.join(', ')}`)
  return v
}

function wantsStream (req) {
  return ['1', 'true'].includes(String(req.query.stream)) || /text\/event-stream/.test(req.get('accept') || '')
}

function sseHeaders (res) {
  res.status(200).set({ 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' })
  res.flushHeaders()
}

function sseSend (res, event, data) {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
}

/** The JSON of an error in a stream or a watch: camkit's code and message, never a stack. */
function errorData (e) {
  return typeof e?.code === 'string' ? { code: e.code, error: e.message } : { code: 'INTERNAL', error: 'internal error; the server log has the details' }
}

/**
 * Streams an answer as server-sent events. `run(onChunk)` is the binding's streaming call.
 * The response starts with the first piece, so a failure before it (unknown camera, refused
 * key, rate limit …) is still an ordinary JSON error with its HTTP status. A client that
 * goes away abandons the answer (onChunk returns false).
 */
async function streamAnswer (res, run) {
  let started = false
  let gone = false
  res.on('close', () => { gone = !res.writableFinished })
  const start = () => {
    if (!started) sseHeaders(res)
    started = true
  }
  try {
    const result = await run((piece) => {
      if (gone) return false
      start()
      sseSend(res, 'chunk', { text: piece })
    })
    if (gone) return
    start()
    sseSend(res, 'done', result)
    res.end()
  } catch (e) {
    if (!started) throw e
    if (!gone) {
      sseSend(res, 'error', errorData(e))
      res.end()
    }
  }
}

function moondreamRouter ({ cameras, log, env = process.env }) {
  const r = express.Router()
  const { md, status } = moondreamFromEnv(cameras, env)
  log(status.configured
    ? `moondream: ${status.flavour} at ${status.baseUrl}`
    : `moondream: off (${status.message})`)

  const need = () => {
    if (!md) throw new HttpError('MOONDREAM_NOT_CONFIGURED', status.message)
    return md
  }
  const failed = (what, cameraId, e) => {
    if (e && typeof e.code === 'string') log(`moondream ${what} on camera ${JSON.stringify(cameraId)}: ${e.code}: ${e.message}`)
  }
  /** Runs a call, logging its failure (the message never holds the key). */
  const call = async (what, cameraId, fn) => {
    try {
      return await fn()
    } catch (e) {
      failed(what, cameraId, e)
      throw e
    }
  }

  r.get('/status', (req, res) => {
    res.json(status)
  })

  const query = route(async (req, res) => {
    const m = need()
    const src = req.method === 'GET' ? req.query : bodyOf(req)
    const cameraId = cameraIdOf(src)
    const question = text(src, 'question', 2000)
    if (req.method === 'GET' || wantsStream(req)) {
      return call('query', cameraId, () => streamAnswer(res, (onChunk) => m.queryStream(cameraId, question, onChunk)))
    }
    res.json(await call('query', cameraId, () => m.query(cameraId, question)))
  })
  r.post('/query', query)
  r.get('/query/stream', query)

  r.post('/caption', route(async (req, res) => {
    const m = need()
    const b = bodyOf(req)
    const cameraId = cameraIdOf(b)
    const length = lengthOf(b)
    if (wantsStream(req)) {
      return call('caption', cameraId, () => streamAnswer(res, (onChunk) => m.captionStream(cameraId, { length }, onChunk)))
    }
    res.json(await call('caption', cameraId, () => m.caption(cameraId, { length })))
  }))

  for (const kind of ['detect', 'point']) {
    r.post(`/${kind}`, route(async (req, res) => {
      const m = need()
      const b = bodyOf(req)
      const cameraId = cameraIdOf(b)
      const object = text(b, 'object', 200)
      res.json(await call(kind, cameraId, () => m[kind](cameraId, object)))
    }))
  }

  // ---- watches ----

  /** watchId → {watchId, cameraId, question, everyMs, watch, recent, answer, …, clients} */
  const watches = new Map()
  let nextId = 1

  const view = (w, { recent = false } = {}) => {
    const v = {
      watchId: w.watchId,
      cameraId: w.cameraId,
      question: w.question,
      everyMs: w.everyMs,
      running: w.watch.running,
      answer: w.answer,
      previousAnswer: w.previousAnswer,
      seq: w.seq,
      answeredAtMs: w.answeredAtMs,
      lastError: w.lastError,
      createdAtMs: w.createdAtMs,
      stats: w.watch.stats
    }
    if (recent) v.recent = w.recent
    return v
  }

  const publish = (w, event, data) => {
    w.recent.push({ type: event, ...data })
    if (w.recent.length > RECENT) w.recent.shift()
    for (const client of w.clients) sseSend(client, event, data)
  }

  const endClients = (w) => {
    for (const client of w.clients) {
      sseSend(client, 'end', { watchId: w.watchId, running: false })
      client.end()
    }
    w.clients.clear()
  }

  const onWatch = (w, err, ev) => {
    if (err) {
      w.lastError = { code: err.code, message: err.message, atMs: Date.now() }
      if (err.code !== 'CLOSED') log(`moondream watch ${w.watchId} on camera ${JSON.stringify(w.cameraId)}: ${err.code}: ${err.message}`)
      publish(w, 'error', { watchId: w.watchId, code: err.code, error: err.message, atMs: w.lastError.atMs })
      if (FATAL.has(err.code)) endClients(w)
      return
    }
    w.answer = ev.answer
    w.previousAnswer = ev.previousAnswer ?? null
    w.seq = ev.seq
    w.answeredAtMs = ev.atMs
    publish(w, 'answer', { watchId: w.watchId, answer: ev.answer, previousAnswer: ev.previousAnswer ?? null, seq: ev.seq, capturedAt: ev.capturedAt, atMs: ev.atMs })
  }

  const prune = () => {
    for (const [id, w] of watches) {
      if (watches.size <= MAX_LISTED) break
      if (!w.watch.running) watches.delete(id)
    }
  }

  r.post('/watch', route(async (req, res) => {
    const m = need()
    const b = bodyOf(req)
    const cameraId = cameraIdOf(b)
    const question = text(b, 'question', 2000)
    const everyMs = optionalInt(b.everyMs, 'everyMs', 500, 86400000) ?? 5000
    const options = { everyMs }
    if (b.onlyWhenChanged !== undefined && b.onlyWhenChanged !== null) {
      if (typeof b.onlyWhenChanged !== 'boolean') throw invalid('onlyWhenChanged', 'must be true or false')
      options.onlyWhenChanged = b.onlyWhenChanged
    }
    const changeThreshold = optionalNumber(b.changeThreshold, 'changeThreshold', 0, 255)
    if (changeThreshold !== undefined) options.changeThreshold = changeThreshold
    const running = [...watches.values()].filter((w) => w.watch.running).length
    if (running >= MAX_WATCHES) {
      throw new HttpError('RATE_LIMITED', `at most ${MAX_WATCHES} watches run at once: stop one first (DELETE /api/moondream/watches/<watchId>)`)
    }
    const w = { watchId: `w${nextId++}`, cameraId, question, everyMs, answer: null, previousAnswer: null, seq: null, answeredAtMs: null, lastError: null, createdAtMs: Date.now(), recent: [], clients: new Set(), watch: null }
    w.watch = m.watch(cameraId, question, options, (err, ev) => onWatch(w, err, ev))
    watches.set(w.watchId, w)
    prune()
    log(`moondream watch ${w.watchId} on camera ${JSON.stringify(cameraId)} every ${everyMs} ms: ${JSON.stringify(question)}`)
    res.status(201).json(view(w))
  }))

  r.get('/watches', (req, res) => {
    need()
    res.json({ watches: [...watches.values()].map((w) => view(w)) })
  })

  const watchOf = (id) => {
    need()
    const w = typeof id === 'string' && watches.get(id)
    if (!w) throw new HttpError('NOT_FOUND', `no watch ${JSON.stringify(String(id))}: GET /api/moondream/watches lists them`)
    return w
  }

  r.get('/watches/:watchId', (req, res) => {
    res.json(view(watchOf(req.params.watchId), { recent: true }))
  })

  r.get('/watches/:watchId/events', (req, res) => {
    const w = watchOf(req.params.watchId)
    sseHeaders(res)
    sseSend(res, 'watch', view(w))
    if (!w.watch.running) {
      sseSend(res, 'end', { watchId: w.watchId, running: false })
      return res.end()
    }
    w.clients.add(res)
    res.on('close', () => w.clients.delete(res))
  })

  const stop = (w) => {
    w.watch.stop()
    endClients(w)
    watches.delete(w.watchId)
    log(`moondream watch ${w.watchId} stopped`)
  }

  r.delete('/watches/:watchId', (req, res) => {
    stop(watchOf(req.params.watchId))
    res.json({ success: true })
  })

  r.post('/watch/stop', (req, res) => {
    const b = bodyOf(req)
    stop(watchOf(text(b, 'watchId', 32)))
    res.json({ success: true })
  })

  return r
}

module.exports = { moondreamRouter, moondreamFromEnv, NOT_CONFIGURED }
