'use strict'
// Which cameras POST /api/cameras/connect may reach: CAMKIT_ALLOWED_CAMERA_NETS, a
// comma-separated list of networks in CIDR notation, IPv4 and IPv6
// (`192.168.1.0/24, 10.20.0.0/16, fd00:cafe::/48`; a bare address is that one host).
// Unset: any host (the default, for a server only its owner can reach).
//
// With a list, the server cannot be used to probe other hosts: the camera's host is
// resolved here first (dns.lookup, every address it returns), and unless *every* address is
// inside a listed network the request gets 403 {"code":"HOST_NOT_ALLOWED"} before anything
// is sent to the camera. The camera is then connected to an address that was checked (the
// host name is replaced by it: its first IPv4 address, else its first), so a DNS answer that
// changes afterwards cannot redirect the connection or its reconnects. Loopback is not special: it is allowed only when listed
// (127.0.0.1/32, ::1). Cameras from the configuration (CAMKIT_CAMERAS*, the demo camera)
// are the operator's and are not checked.
const dns = require('node:dns')
const net = require('node:net')
const { HttpError } = require('./errors')
const { rtspUrlParts } = require('./validate')

const LOOKUP_TIMEOUT_MS = 5000

/** The networks of `text` → {blockList, nets}; throws naming the bad entry. */
function parseNets (text) {
  const blockList = new net.BlockList()
  const nets = []
  for (const raw of text.split(',')) {
    const entry = raw.trim()
    if (entry === '') continue
    const m = /^([^/]+?)(?:\/(\d{1,3}))?$/.exec(entry)
    const address = m && m[1].replace(/^\[(.*)\]$/, '$1')
    const family = address ? net.isIP(address) : 0
    const max = family === 6 ? 128 : 32
    const prefix = m && m[2] !== undefined ? Number(m[2]) : max
    if (!family || prefix > max) {
      throw new Error(`CAMKIT_ALLOWED_CAMERA_NETS: ${JSON.stringify(entry)} is not a network in CIDR notation (e.g. 192.168.1.0/24, 10.0.0.5, fd00::/8)`)
    }
    blockList.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4')
    nets.push(m[2] === undefined ? address : `${address}/${prefix}`)
  }
  if (nets.length === 0) throw new Error('CAMKIT_ALLOWED_CAMERA_NETS: set but lists no network')
  return { blockList, nets }
}

function notAllowed (field) {
  return new HttpError('HOST_NOT_ALLOWED',
    `${field}: the camera's address is not inside the camera networks this server may connect to ` +
    '(CAMKIT_ALLOWED_CAMERA_NETS); ask its operator to add the network')
}

/** dns.lookup of every address, bounded in time; [] when the name does not resolve. */
function lookupAll (host) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), LOOKUP_TIMEOUT_MS)
    dns.lookup(host, { all: true, verbatim: true }, (err, addresses) => {
      clearTimeout(timer)
      resolve(err ? [] : addresses.map((a) => a.address))
    })
  })
}

/**
 * The allowlist of `text` (CAMKIT_ALLOWED_CAMERA_NETS), or null when unset. Its
 * `check(config)` resolves to the config to connect (host replaced by the checked
 * address), or rejects with HOST_NOT_ALLOWED (403) / TIMEOUT (504).
 */
function createAllowlist (text) {
  if (text === undefined || text.trim() === '') return null
  const { blockList, nets } = parseNets(text)
  const inside = (address) => {
    const family = net.isIP(address)
    return family !== 0 && blockList.check(address, family === 6 ? 'ipv6' : 'ipv4')
  }

  async function check (config) {
    const field = config.url ? 'url' : 'ip'
    const parts = config.url ? rtspUrlParts(config.url) : { host: config.host }
    if (!parts) throw notAllowed(field) // camkit would refuse the url anyway
    const host = parts.host.replace(/^\[(.*)\]$/, '$1')
    let addresses
    if (net.isIP(host)) {
      addresses = [host]
    } else {
      addresses = await lookupAll(host)
      if (addresses === null) {
        throw new HttpError('TIMEOUT', `${field}: resolving the camera's host name took longer than ${LOOKUP_TIMEOUT_MS / 1000} s`)
      }
    }
    // Unresolvable names are refused like outside ones: no oracle for internal DNS names.
    if (addresses.length === 0 || !addresses.every(inside)) throw notAllowed(field)
    // Cameras are mostly IPv4: prefer it where a name has both (one address is pinned).
    const pinned = addresses.find((a) => net.isIPv4(a)) || addresses[0]
    if (!config.url) return { ...config, host: pinned }
    const bracketed = net.isIPv6(pinned) ? `[${pinned}]` : pinned
    return { ...config, url: parts.prefix + bracketed + parts.suffix }
  }

  return { nets, inside, check, describe: () => `camera allowlist: ${nets.join(', ')}` }
}

module.exports = { createAllowlist, parseNets }
