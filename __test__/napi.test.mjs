// Tests of the native addon against the launcher it finds (the real
// ./sharkcage-launcher unless SHARKCAGE_LAUNCHER says otherwise). They check
// effects — output, environment, the process list, open fds — not only exit
// codes. Run through `npm test` (scripts/test.js builds first if needed).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { getEventListeners } from 'node:events'
import { readdirSync } from 'node:fs'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'

const require = createRequire(import.meta.url)
const sc = require('../index.js')

const text = (buf) => buf.toString('utf8')

/** Processes whose command line is exactly `args`. */
function processesRunning(args) {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
  return out.split('\n').filter((line) => line.trim().replace(/^\d+\s+/, '') === args)
}

function withEnv(name, value, fn) {
  const old = process.env[name]
  if (value === undefined) delete process.env[name]
  else process.env[name] = value
  try {
    return fn()
  } finally {
    if (old === undefined) delete process.env[name]
    else process.env[name] = old
  }
}

/** The spec file an argv from buildExecArgv names, and what it holds. */
function specOf(argv) {
  const arg = argv.find((a) => a.startsWith('--spec-file='))
  assert.ok(arg, argv.join(' '))
  const file = arg.slice('--spec-file='.length)
  return { file, spec: JSON.parse(fs.readFileSync(file, 'utf8')) }
}

test('buildExecArgv returns launcher, exec, spec file, workspace, --, argv; the policy is in the spec file', () => {
  const launcher = sc.launcherPath()
  const policy = { filesystem: { allowWrite: ['/tmp/ws/cache'] } }
  const a = sc.buildExecArgv(policy, ['ls', '-l', 'a b'], { workspace: '/tmp/ws' })
  const { file, spec } = specOf(a)
  assert.deepEqual(a, [launcher, 'exec', `--spec-file=${file}`, '--workspace=/tmp/ws', '--', 'ls', '-l', 'a b'])
  assert.deepEqual(spec, { policyJson: JSON.stringify(policy) })
  assert.equal(sc.discardExecArgv(a), true)
  const b = sc.buildExecArgv({}, ['true'])
  assert.deepEqual(b, [launcher, 'exec', `--spec-file=${specOf(b).file}`, '--', 'true'])
  sc.discardExecArgv(b)
  // A workspace whose name starts with '-' stays a value.
  const odd = sc.buildExecArgv({}, ['pwd'], { workspace: '-odd' })
  assert.equal(odd[3], '--workspace=-odd')
  sc.discardExecArgv(odd)
  assert.throws(() => sc.buildExecArgv({}, []), { code: 'ERR_SHARKCAGE_INVALID_ARG' })
})

test('buildExecArgv validates the policy with the launcher parser: position and key in the message', () => {
  assert.throws(() => sc.buildExecArgv({ filesystem: { alowWrite: [] } }, ['ls']), (err) => {
    assert.equal(err.code, 'ERR_SHARKCAGE_POLICY')
    assert.match(err.message, /1:\d+: filesystem\.alowWrite/)
    return true
  })
  assert.throws(() => sc.buildExecArgv({ filesystem: { allowWrite: ['relative/dir'] } }, ['ls']), (err) => {
    assert.equal(err.code, 'ERR_SHARKCAGE_POLICY')
    assert.match(err.message, /filesystem\.allowWrite\[0\].*relative/)
    return true
  })
})

test('launcherPath throws ERR_SHARKCAGE_LAUNCHER_NOT_FOUND naming the path when SHARKCAGE_LAUNCHER points nowhere', () => {
  withEnv('SHARKCAGE_LAUNCHER', '/nonexistent/sharkcage-launcher-xyz', () => {
    assert.throws(() => sc.launcherPath(), (err) => {
      assert.equal(err.code, 'ERR_SHARKCAGE_LAUNCHER_NOT_FOUND')
      assert.match(err.message, /\/nonexistent\/sharkcage-launcher-xyz/)
      return true
    })
  })
})

test('exec rejects (not throws) with ERR_SHARKCAGE_LAUNCHER_NOT_FOUND when there is no launcher', async () => {
  const p = withEnv('SHARKCAGE_LAUNCHER', '/nonexistent/sharkcage-launcher-xyz', () => sc.exec({ command: ['true'] }))
  await assert.rejects(p, { code: 'ERR_SHARKCAGE_LAUNCHER_NOT_FOUND' })
})

