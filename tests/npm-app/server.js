// A user's existing Express backend in the seed's shape (its own /health and /api/moondream
// routes), with camkit added: the packaging test installs camkit from its tarballs next to
// this file, outside the repository, and starts it.
const express = require('express')
const { CameraManager } = require('camkit')
const { camerasRouter, attachWebSocket, mountViewer } = require('camkit/express')

const app = express()
const PORT = process.env.PORT || 5000

// Middleware
app.use(express.json())

// Import routes
const moondreamRoutes = require('./routes/moondream') // Your existing routes
const cameras = new CameraManager()

// Health check
app.get('/health', (req, res) => {
  res.json({ status: 'ok', services: { express: 'running', cameras: cameras.list().length }, timestamp: new Date().toISOString() })
})

// Mount routes
app.use('/api/moondream', moondreamRoutes) // Existing
app.use('/api/cameras', camerasRouter(cameras))
mountViewer(app)

const server = app.listen(PORT, '127.0.0.1', () => {
  console.log(`Express server running on port ${server.address().port}`)
})
attachWebSocket(server, cameras)

process.on('SIGTERM', () => {
  cameras.close()
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
})
