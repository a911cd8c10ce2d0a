// The addon's audit writer: one chain for the process, fed by auditAppend
// and by the gateway proxy's decisions; read back with auditQuery, checked
// with auditVerify and the `sc audit verify` command on the same files.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import http from 'node:http'
import crypto from 'node:crypto'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { createRequire } from 'node:module'

const execFileAsync = promisify(execFile)
const base = process.env.SC_TEST_TMPDIR || path.join(process.cwd(), 'target', 'tmp')
fs.mkdirSync(base, { recursive: true })
const stateDir = fs.mkdtempSync(path.join(base, 'audit-state-'))
// Before the addon is used: the audit log goes to <state>/audit.
process.env.SHARKCAGE_STATE_DIR = stateDir
const require = createRequire(import.meta.url)
const sc = require('../index.js')
const auditDir = path.join(stateDir, 'audit')

test('auditAppend: durable, ordered seqs; parameters redacted; bad records named', async () => {
  const a = await sc.auditAppend({ kind: 'tool_call', session: 's-1', tool: 'exec', toolCall: 'c-1', params: { command: 'echo hi', apiKey: 'SECRET-VALUE-1', env: { GH_TOKEN: 'ghp_0123456789abcdefghijklmnopqrstuvwx' } } })
  const b = await sc.auditAppend({ kind: 'file_op', session: 's-1', tool: 'fs.readFile', path: '/w/x', decision: 'deny', reason: 'ERR_SHARKCAGE_FS_NOT_READABLE' })
  assert.equal(b, a + 1)
  const text = fs.readdirSync(auditDir).filter((f) => f.startsWith('audit-')).map((f) => fs.readFileSync(path.join(auditDir, f), 'utf8')).join('')
  assert.ok(text.includes('"toolCall":"c-1"'))
  assert.ok(!text.includes('SECRET-VALUE-1') && !text.includes('ghp_0123'), 'a secret reached the log')
  await assert.rejects(sc.auditAppend({ kind: 'exec', sesion: 'typo' }), (e) => e.code === 'ERR_SHARKCAGE_INVALID_ARG' && /sesion/.test(e.message))
  await assert.rejects(sc.auditAppend({ kind: 'Exec!' }), (e) => e.code === 'ERR_SHARKCAGE_INVALID_ARG')
  const blocked = await sc.auditQuery({ blocked: true, session: 's-1' })
  assert.deepEqual(blocked.map((r) => r.seq), [b])
  await assert.rejects(sc.auditQuery({ skil: 'x' }), (e) => e.code === 'ERR_SHARKCAGE_INVALID_ARG' && /skil/.test(e.message))
})

test('the gateway proxy records every decision with its labels; many producers, one gapless chain', async () => {
  const got = []
  const srv = http.createServer((req, res) => {
    got.push(req.url)
    res.end('ok\n')
  })
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const port = srv.address().port
  try {
    const calls = []
    for (let i = 0; i < 6; i++) {
      calls.push(sc.exec({
        command: ['sh', '-c', `curl --noproxy '' -s -o /dev/null http://localhost:${port}/r${i}; curl --noproxy '' -s -o /dev/null http://denied.invalid/`],
        policy: { network: { allowedDomains: [`localhost:${port}`] } },
        network: { session: 'net-session', toolCall: `call-${i}` },
      }))
    }
    const appends = []
    for (let i = 0; i < 300; i++) appends.push(sc.auditAppend({ kind: 'tool_call', session: 'burst', toolCall: `b-${i}` }))
    const results = await Promise.all(calls)
    const seqs = await Promise.all(appends)
    assert.equal(new Set(seqs).size, seqs.length, 'no duplicate seqs')
    for (const r of results) assert.equal(r.exitCode, 0, r.stderr.toString())
    // Proxy events are submitted as they happen; a later durable append
    // means they are on disk too.
    await sc.auditAppend({ kind: 'tool_call', session: 'marker' })
    const net = await sc.auditQuery({ kind: 'net', session: 'net-session' })
    const allowed = net.filter((r) => r.decision === 'allow')
    const denied = net.filter((r) => r.decision === 'deny')
    assert.equal(allowed.length, 6, JSON.stringify(net))
    assert.equal(denied.length, 6)
    assert.deepEqual(new Set(allowed.map((r) => r.toolCall)), new Set([0, 1, 2, 3, 4, 5].map((i) => `call-${i}`)))
    assert.ok(allowed.every((r) => r.host === 'localhost' && r.ip === '127.0.0.1' && r.bytesDown > 0))
    assert.ok(denied.every((r) => r.host === 'denied.invalid' && /allowedDomains/.test(r.reason)))
    // A policy change is on the record too.
    sc.setNetworkPolicy('skill:audited', { allowedDomains: ['api.example.com'] })
    await sc.auditAppend({ kind: 'tool_call', session: 'marker2' })
    const changes = await sc.auditQuery({ kind: 'policy_change' })
    assert.ok(changes.some((r) => r.detail?.scope === 'skill:audited' && r.detail.allowedDomains[0] === 'api.example.com'), JSON.stringify(changes))
    const all = await sc.auditQuery({})
    assert.deepEqual(all.map((r) => r.seq), all.map((_, i) => i + 1), 'seqs 1..n without gaps')
    const v = await sc.auditVerify()
    assert.equal(v.ok, true, JSON.stringify(v))
    assert.equal(v.records, all.length)
  } finally {
    srv.close()
  }
})

