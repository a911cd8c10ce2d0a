#!/usr/bin/env node
// Benchmark: real workloads with and without the sandbox, and what the
// private home layer costs a plain call.
//
//   node examples/workload-bench.mjs    (after `npm run build`; BENCH_N=15 workload rounds, BENCH_CALL_N=200 calls)
//
// Paired, interleaved rounds: every round runs both variants of a measure, in
// a shuffled order, so load changes hit both alike; figures are medians of
// the per-round ratios (or differences), with p10–p90 as the spread.
//   npm install (warm)  `npm install --prefer-offline` of a few packages into a fresh directory, from the
//                       default cache (~/.npm) that the warm-up rounds filled; sandboxed with the npm
//                       registry (from `npm config get registry`) allowed. Target: ≤ 5 % slower.
//   cargo build         `cargo build --offline` of a tiny crate with one small dependency (itoa) from the
//                       warm cargo registry, into a fresh target directory. Target: ≤ 5 % slower.
//   sc exec -- true     the home layer on (the default) against `--home-layer none`. Target: ≤ 0.5 ms.
// Sandboxed means `sc exec --workspace <bench dir>` with the default policy (the launcher built by
// `npm run build`). Each measure is skipped with a note when it cannot run here (no registry, no
// `--home-layer` flag yet). BENCH_ONLY=npm,cargo,calls picks measures. Nothing is asserted.
// Run it on a quiet machine: under contention a sandbox gets a lower CPU share than its caller (by
// design, see the README's limits), so a busy machine measures that policy, not the sandbox's cost.
// The load average before and after is printed for that reason.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { median, quantile, shuffle } from './stats.mjs'

const require = createRequire(import.meta.url)
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..')
const launcher = require(root).launcherPath()
const N = Number(process.env.BENCH_N || 15)
const CALL_N = Number(process.env.BENCH_CALL_N || 200)
const only = (process.env.BENCH_ONLY || 'npm,cargo,calls').split(',')
const NPM_PACKAGES = ['ms@2.1.3', 'is-number@7.0.0', 'once@1.4.0', 'semver@7.6.3', 'debug@4.3.7']