test('exec returns the command stdout, UTF-8 intact', async () => {
  const r = await sc.exec({ command: ['echo', 'héllo wörld'] })
  assert.equal(text(r.stdout), 'héllo wörld\n')
  assert.equal(r.exitCode, 0)
  assert.equal(r.signal, null)
  assert.equal(r.timedOut, false)
  assert.ok(Buffer.isBuffer(r.stderr))
  assert.equal(typeof r.durationMs, 'number')
  assert.equal(typeof r.layers, 'object')
  assert.ok(Array.isArray(r.violations))
})

test('exec reports the exit code and stderr; a string command runs under /bin/sh -c', async () => {
  const r = await sc.exec({ command: "echo out; echo err >&2; exit 7" })
  assert.equal(r.exitCode, 7)
  assert.equal(text(r.stdout), 'out\n')
  assert.match(text(r.stderr), /err\n/)
})

test('exec feeds stdin (string and Buffer) and closes it', async () => {
  const r1 = await sc.exec({ command: ['cat'], stdin: 'line 1\nline 2 ünï\n' })
  assert.equal(text(r1.stdout), 'line 1\nline 2 ünï\n')
  const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 0])
  const r2 = await sc.exec({ command: ['cat'], stdin: bytes })
  assert.deepEqual(r2.stdout, bytes)
  // Without stdin the command reads EOF at once instead of hanging.
  const r3 = await sc.exec({ command: ['wc', '-c'], timeoutMs: 10_000 })
  assert.equal(text(r3.stdout).trim(), '0')
})

test('pty: true gives the command a terminal for stdin, stdout and stderr (exec, and buildExecArgv through its spec)', async () => {
  const check = 'test -t 0 && test -t 1 && test -t 2'
  const r = await sc.exec({ command: check, pty: true, stdin: 'x\n', timeoutMs: 20_000 })
  assert.equal(r.exitCode, 0, text(r.stdout) + text(r.stderr))
  assert.equal((await sc.exec({ command: check, stdin: 'x\n' })).exitCode, 1, 'without pty the pipes are no terminal')
  const got = await sc.exec({ command: 'read x; echo got:$x', pty: true, stdin: 'hello\n', timeoutMs: 20_000 })
  assert.match(text(got.stdout), /got:hello\r\n/)
  // buildExecArgv: the flag is in the spec, and the launcher honours it.
  const a = sc.buildExecArgv({}, ['sh', '-c', check], { pty: true })
  assert.equal(specOf(a).spec.pty, true)
  const { spawnSync } = await import('node:child_process')
  const run = spawnSync(a[0], a.slice(1), { env: sc.launcherEnv(), input: 'x\n', encoding: 'utf8' })
  assert.equal(run.status, 0, run.stdout + run.stderr)
  const b = sc.buildExecArgv({}, ['true'], { pty: false })
  assert.equal(specOf(b).spec.pty, undefined)
  sc.discardExecArgv(b)
})

