'use strict'
// GET /metrics: Prometheus text format (version 0.0.4). Per camera: state, fps, bitrate and
// the frame counters camkit keeps; per server: streaming clients and frames sent or skipped.
//
// A camera with a sub-stream (config subStream) has, beside its main stream's samples
// (labels {camera}), its sub-stream's in the same families with stream="sub" (state, fps,
// size, frames received / decoded / dropped, JPEG encodes, reconnects), and
// camkit_camera_sub_stream_up (1 while the sub-stream streams). `sum by (camera)` adds both
// streams' work; `{stream=""}` selects the main streams.

const STATES = ['connecting', 'streaming', 'reconnecting', 'stopped']

/**
 * Upper bounds (ms) of the buckets of camkit_video_segment_delay_seconds: the time from a
 * frame's arrival in camkit to its segment's write to a viewer's socket.
 */
const DELAY_BUCKETS_MS = [0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 25, 50, 100, 250, 1000]

function createMetrics () {
  return {
    gauges: { wsClients: 0, mjpegClients: 0, videoClients: 0 },
    counters: { wsFramesSent: 0, wsFramesSkipped: 0, mjpegFramesSent: 0, mjpegFramesSkipped: 0, snapshots: 0, videoSegmentsSent: 0, videoBytesSent: 0 },
    // per bucket of DELAY_BUCKETS_MS (not cumulative), then the overflow; sum in ms
    videoDelay: { counts: new Array(DELAY_BUCKETS_MS.length + 1).fill(0), sumMs: 0, n: 0 }
  }
}

/** Records the delay of one media segment written to a viewer (ms). */
function observeVideoDelay (metrics, ms) {
  const h = metrics.videoDelay
  let i = 0
  while (i < DELAY_BUCKETS_MS.length && ms > DELAY_BUCKETS_MS[i]) i++
  h.counts[i]++
  h.sumMs += ms
  h.n++
}

