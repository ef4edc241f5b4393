'use strict'
// A frame's `jpeg` is a Buffer over the bytes of camkit's frame cache, not a copy: readers
// of one picture share them, and a Buffer keeps them alive after its manager has closed.
const { describe, it, before, after } = require('node:test')
const assert = require('node:assert/strict')
const v8 = require('node:v8')
const vm = require('node:vm')

const { CameraManager, startDemoCamera } = require('..')
const { sleep, isJpeg } = require('./helpers')

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')

/** Two snapshots of the same picture (decode is continuous: the picture changes at 15 fps). */
async function twoOfOnePicture (cams, id, opts) {
  for (let i = 0; i < 50; i++) {
    const [a, b] = await Promise.all([cams.snapshot(id, opts), cams.snapshot(id, opts)])
    if (a.seq === b.seq) return [a, b]
  }
  throw new Error('50 pairs of simultaneous snapshots, never two of the same picture')
}

describe('frame buffers', () => {
  let demo
  let cams
  before(async () => {
    demo = await startDemoCamera({ width: 640, height: 360, fps: 15 })
    cams = new CameraManager()
    await cams.connect({ id: 'demo', url: demo.url, decode: 'continuous' })
  })
  after(async () => {
    cams.close()
    await demo.stop()
  })

  it('snapshots of one picture share its JPEG bytes instead of copying them', async () => {
    const [a, b] = await twoOfOnePicture(cams, 'demo', { maxWidth: 320 })
    assert.ok(isJpeg(a.jpeg))
    assert.notEqual(a.jpeg, b.jpeg, 'two Buffer objects')
    assert.ok(a.jpeg.equals(b.jpeg))
    const i = a.jpeg.length >> 1
    const before = b.jpeg[i]
    a.jpeg[i] ^= 0xff // what users are told never to do: it shows the memory is shared
    try {
      assert.equal(b.jpeg[i], before ^ 0xff, 'b sees a write through a: one memory block')
    } finally {
      a.jpeg[i] ^= 0xff
    }
    // Another size of the same picture is another encoding, in other memory.
    const full = await cams.snapshot('demo')
    assert.equal(full.width, 640)
    assert.ok(!full.jpeg.equals(a.jpeg))
  })

  it('many Buffers over one picture are created and collected without trouble', async () => {
    const [first] = await twoOfOnePicture(cams, 'demo', { maxWidth: 160 })
    const copy = Buffer.from(first.jpeg)
    for (let round = 0; round < 5; round++) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => cams.snapshot('demo', { maxWidth: 160 })))
      for (const f of batch) assert.ok(isJpeg(f.jpeg) && f.width === 160)
      gc()
      await sleep(10) // finalizers of collected Buffers run from the event loop
    }
    assert.ok(first.jpeg.equals(copy), 'a kept Buffer is untouched by the others coming and going')
  })

  it('a Buffer stays valid after its subscription, camera and manager are gone', async () => {
    const m = new CameraManager()
    await m.connect({ id: 'short', url: demo.url })
    const kept = []
    const sub = m.subscribe('short', { fps: 15, maxWidth: 320 }, (err, f) => {
      if (!err) kept.push({ jpeg: f.jpeg, copy: Buffer.from(f.jpeg) })
    })
    const snap = await m.snapshot('short')
    const snapCopy = Buffer.from(snap.jpeg)
    for (let i = 0; i < 100 && kept.length < 3; i++) await sleep(50)
    sub.unsubscribe()
    m.close()
    assert.ok(kept.length >= 3, `${kept.length} frames delivered`)
    // The camera's session, its cache and the manager are gone; only the Buffers hold the bytes.
    for (let i = 0; i < 3; i++) {
      gc()
      await sleep(20)
    }
    assert.ok(isJpeg(snap.jpeg) && snap.jpeg.equals(snapCopy))
    for (const { jpeg, copy } of kept) assert.ok(isJpeg(jpeg) && jpeg.equals(copy))
  })
})
