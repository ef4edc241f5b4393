#!/usr/bin/env node
'use strict'
// Makes the repository ready to run the Express example (`npm start` runs this first):
//
// 1. npm dependencies: `npm install` at the root (npm workspaces: bindings-node and
//    examples/express-server) when they are missing.
// 2. The native module: `napi build --platform --release` in bindings-node when there is no
//    release build newer than every Rust source it is built from.
//
//   node scripts/ensure-native.js           # release build (what `npm start` uses)
//   node scripts/ensure-native.js --debug   # debug build (faster to compile)
//
// A build made by this script is recorded in bindings-node/.native-build.json (git-ignored):
// a .node file that a debug build (the tests) wrote since is rebuilt as release.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..')
const BINDING = path.join(ROOT, 'bindings-node')
const STAMP = path.join(BINDING, '.native-build.json')
const profile = process.argv.includes('--debug') ? 'debug' : 'release'

function run (cmd, args, cwd) {
  console.log(`[ensure-native] ${path.relative(ROOT, cwd) || '.'}$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' })
  if (r.error) throw r.error
  if (r.status !== 0) {
    console.error(`[ensure-native] ${cmd} ${args.join(' ')} failed (exit ${r.status})`)
    process.exit(r.status || 1)
  }
}

/** Newest modification time (ms) of the files under `p` whose names pass `keep`. */
function newest (p, keep) {
  let st
  try {
    st = fs.statSync(p)
  } catch {
    return 0
  }
  if (!st.isDirectory()) return keep(p) ? st.mtimeMs : 0
  let t = 0
  for (const name of fs.readdirSync(p)) {
    if (name === 'target' || name === 'node_modules' || name.startsWith('.')) continue
    t = Math.max(t, newest(path.join(p, name), keep))
  }
  return t
}

function nativeFile () {
  const f = fs.readdirSync(BINDING).filter((n) => /^camkit\..+\.node$/.test(n))
  return f.length ? path.join(BINDING, f[0]) : null
}

function depsInstalled () {
  const need = ['@napi-rs/cli/package.json', 'express/package.json', 'ws/package.json']
  return need.every((m) => {
    try {
      require.resolve(m, { paths: [BINDING, path.join(ROOT, 'examples', 'express-server')] })
      return true
    } catch {
      return false
    }
  })
}

function needsBuild () {
  const node = nativeFile()
  if (!node) return 'no native module yet'
  const mtime = fs.statSync(node).mtimeMs
  let stamp = null
  try {
    stamp = JSON.parse(fs.readFileSync(STAMP, 'utf8'))
  } catch {}
  if (profile === 'release' && (!stamp || stamp.profile !== 'release' || stamp.mtimeMs !== mtime)) {
    return 'the native module is not a release build'
  }
  const rust = (f) => /\.(rs|toml)$/.test(f) || f.endsWith('Cargo.lock')
  const sources = Math.max(
    newest(path.join(ROOT, 'core'), rust),
    newest(path.join(BINDING, 'src'), rust),
    newest(path.join(BINDING, 'Cargo.toml'), rust),
    newest(path.join(BINDING, 'build.rs'), () => true),
    newest(path.join(ROOT, 'Cargo.toml'), rust),
    newest(path.join(ROOT, 'Cargo.lock'), rust)
  )
  if (sources > mtime) return 'Rust sources changed since the last build'
  return null
}

if (!depsInstalled()) run('npm', ['install', '--no-audit', '--no-fund'], ROOT)

const why = needsBuild()
if (why) {
  console.log(`[ensure-native] building the native module (${profile}): ${why}`)
  const args = ['napi', 'build', '--platform']
  if (profile === 'release') args.push('--release')
  run('npx', args, BINDING)
  const node = nativeFile()
  fs.writeFileSync(STAMP, JSON.stringify({ profile, mtimeMs: fs.statSync(node).mtimeMs }) + '\n')
} else {
  console.log(`[ensure-native] native module is up to date (${path.relative(ROOT, nativeFile())})`)
}