// Outside /tmp would not matter for the workspace (it is bound in), but the
// home layer is kept per workspace: one workspace for the whole run.
const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'sc-workload-bench-'))
const now = () => Number(process.hrtime.bigint()) / 1e6

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts })
}
function must(cmd, args, opts = {}) {
  const r = run(cmd, args, opts)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout || '').slice(-2000)}`)
  return r.stdout
}
function timed(cmd, args, opts = {}) {
  const t = now()
  must(cmd, args, { stdio: 'ignore', ...opts })
  return now() - t
}
const sandboxed = (flags, cmd, cwd) => [launcher, ['exec', '--workspace', ws, ...flags, '--', 'sh', '-c', `cd '${cwd}' && ${cmd}`]]


/** `rounds` paired rounds of two variants (`fn() → ms` each), after `warmup` untimed ones. */
function paired(rounds, warmup, variants) {
  const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
  for (let r = 0; r < rounds + warmup; r++) {
    for (const name of shuffle(Object.keys(variants))) {
      const dt = variants[name]()
      if (r >= warmup) samples[name].push(dt)
    }
  }
  return samples
}

const loadBefore = os.loadavg()[0]
const notes = []
const rows = []
const results = {}

// ---- npm install (warm) ------------------------------------------------------
function npmBench() {
  const registry = must('npm', ['config', 'get', 'registry']).trim()
  const host = new URL(registry).host
  const pkg = JSON.stringify({ name: 'bench', version: '1.0.0', private: true })
  // A fresh directory per round (the previous round's removed, untimed).
  const fresh = (name) => {
    const d = path.join(ws, name)
    fs.rmSync(d, { recursive: true, force: true })
    fs.mkdirSync(d, { recursive: true })
    fs.writeFileSync(path.join(d, 'package.json'), pkg)
    return d
  }
  let cacheArgs = []
  let sandboxFlags = ['--allow-domain', host]
  const install = (extra) => `npm install --no-audit --no-fund --no-update-notifier ${extra} ${cacheArgs.join(' ')} ${NPM_PACKAGES.join(' ')}`
  // Fill the host's cache, then the sandbox's view of it (the home layer).
  try {
    must('sh', ['-c', install('')], { cwd: fresh('npm-bare') })
  } catch (e) {
    notes.push(`npm install skipped: the registry ${registry} cannot be reached or npm failed (${e.message.split('\n')[0]})`)
    return
  }
  const prime = run(...sandboxed(sandboxFlags, install(''), fresh('npm-sc')))
  if (prime.status !== 0) {
    // Without the home layer ~/.npm is read-only in the sandbox: both variants
    // then use one explicit cache, writable to the sandbox.
    const cache = path.join(ws, 'npm-cache')
    cacheArgs = ['--cache', cache]
    sandboxFlags = [...sandboxFlags, '--allow-write', cache]
    notes.push(`npm: the sandboxed npm cannot write its default cache ~/.npm (no home layer): both variants use the explicit cache ${cache} (--allow-write)`)
    must('sh', ['-c', install('')], { cwd: fresh('npm-bare') })
    must(...sandboxed(sandboxFlags, install(''), fresh('npm-sc')))
  }
  const cmd = install('--prefer-offline')
  const samples = paired(N, 2, {
    bare: () => timed('sh', ['-c', cmd], { cwd: fresh('npm-bare') }),
    sandboxed: () => timed(...sandboxed(sandboxFlags, cmd, fresh('npm-sc'))),
  })
  results.npm = samples
  rows.push(ratioRow(`npm install --prefer-offline (${NPM_PACKAGES.length} packages, warm)`, samples))
}

// ---- cargo build --------------------------------------------------------------
function cargoBench() {
  const crate = path.join(ws, 'crate')
  fs.mkdirSync(path.join(crate, 'src'), { recursive: true })
  fs.writeFileSync(path.join(crate, 'src', 'main.rs'), 'fn main() {\n    println!("{}", itoa::Buffer::new().format(42));\n}\n')
  const manifest = (dep) => `[package]\nname = "bench-crate"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n${dep}\n`
  fs.writeFileSync(path.join(crate, 'Cargo.toml'), manifest('itoa = "1"'))
  // Warm the registry: the lock file and the crate's sources on the host.
  if (run('cargo', ['fetch', '-q'], { cwd: crate }).status !== 0) {
    // No crates.io here: the same shape with a local path dependency.
    const dep = path.join(ws, 'itoa')
    fs.mkdirSync(path.join(dep, 'src'), { recursive: true })
    fs.writeFileSync(path.join(dep, 'Cargo.toml'), '[package]\nname = "itoa"\nversion = "1.0.0"\nedition = "2021"\n')
    fs.writeFileSync(path.join(dep, 'src', 'lib.rs'), 'pub struct Buffer;\nimpl Buffer {\n    pub fn new() -> Self { Buffer }\n    pub fn format(&mut self, n: i64) -> String { n.to_string() }\n}\n')
    fs.writeFileSync(path.join(crate, 'Cargo.toml'), manifest(`itoa = { path = "${dep}" }`))
    notes.push('cargo: crates.io cannot be reached: the dependency is a local path crate instead')
  }
  const target = (name) => {
    const d = path.join(ws, name)
    fs.rmSync(d, { recursive: true, force: true })
    return d
  }
  const build = (dir) => `cargo build -q --offline --target-dir '${dir}'`
  try {
    must('sh', ['-c', build(target('cargo-bare'))], { cwd: crate })
    must(...sandboxed([], build(target('cargo-sc')), crate))
  } catch (e) {
    notes.push(`cargo build skipped: ${e.message.split('\n')[0]}`)
    return
  }
  const samples = paired(N, 2, {
    bare: () => timed('sh', ['-c', build(target('cargo-bare'))], { cwd: crate }),
    sandboxed: () => timed(...sandboxed([], build(target('cargo-sc')), crate)),
  })
  results.cargo = samples
  rows.push(ratioRow('cargo build --offline (1 dependency, fresh target)', samples))
}

// ---- per call: home layer on vs none -------------------------------------------
function callBench() {
  const probe = run(launcher, ['exec', '--workspace', ws, '--home-layer', 'none', '--', 'true'])
  if (probe.status !== 0) {
    notes.push(`per-call cost of the home layer skipped: \`sc exec --home-layer none\` is not accepted here (${(probe.stderr || '').trim().split('\n')[0]})`)
    return
  }
  const call = (flags) => () => timed(launcher, ['exec', '--workspace', ws, ...flags, '--', 'true'])
  const samples = paired(CALL_N, 10, { none: call(['--home-layer', 'none']), layer: call([]) })
  results.calls = samples
  const d = samples.layer.map((x, i) => x - samples.none[i])
  rows.push(
    `| sc exec -- true, home layer vs \`--home-layer none\` | ${CALL_N} | ${fmt(median(samples.none))} | ${fmt(median(samples.layer))} | ` +
      `**${d.length ? (median(d) >= 0 ? '+' : '') + fmt(median(d)) : '-'} ms** | ${fmt(quantile(d, 0.1))} – ${fmt(quantile(d, 0.9))} ms | ≤ +0.5 ms: ${median(d) <= 0.5 ? 'met' : 'NOT met'} |`,
  )
}

const fmt = (x) => x.toFixed(2)
function ratioRow(name, s) {
  const r = s.sandboxed.map((x, i) => x / s.bare[i])
  const m = median(r)
  return `| ${name} | ${N} | ${fmt(median(s.bare))} | ${fmt(median(s.sandboxed))} | **${fmt(m)}×** | ${fmt(quantile(r, 0.1))} – ${fmt(quantile(r, 0.9))}× | ≤ 1.05×: ${m <= 1.05 ? 'met' : 'NOT met'} |`
}

try {
  if (only.includes('npm')) npmBench()
  if (only.includes('cargo')) cargoBench()
  if (only.includes('calls')) callBench()
} finally {
  fs.rmSync(ws, { recursive: true, force: true })
}

const lines = [
  `${os.cpus().length} CPUs, Linux ${os.release()}, node ${process.version}, ${process.getuid() === 0 ? 'root' : 'uid ' + process.getuid()}, launcher ${launcher}`,
  `load average (1 min) before ${loadBefore.toFixed(2)}, after ${os.loadavg()[0].toFixed(2)}`,
  '',
]
lines.push('| measure | rounds | bare (or layer none) median ms | sandboxed (or layer on) median ms | paired median | p10 – p90 | target |')
lines.push('|---|---|---|---|---|---|---|')
lines.push(...rows)
if (notes.length) lines.push('', ...notes.map((n) => `- ${n}`))
console.log(lines.join('\n'))

fs.mkdirSync(path.join(root, 'bench-results'), { recursive: true })
fs.writeFileSync(path.join(root, 'bench-results', 'workloads-latest.json'), JSON.stringify({ N, CALL_N, results, notes }, null, 1))
