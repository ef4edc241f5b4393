'use strict'
// Cameras to connect at start, from CAMKIT_CAMERAS_FILE (a JSON file) or CAMKIT_CAMERAS
// (JSON in the variable): an array of camera entries, or {"cameras": [...]}.
//
// An entry is a POST /api/cameras/connect body ({"cameraId","ip","port","streamPath",
// "username","password","transport"} or {"cameraId","url"}); camkit's own names are accepted
// too (id, host, path). Configured cameras are persistent: one that is offline at start is
// kept and retried in the background. CAMKIT_DECODER (auto, openh264, libavcodec) is the
// decoder of every camera whose entry or connect body names none; a bad value stops the start.
const fs = require('node:fs')
const { connectConfig, defaultDecoder } = require('./validate')

const ALIASES = { id: 'cameraId', host: 'ip', path: 'streamPath' }

function fromEnv (env = process.env) {
  defaultDecoder(env)
  let text
  let source
  if (env.CAMKIT_CAMERAS_FILE) {
    source = `CAMKIT_CAMERAS_FILE (${env.CAMKIT_CAMERAS_FILE})`
    try {
      text = fs.readFileSync(env.CAMKIT_CAMERAS_FILE, 'utf8')
    } catch (e) {
      throw new Error(`${source}: cannot read it: ${e.code || e.message}`)
    }
  } else if (env.CAMKIT_CAMERAS) {
    source = 'CAMKIT_CAMERAS'
    text = env.CAMKIT_CAMERAS
  } else {
    return null
  }
  let parsed
  try {
    parsed = JSON.parse(text)
  } catch {
    // Not the parser's message: it quotes the text, which may hold a password.
    throw new Error(`${source}: not valid JSON`)
  }
  const entries = Array.isArray(parsed) ? parsed : parsed && Array.isArray(parsed.cameras) ? parsed.cameras : null
  if (!entries) throw new Error(`${source}: must be a JSON array of cameras, or {"cameras": [...]}`)
  return entries.map((entry, i) => {
    if (!entry || typeof entry !== 'object') throw new Error(`${source}: camera ${i}: must be an object`)
    const body = {}
    for (const [k, v] of Object.entries(entry)) body[ALIASES[k] || k] = v
    try {
      return { persistent: true, ...connectConfig(body, env) }
    } catch (e) {
      throw new Error(`${source}: camera ${i}: ${e.message}`)
    }
  })
}

module.exports = { fromEnv }
