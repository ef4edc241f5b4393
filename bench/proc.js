'use strict'
// What bench/measure.js and bench/video.js share: argument parsing, CPU and RSS of a
// process tree from /proc (utime + stime of a process and all its descendants, in percent
// of one core, as the shared harness reads them, so the figures compare), percentiles.
const fs = require('node:fs')

const HZ = Number(process.env.CLK_TCK || 100)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function parseArgs (argv) {
  const out = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      const next = argv[i + 1]
      if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true
      else out[a.slice(2)] = argv[++i]
    } else out._.push(a)
  }
  return out
}

function statFields (pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return s.slice(s.lastIndexOf(') ') + 2).split(' ') // [0] = state, [1] = ppid, [11] utime, [12] stime
}

function tree (pids) {
  const all = new Set(pids)
  const procs = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number)
  let grew = true
  while (grew) {
    grew = false
    for (const p of procs) {
      if (all.has(p)) continue
      try {
        if (all.has(Number(statFields(p)[1]))) {
          all.add(p)
          grew = true
        }
      } catch {}
    }
  }
  return [...all]
}

function ticks (pids) {
  let t = 0
  for (const p of tree(pids)) {
    try {
      const f = statFields(p)
      t += Number(f[11]) + Number(f[12])
    } catch {}
  }
  return t
}

function rssMb (pids) {
  let kb = 0
  for (const p of tree(pids)) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))[1])
    } catch {}
  }
  return +(kb / 1024).toFixed(1)
}

/** CPU of `pids` (and descendants) while `ms` pass: percent of one core, and CPU seconds. */
async function cpuOver (pids, ms) {
  const a = ticks(pids)
  const t0 = performance.now()
  await sleep(ms)
  const b = ticks(pids)
  const secs = (performance.now() - t0) / 1000
  return { cpu_pct: +((b - a) * 100 / HZ / secs).toFixed(2), cpu_s: (b - a) / HZ, secs: +secs.toFixed(2) }
}

const round = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? null : +x.toFixed(d))
function pct (xs, q) {
  if (!xs.length) return null
  const s = [...xs].sort((a, b) => a - b)
  return round(s[Math.min(s.length - 1, Math.floor(q * s.length))])
}
const median = (xs) => pct(xs, 0.5)

module.exports = { HZ, sleep, parseArgs, statFields, tree, ticks, rssMb, cpuOver, round, pct, median }
