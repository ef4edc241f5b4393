'use strict'
// `npm run package`: the tarballs `npm publish` would upload, in <repository>/target/npm/:
//   camkit-<version>.tgz                    the main package: loader, types, camkit/express,
//                                           the platform packages as optionalDependencies
//   camkit-<platform>-<version>.tgz         this machine's platform package: the .node file
//
// Steps: `napi build --platform --release` into the platform package's folder (made by
// `napi create-npm-dirs` from napi.targets), a staged copy of the main package with its
// optionalDependencies filled in (what `napi pre-publish` does before publishing, without
// its GitHub release), then `npm pack` of both. Nothing is published.
//
//   node scripts/package.js                 build the release binary, then pack
//   node scripts/package.js --addon FILE    pack FILE (an already-built .node) instead of
//                                           building; the packing is the same
//
// A release publishes one platform package per target: each CI runner of the matrix runs
// this script and publishes its platform tarball, then one job publishes the main one.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const PKG_DIR = path.join(__dirname, '..')
const OUT = path.join(PKG_DIR, '..', 'target', 'npm')
const pkg = JSON.parse(fs.readFileSync(path.join(PKG_DIR, 'package.json'), 'utf8'))
const { platformName, supportedPlatforms } = require('../platform')

function run (cmd, args, cwd) {
  console.log(`$ ${[cmd, ...args].join(' ')}`)
  return execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })
}

function usage (msg) {
  console.error(`package: ${msg}\nusage: node scripts/package.js [--addon FILE]`)
  process.exit(2)
}

function main (argv) {
  let addon = null
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--addon') {
      addon = argv[++i]
      if (!addon) usage('--addon needs a file')
    } else {
      usage(`unknown argument ${argv[i]}`)
    }
  }
  const platform = platformName()
  if (!supportedPlatforms().includes(platform)) {
    usage(`this machine (${platform}) is not in napi.targets of package.json`)
  }
  const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx'
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

  // The platform packages' folders (bindings-node/npm/<platform>/), from napi.targets.
  run(npx, ['napi', 'create-npm-dirs'], PKG_DIR)
  const platformDir = path.join(PKG_DIR, 'npm', platform)
  const nodeFile = `${pkg.napi.binaryName}.${platform}.node`
  if (addon) {
    fs.copyFileSync(path.resolve(addon), path.join(platformDir, nodeFile))
  } else {
    run(npx, ['napi', 'build', '--platform', '--release', '--no-js', '--output-dir', path.relative(PKG_DIR, platformDir), '--dts', 'build.d.ts'], PKG_DIR)
    fs.rmSync(path.join(platformDir, 'build.d.ts'), { force: true })
  }
  if (!fs.existsSync(path.join(platformDir, nodeFile))) throw new Error(`package: ${nodeFile} was not built`)

  // The main package, staged: the committed package.json plus what publishing adds.
  const stage = path.join(OUT, 'stage', pkg.name)
  fs.rmSync(stage, { recursive: true, force: true })
  fs.mkdirSync(stage, { recursive: true })
  const staged = { ...pkg }
  delete staged.devDependencies
  delete staged.scripts
  staged.optionalDependencies = Object.fromEntries(supportedPlatforms().map((p) => [`${pkg.name}-${p}`, pkg.version]))
  staged.files = pkg.files.filter((f) => !f.endsWith('.node'))
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(staged, null, 2) + '\n')
  for (const entry of [...staged.files, 'README.md']) {
    const from = path.join(PKG_DIR, entry)
    if (fs.existsSync(from)) fs.cpSync(from, path.join(stage, entry), { recursive: true })
  }

  fs.mkdirSync(OUT, { recursive: true })
  const packed = []
  for (const dir of [platformDir, stage]) {
    const out = run(npm, ['pack', '--json', '--pack-destination', OUT], dir)
    for (const p of JSON.parse(out)) packed.push(path.join(OUT, p.filename))
  }
  for (const p of packed) console.log(`packed ${path.relative(process.cwd(), p)}`)
  return packed
}

main(process.argv.slice(2))
