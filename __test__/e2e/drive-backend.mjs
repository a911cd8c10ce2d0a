// Drives the installed plugin's backend directly (run with OpenClaw's Node
// 24): registers it through the real `openclaw/plugin-sdk/sandbox`, creates a
// sandbox with the factory, and exercises `runShellCommand` (args, stdin,
// allowFailure, AbortSignal) and `buildExecSpec`'s usePty. Prints one JSON
// object with what happened.
//   node drive-backend.mjs <installed plugin dir> <workspace>
import { createRequire } from 'node:module'
import path from 'node:path'

const [pluginDir, ws] = process.argv.slice(2)
const entry = path.join(pluginDir, 'openclaw', 'index.mjs')
const sdkPath = createRequire(entry).resolve('openclaw/plugin-sdk/sandbox')
const sdk = await import(sdkPath)
const { default: plugin } = await import(entry)
const logs = []
const api = {
  registrationMode: 'full',
  rootDir: pluginDir,
  pluginConfig: {},
  logger: { info: (m) => logs.push(m), warn: (m) => logs.push(m), debug: () => {}, error: (m) => logs.push(m) },
  on() {},
  lifecycle: { registerRuntimeLifecycle() {} },
}
plugin.register(api)
const factory = sdk.getSandboxBackendFactory('sharkcage')
const handle = await factory({ sessionKey: 'agent:main:drive', scopeKey: 'agent:main:drive:workspace:0', workspaceDir: ws, agentWorkspaceDir: ws, cfg: { workspaceAccess: 'rw' } })
const out = { id: handle.id, workdir: handle.workdir }
const r1 = await handle.runShellCommand({ script: 'printf "%s|%s|%s\\n" "$0" "$1" "$2"; cat', args: ['a', 'b c'], stdin: 'STDIN-DATA' })
out.args = { stdout: r1.stdout.toString(), code: r1.code }
try {
  await handle.runShellCommand({ script: 'exit 3' })
  out.failure = 'resolved'
} catch (e) {
  out.failure = `rejected: ${e.message}`
}
out.allowFailure = (await handle.runShellCommand({ script: 'exit 3', allowFailure: true })).code
const t0 = Date.now()
try {
  await handle.runShellCommand({ script: 'sleep 29.7', signal: AbortSignal.timeout(300) })
  out.abort = 'resolved'
} catch (e) {
  out.abort = `rejected ${e.code} after ${Date.now() - t0} ms`
}
const s = await handle.runShellCommand({ script: 'cat ~/.ssh/id_rsa; true', allowFailure: true })
out.secret = s.stdout.toString() + s.stderr.toString()
// Workspace hooks run in the gateway: neither exec nor the file tools may plant one.
const h = await handle.runShellCommand({ script: 'mkdir -p hooks/evil && echo "export default () => {}" > hooks/evil/handler.ts; echo done', allowFailure: true })
out.hookExec = h.stdout.toString().trim()
try {
  await handle.createFsBridge().writeFile({ filePath: 'hooks/evil2/handler.ts', data: 'export default () => {}', mkdir: true })
  out.hookBridge = 'written'
} catch (e) {
  out.hookBridge = `refused ${e.code}`
}
// buildExecSpec passes usePty on (OpenClaw 2026.9 always says false): the
// argv it returns, spawned as OpenClaw does, gives the command a terminal.
{
  const { spawnSync } = await import('node:child_process')
  out.pty = []
  for (const usePty of [true, false]) {
    const spec = await handle.buildExecSpec({ command: 'test -t 0 && test -t 1 && test -t 2', workdir: ws, env: {}, usePty })
    const r = spawnSync(spec.argv[0], spec.argv.slice(1), { env: spec.env, cwd: spec.cwd, input: 'x\n', encoding: 'utf8' })
    out.pty.push(r.status)
    await handle.finalizeExec({ status: 'completed', exitCode: r.status, token: spec.finalizeToken })
  }
}
// finalizeExec with tokens this backend never issued deletes nothing.
{
  const fs = await import('node:fs')
  const state = path.join(process.env.HOME, '.local', 'state', 'sharkcage')
  const results = path.join(state, 'results')
  fs.mkdirSync(results, { recursive: true })
  const victim = path.join(ws, 'finalize-victim.txt')
  const foreign = path.join(results, 'foreign.json')
  fs.writeFileSync(victim, 'keep')
  fs.writeFileSync(foreign, '{}')
  await handle.finalizeExec({ status: 'completed', exitCode: 0, token: `${results}/${path.relative(results, victim)}` })
  await handle.finalizeExec({ status: 'completed', exitCode: 0, token: victim })
  await handle.finalizeExec({ status: 'completed', exitCode: 0, token: foreign })
  out.finalizeKept = [fs.existsSync(victim), fs.existsSync(foreign)]
}
console.log(JSON.stringify(out))
