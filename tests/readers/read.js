// Reads an env file with node's dotenv package or `node --env-file`; prints
// {key: value} as JSON. Used by tests/readers.rs.
//   node read.js dotenv FILE PREFIX
//   node --env-file=FILE read.js env-file - PREFIX
const fs = require('fs')
const [mode, file, prefix] = process.argv.slice(2)
let values
if (mode === 'dotenv') {
  values = require('dotenv').parse(fs.readFileSync(file))
} else if (mode === 'env-file') {
  values = process.env
} else {
  throw new Error('unknown mode ' + mode)
}
const out = {}
for (const [k, v] of Object.entries(values)) if (k.startsWith(prefix)) out[k] = v
console.log(JSON.stringify(out))
