#!/usr/bin/env node
// `npm test`: the Rust tests of the whole workspace, then the addon's node:test
// suite against the real launcher. Builds first (`npm run build`) when the
// launcher or the addon is missing, or older than the Rust sources, so the JS
// tests never run against stale binaries. Exits non-zero if either part fails
// (both always run).
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

function run(cmd, args) {
  console.log(`\n> ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
  if (r.error) {
    console.error(`test: cannot run ${cmd}: ${r.error.message}`)
    return false
  }
  return r.status === 0
}

/** Newest mtime (ms) of the files under `p` (a file or a directory). */
function newest(p) {
  let st
  try {
    st = fs.statSync(p)
  } catch {
    return 0
  }
  if (!st.isDirectory()) return st.mtimeMs
  return fs.readdirSync(p).reduce((m, name) => Math.max(m, newest(path.join(p, name))), 0)
}

const mtime = (p) => (fs.existsSync(p) ? fs.statSync(p).mtimeMs : 0)
const addon = path.join(root, 'sharkcage.linux-x64-gnu.node')
const launcher = path.join(root, 'sharkcage-launcher')
const sources = ['Cargo.toml', 'Cargo.lock', 'build.rs', 'src', 'crates']
  .map((p) => newest(path.join(root, p)))
  .reduce((a, b) => Math.max(a, b), 0)
if (Math.min(mtime(launcher), mtime(addon)) < sources) {
  console.log('test: the addon or the launcher is missing or older than the Rust sources; building')
  if (!run('npm', ['run', 'build'])) {
    console.error('test: the build failed')
    process.exit(1)
  }
}
if (process.env.SHARKCAGE_LAUNCHER) {
  console.log(`test: note: SHARKCAGE_LAUNCHER=${process.env.SHARKCAGE_LAUNCHER} overrides ./sharkcage-launcher`)
}

// The sandbox suite runs `sc __probe` *inside* sandboxes, so the `sc` binary
// must be visible there: not under /tmp, /var/tmp or /dev/shm (private in the
// sandbox). A checkout there gets a staged copy, named by SC_BIN.
const privateDir = /^\/(tmp|var\/tmp|dev\/shm)(\/|$)/
function stageDir() {
  const base = process.getuid() === 0 ? '/opt' : path.join(require('node:os').homedir(), '.cache')
  fs.mkdirSync(base, { recursive: true })
  const d = fs.mkdtempSync(path.join(base, 'sharkcage-test-'))
  fs.chmodSync(d, 0o755)
  return d
}
function stage(dir, file, name) {
  const dest = path.join(dir, name || path.basename(file))
  // An executable is hard-linked (no disk; its mode already is 0755); other
  // files, and any file across filesystems, are copied.
  let linked = false
  if ((fs.statSync(file).mode & 0o777) === 0o755) {
    try {
      fs.linkSync(file, dest)
      linked = true
    } catch {}
  }
  if (!linked) {
    fs.copyFileSync(file, dest)
    fs.chmodSync(dest, 0o755)
  }
  return dest
}
// Staged copies are removed when this script ends, however it ends (a CI
// disk is small: 14 suites of a debug build each staged whole filled one).
const staged = []
function unstage(d) {
  fs.rmSync(d, { recursive: true, force: true })
  const i = staged.indexOf(d)
  if (i >= 0) staged.splice(i, 1)
}
process.on('exit', () => { for (const d of [...staged]) unstage(d) })
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130))
const testEnv = { ...process.env }
const debugSc = path.join(root, 'target', 'debug', 'sc')
if (privateDir.test(fs.realpathSync(root))) {
  if (!run('cargo', ['build', '-p', 'sc'])) process.exit(1)
  const d = stageDir()
  staged.push(d)
  testEnv.SC_BIN = stage(d, debugSc)
  // The suite's fake homes and workspaces must be visible in the sandbox too.
  testEnv.SC_TEST_TMPDIR = d
  console.log(`test: the checkout is under a directory that is private inside the sandbox; using ${testEnv.SC_BIN}`)
}

function runEnv(cmd, args, env, opts = {}) {
  console.log(`\n> ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: opts.cwd || root, stdio: 'inherit', env })
  if (r.error) {
    console.error(`test: cannot run ${cmd}: ${r.error.message}`)
    return false
  }
  return r.status === 0
}