/** A label value, escaped as the text format requires. */
function label (v) {
  return String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

/**
 * The metrics text. In cluster mode (`cameras` from clusterCameras()) the per-camera
 * figures are those of the cameras this node runs (each camera is counted once across the
 * nodes' scrapes), and camkit_cluster_* families give the cluster as this node sees it.
 */
async function renderMetrics (cameras, metrics) {
  const local = cameras.manager ?? cameras
  const list = cameras.closed ? [] : await local.list()
  const out = []
  const family = (name, type, help, samples) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`).join(',')
      out.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : 0}`)
    }
  }
  const perCamera = (fn) => list.map((s) => [{ camera: s.id }, fn(s)])
  const withSub = list.filter((s) => s.subStream)
  /** The main streams' samples of `fn`, then the sub-streams' (stream="sub"). */
  const perStream = (fn) => [
    ...perCamera(fn),
    ...withSub.map((s) => [{ camera: s.id, stream: 'sub' }, fn(s.subStream)])
  ]
  const states = (s, labels) => STATES.map((st) => [{ ...labels, state: st }, s.state === st ? 1 : 0])

  family('camkit_cameras', 'gauge', 'Cameras connected to this server (in any state).', [[{}, list.length]])
  family('camkit_camera_state', 'gauge', 'Camera state: 1 for the current state, 0 for the others (stream="sub": the sub-stream\'s).',
    [...list.flatMap((s) => states(s, { camera: s.id })),
      ...withSub.flatMap((s) => states(s.subStream, { camera: s.id, stream: 'sub' }))])
  family('camkit_camera_sub_stream_up', 'gauge', '1 while the camera\'s sub-stream streams (it serves requests), else 0 (the main stream serves them).',
    withSub.map((s) => [{ camera: s.id }, s.subStream.state === 'streaming' ? 1 : 0]))
  family('camkit_camera_fps', 'gauge', 'Frames per second received from the camera, over the last few seconds.', perStream((s) => s.fps))
  family('camkit_camera_bitrate_bps', 'gauge', 'Bits per second received from the camera, over the last few seconds.', perCamera((s) => s.bitrateBps))
  family('camkit_camera_width_pixels', 'gauge', 'Picture width (0 until known).', perStream((s) => s.width ?? 0))
  family('camkit_camera_height_pixels', 'gauge', 'Picture height (0 until known).', perStream((s) => s.height ?? 0))
  family('camkit_camera_frames_received_total', 'counter', 'Compressed frames received since connect.', perStream((s) => s.framesReceived))
  family('camkit_camera_frames_decoded_total', 'counter', 'Frames decoded to pictures.', perStream((s) => s.framesDecoded))
  family('camkit_camera_frames_dropped_total', 'counter', 'Frames dropped (decoder behind, corrupt data, lost packets).', perStream((s) => s.framesDropped))
  family('camkit_camera_jpeg_encodes_total', 'counter', 'JPEG encodes made from the camera\'s pictures.', perStream((s) => s.jpegEncodes))
  family('camkit_camera_partial_frames_skipped_total', 'counter', 'Frames skipped because part of them never arrived (joined mid-frame, lost packets, undepacketizable data).', perCamera((s) => s.partialFramesSkipped))
  family('camkit_camera_video_lost_seconds_total', 'counter', 'Time without video since the camera first streamed (broken streams, reconnects, frames skipped after damage).', perCamera((s) => (s.videoLostMs ?? 0) / 1000))
  family('camkit_camera_picture_stale', 'gauge', '1 while the latest picture is served stale (the camera has no video), else 0.', perCamera((s) => s.pictureStale ? 1 : 0))
  family('camkit_camera_picture_age_seconds', 'gauge', 'Age of the latest picture (0 before the first).', perCamera((s) => (s.pictureAgeMs ?? 0) / 1000))
  family('camkit_camera_reconnects_total', 'counter', 'Times the stream was reopened after a failure.', perStream((s) => s.reconnects))
  family('camkit_camera_last_frame_timestamp_seconds', 'gauge', 'When the last frame arrived (Unix time; 0 before the first).',
    perCamera((s) => (s.lastFrameMs ?? 0) / 1000))

  const { gauges: g, counters: c } = metrics
  family('camkit_ws_clients', 'gauge', 'Open WebSocket connections on /ws.', [[{}, g.wsClients]])
  family('camkit_ws_frames_sent_total', 'counter', 'Frames sent to WebSocket clients.', [[{}, c.wsFramesSent]])
  family('camkit_ws_frames_skipped_total', 'counter', 'Frames skipped for WebSocket clients with a full send buffer.', [[{}, c.wsFramesSkipped]])
  family('camkit_mjpeg_clients', 'gauge', 'Open MJPEG streams.', [[{}, g.mjpegClients]])
  family('camkit_mjpeg_frames_sent_total', 'counter', 'Frames sent on MJPEG streams.', [[{}, c.mjpegFramesSent]])
  family('camkit_mjpeg_frames_skipped_total', 'counter', 'Frames skipped for MJPEG clients that read slowly.', [[{}, c.mjpegFramesSkipped]])
  family('camkit_video_clients', 'gauge', 'Open video.mp4 streams.', [[{}, g.videoClients]])
  family('camkit_video_segments_sent_total', 'counter', 'fMP4 segments sent (video.mp4 and the WebSocket video action).', [[{}, c.videoSegmentsSent]])
  family('camkit_video_bytes_sent_total', 'counter', 'fMP4 bytes sent (video.mp4 and the WebSocket video action).', [[{}, c.videoBytesSent]])
  out.push('# HELP camkit_video_segment_delay_seconds Time from a frame\'s arrival in camkit to its fMP4 segment\'s write to a viewer\'s socket (live frames; not the GOP replayed to a new viewer).',
    '# TYPE camkit_video_segment_delay_seconds histogram')
  let cum = 0
  DELAY_BUCKETS_MS.forEach((le, i) => {
    cum += metrics.videoDelay.counts[i]
    out.push(`camkit_video_segment_delay_seconds_bucket{le="${le / 1000}"} ${cum}`)
  })
  out.push(`camkit_video_segment_delay_seconds_bucket{le="+Inf"} ${metrics.videoDelay.n}`,
    `camkit_video_segment_delay_seconds_sum ${metrics.videoDelay.sumMs / 1000}`,
    `camkit_video_segment_delay_seconds_count ${metrics.videoDelay.n}`)
  family('camkit_snapshots_total', 'counter', 'Frames served by GET /api/cameras/:id/frame.', [[{}, c.snapshots]])
  if (typeof cameras.nodes === 'function' && !cameras.closed) clusterFamilies(cameras, family)
  family('process_resident_memory_bytes', 'gauge', 'Resident memory of this process.', [[{}, process.memoryUsage.rss()]])
  const cpu = process.cpuUsage()
  family('process_cpu_seconds_total', 'counter', 'CPU time of this process (user + system).', [[{}, (cpu.user + cpu.system) / 1e6]])
  return out.join('\n') + '\n'
}

