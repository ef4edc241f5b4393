'use strict'
// The package's entry point: checks that a native binary for this platform is there, then
// hands over to the loader napi build generates (index.js), which picks it.
//
// Why a file in front of the generated loader: when no binary fits, the generated loader
// throws "Cannot find native binding" with advice about an npm bug, which sends a user on
// an unsupported platform (or one installed with --omit=optional) the wrong way. Here the
// same places the generated loader looks in are checked first, and the error says which
// platform this is, which ones have prebuilt binaries, and what to do.
const fs = require('node:fs')
const path = require('node:path')

const pkg = require('./package.json')
const { platformName, supportedPlatforms } = require('./platform')

/** Whether the generated loader has a binary to load for `name`. */
function binaryPresent (name) {
  if (process.env.NAPI_RS_NATIVE_LIBRARY_PATH) return true
  if (fs.existsSync(path.join(__dirname, `${pkg.napi.binaryName}.${name}.node`))) return true
  try {
    require.resolve(`${pkg.name}-${name}`)
    return true
  } catch {
    return false
  }
}

/** The error when no binary fits: names the platform and what to do. */
function noBinaryError (name) {
  const supported = supportedPlatforms()
  const known = supported.includes(name)
  const lines = [
    `camkit: no native binary for this platform (${name}, Node ${process.version}).`,
    known
      ? `A prebuilt one exists: the package ${pkg.name}-${name}, an optional dependency of ${pkg.name}, is not installed ` +
        '(installed with --omit=optional or --no-optional, or node_modules copied from another platform). ' +
        `Reinstall on this machine with optional dependencies: npm install ${pkg.name}.`
      : `Prebuilt binaries exist for: ${supported.join(', ')}. On another platform, build it from source ` +
        '(Rust toolchain, nasm, cmake): in a clone of the camkit repository, cd bindings-node && npm ci && npm run build, ' +
        'then install that folder, or point NAPI_RS_NATIVE_LIBRARY_PATH at the built .node file.'
  ]
  const err = new Error(lines.join('\n'))
  err.code = 'ERR_CAMKIT_NO_BINARY'
  err.platform = name
  return err
}

const name = platformName()
if (!binaryPresent(name)) throw noBinaryError(name)
module.exports = require('./index.js')
