// SandboxFs: the file-tool operations under the sandbox's rules, checked on
// the host (files present or absent, secret bytes never returned).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { spawnSync } from 'node:child_process'

const require = createRequire(import.meta.url)
const sc = require('../index.js')

function fixture() {
  // Not under /tmp: that is private inside the sandbox, and so for the bridge.
  const parent = process.env.SC_TEST_TMPDIR || path.join(process.cwd(), 'target')
  fs.mkdirSync(parent, { recursive: true })
  const base = fs.mkdtempSync(path.join(parent, 'fs-test-'))
  const home = path.join(base, 'home')
  const ws = path.join(home, '.openclaw', 'workspace')
  fs.mkdirSync(path.join(home, '.ssh'), { recursive: true })
  fs.mkdirSync(path.join(ws, '.git', 'hooks'), { recursive: true })
  fs.writeFileSync(path.join(home, '.ssh', 'id_rsa'), 'FS-SECRET-KEY')
  fs.writeFileSync(path.join(home, '.openclaw', 'openclaw.json'), '{"token":"FS-GATEWAY-TOKEN"}')
  fs.writeFileSync(path.join(ws, 'a.txt'), 'hello')
  return { base, home, ws }
}

function withHome(home, fn) {
  const old = process.env.HOME
  process.env.HOME = home
  try {
    return fn()
  } finally {
    process.env.HOME = old
  }
}