test('a real proxy flood (500 CONNECTs to distinct 60 KB hosts from one sandbox) cannot flush history', async () => {
  const segBytes = () => fs.readdirSync(auditDir).filter((f) => f.startsWith('audit-')).reduce((n, f) => n + fs.statSync(path.join(auditDir, f)).size, 0)
  const before = await sc.auditQuery({})
  const bytesBefore = segBytes()
  const script = 'h=$(head -c 60000 /dev/zero | tr "\\0" a); n=0; for i in $(seq 1 500); do exec 3<>/dev/tcp/127.0.0.1/3128 || exit 9; printf "CONNECT u@%s%s.example:443 HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n" "$i" "$h" >&3; head -c 12 <&3 >/dev/null && n=$((n+1)); exec 3<&-; done; echo "replies=$n"'
  const r = await sc.exec({ command: ['bash', '-c', script], policy: { network: { allowedDomains: ['ok.example'] } }, network: { session: 'flood-net' }, timeoutMs: 120_000 })
  assert.equal(r.exitCode, 0, r.stderr.toString())
  assert.match(r.stdout.toString(), /replies=500/)
  await sc.auditAppend({ kind: 'tool_call', session: 'marker-flood' })
  const net = await sc.auditQuery({ kind: 'net', session: 'flood-net' })
  // 32 at once, one more per 5 s of flood, and the summaries (written at close).
  assert.ok(net.length >= 32 && net.length <= 45, `${net.length} records`)
  assert.ok(segBytes() - bytesBefore < 150 * 1024, `the flood added ${segBytes() - bytesBefore} bytes`)
  assert.ok(net.every((x) => x.host === undefined || x.host.length < 400), 'hosts are capped')
  const after = await sc.auditQuery({})
  assert.deepEqual(after.slice(0, before.length).map((x) => x.hash), before.map((x) => x.hash), 'earlier history is intact')
})

let floodWritten = 0
test('auditAppend records are capped and a flood of refusals is bounded', async () => {
  // A 60 KB path (a file-tool call the model chose) is cut, with the digest of the whole.
  const huge = '/w/' + 'p'.repeat(60_000)
  const seq = await sc.auditAppend({ kind: 'file_op', session: 'flood-s', tool: 'fs.readFile', path: huge, decision: 'deny', reason: `ERR_SHARKCAGE_FS_NOT_READABLE: ${huge}` })
  const [rec] = (await sc.auditQuery({ session: 'flood-s' })).filter((r) => r.seq === seq)
  const digest = crypto.createHash('sha256').update(huge).digest('hex')
  assert.ok(rec.path.length < 1200 && rec.path.endsWith(`bytes sha256:${digest}]`), rec.path.slice(-120))
  assert.ok(rec.reason.length < 1200)
  // 300 distinct refusals of one session: at most the session's budget is written one by one.
  const seqs = await Promise.all(Array.from({ length: 300 }, (_, i) => sc.auditAppend({ kind: 'file_op', session: 'flood-s', tool: 'fs.readFile', path: `/w/f${i}-${'q'.repeat(5000)}`, decision: 'deny', reason: 'ERR_SHARKCAGE_FS_NOT_READABLE' })))
  assert.equal(seqs.length, 300)
  const written = await sc.auditQuery({ session: 'flood-s', kind: 'file_op' })
  assert.ok(written.length <= 130, `${written.length} records`)
  floodWritten = written.length
})

test('auditVerify and `sc audit verify` name an edit made on disk', async () => {
  await sc.auditAppend({ kind: 'exec', session: 'to-edit', exitCode: 0 })
  sc.auditClose()
  const seg = fs.readdirSync(auditDir).filter((f) => f.startsWith('audit-')).sort().pop()
  const p = path.join(auditDir, seg)
  const lines = fs.readFileSync(p, 'utf8').split('\n')
  const i = lines.findIndex((l) => l.includes('"session":"to-edit"'))
  const seq = JSON.parse(lines[i]).seq
  lines[i] = lines[i].replace('"exitCode":0', '"exitCode":1')
  fs.writeFileSync(p, lines.join('\n'))
  // Closing wrote what the aggregator counted.
  const netSummaries = (await sc.auditQuery({ kind: 'net', session: 'flood-net' })).filter((r) => r.detail?.aggregate)
  const netWritten = (await sc.auditQuery({ kind: 'net', session: 'flood-net' })).filter((r) => !r.detail?.aggregate).length
  assert.equal(netSummaries.reduce((n, r) => n + r.detail.aggregate.count, 0) + netWritten, 500, JSON.stringify(netSummaries))
  const summary = (await sc.auditQuery({ session: 'flood-s', kind: 'file_op' })).find((r) => r.detail?.aggregate)
  const folded = 301 - floodWritten
  assert.ok(summary && summary.reason.startsWith(`and ${folded} more like it`) && summary.detail.aggregate.count === folded, JSON.stringify(summary))
  const v = await sc.auditVerify()
  assert.equal(v.ok, false)
  assert.equal(v.damage.kind, 'edited')
  assert.equal(v.damage.seq, seq)
  assert.equal(v.damage.segment, seg)
  const r = await execFileAsync(sc.launcherPath(), ['audit', 'verify', '--dir', auditDir]).catch((e) => e)
  assert.equal(r.code, 1)
  assert.match(r.stdout, new RegExp(`DAMAGED: edited at seq ${seq} in ${seg}`))
  fs.rmSync(stateDir, { recursive: true, force: true })
})
