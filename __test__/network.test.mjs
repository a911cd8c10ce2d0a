// The gateway's proxy: exec() calls with network are served by this
// process's proxy (one runtime for every sandbox), labelled with the
// caller's session/skill, and follow setNetworkPolicy live. Checked at a
// host HTTP server on loopback (reached by the exact name `localhost:PORT`).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'

const require = createRequire(import.meta.url)
const sc = require('../index.js')

const execFileAsync = promisify(execFile)

const hasCurl = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v curl'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

async function server() {
  const got = []
  const marker = `GATEWAY-SERVER-${process.pid}-${Date.now()}`
  const srv = http.createServer((req, res) => {
    got.push(req.url)
    res.end(`${marker}\n`)
  })
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  return { port: srv.address().port, got, marker, close: () => srv.close() }
}

function tmpWorkspace() {
  const base = process.env.SC_TEST_TMPDIR || path.join(process.cwd(), 'target', 'tmp')
  fs.mkdirSync(base, { recursive: true })
  const d = fs.mkdtempSync(path.join(base, 'net-'))
  fs.chmodSync(d, 0o755)
  return d
}

test('exec with allowed domains is served by the gateway proxy, with labels in every event', { skip: !hasCurl && 'curl is not installed' }, async () => {
  const s = await server()
  try {
    const r = await sc.exec({
      command: `curl --noproxy '' -sS http://localhost:${s.port}/ok; curl --noproxy '' -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:${s.port}/ip-not-listed`,
      policy: { network: { allowedDomains: [`localhost:${s.port}`] } },
      network: { session: 'sess-1', agent: 'main', skill: 'weather', toolCall: 'call-9' },
    })
    assert.equal(r.exitCode, 0, r.stderr.toString())
    const out = r.stdout.toString()
    assert.ok(out.includes(s.marker), out)
    assert.ok(out.endsWith('403'), out)
    assert.deepEqual(s.got, ['/ok'])
    assert.equal(r.network.mode, 'proxy')
    assert.equal(r.network.servedBy, 'gateway')
    const allow = r.network.events.find((e) => e.decision === 'allow')
    const deny = r.network.events.find((e) => e.decision === 'deny')
    for (const e of [allow, deny]) {
      assert.equal(e.session, 'sess-1')
      assert.equal(e.skill, 'weather')
      assert.equal(e.toolCall, 'call-9')
    }
    assert.equal(allow.host, 'localhost')
    assert.ok(allow.bytesDown > 0)
    assert.equal(deny.host, '127.0.0.1')
    assert.ok(r.violations.some((v) => v.kind === 'network' && v.detail.includes('127.0.0.1')), JSON.stringify(r.violations))
  } finally {
    s.close()
  }
})

test('setNetworkPolicy widens and narrows a running sandbox\'s scope without restarting it', { skip: !hasCurl && 'curl is not installed' }, async () => {
  const s = await server()
  const ws = tmpWorkspace()
  const scope = `skill:net-test-${process.pid}`
  try {
    const url = `http://localhost:${s.port}`
    const script = [
      `curl --noproxy '' -sS -o /dev/null -w 'first=%{http_code} ' ${url}/first`,
      'touch step1',
      'i=0; while [ ! -e go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done',
      `curl --noproxy '' -sS -o /dev/null -w 'second=%{http_code} ' ${url}/second`,
      'touch step2',
      'i=0; while [ ! -e go2 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done',
      `curl --noproxy '' -sS -o /dev/null -w 'third=%{http_code}' ${url}/third`,
    ].join('; ')
    const run = sc.exec({ command: script, cwd: ws, policy: {}, network: { scope } })
    const waitFor = async (f) => {
      for (let i = 0; i < 400 && !fs.existsSync(path.join(ws, f)); i++) await sleep(25)
      assert.ok(fs.existsSync(path.join(ws, f)), `${f} never appeared`)
    }
    await waitFor('step1')
    sc.setNetworkPolicy(scope, { allowedDomains: [`localhost:${s.port}`] })
    fs.writeFileSync(path.join(ws, 'go'), '')
    await waitFor('step2')
    sc.setNetworkPolicy(scope, {})
    fs.writeFileSync(path.join(ws, 'go2'), '')
    const r = await run
    assert.equal(r.stdout.toString(), 'first=403 second=200 third=403', r.stderr.toString())
    assert.deepEqual(s.got, ['/second'])
  } finally {
    s.close()
    fs.rmSync(ws, { recursive: true, force: true })
  }
})

