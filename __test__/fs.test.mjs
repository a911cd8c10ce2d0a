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
    for (const p of ['.git/modules/sub/config', 'x/y/z/.git', '.git/worktrees/wt/commondir', '.claude/settings.json', 'p/.npmrc', 'h/.config/git/config', 'h/.local/bin/git', 'p/.openclaw/extensions/x/index.js']) {
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

test('SandboxFs: a hidden path cannot be moved out through a symlink, nor a directory holding a secret made later', () => {
  const { base, home, ws } = fixture()
  try {
    const secret = path.join(ws, 'secret.txt')
    fs.writeFileSync(secret, 'DENIED-SECRET')
    fs.mkdirSync(path.join(ws, 'proj', 'sub'), { recursive: true })
    fs.symlinkSync('.', path.join(ws, 'l'))
    const late = path.join(ws, 'proj', 'sub', 'late.txt')
    const f = withHome(home, () => new sc.SandboxFs({ filesystem: { denyRead: [secret, late, path.join(ws, '**', '*.env')] } }, { workspace: ws }))
    fs.writeFileSync(late, 'LATE-DENIED-SECRET')
    // By its own name, through the in-workspace symlink, and by writing over it.
    assert.throws(() => f.rename('secret.txt', 'm1'), (e) => /^ERR_SHARKCAGE_FS_/.test(e.code))
    assert.throws(() => f.rename('l/secret.txt', 'm2'), (e) => /^ERR_SHARKCAGE_FS_/.test(e.code))
    assert.throws(() => f.writeFile('l/secret.txt', 'overwritten'), (e) => /^ERR_SHARKCAGE_FS_/.test(e.code))
    assert.throws(() => f.remove('l/secret.txt'), (e) => /^ERR_SHARKCAGE_FS_/.test(e.code))
    assert.equal(fs.readFileSync(secret, 'utf8'), 'DENIED-SECRET')
    assert.ok(!fs.existsSync(path.join(ws, 'm1')) && !fs.existsSync(path.join(ws, 'm2')))
    // A directory holding a denied path made after the view, and one holding a file a pattern hides.
    assert.throws(() => f.rename('proj/sub', 'proj/moved'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.equal(fs.readFileSync(late, 'utf8'), 'LATE-DENIED-SECRET')
    fs.mkdirSync(path.join(ws, 'cfg'), { recursive: true })
    fs.writeFileSync(path.join(ws, 'cfg', 'prod.env'), 'PATTERN-SECRET')
    assert.throws(() => f.rename('cfg', 'cfg2'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.throws(() => f.remove('cfg', true), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.equal(fs.readFileSync(path.join(ws, 'cfg', 'prod.env'), 'utf8'), 'PATTERN-SECRET')
    // Nothing moved is readable under a new name.
    for (const p of ['m1', 'm2', 'proj/moved/late.txt', 'cfg2/prod.env']) {
      assert.throws(() => f.readFile(p), (e) => (e.code === 'ENOENT' || /^ERR_SHARKCAGE_FS_/.test(e.code)) && !/SECRET/.test(String(e.message)), p)
    }
    // An ordinary directory still moves.
    f.mkdirp('plain/inner')
    f.rename('plain', 'plain2')
    assert.ok(fs.existsSync(path.join(ws, 'plain2', 'inner')))
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test('SandboxFs: a symlink cannot become a startup directory (.cargo, .claude) by a rename', () => {
  const { base, home, ws } = fixture()
  try {
    fs.mkdirSync(path.join(ws, 'evil'))
    fs.writeFileSync(path.join(ws, 'evil', 'config.toml'), '[build]\nrustc-wrapper = "/tmp/pwn"\n')
    fs.writeFileSync(path.join(ws, 'evil', 'settings.json'), '{"hooks":{}}')
    for (const n of ['l1', 'l2', 'l3', 'l4']) fs.symlinkSync('evil', path.join(ws, n))
    fs.mkdirSync(path.join(ws, 'sub'))
    const f = withHome(home, () => new sc.SandboxFs({}, { workspace: ws }))
    for (const [from, to] of [['l1', '.cargo'], ['l2', '.claude'], ['l3', 'sub/.config'], ['l4', '.hg']]) {
      assert.throws(() => f.rename(from, to), { code: 'ERR_SHARKCAGE_FS_PROTECTED' }, to)
      assert.ok(!fs.existsSync(path.join(ws, to)), to)
      assert.ok(fs.lstatSync(path.join(ws, from)).isSymbolicLink(), from)
    }
    // A symlink with an ordinary name, and a plain file named like the directory, are fine.
    f.rename('l1', 'docs-link')
    assert.ok(fs.lstatSync(path.join(ws, 'docs-link')).isSymbolicLink())
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test('SandboxFs: a writable root nested in another cannot be moved away or replaced by a symlink', () => {
  const { base, home, ws } = fixture()
  try {
    const a = path.join(base, 'A')
    const b = path.join(a, 'B')
    const out = path.join(base, 'OUT')
    fs.mkdirSync(b, { recursive: true })
    fs.mkdirSync(out)
    fs.symlinkSync('.', path.join(a, 'l'))
    fs.symlinkSync(out, path.join(a, 's'))
    const f = withHome(home, () => new sc.SandboxFs({ filesystem: { allowWrite: [a] } }, { workspace: b }))
    assert.throws(() => f.rename(path.join(a, 'l', 'B'), path.join(a, 'Bold')), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.throws(() => f.rename(path.join(a, 'B'), path.join(a, 'Bold')), (e) => /^ERR_SHARKCAGE_FS_/.test(e.code))
    assert.throws(() => f.rename(path.join(a, 's'), path.join(a, 'l', 'B')), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.throws(() => f.remove(path.join(a, 'l', 'B'), true), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.ok(fs.lstatSync(b).isDirectory() && !fs.existsSync(path.join(a, 'Bold')))
    // A root replaced behind the bridge's back is refused, not followed.
    fs.renameSync(b, path.join(a, 'Bhost'))
    fs.symlinkSync(out, b)
    assert.throws(() => f.mkdirp(path.join(b, 'made', 'deeper')), (e) => /^ERR_SHARKCAGE_FS_/.test(e.code))
    assert.throws(() => f.writeFile(path.join(b, 'x.txt'), 'x'), (e) => /^ERR_SHARKCAGE_FS_/.test(e.code))
    assert.deepEqual(fs.readdirSync(out), [])
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})

function hostGit(base, home, cwd, args) {
  const r = spawnSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: home, GIT_CEILING_DIRECTORIES: base, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' },
  })
  assert.equal(r.status, 0, `git ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

test('SandboxFs: hooks directories named by git configs, global ones and those of worktrees added later', (t) => {
  if (spawnSync('git', ['--version']).status !== 0) return t.skip('git is not installed')
  const { base, home, ws } = fixture()
  try {
    // A relative core.hooksPath in the user's global config: that name is a hooks directory anywhere.
    fs.writeFileSync(path.join(home, '.gitconfig'), '[core]\n\thooksPath = .githooks\n')
    const repo = path.join(ws, 'repo')
    fs.mkdirSync(repo)
    hostGit(base, home, repo, ['init', '-q', '-b', 'main'])
    fs.writeFileSync(path.join(repo, 'f'), 'x')
    hostGit(base, home, repo, ['add', 'f'])
    hostGit(base, home, repo, ['-c', 'core.hooksPath=', 'commit', '-qm', 'init'])
    // The repository's own relative hooksPath, husky's layout.
    hostGit(base, home, repo, ['config', 'core.hooksPath', '.husky/_'])
    const f = withHome(home, () => new sc.SandboxFs({}, { workspace: ws }))
    f.mkdirp('repo/hk')
    f.writeFile('repo/hk/pre-commit', '#!/bin/sh\ntouch PWNED\n')
    assert.throws(() => f.rename('repo/hk', 'repo/.githooks'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.throws(() => f.writeFile('elsewhere/.githooks/pre-commit', 'x', true), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.throws(() => f.writeFile('repo/.husky/_/pre-commit', 'x', true), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    // A worktree added after the view was made (as a call could): the same hooksPath applies there.
    hostGit(base, home, repo, ['-c', 'core.hooksPath=', 'worktree', 'add', '-q', '../wt2'])
    assert.throws(() => f.mkdirp('wt2/.husky/_'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    f.mkdirp('wt2/hk')
    assert.throws(() => f.rename('repo/hk', 'wt2/.husky'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.throws(() => f.writeFile('wt2/.husky/_/pre-commit', 'x', true), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    // A program named relative to each worktree, for one added later outside the repository's tree.
    hostGit(base, home, repo, ['config', 'core.fsmonitor', '../tools/fsmon'])
    hostGit(base, home, repo, ['-c', 'core.hooksPath=', '-c', 'core.fsmonitor=false', 'worktree', 'add', '-q', '../sub/wt3'])
    assert.throws(() => f.writeFile('sub/tools/fsmon', '#!/bin/sh\ntouch PWNED\n', true), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    // Nor brought there inside a directory moved into place.
    f.writeFile('mv/fsmon', '#!/bin/sh\ntouch PWNED\n', true)
    assert.throws(() => f.rename('mv', 'sub/tools'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    for (const p of ['repo/.githooks', 'elsewhere', 'repo/.husky', 'wt2/.husky', 'sub/tools']) assert.ok(!fs.existsSync(path.join(ws, p)), p)
    // An ordinary file in the worktree is still written.
    f.writeFile('wt2/notes.txt', 'ok')
    assert.equal(fs.readFileSync(path.join(ws, 'wt2', 'notes.txt'), 'utf8'), 'ok')
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test('SandboxFs: a global hooksPath of two parts protects that path below any directory, not its first name', (t) => {
  const { base, home, ws } = fixture()
  try {
    fs.writeFileSync(path.join(home, '.gitconfig'), '[core]\n\thooksPath = .github/hooks\n')
    const f = withHome(home, () => new sc.SandboxFs({}, { workspace: ws }))
    assert.throws(() => f.writeFile('repo/.github/hooks/pre-commit', '#!/bin/sh\ntouch PWNED\n', true), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    f.mkdirp('other/hk')
    f.mkdirp('later/.github')
    f.mkdirp('repo2')
    assert.throws(() => f.rename('other/hk', 'later/.github/hooks'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    f.mkdirp('moved/hooks')
    assert.throws(() => f.rename('moved', 'repo2/.github'), { code: 'ERR_SHARKCAGE_FS_PROTECTED' })
    assert.ok(!fs.existsSync(path.join(ws, 'repo/.github/hooks')))
    assert.ok(!fs.existsSync(path.join(ws, 'repo2/.github')))
    assert.ok(!fs.existsSync(path.join(ws, 'later/.github/hooks')))
    // The rest of .github is ordinary project content.
    f.writeFile('repo/.github/workflows/ci.yml', 'on: push\n', true)
    assert.equal(fs.readFileSync(path.join(ws, 'repo/.github/workflows/ci.yml'), 'utf8'), 'on: push\n')
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test('SandboxFs: a hidden path looks the same whether it exists or not (no stat/read oracle)', () => {
  const { base, home, ws } = fixture()
  try {
    fs.symlinkSync(path.join(home, '.ssh'), path.join(ws, 'ssh-link'))
    // Symlinks straight at a present and a missing hidden file, in the workspace and outside it.
    fs.symlinkSync(path.join(home, '.ssh', 'id_rsa'), path.join(ws, 'k-present'))
    fs.symlinkSync(path.join(home, '.ssh', 'id_missing'), path.join(ws, 'k-missing'))
    fs.symlinkSync(path.join(home, '.aws', 'credentials'), path.join(ws, 'k-missing-dir'))
    fs.symlinkSync(path.join(home, '.ssh', 'id_rsa'), path.join(base, 'out-present'))
    fs.symlinkSync(path.join(home, '.ssh', 'id_missing'), path.join(base, 'out-missing'))
    const f = withHome(home, () => new sc.SandboxFs({}, { workspace: ws }))
    const outcome = (fn) => {
      try {
        return `ok ${JSON.stringify(fn())}`
      } catch (e) {
        return e.code
      }
    }
    for (const [present, missing] of [
      [path.join(home, '.ssh', 'id_rsa'), path.join(home, '.ssh', 'id_ed25519')],
      ['ssh-link/id_rsa', 'ssh-link/id_ed25519'],
      [path.join(home, '.openclaw', 'openclaw.json'), path.join(home, '.openclaw', 'nothing.json')],
      ['k-present', 'k-missing'],
      ['k-present', 'k-missing-dir'],
      [path.join(base, 'out-present'), path.join(base, 'out-missing')],
    ]) {
      assert.equal(outcome(() => f.stat(present)), outcome(() => f.stat(missing)), `stat tells ${present} from ${missing}`)
      assert.equal(outcome(() => f.readFile(present)), outcome(() => f.readFile(missing)), `readFile tells ${present} from ${missing}`)
      assert.equal(outcome(() => f.stat(missing)), 'ERR_SHARKCAGE_FS_NOT_READABLE')
    }
    // An ordinary missing file is still plainly missing.
    assert.equal(f.stat('no-such-file'), null)
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})

test('SandboxFs: reading a FIFO a sandbox left does not hang the gateway', () => {
  const { base, home, ws } = fixture()
  try {
    assert.equal(spawnSync('mkfifo', [path.join(ws, 'p')]).status, 0)
    // In a child process with a deadline: a blocked open would hang this one for good.
    const script = `const sc = require(${JSON.stringify(path.resolve('index.js'))}); process.env.HOME = ${JSON.stringify(home)};
      const f = new sc.SandboxFs({}, { workspace: ${JSON.stringify(ws)} });
      try { f.readFile('p'); console.log('READ') } catch (e) { console.log('REFUSED ' + e.code) }`
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15000 })
    assert.equal(r.signal, null, 'readFile on a FIFO blocked')
    assert.match(r.stdout, /^REFUSED ERR_SHARKCAGE_FS_/)
  } finally {
    fs.rmSync(base, { recursive: true, force: true })
  }
})
