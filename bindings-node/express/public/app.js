'use strict'
// The camera grid: a tile per camera with its live picture (one WebSocket per tile), state,
// fps and resolution (polled from /api/cameras), a snapshot link and a disconnect button;
// and a form to connect a camera. No build step, no library.
//
// The live picture is the camera's own H.264 or H.265, played through Media Source
// Extensions: the WebSocket's "video" action names the MIME type, then sends fMP4 segments
// (see ../ws.js), appended to a SourceBuffer; playback stays at the live edge and only the
// last few seconds stay buffered. When the browser has no MSE, MediaSource.isTypeSupported()
// refuses the camera's codec (an H.265 camera's `hvc1.…` in a browser without HEVC), or the
// camera's video cannot be carried (MJPEG), the tile falls back to JPEG frames (the
// "subscribe" action, binary). The tile says which one it shows, and why in its title.
// `?video=jpeg` in the page's address forces JPEG frames.
;(() => {
  const POLL_MS = 1500
  // A grid tile's video (or JPEG frames) comes from the camera's sub-stream when it has one
  // (its status' subStream: cheaper to carry and decode); the camera's full view (the tile's
  // "Full view" button) and the snapshot link from the main stream. The server serves a
  // request for the sub-stream from the main stream while the sub-stream is off: JPEG
  // frames move between the streams on their own, a video subscription keeps the stream it
  // started on, so a tile reopens its video when the sub-stream comes up or goes off.
  const STREAM = { fps: 10, maxWidth: 960 }
  /** The stream a tile asks for: the main one in full view, else the sub-stream if any. */
  const streamOf = (tile) => (!tile.full && tile.hasSub ? 'sub' : 'main')
  /** The stream the server serves a tile's request from now (its last polled status). */
  const servedOf = (tile) => (streamOf(tile) === 'sub' && tile.subUp ? 'sub' : 'main')
  /** Playback further than this behind the newest frame jumps to it (seconds). */
  const LIVE_LAG = 1.0
  /** Media older than this behind playback is removed from the buffer (seconds). */
  const KEEP_BEHIND = 10
  const FORCE_JPEG = new URLSearchParams(location.search).get('video') === 'jpeg'

  const grid = document.getElementById('grid')
  const empty = document.getElementById('empty')
  const serverStatus = document.getElementById('server-status')
  const form = document.getElementById('connect-form')
  const connectError = document.getElementById('connect-error')
  const connectOk = document.getElementById('connect-ok')
  const template = document.getElementById('tile-template')

  /** cameraId → { el, ws, url, retry, stopped } */
  const tiles = new Map()
  let wsUrl = null

  // ---- the API token (CAMKIT_API_TOKEN on the server): open the page as /?token=… ----
  // It is kept for this tab (sessionStorage) and taken out of the address bar; requests
  // send it as `Authorization: Bearer`, the WebSocket (which cannot) as ?token=.
  const TOKEN = (() => {
    try {
      const params = new URLSearchParams(location.search)
      if (params.has('token')) {
        sessionStorage.setItem('camkitToken', params.get('token'))
        params.delete('token')
        const rest = params.toString()
        history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash)
      }
      return sessionStorage.getItem('camkitToken') || ''
    } catch {
      return new URLSearchParams(location.search).get('token') || ''
    }
  })()
  /** Headers that carry the token, to merge into a fetch's headers. */
  const authHeaders = () => (TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {})
  const withToken = (url) => (TOKEN ? `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(TOKEN)}` : url)
  // For the page's other scripts (e.g. moondream.js): fetch(url, { headers: camkitAuth.headers() }).
  window.camkitAuth = Object.freeze({ headers: authHeaders, withToken })

  async function api (path, options = {}) {
    const res = await fetch(path, { ...options, headers: { ...authHeaders(), ...options.headers } })
    let body = null
    try {
      body = await res.json()
    } catch {}
    if (!res.ok) {
      const err = new Error((body && body.error) || `${res.status} ${res.statusText}`)
      err.code = body && body.code
      throw err
    }
    return body
  }

  function show (el, text) {
    el.textContent = text || ''
    el.hidden = !text
  }

  // ---- live pictures over the WebSocket (see ../ws.js) ----

  /** Why this browser cannot play `mime` through MSE, or null when it can. */
  function mseRefusal (mime) {
    if (!window.MediaSource) return 'no Media Source Extensions in this browser'
    if (mime && !MediaSource.isTypeSupported(mime)) return `this browser cannot play ${mime}`
    return null
  }

  function setMode (tile, mode, detail) {
    tile.mode = mode
    const el = tile.el.querySelector('.mode')
    el.textContent = mode === 'mse' ? 'video (MSE)' : 'JPEG frames'
    el.dataset.mode = mode
    el.title = detail || ''
    tile.el.querySelector('video.live').hidden = mode !== 'mse'
    tile.el.querySelector('img.live').hidden = mode === 'mse'
  }

  function openStream (id, tile) {
    if (tile.stopped) return
    if (tile.mode === 'mse') openVideo(id, tile)
    else openJpeg(id, tile)
  }

  /** Reopens the stream after `ms` while the tile exists (the camera may come back). */
  function retryLater (id, tile, ms = 2000) {
    clearTimeout(tile.retry)
    if (!tile.stopped) tile.retry = setTimeout(() => openStream(id, tile), ms)
  }

  function openJpeg (id, tile) {
    const ws = new WebSocket(withToken(wsUrl))
    ws.binaryType = 'arraybuffer'
    tile.ws = ws
    ws.onopen = () => ws.send(JSON.stringify({ action: 'subscribe', cameraId: id, binary: true, ...STREAM, ...(tile.full ? { maxWidth: undefined } : {}), stream: streamOf(tile) }))
    ws.onmessage = (msg) => {
      if (typeof msg.data === 'string') {
        const m = JSON.parse(msg.data)
        if (m.type === 'error' && m.code !== 'CLOSED') show(tile.el.querySelector('.tile-error'), m.error)
        return
      }
      const view = new DataView(msg.data)
      const headerLength = view.getUint32(0)
      const header = JSON.parse(new TextDecoder().decode(new Uint8Array(msg.data, 4, headerLength)))
      const blob = new Blob([new Uint8Array(msg.data, 4 + headerLength)], { type: 'image/jpeg' })
      const img = tile.el.querySelector('img.live')
      const previous = tile.url
      tile.url = URL.createObjectURL(blob)
      img.src = tile.url
      img.dataset.seq = header.seq
      tile.el.querySelector('.picture').classList.add('playing')
      if (previous) setTimeout(() => URL.revokeObjectURL(previous), 1000)
    }
    ws.onclose = () => { if (ws === tile.ws) retryLater(id, tile) }
  }

  /** The camera's video through MSE: a MediaSource per WebSocket, segments appended in order. */
  function openVideo (id, tile) {
    const video = tile.el.querySelector('video.live')
    const ws = new WebSocket(withToken(wsUrl))
    ws.binaryType = 'arraybuffer'
    tile.ws = ws
    let ms = null
    let sb = null
    let mime = null
    const pending = []
    const fallBack = (why) => {
      if (tile.mode !== 'mse' || ws !== tile.ws) return
      ws.onclose = null
      ws.close()
      video.onerror = null
      video.removeAttribute('src')
      if (tile.videoUrl) URL.revokeObjectURL(tile.videoUrl)
      tile.videoUrl = null
      setMode(tile, 'jpeg', why)
      openJpeg(id, tile)
    }
    video.onerror = () => fallBack(`the browser could not play the video: ${video.error ? video.error.message : 'unknown error'}`)
    const pump = () => {
      if (!sb || sb.updating || ms.readyState !== 'open') return
      const end = video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0
      const start = video.buffered.length ? video.buffered.start(0) : 0
      // Keep the buffer short: drop what lies well behind playback.
      if (video.currentTime - start > KEEP_BEHIND + 2) {
        sb.remove(start, video.currentTime - KEEP_BEHIND)
        return
      }
      const next = pending.shift()
      if (!next) return
      try {
        sb.appendBuffer(next)
      } catch (e) {
        if (e.name === 'QuotaExceededError') {
          // Full anyway: drop everything before the live edge and go on.
          pending.unshift(next)
          if (end - start > 1) sb.remove(start, end - 1)
        } else {
          fallBack(`MSE failed: ${e.message}`)
        }
      }
    }
    const jumpToLive = () => {
      if (!video.buffered.length) return
      const end = video.buffered.end(video.buffered.length - 1)
      const start = video.buffered.start(video.buffered.length - 1)
      if (end - video.currentTime > LIVE_LAG || video.currentTime < start) video.currentTime = Math.max(start, end - 0.2)
      if (video.paused) video.play().catch(() => {})
    }
    const setUp = (type) => {
      mime = type
      ms = new MediaSource()
      tile.videoUrl = URL.createObjectURL(ms)
      video.src = tile.videoUrl
      ms.addEventListener('sourceopen', () => {
        try {
          sb = ms.addSourceBuffer(mime)
        } catch (e) {
          return fallBack(`MSE refused ${mime}: ${e.message}`)
        }
        sb.mode = 'segments'
        sb.addEventListener('updateend', () => {
          jumpToLive()
          pump()
        })
        sb.addEventListener('error', () => fallBack('MSE could not decode the stream'))
        pump()
      }, { once: true })
    }
    tile.videoStream = servedOf(tile)
    ws.onopen = () => ws.send(JSON.stringify({ action: 'video', cameraId: id, stream: streamOf(tile) }))
    ws.onmessage = (msg) => {
      if (typeof msg.data === 'string') {
        const m = JSON.parse(msg.data)
        if (m.type === 'video') {
          const refused = mseRefusal(m.mimeType)
          if (refused) return fallBack(refused)
          if (!ms) {
            setUp(m.mimeType)
            setMode(tile, 'mse', m.mimeType)
          } else if (m.mimeType !== mime && sb && sb.changeType) {
            // New parameters (another profile): the init segment that follows says so.
            mime = m.mimeType
            sb.changeType(mime)
          }
          tile.el.querySelector('.mode').title = m.mimeType
        } else if (m.type === 'error' && m.code === 'UNSUPPORTED_CODEC') {
          // A camera whose video the stream cannot carry (MJPEG): its pictures instead.
          fallBack(m.error)
        } else if (m.type === 'error' && m.code !== 'CLOSED') {
          show(tile.el.querySelector('.tile-error'), m.error)
        }
        return
      }
      pending.push(msg.data)
      // A consumer this far behind (a hidden tab) starts again from the newest frames.
      if (pending.length > 300) pending.splice(0, pending.length - 1)
      tile.el.querySelector('.picture').classList.add('playing')
      pump()
    }
    ws.onclose = () => {
      if (ws !== tile.ws) return
      if (tile.videoUrl) URL.revokeObjectURL(tile.videoUrl)
      tile.videoUrl = null
      retryLater(id, tile)
    }
  }

  /** Replaces a tile's stream by a new one (another stream choice). */
  function reopen (id, tile) {
    clearTimeout(tile.retry)
    const old = tile.ws
    tile.ws = null
    if (old) {
      old.onclose = null
      old.close()
    }
    if (tile.videoUrl) URL.revokeObjectURL(tile.videoUrl)
    tile.videoUrl = null
    openStream(id, tile)
  }

  function closeStream (tile) {
    tile.stopped = true
    clearTimeout(tile.retry)
    if (tile.ws) tile.ws.close()
    if (tile.url) URL.revokeObjectURL(tile.url)
    if (tile.videoUrl) URL.revokeObjectURL(tile.videoUrl)
  }

  // ---- tiles ----

  function addTile (cam) {
    const el = template.content.firstElementChild.cloneNode(true)
    el.dataset.camera = cam.cameraId
    el.querySelector('.name').textContent = cam.cameraId
    el.querySelector('img.live').alt = `live picture of camera ${cam.cameraId}`
    const snap = el.querySelector('.snapshot')
    snap.href = `/api/cameras/${encodeURIComponent(cam.cameraId)}/frame?stream=main`
    snap.download = `${cam.cameraId}.jpg`
    if (TOKEN) {
      // A plain link cannot send the token: fetch the picture and save that.
      snap.addEventListener('click', async (ev) => {
        ev.preventDefault()
        try {
          const res = await fetch(snap.href, { headers: authHeaders() })
          if (!res.ok) throw new Error((await res.json().catch(() => null))?.error || `${res.status} ${res.statusText}`)
          const url = URL.createObjectURL(await res.blob())
          const a = Object.assign(document.createElement('a'), { href: url, download: snap.download })
          a.click()
          setTimeout(() => URL.revokeObjectURL(url), 1000)
        } catch (e) {
          show(el.querySelector('.tile-error'), e.message)
        }
      })
    }
    el.querySelector('.full-view').addEventListener('click', (ev) => {
      // Full view: the tile over the page, on the main stream; again: back to the grid.
      const tile = tiles.get(cam.cameraId)
      tile.full = !tile.full
      el.classList.toggle('full', tile.full)
      ev.target.textContent = tile.full ? 'Back to grid' : 'Full view'
      reopen(cam.cameraId, tile)
    })
    el.querySelector('.disconnect').addEventListener('click', async (ev) => {
      ev.target.disabled = true
      try {
        await api('/api/cameras/disconnect', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ cameraId: cam.cameraId })
        })
        removeTile(cam.cameraId)
      } catch (e) {
        show(el.querySelector('.tile-error'), e.message)
        ev.target.disabled = false
      }
    })
    grid.appendChild(el)
    const tile = {
      el,
      ws: null,
      url: null,
      videoUrl: null,
      retry: null,
      stopped: false,
      mode: null,
      full: false,
      hasSub: Boolean(cam.subStream),
      subUp: Boolean(cam.subStream && cam.subStream.state === 'streaming'),
      videoStream: null
    }
    tiles.set(cam.cameraId, tile)
    const refused = FORCE_JPEG ? 'JPEG frames asked for (?video=jpeg)' : mseRefusal(null)
    setMode(tile, refused ? 'jpeg' : 'mse', refused)
    openStream(cam.cameraId, tile)
    return tile
  }

  function removeTile (id) {
    const tile = tiles.get(id)
    if (!tile) return
    closeStream(tile)
    tile.el.remove()
    tiles.delete(id)
  }

  function updateTile (tile, cam) {
    const badge = tile.el.querySelector('.badge')
    badge.textContent = cam.state
    badge.className = `badge ${cam.state}`
    const parts = []
    if (cam.width && cam.height) parts.push(`${cam.width}×${cam.height}`)
    parts.push(`${cam.fps.toFixed(1)} fps`)
    if (cam.codec) parts.push(cam.profile ? `${cam.codec} ${cam.profile}` : cam.codec)
    parts.push(`${cam.frames} frames`)
    if (cam.reconnects) parts.push(`${cam.reconnects} reconnects`)
    // Cluster mode: the node running the camera.
    if (cam.owner !== undefined) parts.push(cam.owner ? `on ${cam.owner}` : 'no owner now')
    const sub = cam.subStream
    tile.subUp = Boolean(sub && sub.state === 'streaming')
    if (tile.mode === 'mse' && tile.ws && tile.videoStream !== servedOf(tile)) reopen(cam.cameraId, tile)
    if (sub) parts.push(sub.state === 'streaming' && sub.width ? `sub-stream ${sub.width}×${sub.height}` : 'sub-stream off')
    tile.el.querySelector('.info .details').textContent = parts.join(' · ')
    tile.el.querySelector('.info .details').title = sub && sub.off ? `sub-stream: ${sub.off}` : ''
    const err = cam.state !== 'streaming' && cam.lastError ? `${cam.lastError.code}: ${cam.lastError.message}` : ''
    show(tile.el.querySelector('.tile-error'), err)
  }

  async function poll () {
    try {
      const { cameras } = await api('/api/cameras')
      const seen = new Set()
      for (const cam of cameras) {
        seen.add(cam.cameraId)
        updateTile(tiles.get(cam.cameraId) || addTile(cam), cam)
      }
      for (const id of [...tiles.keys()]) if (!seen.has(id)) removeTile(id)
      empty.hidden = cameras.length > 0
      serverStatus.textContent = `${cameras.length} camera${cameras.length === 1 ? '' : 's'} · updated ${new Date().toLocaleTimeString()}`
      serverStatus.className = 'muted'
    } catch (e) {
      serverStatus.textContent = `cannot reach the server: ${e.message}`
      serverStatus.className = 'error'
    }
  }

  // ---- connect form ----

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault()
    show(connectError, '')
    show(connectOk, '')
    const data = Object.fromEntries(new FormData(form))
    const body = { cameraId: data.cameraId.trim(), ip: data.ip.trim(), streamPath: data.streamPath || '/', transport: data.transport }
    if (data.port) body.port = Number(data.port)
    if (data.username) {
      body.username = data.username
      body.password = data.password
    }
    const button = form.querySelector('button')
    button.disabled = true
    button.textContent = 'Connecting…'
    try {
      await api('/api/cameras/connect', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      show(connectOk, `Connected ${body.cameraId}.`)
      form.elements.password.value = ''
      await poll()
    } catch (e) {
      show(connectError, e.code ? `${e.code}: ${e.message}` : e.message)
    } finally {
      button.disabled = false
      button.textContent = 'Connect'
    }
  })

  async function main () {
    try {
      wsUrl = (await api('/api/cameras/websocket-url')).url
    } catch {
      wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`
    }
    await poll()
    setInterval(poll, POLL_MS)
  }
  main()
})()