test('setNetworkPolicy rejects bad rules with the key and entry, and unknown keys', () => {
  assert.throws(() => sc.setNetworkPolicy('s', { allowedDomains: ['*.com'] }), (e) => e.code === 'ERR_SHARKCAGE_POLICY' && /\*\.com/.test(e.message))
  assert.throws(() => sc.setNetworkPolicy('s', { allowedDomain: ['a.com'] }), (e) => e.code === 'ERR_SHARKCAGE_POLICY' && /allowedDomain/.test(e.message))
  assert.throws(() => sc.setNetworkPolicy('', { allowedDomains: [] }), (e) => e.code === 'ERR_SHARKCAGE_INVALID_ARG')
})

/** The spec (policy, env, ticket) an argv from buildExecArgv hands over in its private file. */
function specOf(argv) {
  const arg = argv.find((x) => x.startsWith('--spec-file='))
  assert.ok(arg, argv.join(' '))
  return JSON.parse(fs.readFileSync(arg.slice('--spec-file='.length), 'utf8'))
}

test('buildExecArgv hands the network to the gateway with a one-time ticket (in the spec, not on argv); without network it adds nothing', () => {
  const a = sc.buildExecArgv({ network: { allowedDomains: ['example.com'] } }, ['true'], { network: { session: 's' } })
  const attach = a.find((x) => x.startsWith('--net-attach='))
  assert.ok(attach, a.join(' '))
  assert.ok(!a.some((x) => x.startsWith('--net-ticket')), a.join(' '))
  const ticket = specOf(a).netTicket
  assert.ok(ticket && !a.join(' ').includes(ticket))
  assert.ok(a.indexOf(attach) < a.indexOf('--'))
  const sock = attach.slice('--net-attach='.length)
  const st = fs.statSync(sock)
  assert.ok(st.isSocket())
  assert.equal(st.mode & 0o777, 0o600)
  assert.equal(fs.statSync(path.dirname(sock)).mode & 0o077, 0, 'the socket directory is private')
  const b = sc.buildExecArgv({ network: { allowedDomains: ['example.com'] } }, ['true'])
  assert.notEqual(specOf(b).netTicket, ticket, 'tickets are not reused')
  const c = sc.buildExecArgv({}, ['true'])
  assert.ok(!c.some((x) => x.startsWith('--net-')))
  assert.equal(specOf(c).netTicket, undefined)
  for (const x of [a, b, c]) sc.discardExecArgv(x)
})

test('a launcher given a wrong ticket falls back to its own proxy and says so', { skip: !hasCurl && 'curl is not installed' }, async () => {
  const s = await server()
  try {
    const policy = { network: { allowedDomains: [`localhost:${s.port}`] } }
    const argv = sc.buildExecArgv(policy, ['true'])
    const attach = argv.find((x) => x.startsWith('--net-attach='))
    sc.discardExecArgv(argv)
    const ws = tmpWorkspace()
    const json = path.join(ws, 'r.json')
    // The gateway's socket with a ticket it never issued (the CLI's --net-ticket).
    const args = ['exec', `--json=${json}`, `--policy-json=${JSON.stringify(policy)}`, attach, '--net-ticket=00', '--', 'curl', '--noproxy', '', '-sS', `http://localhost:${s.port}/fallback`]
    // Asynchronously: the test server lives in this process's event loop.
    const { stdout: out } = await execFileAsync(argv[0], args, { env: sc.launcherEnv(), encoding: 'utf8' })
    assert.ok(out.includes(s.marker), out)
    assert.deepEqual(s.got, ['/fallback'])
    const r = JSON.parse(fs.readFileSync(json, 'utf8'))
    fs.rmSync(ws, { recursive: true, force: true })
    assert.equal(r.network.servedBy, 'launcher')
    assert.ok(r.violations.some((v) => v.kind === 'network' && /refused the sandbox/.test(v.detail)), JSON.stringify(r.violations))
  } finally {
    s.close()
  }
})
