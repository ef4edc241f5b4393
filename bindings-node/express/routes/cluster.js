'use strict'
// GET /api/cluster: the cluster as this node sees it (cluster mode only).
//
//   {"node":"n1","natsConnected":true,"desired":2,"unowned":[],
//    "nodes":[{"id":"n1","thisNode":true,"alive":true,"lastHeartbeatAgeMs":412,
//              "startedAtMs":…,"version":"…","cameras":["cam1"],"streaming":1}, …],
//    "cameras":[{"id":"cam1","owner":"n1","state":"streaming"}, …],
//    "stats":{"leaseClaims":1,"leaseRenewals":120,"leaseRenewalFailures":0,"leasesLost":0,
//             "leasesReleased":0,"fencedStops":0,"natsReconnects":0}}
//
// `stats` are this node's lease counters since it joined (the same figures as the
// camkit_cluster_lease* / _fenced_stops / _nats_reconnects counters of /metrics).
// `nodes` are the live nodes (heartbeat seen within the node TTL) and, for ten minutes, the
// nodes that were live before and are not any more (alive: false, cameras: [],
// lastHeartbeatAgeMs since they were last seen here). `cameras` come from every owner
// (state 'unknown' when its owner did not answer in time, owner null while none runs it).
const express = require('express')

const { route } = require('../errors')

function clusterRouter ({ cameras }) {
  const r = express.Router()
  r.get('/', route(async (req, res) => {
    const view = cameras.nodes()
    const list = await cameras.list()
    res.json({
      ...view,
      cameras: list.map((s) => ({ id: s.id, owner: s.owner ?? null, state: s.state }))
    })
  }))
  return r
}

module.exports = { clusterRouter }