test('exec enforces timeoutMs (timedOut: true)', async () => {
  const t0 = Date.now()
  const r = await sc.exec({ command: ['sleep', '30'], timeoutMs: 500 })
  assert.equal(r.timedOut, true)
  assert.notEqual(r.exitCode, 0)
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`)
})

test('exec aborted by an AbortSignal rejects with ERR_SHARKCAGE_ABORTED and leaves no process behind', async () => {
  const marker = '31.4159' // an argument no other `sleep` on the machine is likely to have
  const ac = new AbortController()
  const p = sc.exec({ command: ['sleep', marker], signal: ac.signal })
  await sleep(200)
  for (let i = 0; i < 20 && processesRunning(`sleep ${marker}`).length === 0; i++) await sleep(100)
  assert.equal(processesRunning(`sleep ${marker}`).length, 1, 'the sandboxed sleep should be running')
  const t0 = Date.now()
  ac.abort()
  await assert.rejects(p, (err) => {
    assert.equal(err.code, 'ERR_SHARKCAGE_ABORTED')
    assert.ok(Buffer.isBuffer(err.stdout))
    return true
  })
  assert.ok(Date.now() - t0 < 2000, `abort took ${Date.now() - t0} ms`)
  // The launcher tears the whole sandbox down: the sleep must be gone too.
  let left = processesRunning(`sleep ${marker}`)
  for (let i = 0; i < 10 && left.length; i++) {
    await sleep(100)
    left = processesRunning(`sleep ${marker}`)
  }
  assert.deepEqual(left, [], 'sleep survived the abort')
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0)
})

test('exec with an already aborted signal rejects at once without running anything', async () => {
  const ac = new AbortController()
  ac.abort()
  await assert.rejects(sc.exec({ command: ['sh', '-c', 'echo ran >&2'], signal: ac.signal }), {
    code: 'ERR_SHARKCAGE_ABORTED',
  })
})

test('a long-lived AbortSignal does not collect listeners across calls', async () => {
  const ac = new AbortController()
  for (let i = 0; i < 20; i++) await sc.exec({ command: ['true'], signal: ac.signal })
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0)
})

test('exec passes env as given and never the caller environment', async () => {
  const r = await withEnv('SECRET_TOKEN', 'hunter2-do-not-leak', () =>
    sc.exec({
      command: ['sh', '-c', 'echo "greeting=[$GREETING]"; echo "secret=[${SECRET_TOKEN-unset}]"; env'],
      env: { GREETING: 'hi there = friend' },
    }),
  )
  const out = text(r.stdout)
  assert.match(out, /^greeting=\[hi there = friend\]$/m)
  assert.match(out, /^secret=\[unset\]$/m)
  assert.doesNotMatch(out, /hunter2-do-not-leak/)
})

test('an invalid policy rejects with ERR_SHARKCAGE_POLICY and the launcher message', async () => {
  await assert.rejects(sc.exec({ command: ['true'], policy: { bogus: 1 } }), (err) => {
    assert.equal(err.code, 'ERR_SHARKCAGE_POLICY')
    assert.match(err.message, /bogus/)
    return true
  })
  await assert.rejects(sc.exec({ command: [] }), { code: 'ERR_SHARKCAGE_INVALID_ARG' })
})

test('doctor resolves with the launcher JSON report', async () => {
  const report = await sc.doctor()
  assert.equal(typeof report, 'object')
  assert.notEqual(report, null)
})

test('200 calls, 8 at a time, leak no file descriptors', async () => {
  const fds = () => readdirSync('/proc/self/fd').length
  const batch = (n) => Promise.all(Array.from({ length: n }, (_, i) => sc.exec({ command: ['echo', String(i)] })))
  await batch(8) // warm up the runtime's threads and the event loop's fds
  const before = fds()
  for (let done = 0; done < 200; done += 8) {
    const results = await batch(8)
    results.forEach((r, i) => assert.equal(text(r.stdout), `${i}\n`))
  }
  const after = fds()
  assert.ok(after <= before, `fds grew from ${before} to ${after}`)
})

test('exec hides the secrets of the caller HOME (the gateway\'s), not only the passwd home', async () => {
  // The fake home must be visible in the sandbox: not under /tmp (private there).
  const parent = process.env.SC_TEST_TMPDIR || path.join(process.cwd(), 'target')
  fs.mkdirSync(parent, { recursive: true })
  const base = fs.mkdtempSync(path.join(parent, 'napi-home-'))
  const home = path.join(base, 'home')
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true })
  fs.mkdirSync(path.join(home, '.openclaw'), { recursive: true })
  fs.writeFileSync(path.join(home, '.ssh', 'id_rsa'), 'NAPI-SECRET-KEY\n')
  fs.writeFileSync(path.join(home, '.openclaw', 'openclaw.json'), '{"token":"NAPI-GATEWAY-TOKEN"}\n')
  fs.writeFileSync(path.join(home, 'visible.txt'), 'VISIBLE\n')
  const old = process.env.HOME
  process.env.HOME = home
  try {
    const r = await sc.exec({
      command: `cat ${home}/visible.txt; cat ${home}/.ssh/id_rsa; cat ${home}/.openclaw/openclaw.json; true`,
    })
    const out = r.stdout.toString() + r.stderr.toString()
    assert.match(out, /VISIBLE/, `control: the fake home is readable: ${out}`)
    assert.doesNotMatch(out, /NAPI-SECRET-KEY/)
    assert.doesNotMatch(out, /NAPI-GATEWAY-TOKEN/)
  } finally {
    process.env.HOME = old
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test('launcherEnv carries only what the launcher reads, never other variables of this process', () => {
  process.env.SHARKCAGE_TEST_PLANTED_API_KEY = 'sk-launcher-env-secret'
  process.env.SOME_UNRELATED_VAR = 'unrelated'
  try {
    const e = sc.launcherEnv()
    assert.equal(e.HOME, process.env.HOME)
    assert.ok(!Object.values(e).includes('unrelated'), JSON.stringify(e))
    // SHARKCAGE_* settings pass to the launcher (it reads them), but the
    // launcher never hands a secret-looking name to the command.
    assert.ok(Object.keys(e).every((k) => ['HOME', 'USER', 'LOGNAME', 'PATH', 'LANG', 'LANGUAGE', 'TERM', 'TZ', 'XDG_STATE_HOME', 'OPENCLAW_STATE_DIR', 'OPENCLAW_HOME'].includes(k) || k.startsWith('LC_') || k.startsWith('SHARKCAGE_')), JSON.stringify(Object.keys(e)))
  } finally {
    delete process.env.SHARKCAGE_TEST_PLANTED_API_KEY
    delete process.env.SOME_UNRELATED_VAR
  }
})

test('out of descriptors is ERR_SHARKCAGE_RESOURCES, never a policy error (exec and SandboxFs)', () => {
  // A child Node with a small descriptor limit uses them all up, then asks for a sandbox.
  const script = `
    const sc = require(${JSON.stringify(path.resolve('index.js'))}); const fs = require('fs'); const held = []
    try { for (;;) held.push(fs.openSync('/dev/null', 'r')) } catch {}
    fs.closeSync(held.pop())
    const r = {}
    try { new sc.SandboxFs({}, { workspace: process.cwd() }); r.fs = 'built' } catch (e) { r.fs = e.code }
    sc.exec({ command: ['true'], policy: {} }).then(() => (r.exec = 'ran'), (e) => (r.exec = e.code)).then(() => console.log(JSON.stringify(r)))`
  const out = execFileSync('/bin/sh', ['-c', `ulimit -n 256 && exec "$0" -e "$1"`, process.execPath, script], { encoding: 'utf8' })
  const r = JSON.parse(out.trim().split('\n').pop())
  assert.equal(r.fs, 'ERR_SHARKCAGE_RESOURCES')
  assert.equal(r.exec, 'ERR_SHARKCAGE_RESOURCES')
})

// ---- nothing secret on a command line ----------------------------------------

/** Every process's command line, and the environment of launcher processes. */
function commandLinesAndLauncherEnv() {
  const launcher = sc.launcherPath()
  let out = ''
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let cmd
    try {
      cmd = fs.readFileSync(`/proc/${pid}/cmdline`).toString().replaceAll('\0', ' ')
    } catch {
      continue
    }
    out += cmd + '\n'
    if (cmd.startsWith(launcher)) {
      try {
        out += fs.readFileSync(`/proc/${pid}/environ`).toString().replaceAll('\0', ' ') + '\n'
      } catch {}
    }
  }
  return out
}

/** Wait until a process runs `sleep <dur>`, then return what every command line shows. */
async function whileSleeping(dur) {
  for (let i = 0; i < 2000; i++) {
    const seen = commandLinesAndLauncherEnv()
    // The sleep itself (the launcher's own argv names it from the start).
    if (seen.split('\n').some((l) => l.startsWith(`sleep ${dur}`))) return seen
    await sleep(10)
  }
  throw new Error(`sleep ${dur} never ran`)
}

function secretCall() {
  const mark = `${process.pid}${Date.now()}`.slice(-12)
  return {
    value: `envvalue-${mark}`,
    domain: `d${mark}.example`,
    policyName: `POLICYMARK_${mark}`,
    dur: `2.${mark.slice(-6)}`,
  }
}

function assertNothingSecret(seen, c) {
  const lines = seen.split('\n')
  for (const s of [c.value, c.domain, c.policyName]) {
    assert.ok(!seen.includes(s), `${s} is on a command line:\n${lines.filter((l) => l.includes(s)).join('\n')}`)
  }
  // Our own launcher (its argv ends with the command): no secret-carrying option.
  const ours = lines.filter((l) => l.includes(c.dur))
  assert.ok(ours.length > 0)
  for (const opt of ['--net-ticket', '--policy-json', '--env']) {
    assert.ok(!ours.some((l) => l.includes(opt)), `${opt} on our command line:\n${ours.join('\n')}`)
  }
}

test('exec puts nothing secret on a command line: environment values, policy and ticket go through a descriptor', async () => {
  const c = secretCall()
  const run = sc.exec({
    command: ['sh', '-c', `echo "v=$PLAIN"; sleep ${c.dur}`],
    env: { PLAIN: c.value },
    policy: { env: [c.policyName], network: { allowedDomains: [c.domain] } },
    network: { session: 'argv-test' },
  })
  const seen = await whileSleeping(c.dur)
  const r = await run
  assert.equal(r.exitCode, 0, r.stderr.toString())
  assert.match(r.stdout.toString(), new RegExp(`^v=${c.value}$`, 'm'), 'the value reached the command')
  assert.equal(r.network.servedBy, 'gateway', 'the ticket reached the launcher')
  assert.match(seen, /--spec-fd=4/)
  assertNothingSecret(seen, c)
})

test('buildExecArgv puts nothing secret on the argv: a private spec file, gone once the launcher started', async () => {
  const { spawn } = await import('node:child_process')
  const c = secretCall()
  const policy = { env: [c.policyName], network: { allowedDomains: [c.domain] } }
  const argv = sc.buildExecArgv(policy, ['sh', '-c', `echo "v=$PLAIN"; sleep ${c.dur}`], { env: { PLAIN: c.value }, network: { session: 'argv-test' } })
  assertNothingSecret(argv.join(' '), c)
  const { file, spec } = specOf(argv)
  assert.equal(spec.env[0][1], c.value)
  assert.ok(spec.netTicket, 'the ticket is in the spec')
  const st = fs.statSync(file)
  assert.equal(st.mode & 0o777, 0o600, 'readable by its owner only')
  assert.equal(st.uid, process.getuid())
  assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700)
  // Spawned as OpenClaw does: the argv and launcherEnv(), nothing else.
  const child = spawn(argv[0], argv.slice(1), { env: sc.launcherEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const done = new Promise((r) => child.on('exit', r))
  const seen = await whileSleeping(c.dur)
  assert.ok(!fs.existsSync(file), 'the launcher deleted the spec file as it started')
  assertNothingSecret(seen, c)
  assert.equal(await done, 0, out)
  assert.match(out, new RegExp(`^v=${c.value}$`, 'm'))
  assert.equal(sc.discardExecArgv(argv), false, 'nothing left to discard')
})

test('a spec file whose argv is never spawned is private, discarded on request, and swept by age', () => {
  const a = sc.buildExecArgv({}, ['true'], { env: { PLAIN: 'never-spawned' } })
  const { file } = specOf(a)
  assert.equal(fs.statSync(file).mode & 0o077, 0, 'others cannot read it')
  assert.equal(sc.discardExecArgv(a), true)
  assert.ok(!fs.existsSync(file))
  // A crashed gateway's leftovers: older than ten minutes, gone with the next call.
  const b = sc.buildExecArgv({}, ['true'])
  const old = specOf(b).file
  const t = new Date(Date.now() - 11 * 60 * 1000)
  fs.utimesSync(old, t, t)
  const c = sc.buildExecArgv({}, ['true'])
  assert.ok(!fs.existsSync(old), 'a stale spec file is swept')
  sc.discardExecArgv(c)
  // Only spec files in the state directory are ever touched.
  const victim = path.join(process.cwd(), 'target', `discard-victim-${process.pid}`)
  fs.mkdirSync(path.dirname(victim), { recursive: true })
  fs.writeFileSync(victim, 'keep')
  assert.throws(() => sc.discardExecArgv(['x', 'exec', `--spec-file=${victim}`, '--', 'true']), { code: 'ERR_SHARKCAGE_INVALID_ARG' })
  assert.ok(fs.existsSync(victim))
  fs.rmSync(victim)
})