const failed = []
if (!runEnv('cargo', ['test', '--workspace'], testEnv)) failed.push('cargo test --workspace')
if (!runEnv(process.execPath, ['--test', '__test__/'], testEnv)) failed.push('node --test __test__/')

// Second run of the sandbox suite as an unprivileged user (CI sets
// SHARKCAGE_TEST_USER and runs as root): real gateways mostly run as a
// normal user, and the kernel treats the two differently.
const testUser = process.env.SHARKCAGE_TEST_USER
if (testUser && process.getuid() === 0) {
  // One staged `sc` serves every suite; each suite's test binary is staged
  // beside it and removed right after its run.
  const scDir = stageDir()
  staged.push(scDir)
  const sc = stage(scDir, debugSc, 'sc')
  for (const suite of ['sandbox', 'network', 'resources', 'audit_cli', 'git_state', 'unix_broker', 'launcher_files', 'env_filter', 'spec', 'everyday', 'home_layer', 'skills_cli', 'pty', 'workloads']) {
    const r = spawnSync('cargo', ['test', '-p', 'sc', '--test', suite, '--no-run', '--message-format=json'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
    const exe = (r.stdout || '')
      .split('\n')
      .filter(Boolean)
      .map((l) => { try { return JSON.parse(l) } catch { return {} } })
      .filter((m) => m.reason === 'compiler-artifact' && m.target && m.target.name === suite && m.executable)
      .map((m) => m.executable)
      .pop()
    if (r.status !== 0 || !exe) {
      console.error(r.stderr)
      failed.push(`${suite} suite as ${testUser} (build)`)
      continue
    }
    const d = stageDir()
    staged.push(d)
    const bin = stage(d, exe, `${suite}-tests`)
    const home = spawnSync('getent', ['passwd', testUser], { encoding: 'utf8' }).stdout.split(':')[5] || `/home/${testUser}`
    const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: home, SC_BIN: sc, LANG: 'C.UTF-8', RUST_BACKTRACE: '1' }
    console.log(`\ntest: the ${suite} suite again, as the unprivileged user ${testUser}`)
    const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => fs.existsSync(p)) || 'runuser'
    if (!runEnv(runuser, ['-u', testUser, '--', bin, '--test-threads', '4'], env, { cwd: d })) failed.push(`${suite} suite as ${testUser}`)
    unstage(d)
  }
  unstage(scDir)
  // The file bridge (SandboxFs) as that user too: index.js, the addon and the
  // suite staged where the user can read them.
  {
    const d = stageDir()
    staged.push(d)
    fs.mkdirSync(path.join(d, '__test__'))
    fs.chmodSync(path.join(d, '__test__'), 0o755)
    for (const f of ['index.js', 'sharkcage.linux-x64-gnu.node']) stage(d, path.join(root, f))
    stage(path.join(d, '__test__'), path.join(root, '__test__', 'fs.test.mjs'))
    const work = path.join(d, 'work')
    fs.mkdirSync(work)
    spawnSync('chown', [testUser, work])
    const home = spawnSync('getent', ['passwd', testUser], { encoding: 'utf8' }).stdout.split(':')[5] || `/home/${testUser}`
    const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: home, SC_TEST_TMPDIR: work, LANG: 'C.UTF-8' }
    console.log(`\ntest: the file-bridge suite again, as the unprivileged user ${testUser}`)
    const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => fs.existsSync(p)) || 'runuser'
    if (!runEnv(runuser, ['-u', testUser, '--', process.execPath, '--test', '__test__/fs.test.mjs'], env, { cwd: d })) failed.push(`file-bridge suite as ${testUser}`)
  }
}
for (const d of [...staged]) unstage(d)

if (failed.length) {
  console.error(`\ntest: FAILED: ${failed.join(', ')}`)
  process.exit(1)
}
console.log('\ntest: all passed')
