'use strict'
// This machine's platform as napi-rs names its platform packages, and the platforms that have
// one (napi.targets); shared by the loader check (loader.js) and `npm run package`.
const pkg = require('./package.json')

/** This machine's platform name as napi-rs spells it (`linux-x64-gnu`, `darwin-arm64` …). */
function platformName (platform = process.platform, arch = process.arch) {
  if (platform === 'linux') return `${platform}-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `${platform}-${arch}-msvc`
  return `${platform}-${arch}`
}

function isMusl () {
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
  const header = report && (typeof report === 'string' ? JSON.parse(report) : report).header
  return !(header && header.glibcVersionRuntime)
}

/** The platforms napi.targets lists, as platform names. */
function supportedPlatforms () {
  const byTriple = {
    'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
    'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
    'x86_64-unknown-linux-musl': 'linux-x64-musl',
    'aarch64-unknown-linux-musl': 'linux-arm64-musl',
    'x86_64-apple-darwin': 'darwin-x64',
    'aarch64-apple-darwin': 'darwin-arm64',
    'x86_64-pc-windows-msvc': 'win32-x64-msvc',
    'aarch64-pc-windows-msvc': 'win32-arm64-msvc'
  }
  return (pkg.napi?.targets || []).map((t) => byTriple[t] || t)
}

module.exports = { platformName, supportedPlatforms }
