'use strict'
// Moondream on the camera tiles: an "ask" box under each live picture (the answer streams in
// as it is generated), Detect / Point buttons that draw what Moondream found over the live
// picture (a canvas laid over it; coordinates 0..1 of the picture, scaled to where the picture
// is drawn in the tile), and a note saying how to turn Moondream on when the server has no
// MOONDREAM_API_KEY / MOONDREAM_URL. Tiles are made by app.js; this file finds them as they
// appear in #grid, so the two stay independent.
;(() => {
  const grid = document.getElementById('grid')
  const note = document.getElementById('moondream-note')
  const COLOURS = { box: '#39ff14', point: '#ff2bd6', shadow: 'rgba(0, 0, 0, 0.85)' }
  let status = null

  /** The API token's header when the server wants one (app.js keeps the token). */
  const auth = () => (window.camkitAuth ? window.camkitAuth.headers() : {})

  function post (path, body) {
    return fetch(path, { method: 'POST', headers: { ...auth(), 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
  }

  async function errorOf (res) {
    let body = null
    try {
      body = await res.json()
    } catch {}
    return body && body.error ? `${body.code}: ${body.error}` : `${res.status} ${res.statusText}`
  }

  /** Reads a text/event-stream response, calling onEvent(event, data) for each event. */
  async function readEvents (res, onEvent) {
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    let buf = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      buf += decoder.decode(value, { stream: true })
      let i
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i)
        buf = buf.slice(i + 2)
        let event = 'message'
        let data = ''
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7)
          else if (line.startsWith('data: ')) data += line.slice(6)
        }
        if (data) onEvent(event, JSON.parse(data))
      }
    }
  }

  // ---- the overlay: boxes and points over the live picture ----

  /** Where the picture is drawn in its box (the <img> is object-fit: contain). */
  function contentRect (boxW, boxH, picW, picH) {
    const scale = Math.min(boxW / picW, boxH / picH)
    const w = picW * scale
    const h = picH * scale
    return { x: (boxW - w) / 2, y: (boxH - h) / 2, w, h }
  }

  function draw (t) {
    const canvas = t.canvas
    const dpr = window.devicePixelRatio || 1
    const cw = canvas.clientWidth
    const ch = canvas.clientHeight
    canvas.width = Math.round(cw * dpr)
    canvas.height = Math.round(ch * dpr)
    const ctx = canvas.getContext('2d')
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
    ctx.clearRect(0, 0, cw, ch)
    const o = t.overlay
    canvas.dataset.shapes = o ? String(o.objects.length + o.points.length) : '0'
    if (!o || !cw || !ch) return
    const r = contentRect(cw, ch, o.width, o.height)
    ctx.lineWidth = 3
    ctx.font = '600 12px system-ui, sans-serif'
    for (const b of o.objects) {
      const x = r.x + b.xMin * r.w
      const y = r.y + b.yMin * r.h
      const w = (b.xMax - b.xMin) * r.w
      const h = (b.yMax - b.yMin) * r.h
      ctx.strokeStyle = COLOURS.shadow
      ctx.lineWidth = 5
      ctx.strokeRect(x, y, w, h)
      ctx.strokeStyle = COLOURS.box
      ctx.lineWidth = 3
      ctx.strokeRect(x, y, w, h)
      const label = o.label
      const tw = ctx.measureText(label).width + 8
      ctx.fillStyle = COLOURS.box
      ctx.fillRect(x - 1.5, Math.max(0, y - 18), tw, 16)
      ctx.fillStyle = '#06101d'
      ctx.fillText(label, x + 2.5, Math.max(12, y - 6))
    }
    for (const p of o.points) {
      const x = r.x + p.x * r.w
      const y = r.y + p.y * r.h
      ctx.beginPath()
      ctx.arc(x, y, 7, 0, 2 * Math.PI)
      ctx.fillStyle = COLOURS.point
      ctx.fill()
      ctx.lineWidth = 2
      ctx.strokeStyle = COLOURS.shadow
      ctx.stroke()
    }
  }

  function setOverlay (t, overlay) {
    t.overlay = overlay
    draw(t)
  }

  // ---- one tile ----

  function attach (tile) {
    if (tile.querySelector('.md-ask')) return
    const cameraId = tile.dataset.camera
    const picture = tile.querySelector('.picture')
    const canvas = document.createElement('canvas')
    canvas.className = 'md-overlay'
    canvas.setAttribute('aria-hidden', 'true')
    picture.appendChild(canvas)

    const form = document.createElement('form')
    form.className = 'md-ask'
    form.autocomplete = 'off'
    form.innerHTML =
      '<input class="md-question" name="question" maxlength="2000" placeholder="Ask about this camera, or name an object" aria-label="question or object">' +
      '<button type="submit" class="md-ask-button">Ask</button>' +
      '<button type="button" class="md-detect">Detect</button>' +
      '<button type="button" class="md-point">Point</button>' +
      '<button type="button" class="md-clear secondary" title="remove the boxes and points">Clear</button>'
    const answer = document.createElement('p')
    answer.className = 'md-answer'
    answer.setAttribute('aria-live', 'polite')
    answer.hidden = true
    const footer = tile.querySelector('footer')
    tile.insertBefore(form, footer)
    tile.insertBefore(answer, footer)
    form.hidden = !(status && status.configured)

    const t = { canvas, overlay: null }
    new ResizeObserver(() => draw(t)).observe(canvas)
    const input = form.querySelector('.md-question')
    const buttons = [...form.querySelectorAll('button')]

    const show = (text, kind) => {
      answer.textContent = text
      answer.className = `md-answer${kind ? ' ' + kind : ''}`
      answer.hidden = !text
    }
    const busy = async (fn) => {
      for (const b of buttons) b.disabled = true
      try {
        await fn()
      } catch (e) {
        show(`cannot reach the server: ${e.message}`, 'error')
      } finally {
        for (const b of buttons) b.disabled = false
      }
    }

    form.addEventListener('submit', (ev) => {
      ev.preventDefault()
      const question = input.value.trim()
      if (!question) return show('Type a question first.', 'error')
      busy(async () => {
        show('…', 'pending')
        const res = await post('/api/moondream/query?stream=1', { cameraId, question })
        if (!res.ok || !/event-stream/.test(res.headers.get('content-type') || '')) {
          return show(await errorOf(res), 'error')
        }
        let text = ''
        await readEvents(res, (event, data) => {
          if (event === 'chunk') {
            text += data.text
            show(text, 'pending')
          } else if (event === 'done') {
            show(data.answer)
            answer.dataset.seq = data.seq
          } else if (event === 'error') {
            show(`${text ? text + ' … ' : ''}${data.code}: ${data.error}`, 'error')
          }
        })
      })
    })

    for (const kind of ['detect', 'point']) {
      form.querySelector(`.md-${kind}`).addEventListener('click', () => {
        const object = input.value.trim()
        if (!object) return show(`Name an object to ${kind} first (e.g. "person").`, 'error')
        busy(async () => {
          show(`${kind === 'detect' ? 'Detecting' : 'Pointing at'} ${object}…`, 'pending')
          const res = await post(`/api/moondream/${kind}`, { cameraId, object })
          if (!res.ok) return show(await errorOf(res), 'error')
          const r = await res.json()
          const found = kind === 'detect' ? r.objects : r.points
          setOverlay(t, { label: object, width: r.width, height: r.height, objects: kind === 'detect' ? r.objects : [], points: kind === 'point' ? r.points : [] })
          show(`${found.length} × ${object} (picture #${r.seq})`)
        })
      })
    }
    form.querySelector('.md-clear').addEventListener('click', () => {
      setOverlay(t, null)
      show('')
    })
  }

  async function main () {
    try {
      const res = await fetch('/api/moondream/status', { headers: auth() })
      status = await res.json()
      if (!res.ok) status = { configured: false, message: status.error || `${res.status} ${res.statusText}` }
    } catch {
      status = { configured: false, message: 'cannot ask the server whether Moondream is configured' }
    }
    if (!status.configured) {
      note.textContent = `Ask boxes are off. ${status.message}`
      note.hidden = false
    }
    for (const form of document.querySelectorAll('.md-ask')) form.hidden = !status.configured
    for (const tile of grid.querySelectorAll('.tile[data-camera]')) attach(tile)
  }

  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) if (n.nodeType === 1 && n.matches('.tile[data-camera]')) attach(n)
    }
  }).observe(grid, { childList: true })
  main()
})()
