#!/usr/bin/env node
// Benchmark: the cost of one sandboxed `sh -c true`.
//
//   node examples/bench.mjs            (BENCH_N=200 rounds by default)
//
// Compares, in one run, with paired and interleaved measurements (every
// round runs each variant once, in a shuffled order, so load changes hit all
// of them alike):
//   bare        spawnSync('sh', ['-c', 'true'])
//   bwrap       bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc sh -c true
//   sc exec     spawnSync(launcher, ['exec', '--', 'sh', '-c', 'true'])
//   node spawn  async child_process.spawn of the same `sc exec` (the baseline for the addon)
//   napi exec   await exec({ command: ['sh', '-c', 'true'] }) from this process
//   baseline    with BENCH_BASELINE=<another sc binary>: `sc exec` of that one, for a
//               paired before/after comparison in the same run
// and reports medians, p90 and ratios, plus the launcher's peak RSS (via
// GNU time, when installed). Nothing here is asserted: figures go to the
// README. bwrap is only needed for the comparison (`apt-get install bubblewrap`).
import { spawnSync, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { median, quantile, shuffle } from './stats.mjs'

const require = createRequire(import.meta.url)
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..')
const addon = require(root)
const launcher = addon.launcherPath()
const N = Number(process.env.BENCH_N || 200)
const WARMUP = 10

const haveBwrap = spawnSync('bwrap', ['--version']).status === 0
const ws = fs.mkdtempSync(path.join(os.homedir() && fs.existsSync(os.homedir()) ? os.tmpdir() : '/tmp', 'sc-bench-'))

const now = () => Number(process.hrtime.bigint()) / 1e6

function timedSync(cmd, args) {
  const t = now()
  const r = spawnSync(cmd, args, { stdio: 'ignore' })
  const dt = now() - t
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`)
  return dt
}

function timedSpawn(cmd, args) {
  return new Promise((resolve, reject) => {
    const t = now()
    const c = spawn(cmd, args, { stdio: 'ignore' })
    c.on('error', reject)
    c.on('exit', (code) => (code === 0 ? resolve(now() - t) : reject(new Error(`${cmd} exited ${code}`))))
  })
}

const variants = {
  bare: async () => timedSync('sh', ['-c', 'true']),
  'sc exec': async () => timedSync(launcher, ['exec', '--workspace', ws, '--', 'sh', '-c', 'true']),
  'node spawn of sc exec': async () => timedSpawn(launcher, ['exec', '--workspace', ws, '--', 'sh', '-c', 'true']),
  'napi exec()': async () => {
    const t = now()
    const r = await addon.exec({ command: ['sh', '-c', 'true'], cwd: ws })
    if (r.exitCode !== 0) throw new Error(`napi exec exited ${r.exitCode}`)
    return now() - t
  },
}
const baseline = process.env.BENCH_BASELINE
if (baseline) {
  variants.baseline = async () => timedSync(baseline, ['exec', '--workspace', ws, '--', 'sh', '-c', 'true'])
}
if (haveBwrap) {
  variants.bwrap = async () =>
    timedSync('bwrap', ['--unshare-all', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', 'sh', '-c', 'true'])
}



const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
for (let round = 0; round < N + WARMUP; round++) {
  for (const name of shuffle(Object.keys(variants))) {
    const dt = await variants[name]()
    if (round >= WARMUP) samples[name].push(dt)
  }
}

// Paired differences (same round) are more robust than differences of medians.
const paired = (a, b) => median(samples[a].map((x, i) => x - samples[b][i]))
const pairedRatio = (a, b) => median(samples[a].map((x, i) => x / samples[b][i]))

// Peak RSS of the launcher process tree (GNU time's %M, in KiB).
let rss = null
if (fs.existsSync('/usr/bin/time')) {
  const vals = []
  for (let i = 0; i < 20; i++) {
    const r = spawnSync('/usr/bin/time', ['-f', '%M', launcher, 'exec', '--workspace', ws, '--', 'sh', '-c', 'true'], { encoding: 'utf8' })
    const kb = Number((r.stderr || '').trim().split('\n').pop())
    if (Number.isFinite(kb)) vals.push(kb)
  }
  if (vals.length) rss = { medianKiB: median(vals), maxKiB: Math.max(...vals) }
}

const fmt = (x) => x.toFixed(2)
const lines = []
lines.push(`${N} paired rounds (+${WARMUP} warm-up), ${os.cpus().length} CPUs, Linux ${os.release()}, node ${process.version}`)
lines.push('')
lines.push('| variant | median ms | p90 ms |')
lines.push('|---|---|---|')
for (const [name, xs] of Object.entries(samples)) lines.push(`| ${name} | ${fmt(median(xs))} | ${fmt(quantile(xs, 0.9))} |`)
lines.push('')
if (haveBwrap) lines.push(`- sc exec / bwrap (paired median ratio): **${fmt(pairedRatio('sc exec', 'bwrap'))}×**`)
lines.push(`- sc exec − bare (paired median): ${fmt(paired('sc exec', 'bare'))} ms`)
if (baseline) lines.push(`- sc exec − baseline ${baseline} (paired median): ${fmt(paired('sc exec', 'baseline'))} ms`)
lines.push(`- napi exec() − bare spawn (paired median): ${fmt(paired('napi exec()', 'bare'))} ms`)
lines.push(`- napi exec() − node spawn of sc exec (the addon's own cost, paired median): ${fmt(paired('napi exec()', 'node spawn of sc exec'))} ms`)
if (rss) lines.push(`- launcher peak RSS (process tree, GNU time): median ${(rss.medianKiB / 1024).toFixed(1)} MiB, max ${(rss.maxKiB / 1024).toFixed(1)} MiB`)
if (!haveBwrap) lines.push('- bwrap not installed: no comparison (apt-get install bubblewrap)')
console.log(lines.join('\n'))

fs.mkdirSync(path.join(root, 'bench-results'), { recursive: true })
fs.writeFileSync(path.join(root, 'bench-results', 'latest.json'), JSON.stringify({ N, samples, rss }, null, 1))
fs.rmSync(ws, { recursive: true, force: true })
