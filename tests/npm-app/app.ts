// The same integration in TypeScript: compiled with `tsc --noEmit --strict` against the
// types the camkit tarball ships.
import express from 'express'
import { CameraManager, type CameraStatus, type Frame } from 'camkit'
import { camerasRouter, attachWebSocket, moondreamRouter, metricsHandler, mountViewer, optionsFromEnv, type AccessOptions } from 'camkit/express'

const app = express()
const cameras = new CameraManager()
const access: AccessOptions = { ...optionsFromEnv(), corsOrigins: ['https://example.org'], bodyLimit: 32 * 1024 }
app.use('/api/cameras', camerasRouter(cameras, access))
app.use('/api/moondream', moondreamRouter(cameras, { ...access, apiKey: 'key' }))
app.get('/metrics', metricsHandler(cameras, access))
mountViewer(app, '/viewer')
const server = app.listen(0)
const wss = attachWebSocket(server, cameras, { apiToken: 'a-token-of-sixteen+' })
wss.on('connection', () => undefined)

async function first (id: string): Promise<number> {
  const frame: Frame = await cameras.snapshot(id, { maxWidth: 320 })
  const status: CameraStatus = cameras.status(id)
  return frame.jpeg.length + status.framesReceived
}
void first
