// The user's own Moondream route, as the seed has it: camkit must not take it over.
const express = require('express')
const router = express.Router()

router.post('/ask', (req, res) => {
  res.json({ mine: true, question: req.body && req.body.question })
})

module.exports = router
