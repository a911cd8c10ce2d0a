// What a skill's grants cost per call, measured, not asserted: the backend's
// planning (`SkillGate.forExec`: attribution, the skill's hash, its
// declaration, the grant store, the verified copy of its code) and a whole
// sandboxed call, each against the same command without a skill (paired
// within a round, order shuffled; medians over BENCH_N rounds, ≥ 100, and
// the spread).
//
//   node examples/skill-bench.mjs          (BENCH_N=150 by default)
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { spawnSync } from 'node:child_process'
import { median, quantile, shuffle } from './stats.mjs'

const require = createRequire(import.meta.url)
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const sc = require(path.join(root, 'index.js'))
const N = Math.max(100, Number(process.env.BENCH_N) || 150)

// A private world: HOME (state, grants, snapshots) and a workspace with a skill.
const base = fs.mkdtempSync(path.join(root, 'target', 'skill-bench-'))
const home = path.join(base, 'home')
const ws = path.join(base, 'ws')
const dir = path.join(ws, 'skills', 'demo')
fs.mkdirSync(dir, { recursive: true })
fs.mkdirSync(home, { recursive: true })
process.env.HOME = home
const meta = { sharkcage: { version: 1, capabilities: [{ capability: 'network.external', reason: 'its API', scope: ['api.example.com'] }, { capability: 'system.env', reason: 'key', scope: ['DEMO_KEY'] }] } }
fs.writeFileSync(path.join(dir, 'SKILL.md'), `---\nname: demo\ndescription: d\nmetadata: ${JSON.stringify(meta)}\n---\n`)
fs.writeFileSync(path.join(dir, 'run.py'), 'print("ok")\n')
for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, `lib${i}.py`), `# module ${i}\n`.repeat(50))
const state = path.join(home, '.local', 'state', 'sharkcage')
const snapshotRoot = path.join(home, '.openclaw', 'sharkcage-skill-code')
const gate = new sc.SkillGate({ stateDir: state })
const skills = [{ name: 'demo', dir: fs.realpathSync(dir) }]
// Grant it always (as a chat approval would).
const j = gate.judge({ command: `python3 ${dir}/run.py`, workdir: ws, workspace: ws, skills })
gate.resolve(j.token, 'allow-always')

const variants = {
  baseline: `python3 ${ws}/plain.py`,
  skill: `python3 ${dir}/run.py`,
}
fs.writeFileSync(path.join(ws, 'plain.py'), 'print("ok")\n')
const plan = (command) => gate.forExec({ command, workdir: ws, workspace: ws, skills, policy: {}, env: {}, values: { demo: { DEMO_KEY: 'k-123456' } }, snapshotRoot })
const run = (command) => {
  const p = plan(command)
  const argv = sc.buildExecArgv(p.policy, p.argv ?? ['/bin/sh', '-c', command], { workspace: ws, env: p.env, readOnly: p.expose, redact: p.redact, homeLayer: 'none' })
  const r = spawnSync(argv[0], argv.slice(1), { env: sc.launcherEnv(), encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`call failed: ${r.stderr}`)
}

function measure(what, fn) {
  const t = { baseline: [], skill: [] }
  for (const v of Object.keys(variants)) fn(variants[v]) // warm up (the first skill call makes the copy)
  for (let i = 0; i < N; i++) {
    for (const v of shuffle(Object.keys(variants))) {
      const t0 = process.hrtime.bigint()
      fn(variants[v])
      t[v].push(Number(process.hrtime.bigint() - t0) / 1e6)
    }
  }
  const diff = t.skill.map((x, i) => x - t.baseline[i])
  const row = (xs) => `median ${median(xs).toFixed(3)} ms (p10 ${quantile(xs, 0.1).toFixed(3)}, p90 ${quantile(xs, 0.9).toFixed(3)})`
  console.log(`${what}:`)
  console.log(`  without a skill: ${row(t.baseline)}`)
  console.log(`  skill call:      ${row(t.skill)}`)
  console.log(`  paired difference: ${row(diff)}`)
}

console.log(`skill-bench: ${N} rounds, ${os.cpus().length} CPUs, load ${os.loadavg()[0].toFixed(2)}`)
try {
  measure('planning (forExec)', plan)
  measure('whole sandboxed call', run)
} finally {
  fs.rmSync(base, { recursive: true, force: true })
}
