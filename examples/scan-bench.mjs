#!/usr/bin/env node
// Benchmark: what a big workspace adds to one sandboxed call — the scan of
// protected state before and after the call (git state, startup files; see
// the README's "What a call may leave behind").
//
//   node examples/scan-bench.mjs        (BENCH_N=100 rounds, BENCH_DIRS=10000 directories)
//
// Paired and interleaved, in one run: every round runs `sc exec -- true`
// once with a small workspace and once with a workspace of BENCH_DIRS
// directories (a node_modules-like tree: packages with nested directories
// and a few files each), in a shuffled order. Reports medians, p10/p90 and
// the paired median difference. Also measured once: the first call in the
// big workspace (no scan cache yet: every directory is read), and calls
// after a directory deep inside changed (re-read: that directory only).
// Nothing is asserted; figures go to the README.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { median, quantile } from './stats.mjs'

const require = createRequire(import.meta.url)
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..')
const launcher = require(root).launcherPath()
const N = Number(process.env.BENCH_N || 100)
const DIRS = Number(process.env.BENCH_DIRS || 10000)
const WARMUP = 5

// Not under /tmp: a real project lives on the disk, not in tmpfs.
const base = fs.mkdtempSync(path.join(root, 'target', 'scan-bench-'))
const small = path.join(base, 'small')
const big = path.join(base, 'big')
fs.mkdirSync(small, { recursive: true })
fs.writeFileSync(path.join(small, 'README'), 'x')
let made = 0
for (let p = 0; made < DIRS; p++) {
  // node_modules/pkg-N/{lib,lib/sub-K,test,...}: 20 directories per package.
  const pkg = path.join(big, 'node_modules', `pkg-${p}`)
  const dirs = [pkg, path.join(pkg, 'lib'), path.join(pkg, 'test'), path.join(pkg, 'dist')]
  for (let k = 0; k < 16; k++) dirs.push(path.join(pkg, 'lib', `sub-${k}`))
  for (const d of dirs) {
    if (made >= DIRS) break
    fs.mkdirSync(d, { recursive: true })
    fs.writeFileSync(path.join(d, 'index.js'), 'module.exports = 1\n')
    made++
  }
}
const count = Number(spawnSync('sh', ['-c', `find ${big} -type d | wc -l`], { encoding: 'utf8' }).stdout.trim())

const now = () => Number(process.hrtime.bigint()) / 1e6
function call(ws) {
  const t = now()
  const r = spawnSync(launcher, ['exec', '--workspace', ws, '--', 'true'], { stdio: 'ignore' })
  const dt = now() - t
  if (r.status !== 0) throw new Error(`sc exec exited ${r.status}`)
  return dt
}

// The scan cache is kept per writable root in sharkcage's state directory;
// a fresh state directory makes the first call a cold one.
process.env.SHARKCAGE_STATE_DIR = path.join(base, 'state')
const first = call(big)

const samples = { small: [], big: [] }
for (let round = 0; round < N + WARMUP; round++) {
  const order = Math.random() < 0.5 ? ['small', 'big'] : ['big', 'small']
  for (const k of order) {
    const dt = call(k === 'small' ? small : big)
    if (round >= WARMUP) samples[k].push(dt)
  }
}
// A change deep inside before each call: that directory is read again.
const changed = []
for (let i = 0; i < 20; i++) {
  fs.writeFileSync(path.join(big, 'node_modules', `pkg-${i}`, 'lib', 'sub-3', `new-${i}.js`), 'x')
  changed.push(call(big))
}

const diff = samples.big.map((x, i) => x - samples.small[i])
const fmt = (x) => x.toFixed(2)
const lines = []
lines.push(`${N} paired rounds (+${WARMUP} warm-up), ${count} directories, ${os.cpus().length} CPUs, Linux ${os.release()}, node ${process.version}`)
lines.push('')
lines.push('| workspace | median ms | p10 ms | p90 ms |')
lines.push('|---|---|---|---|')
for (const [k, xs] of Object.entries(samples)) lines.push(`| ${k === 'small' ? '1 directory' : `${count} directories`} | ${fmt(median(xs))} | ${fmt(quantile(xs, 0.1))} | ${fmt(quantile(xs, 0.9))} |`)
lines.push('')
lines.push(`- added by ${count} directories (paired median): **${fmt(median(diff))} ms** (p10 ${fmt(quantile(diff, 0.1))}, p90 ${fmt(quantile(diff, 0.9))})`)
lines.push(`- first call in that workspace (every directory read, no cache): ${fmt(first)} ms`)
lines.push(`- a call after one directory deep inside changed (median of 20): ${fmt(median(changed))} ms`)
console.log(lines.join('\n'))
fs.rmSync(base, { recursive: true, force: true })
