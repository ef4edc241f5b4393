'use strict'
// The camera grid: a tile per camera with its live picture (binary frames on the WebSocket,
// one socket per tile), state, fps and resolution (polled from /api/cameras), a snapshot
// link and a disconnect button; and a form to connect a camera. No build step, no library.
;(() => {
  const POLL_MS = 1500
  const STREAM = { fps: 10, maxWidth: 960 }

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

  // ---- live pictures over the WebSocket (binary frames: see src/ws.js) ----

  function openStream (id, tile) {
    if (tile.stopped) return
    const ws = new WebSocket(withToken(wsUrl))
    ws.binaryType = 'arraybuffer'
    tile.ws = ws
    ws.onopen = () => ws.send(JSON.stringify({ action: 'subscribe', cameraId: id, binary: true, ...STREAM }))
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
      if (previous) setTimeout(() => URL.revokeObjectURL(previous), 1000)
    }
    ws.onclose = () => {
      // The camera may come back (reconnect with the same id): retry while the tile exists.
      if (!tile.stopped) tile.retry = setTimeout(() => openStream(id, tile), 2000)
    }
  }

  function closeStream (tile) {
    tile.stopped = true
    clearTimeout(tile.retry)
    if (tile.ws) tile.ws.close()
    if (tile.url) URL.revokeObjectURL(tile.url)
  }

  // ---- tiles ----

  function addTile (cam) {
    const el = template.content.firstElementChild.cloneNode(true)
    el.dataset.camera = cam.cameraId
    el.querySelector('.name').textContent = cam.cameraId
    el.querySelector('img.live').alt = `live picture of camera ${cam.cameraId}`
    const snap = el.querySelector('.snapshot')
    snap.href = `/api/cameras/${encodeURIComponent(cam.cameraId)}/frame`
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
    const tile = { el, ws: null, url: null, retry: null, stopped: false }
    tiles.set(cam.cameraId, tile)
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
    tile.el.querySelector('.info').textContent = parts.join(' · ')
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