/** Cluster mode: the nodes, what each owns, and the requests forwarded to other nodes. */
function clusterFamilies (cameras, family) {
  const v = cameras.nodes()
  const live = v.nodes.filter((n) => n.alive)
  family('camkit_cluster_nats_connected', 'gauge', '1 while this node\'s NATS connection is up.', [[{ node: v.node }, v.natsConnected ? 1 : 0]])
  family('camkit_cluster_nodes', 'gauge', 'Live nodes of the cluster, as this node sees them.', [[{}, live.length]])
  family('camkit_cluster_node_up', 'gauge', '1 for a live node, 0 for one seen live in the last ten minutes that no longer is.', v.nodes.map((n) => [{ node: n.id }, n.alive ? 1 : 0]))
  family('camkit_cluster_node_heartbeat_age_seconds', 'gauge', 'Time since the node\'s last heartbeat was seen here.', v.nodes.map((n) => [{ node: n.id }, n.lastHeartbeatAgeMs / 1000]))
  family('camkit_cluster_cameras_owned', 'gauge', 'Cameras each live node runs (from its heartbeat).', live.map((n) => [{ node: n.id }, n.cameras.length]))
  family('camkit_cluster_cameras_streaming', 'gauge', 'Cameras streaming on each live node (from its heartbeat).', live.map((n) => [{ node: n.id }, n.streaming]))
  family('camkit_cluster_cameras_desired', 'gauge', 'Cameras the cluster should run.', [[{}, v.desired]])
  family('camkit_cluster_cameras_unowned', 'gauge', 'Desired cameras without a live owner right now.', [[{}, v.unowned.length]])
  family('camkit_cluster_forwarded_requests_total', 'counter', 'Requests of this node for a camera another node runs (status, snapshot, subscribe, video, moondream), answered by that node over NATS.',
    Object.entries(cameras.forwarded).map(([kind, n]) => [{ node: v.node, kind }, n]))
  // This node's lease health since it joined (Cluster.view().stats).
  const mine = (name, help, value) => family(name, 'counter', help, [[{ node: v.node }, value]])
  mine('camkit_cluster_lease_claims_total', 'Leases this node claimed (or took back) and started a camera on.', v.stats.leaseClaims)
  mine('camkit_cluster_lease_renewals_total', 'Lease renewals of this node the NATS server acknowledged.', v.stats.leaseRenewals)
  mine('camkit_cluster_lease_renewal_failures_total', 'Lease renewals of this node NATS did not answer (down, slow, reconnecting).', v.stats.leaseRenewalFailures)
  mine('camkit_cluster_leases_lost_total', 'Leases of this node found taken by another node at renewal (the camera was stopped).', v.stats.leasesLost)
  mine('camkit_cluster_leases_released_total', 'Leases this node gave up on purpose (the camera moved or was removed, or the node left).', v.stats.leasesReleased)
  mine('camkit_cluster_fenced_stops_total', 'Cameras this node stopped because their lease could not be renewed in time (fencing).', v.stats.fencedStops)
  mine('camkit_cluster_nats_reconnects_total', 'Times this node\'s NATS connection was established again after it was lost.', v.stats.natsReconnects)
}

module.exports = { createMetrics, renderMetrics, observeVideoDelay, DELAY_BUCKETS_MS }
