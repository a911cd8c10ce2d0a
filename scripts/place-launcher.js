#!/usr/bin/env node
// Copy the freshly built launcher (`cargo build --release -p sc`) to where the
// addon and bin/sc.js look for it: ./sharkcage-launcher, next to the .node file
// in the package root, and into npm/linux-x64-gnu/ for the platform package.
'use strict'

const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(root, process.env.CARGO_TARGET_DIR)
  : path.join(root, 'target')
const built = path.join(targetDir, 'release', 'sc')

if (!fs.existsSync(built)) {
  console.error(`place-launcher: ${built} does not exist; run \`cargo build --release -p sc\` first`)
  process.exit(1)
}

// Copy to a temporary name and rename over the destination: atomic, and works
// while an old launcher is still running ("text file busy" otherwise).
function place(destDir) {
  const dest = path.join(destDir, 'sharkcage-launcher')
  const tmp = `${dest}.tmp-${process.pid}`
  fs.copyFileSync(built, tmp)
  fs.chmodSync(tmp, 0o755)
  fs.renameSync(tmp, dest)
  console.log(`place-launcher: ${path.relative(root, built)} -> ${path.relative(root, dest)}`)
}

place(root)
const platformDir = path.join(root, 'npm', 'linux-x64-gnu')
if (fs.existsSync(platformDir)) {
  place(platformDir)
  // The platform package carries the addon too, so it is complete after a build.
  const addon = path.join(root, 'sharkcage.linux-x64-gnu.node')
  if (fs.existsSync(addon)) {
    const dest = path.join(platformDir, 'sharkcage.linux-x64-gnu.node')
    const tmp = `${dest}.tmp-${process.pid}`
    fs.copyFileSync(addon, tmp)
    fs.renameSync(tmp, dest)
    console.log(`place-launcher: sharkcage.linux-x64-gnu.node -> ${path.relative(root, dest)}`)
  }
}