test('SandboxFs reads, writes, lists and creates under the sandbox rules', () => {
  const { base, home, ws } = fixture()
  try {
    const f = withHome(home, () => new sc.SandboxFs({}, { workspace: ws }))
    assert.equal(f.readFile('a.txt').toString(), 'hello')
    assert.equal(f.stat('a.txt').type, 'file')
    assert.equal(f.stat('missing.txt'), null)
    f.writeFile('dir/b.txt', 'B', true)
    assert.equal(fs.readFileSync(path.join(ws, 'dir', 'b.txt'), 'utf8'), 'B')
    assert.equal(f.createFileExclusive('c.txt', 'one'), 'created')
    assert.equal(f.createFileExclusive('c.txt', 'two'), 'exists')
    assert.equal(fs.readFileSync(path.join(ws, 'c.txt'), 'utf8'), 'one')
    const names = f.readDirectory('.').map((e) => e.name)
    assert.ok(names.includes('dir') && names.includes('a.txt'))
    // Secrets: by path, through a symlink in the workspace, and the gateway config.
    assert.throws(() => f.readFile(path.join(home, '.ssh', 'id_rsa')), { code: 'ERR_SHARKCAGE_FS_NOT_READABLE' })
    fs.symlinkSync(path.join(home, '.ssh', 'id_rsa'), path.join(ws, 'key-link'))
    assert.throws(() => f.readFile('key-link'), (e) => /ERR_SHARKCAGE_FS/.test(e.code) && !String(e.message).includes('FS-SECRET-KEY'))
    assert.throws(() => f.readFile(path.join(home, '.openclaw', 'openclaw.json')), { code: 'ERR_SHARKCAGE_FS_NOT_READABLE' })
    // Writes outside the workspace and to protected names leave nothing on the host.
    assert.throws(() => f.writeFile(path.join(home, 'evil.txt'), 'x'), { code: 'ERR_SHARKCAGE_FS_NOT_WRITABLE' })
    assert.ok(!fs.existsSync(path.join(home, 'evil.txt')))
    assert.throws(() => f.writeFile('.git/hooks/pre-commit', 'x'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.ok(!fs.existsSync(path.join(ws, '.git', 'hooks', 'pre-commit')))
    assert.throws(() => f.writeFile('../../escape.txt', 'x'), (e) => /^ERR_SHARKCAGE_FS_/.test(e.code))
    assert.ok(!fs.existsSync(path.join(home, 'escape.txt')))
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test('SandboxFs refuses git state and startup files by rule, at any depth, and says why', () => {
  const { base, home, ws } = fixture()
  try {
    const f = withHome(home, () => new sc.SandboxFs({}, { workspace: ws }))
    // A bare repository: the write that completes HEAD + objects/ + refs/ is refused.
    const bare = path.join('a', 'b', 'c', 'd', 'e', 'bare')
    f.writeFile(path.join(bare, 'HEAD'), 'ref: refs/heads/main\n', true)
    f.mkdirp(path.join(bare, 'objects'))
    assert.throws(() => f.mkdirp(path.join(bare, 'refs')), (e) => e.code === 'ERR_SHARKCAGE_FS_PROTECTED' && /git repository/.test(e.message))
    assert.ok(!fs.existsSync(path.join(ws, bare, 'refs')))
    // Inside .git at any depth, a gitfile, agent and shell startup files.
    for (const p of ['.git/modules/sub/config', 'x/y/z/.git', '.git/worktrees/wt/commondir', '.claude/settings.json', 'p/.npmrc', 'h/.config/git/config', 'h/.local/bin/git']) {
      assert.throws(() => f.writeFile(p, '[core]\n\tfsmonitor = touch /tmp/pwned\n', true), { code: 'ERR_SHARKCAGE_FS_PROTECTED' }, p)
      assert.ok(!fs.existsSync(path.join(ws, p)), p)
    }
    // A directory renamed onto .git.
    f.mkdirp('plain')
    assert.throws(() => f.rename('plain', 'sub/.git'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.ok(fs.existsSync(path.join(ws, 'plain')) && !fs.existsSync(path.join(ws, 'sub', '.git')))
    // Ordinary files with git-like names outside git directories are fine.
    f.writeFile('notes/config', 'x', true)
    assert.equal(fs.readFileSync(path.join(ws, 'notes', 'config'), 'utf8'), 'x')
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test('SandboxFs in a root process reads with the sandbox identity: a root-only file elsewhere stays unreadable', { skip: process.getuid() !== 0 && 'the uid shift applies to root processes' }, () => {
  const { base, home, ws } = fixture()
  try {
    const outside = path.join(base, 'srv')
    fs.mkdirSync(outside, { recursive: true })
    fs.chmodSync(base, 0o755)
    fs.chmodSync(outside, 0o755)
    fs.writeFileSync(path.join(outside, 'db.key'), 'ROOT-ONLY-KEY', { mode: 0o600 })
    fs.writeFileSync(path.join(outside, 'public.txt'), 'PUBLIC', { mode: 0o644 })
    const f = withHome(home, () => new sc.SandboxFs({}, { workspace: ws }))
    assert.throws(() => f.readFile(path.join(outside, 'db.key')), (e) => e.code === 'ERR_SHARKCAGE_FS_NOT_READABLE' && !String(e.message).includes('ROOT-ONLY-KEY'))
    assert.equal(f.readFile(path.join(outside, 'public.txt')).toString(), 'PUBLIC')
    // The same answer as exec for the same file.
    const r = spawnSync(sc.launcherPath(), ['exec', '--workspace', ws, '--', 'cat', path.join(outside, 'db.key')], { env: { ...process.env, HOME: home }, encoding: 'utf8' })
    assert.notEqual(r.status, 0)
    assert.ok(!r.stdout.includes('ROOT-ONLY-KEY'))
    // Root's own rights come back after each operation.
    assert.equal(fs.readFileSync(path.join(outside, 'db.key'), 'utf8'), 'ROOT-ONLY-KEY')
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test('SandboxFs hides what appears after it was made: new secrets and new files matching denyRead', () => {
  const { base, home, ws } = fixture()
  try {
    const f = withHome(home, () => new sc.SandboxFs({ filesystem: { denyRead: [path.join(ws, 'conf', '*.key')] } }, { workspace: ws }))
    // Made after the view: a cloud credential, a new ssh key, a key file in the workspace.
    fs.mkdirSync(path.join(home, '.aws'), { recursive: true })
    fs.writeFileSync(path.join(home, '.aws', 'credentials'), 'LATE-AWS-SECRET')
    fs.writeFileSync(path.join(home, '.ssh', 'id_ed25519'), 'LATE-SSH-SECRET')
    fs.mkdirSync(path.join(ws, 'conf'), { recursive: true })
    fs.writeFileSync(path.join(ws, 'conf', 'db.key'), 'LATE-KEY-SECRET')
    fs.writeFileSync(path.join(ws, 'conf', 'app.toml'), 'ok')
    for (const p of [path.join(home, '.aws', 'credentials'), path.join(home, '.ssh', 'id_ed25519'), path.join(ws, 'conf', 'db.key')]) {
      assert.throws(() => f.readFile(p), (e) => e.code === 'ERR_SHARKCAGE_FS_NOT_READABLE' && !String(e.message).includes('LATE-'), p)
    }
    assert.equal(f.readFile(path.join(ws, 'conf', 'app.toml')).toString(), 'ok')
    assert.ok(!f.readDirectory('conf').some((e) => e.name === 'db.key'), 'a denied file is listed')
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})
