'use strict'
// The decoder choice through the Node binding: `decoder` in the config, the status naming
// the decoder that runs, a bad value rejected naming the field.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')

const { CameraManager, startDemoCamera } = require('..')

describe('decoder choice', () => {
  let demo
  let cams
  before(async () => {
    demo = await startDemoCamera({ width: 320, height: 240, fps: 15 })
    cams = new CameraManager()
  })
  after(async () => {
    cams.close()
    await demo.stop()
  })

  it('auto is libavcodec here (the test command installs it); openh264 on request', async () => {
    for (const [id, decoder, want] of [
      ['auto', undefined, /^libavcodec \d+\.\d+\.\d+$/],
      ['fast', 'libavcodec', /^libavcodec \d+\.\d+\.\d+$/],
      ['builtin', 'openh264', /^openh264$/]
    ]) {
      const st = await cams.connect({ id, url: demo.url, decoder })
      assert.match(st.decoder, want, id)
      const frame = await cams.snapshot(id)
      assert.equal(frame.width, 320, id)
      assert.match(cams.status(id).decoder, want, id)
      await cams.disconnect(id)
    }
  })

  it('a bad value is INVALID_INPUT naming decoder', async () => {
    await assert.rejects(cams.connect({ id: 'x', url: demo.url, decoder: 'hevc' }), (e) => {
      assert.equal(e.code, 'INVALID_INPUT')
      assert.match(e.message, /^decoder: "hevc" is not one of auto, openh264, libavcodec/)
      return true
    })
  })
})
