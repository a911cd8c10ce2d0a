#!/usr/bin/env node
// `sc` for npm users: find this platform's sharkcage launcher binary and run
// it with our argv, as transparently as possible (stdio inherited, signals
// forwarded, the child's exit status passed on).
//
// Lookup order, the same as the addon's launcherPath() (src/launcher.rs) and
// the generated index.js loader (package root first, platform package second):
//   1. $SHARKCAGE_LAUNCHER (if set, it is the only place looked at);
//   2. sharkcage-launcher in the package root, next to the .node file;
//   3. sharkcage-launcher in @sharkcage/openclaw-linux-x64-gnu.
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const LAUNCHER = 'sharkcage-launcher'
const PLATFORM_PACKAGE = '@sharkcage/openclaw-linux-x64-gnu'

function executable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

function findLauncher() {
  const tried = []
  const override = process.env.SHARKCAGE_LAUNCHER
  if (override) {
    const file = path.resolve(override)
    if (executable(file)) return { file, tried }
    tried.push(`${file} (from $SHARKCAGE_LAUNCHER)`)
    return { file: null, tried }
  }
  tried.push('$SHARKCAGE_LAUNCHER (unset)')
  const local = path.join(__dirname, '..', LAUNCHER)
  if (executable(local)) return { file: local, tried }
  tried.push(local)
  if (process.platform === 'linux' && process.arch === 'x64') {
    try {
      const dir = path.dirname(require.resolve(`${PLATFORM_PACKAGE}/package.json`))
      const file = path.join(dir, LAUNCHER)
      if (executable(file)) return { file, tried }
      tried.push(file)
    } catch {
      tried.push(`${PLATFORM_PACKAGE} (not installed)`)
    }
  } else {
    tried.push(`no platform package for ${process.platform}-${process.arch}: sharkcage supports linux-x64 only`)
  }
  return { file: null, tried }
}

const { file, tried } = findLauncher()
if (!file) {
  process.stderr.write(
    'sc: cannot find the sharkcage launcher binary. Looked at:\n' +
      tried.map((t) => `  - ${t}\n`).join('') +
      'Reinstall @sharkcage/openclaw, or set SHARKCAGE_LAUNCHER to the binary.\n',
  )
  process.exit(2)
}

const child = spawn(file, process.argv.slice(2), { stdio: 'inherit' })

const forwarded = ['SIGINT', 'SIGTERM', 'SIGHUP']
const forward = (sig) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(sig)
}
for (const sig of forwarded) process.on(sig, forward)

child.on('error', (err) => {
  process.stderr.write(`sc: cannot run ${file}: ${err.message}\n`)
  process.exit(2)
})

child.on('exit', (code, signal) => {
  for (const sig of forwarded) process.off(sig, forward)
  if (code !== null) process.exit(code)
  process.exit(128 + (os.constants.signals[signal] || 0))
})
