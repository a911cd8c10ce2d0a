// The OpenClaw glue: registers the `sharkcage` sandbox backend.
//
// Thin by design. Sandboxing is the addon's and the launcher's job:
// * exec: `buildExecSpec` returns the launcher argv (`buildExecArgv`), so
//   OpenClaw spawns the sandboxed command itself, with an environment built
//   from an allowlist (never the gateway's own, which holds API keys); the
//   argv carries nothing secret: the policy, the command's variables and the
//   network ticket are in a private spec file the launcher deletes as it
//   starts (one never spawned is discarded by finalizeExec or at exit);
// * runShellCommand: the addon's `exec()` (stdin, args, AbortSignal);
// * file tools: a bridge over the addon's `SandboxFs`, which applies the same
//   rules as exec in Rust (no shell per file operation).
// Registration happens only in OpenClaw's "full" mode, once per process.
import { createRequire } from 'node:module'
import path from 'node:path'
import fs from 'node:fs'
import crypto from 'node:crypto'
import { spawnSync } from 'node:child_process'
import * as sandboxSdk from 'openclaw/plugin-sdk/sandbox'

const { registerSandboxBackend } = sandboxSdk

const require = createRequire(import.meta.url)
const BACKEND_ID = 'sharkcage'
const state = globalThis.__sharkcageBackend ?? (globalThis.__sharkcageBackend = { unregister: null, sc: null, currentCall: new Map(), sandboxed: new Set(), gates: new Map(), specArgv: new Set() })
state.sandboxed ??= new Set()
state.gates ??= new Map()
// Skill rules per operator ceiling (they hold the one-time approvals), and
// each sandboxed session's directories (for the gate, which sees none).
state.skillGates ??= new Map()
state.sessionDirs ??= new Map()
// Destinations skill calls were refused (skill → "host:port" → {host, port}),
// which the skill's next call may ask to allow; those the user declined.
state.refusals ??= new Map()
state.declined ??= new Set()
// Launcher argvs handed to OpenClaw whose spec file may not be taken yet.
state.specArgv ??= new Set()

/** Delete the spec file of an argv that was never spawned (a no-op once the launcher took it). */
function discardSpec(argv) {
  state.specArgv.delete(argv)
  try {
    state.sc?.discardExecArgv?.(argv)
  } catch {}
}

/**
 * Append to sharkcage's tamper-evident audit log (the addon redacts
 * parameters and writes durably in the background). A failure is logged,
 * never thrown into the tool call.
 */
function audit(api, rec) {
  const sc = state.sc
  if (!sc?.auditAppend) return
  for (const k of Object.keys(rec)) if (rec[k] === undefined || rec[k] === null) delete rec[k]
  sc.auditAppend(rec).catch((e) => api.logger?.warn?.(`sharkcage: ${JSON.stringify({ event: 'audit-failed', code: e.code, message: e.message })}`))
}

/** The exec/violation records of one finished sandboxed call. */
function auditExec(api, labels, command, result) {
  audit(api, {
    kind: 'exec', ...labels, tool: 'exec', sandbox: result?.network?.sandbox, decision: 'allow',
    params: { command }, exitCode: result?.exitCode ?? undefined, durationMs: result?.durationMs,
    detail: { signal: result?.signal ?? null, timedOut: !!result?.timedOut, network: result?.network?.mode ?? 'none' },
  })
  for (const v of result?.violations ?? []) {
    // Network refusals are recorded by the proxy itself (kind "net").
    if (v.kind === 'network' && result?.network?.servedBy === 'gateway') continue
    audit(api, { kind: 'violation', ...labels, tool: 'exec', decision: v.refused ? 'deny' : 'note', reason: v.detail, detail: { kind: v.kind } })
  }
}

/** The command's own variables from OpenClaw's exec env (the launcher filters secrets). */
function commandEnv(env) {
  const out = {}
  for (const [k, v] of Object.entries(env ?? {})) {
    if (typeof v !== 'string' || k === 'PATH' || k === 'HOME' || k.startsWith('LD_')) continue
    out[k] = v
  }
  return out
}

/**
 * Where the verified copies of skill code that skill calls run live: under
 * OpenClaw's state directory, which every sandbox sees only read-only (and
 * only this directory of it, exposed per call).
 */
function snapshotRoot() {
  const oc = process.env.OPENCLAW_STATE_DIR || path.join(process.env.HOME ?? '/', '.openclaw')
  return path.join(oc, 'sharkcage-skill-code')
}

/** `env` without a one-time approval token (only the gate puts one there). */
function withoutToken(env) {
  const { SHARKCAGE_GRANT: _, ...rest } = env
  return rest
}

/** sharkcage's state directory (hidden from every sandbox). */
function stateDir() {
  if (process.env.SHARKCAGE_STATE_DIR) return process.env.SHARKCAGE_STATE_DIR
  if (process.env.XDG_STATE_HOME) return path.join(process.env.XDG_STATE_HOME, 'sharkcage')
  return path.join(process.env.HOME ?? '/', '.local', 'state', 'sharkcage')
}

function loadAddon(rootDir) {
  if (!state.sc) {
    const launcher = path.join(rootDir, 'sharkcage-launcher')
    if (!process.env.SHARKCAGE_LAUNCHER && fs.existsSync(launcher)) process.env.SHARKCAGE_LAUNCHER = launcher
    state.sc = require(path.join(rootDir, 'index.js'))
    // Audit records still queued when the process exits are written first;
    // spec files of argvs never spawned go.
    process.once('exit', () => {
      for (const argv of [...state.specArgv]) discardSpec(argv)
      try {
        state.sc.auditClose()
      } catch {}
    })
  }
  return state.sc
}

// ---- skills (issue 12): which skill a call runs, what it is granted ----

const SKILL_FILES = ['SKILL.md', 'sharkcage.json', 'plugin.json']

/** The operator's skill settings (plugins.entries.sharkcage.config.skills). */
function skillConfig(api) {
  return api.pluginConfig?.skills ?? {}
}

/**
 * The directories skills are loaded from, for a sandbox of these
 * directories: `{dir, alias?}`. With workspaceAccess "rw" OpenClaw prepares
 * the session's skills in skillsWorkspaceDir and tells the model they are
 * at <workspace>/.openclaw/sandbox-skills: that path is an alias of the
 * prepared directory (a name commands may use), never a place skills are
 * read from, since the sandbox could change what lies there.
 */
function skillRoots(api, dirs) {
  const roots = []
  const abs = (d) => typeof d === 'string' && path.isAbsolute(d)
  for (const d of [dirs?.workspace, dirs?.agentWorkspace]) if (abs(d)) roots.push({ dir: path.join(d, 'skills') })
  if (abs(dirs?.skillsWorkspace)) {
    const alias = abs(dirs?.workspace) && dirs.skillsWorkspace !== dirs.workspace ? path.join(dirs.workspace, '.openclaw', 'sandbox-skills', 'skills') : undefined
    roots.push({ dir: path.join(dirs.skillsWorkspace, 'skills'), alias })
  }
  for (const d of skillConfig(api).dirs ?? []) if (abs(d)) roots.push({ dir: d })
  const seen = new Set()
  return roots.filter((r) => !seen.has(r.dir) && seen.add(r.dir))
}

/**
 * Every skill directory under the roots: `[{name, dir, mapped}]` (name: the
 * directory's name; dir: its real path, each once, since a directory claimed
 * by two skills would be nobody's code; mapped: the other paths commands may
 * name it by, as `{written, host}`).
 */
function discoverSkills(api, dirs) {
  const out = []
  const byDir = new Map()
  for (const root of skillRoots(api, dirs)) {
    let names = []
    try {
      names = fs.readdirSync(root.dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)
    } catch {
      continue
    }
    for (const name of names.sort()) {
      const found = path.join(root.dir, name)
      if (!SKILL_FILES.some((f) => fs.existsSync(path.join(found, f)))) continue
      let dir
      try {
        dir = fs.realpathSync(found)
      } catch {
        continue
      }
      let skill = byDir.get(dir)
      if (!skill) {
        skill = { name, dir, mapped: [] }
        byDir.set(dir, skill)
        out.push(skill)
      }
      for (const written of [found, root.alias && path.join(root.alias, name)]) {
        if (written && written !== dir && !skill.mapped.some((m) => m.written === written)) skill.mapped.push({ written, host: dir })
      }
    }
  }
  return out
}

/** The agent id of a session key (`agent:<id>:…`). */
const agentOf = (sessionKey) => (typeof sessionKey === 'string' && sessionKey.startsWith('agent:') ? sessionKey.split(':')[1] : undefined)

/** The skill rules for an agent (its ceiling: skills.agents.<id>.ceiling, else skills.ceiling). */
function skillGate(api, agentId) {
  const cfg = skillConfig(api)
  const ceiling = (agentId && cfg.agents?.[agentId]?.ceiling) ?? cfg.ceiling
  const opts = { ceiling, neverAlways: cfg.neverAllowAlways ?? [], autoApprove: cfg.autoApprove ?? [], approvalTimeoutMs: cfg.approvalTimeoutMs }
  const key = JSON.stringify(opts)
  let g = state.skillGates.get(key)
  if (!g) {
    g = new (loadAddon(api.rootDir).SkillGate)({ stateDir: stateDir(), ceiling: opts.ceiling, neverAlways: opts.neverAlways, autoApprove: opts.autoApprove, approvalTimeoutMs: opts.approvalTimeoutMs })
    state.skillGates.set(key, g)
  }
  return g
}

/** Note the destinations a skill call was refused (from the proxy's events). */
function noteRefusals(skill, network) {
  if (!skill) return
  for (const e of network?.events ?? []) {
    if (e.decision !== 'deny' || typeof e.host !== 'string' || !e.port) continue
    const key = `${e.host}:${e.port}`
    if (state.declined.has(`${skill}|${key}`)) continue
    let m = state.refusals.get(skill)
    if (!m) state.refusals.set(skill, (m = new Map()))
    if (m.size < 20) m.set(key, { skill, host: e.host, port: e.port })
  }
}

/** Every pending refusal, for the addon to pick the judged skill's. */
const pendingRefusals = () => [...state.refusals.values()].flatMap((m) => [...m.values()])

/** After a prompt: the refusals it asked about are settled; declined ones are not asked again. */
function settleRefusals(skill, decision) {
  const m = state.refusals.get(skill)
  if (!m) return
  if (decision !== 'allow-once' && decision !== 'allow-always') for (const k of m.keys()) state.declined.add(`${skill}|${k}`)
  state.refusals.delete(skill)
}

/** Configured `system.env` values per skill: OpenClaw's own skills.entries.<name>.env. */
function skillValues(api, skills) {
  const entries = api.config?.skills?.entries ?? {}
  const out = {}
  for (const { name } of skills) {
    const env = entries[name]?.env
    if (env && typeof env === 'object') out[name] = Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === 'string'))
  }
  return out
}

/**
 * Skill code is read-only to every sandbox of this gateway (exec and file
 * tools alike): the skills directories in writable places are write-denied,
 * so no call can change an approved skill (its grants are pinned to its
 * hash) or swap the directory under a running one.
 */
function protectSkills(policy, api, dirs) {
  // A root that does not exist yet is protected too: one a call creates is
  // removed after it (and reported), like every denyWrite path.
  const roots = skillRoots(api, dirs)
  if (!roots.length) return policy
  const filesystem = policy.filesystem ?? {}
  const denyWrite = [...(filesystem.denyWrite ?? []), ...roots.map((r) => ({ path: r.dir, literal: true }))]
  return { ...policy, filesystem: { ...filesystem, denyWrite } }
}

function makeFsBridge(fsView, workspace, log, onOp) {
  const abs = (filePath, cwd) => path.resolve(cwd ?? workspace, filePath)
  const data = (d, encoding) => (Buffer.isBuffer(d) ? d : Buffer.from(String(d), encoding ?? 'utf8'))
  // Every SandboxFs call; a refusal becomes a structured event in the plugin log, then is rethrown.
  const view = new Proxy(fsView, {
    get(target, op) {
      const fn = target[op]
      if (typeof fn !== 'function') return fn
      return (...args) => {
        const target0 = typeof args[0] === 'string' ? args[0] : undefined
        try {
          const r = fn.apply(target, args)
          // Reads of metadata are not worth a record; contents and changes are.
          if (op !== 'stat' && op !== 'readDirectory') onOp?.({ op, path: target0, decision: 'allow' })
          return r
        } catch (e) {
          if (typeof e?.code === 'string' && e.code.startsWith('ERR_SHARKCAGE_FS_')) {
            log?.warn?.(`sharkcage: ${JSON.stringify({ event: 'fs-refused', op, code: e.code, message: e.message })}`)
            onOp?.({ op, path: target0, decision: 'deny', reason: `${e.code}: ${e.message}` })
          }
          throw e
        }
      }
    },
  })
  return {
    pathMappings: [{ hostRoot: workspace, containerRoot: workspace }],
    resolvePath({ filePath, cwd }) {
      const p = abs(filePath, cwd)
      return { hostPath: p, relativePath: path.relative(workspace, p), containerPath: p }
    },
    async readFile({ filePath, cwd, maxBytes }) {
      return view.readFile(abs(filePath, cwd), maxBytes)
    },
    async readFileWithSource({ filePath, cwd, maxBytes }) {
      const p = abs(filePath, cwd)
      const rel = path.relative(workspace, p)
      return { data: view.readFile(p, maxBytes), canonicalPath: p, workspaceRelativePath: rel.startsWith('..') ? undefined : rel }
    },
    async readDirectory({ filePath, cwd }) {
      return view.readDirectory(abs(filePath, cwd)).map((e) => ({ name: e.name, isDirectory: e.isDirectory }))
    },
    async writeFile({ filePath, cwd, data: d, encoding, mkdir }) {
      view.writeFile(abs(filePath, cwd), data(d, encoding), mkdir ?? false)
    },
    async createFileExclusive({ filePath, cwd, data: d, encoding, mkdir }) {
      return view.createFileExclusive(abs(filePath, cwd), data(d, encoding), mkdir ?? false)
    },
    async copyFile({ sourcePath, destinationPath, cwd, mkdir }) {
      view.writeFile(abs(destinationPath, cwd), view.readFile(abs(sourcePath, cwd)), mkdir ?? false)
    },
    async mkdirp({ filePath, cwd }) {
      view.mkdirp(abs(filePath, cwd))
    },
    async remove({ filePath, cwd, recursive, force }) {
      view.remove(abs(filePath, cwd), recursive ?? false, force ?? false)
    },
    async rename({ from, to, cwd }) {
      view.rename(abs(from, cwd), abs(to, cwd))
    },
    async stat({ filePath, cwd }) {
      const s = view.stat(abs(filePath, cwd))
      return s ? { type: s.type, size: s.size, mtimeMs: s.mtimeMs } : null
    },
  }
}

/** One structured line per proxy decision of a call (for the audit log). */
function logNetwork(api, runtimeId, network) {
  for (const e of network?.events ?? []) {
    api.logger?.info?.(`sharkcage: ${JSON.stringify({ event: 'network', runtimeId, servedBy: network.servedBy, ...e })}`)
  }
}

// OpenClaw loads workspace hooks (`<agent workspace>/hooks/<name>/` with a
// HOOK.md and a handler) into the gateway process itself once a user enables
// that name: host code, never sandboxed. When a sandbox writes the agent's
// own workspace (workspaceAccess "rw"), that directory is read-only to it,
// and one it creates is removed after the call and reported (denyWrite).
// Elsewhere (a private copy) the entry changes nothing: denyWrite applies
// only inside writable roots.
function protectWorkspaceHooks(policy, agentWorkspaceDir) {
  if (typeof agentWorkspaceDir !== 'string' || !path.isAbsolute(agentWorkspaceDir)) return policy
  const filesystem = policy.filesystem ?? {}
  const denyWrite = [...(filesystem.denyWrite ?? []), { path: path.join(agentWorkspaceDir, 'hooks'), literal: true }]
  return { ...policy, filesystem: { ...filesystem, denyWrite } }
}

/**
 * With workspaceAccess "rw", OpenClaw prepares the session's skills in a
 * directory of its own (skillsWorkspaceDir, under ~/.openclaw) and tells the
 * model they are at <workspace>/.openclaw/sandbox-skills, where a container
 * backend mounts them. Here the sandbox sees host paths, so that name is a
 * symlink to the prepared directory, which the sandbox may read (read-only).
 * It is only a name: a call gets a skill's grants by the skill's real
 * directory (the link's path is an alias of it, whatever the link now points
 * to), and runs a verified copy of that skill's code, never through the link.
 */
function linkSandboxSkills(api, params) {
  const target = params.skillsWorkspaceDir
  if (typeof target !== 'string' || !path.isAbsolute(target) || target === params.workspaceDir || !fs.existsSync(target)) return
  const link = path.join(params.workspaceDir, '.openclaw', 'sandbox-skills')
  try {
    let cur = null
    try {
      cur = fs.lstatSync(link)
    } catch {}
    if (cur && !cur.isSymbolicLink()) return
    if (cur && fs.readlinkSync(link) === target) return
    fs.mkdirSync(path.dirname(link), { recursive: true })
    const tmp = `${link}.${process.pid}.tmp`
    fs.rmSync(tmp, { force: true })
    fs.symlinkSync(target, tmp)
    fs.renameSync(tmp, link)
  } catch (e) {
    api.logger?.warn?.(`sharkcage: ${JSON.stringify({ event: 'skills-link-failed', link, message: e.message })}`)
  }
}

function createFactory(api) {
  return async (params) => {
    const sc = loadAddon(api.rootDir)
    const dirs = { workspace: params.workspaceDir, agentWorkspace: params.agentWorkspaceDir, skillsWorkspace: params.skillsWorkspaceDir }
    const policy = protectSkills(protectWorkspaceHooks(api.pluginConfig?.policy ?? {}, params.agentWorkspaceDir), api, dirs)
    // OpenClaw decides what the sandbox's workspace is: with workspaceAccess
    // "rw" the agent's own workspace, with "none"/"ro" a private copy under
    // ~/.openclaw/sandboxes (the agent workspace then stays read-only: it is
    // not a writable root here).
    const workspace = params.workspaceDir
    // What the sandbox reads besides the host's public view: with "ro" the
    // agent's workspace, and OpenClaw's read-only resource mounts. Named to
    // the launcher so that a root gateway's sandbox (shifted to an
    // unprivileged uid) reaches them even under a private directory.
    linkSandboxSkills(api, params)
    const readOnly = [
      ...(params.cfg?.workspaceAccess === 'ro' && params.agentWorkspaceDir ? [params.agentWorkspaceDir] : []),
      // The skills OpenClaw prepared for this sandbox (named to the model
      // through <workspace>/.openclaw/sandbox-skills, see linkSandboxSkills).
      ...(typeof params.skillsWorkspaceDir === 'string' && params.skillsWorkspaceDir !== params.workspaceDir ? [params.skillsWorkspaceDir] : []),
      ...(params.readOnlyResourceMounts ?? []).map((m) => m?.hostPath).filter((p) => typeof p === 'string' && p),
    ].filter((p) => fs.existsSync(p))
    // Fail closed before anything runs: one real sandboxed call proves this
    // host can sandbox (and the policy is valid). Otherwise OpenClaw gets an
    // error with the launcher's explanation and the run fails; file tools
    // never work without it either.
    try {
      const probe = await sc.exec({ command: ['true'], cwd: workspace, policy, readOnly, timeoutMs: 30_000 })
      if (probe.exitCode !== 0) throw Object.assign(new Error(`sandbox self-test exited ${probe.exitCode}: ${probe.stderr}`), { code: 'ERR_SHARKCAGE_SELFTEST' })
    } catch (e) {
      api.logger?.error?.(`sharkcage: ${JSON.stringify({ event: 'unavailable', code: e.code, message: e.message })}`)
      throw new Error(`sharkcage cannot sandbox here (${e.code ?? 'error'}): ${e.message}`)
    }
    const view = new sc.SandboxFs(policy, { workspace, readOnly })
    // Every network decision of this sandbox's calls carries these labels.
    const agent = typeof params.sessionKey === 'string' && params.sessionKey.startsWith('agent:') ? params.sessionKey.split(':')[1] : undefined
    const network = { session: params.sessionKey ?? undefined, agent }
    // The tool call this session is running (from before_tool_call), for records.
    const labels = () => ({ session: params.sessionKey, agent, toolCall: state.currentCall.get(params.sessionKey) })
    const pendingExec = new Map()
    if (params.sessionKey) {
      state.sandboxed.add(params.sessionKey)
      state.sessionDirs.set(params.sessionKey, dirs)
    }
    const runtimeId = `sharkcage-${crypto.createHash('sha256').update(params.scopeKey ?? params.sessionKey ?? workspace).digest('hex').slice(0, 16)}`
    // Writes under $HOME go to a private layer of this sandbox scope
    // (session, agent or shared), so a session's second `npm install` is warm.
    const homeLayer = `openclaw-${runtimeId}`
    api.logger?.info?.(`sharkcage: sandbox ${runtimeId} for ${params.sessionKey} on ${workspace}`)
    return {
      id: BACKEND_ID,
      runtimeId,
      runtimeLabel: 'sharkcage',
      workdir: workspace,
      configLabel: 'sharkcage',
      configLabelKind: 'Policy',
      async buildExecSpec({ command, workdir, env, usePty }) {
        api.logger?.debug?.(`sharkcage: ${JSON.stringify({ event: 'buildExecSpec', runtimeId, workdir, bytes: command.length })}`)
        // The launcher's result (layers, violations) goes to a file in the
        // state directory, which no sandbox can see; finalizeExec reads it.
        const results = path.join(stateDir(), 'results')
        fs.mkdirSync(results, { recursive: true, mode: 0o700 })
        const resultFile = path.join(results, `${runtimeId}-${crypto.randomUUID()}.json`)
        const l = labels()
        // The skill's grants, when everything the command runs is one
        // skill's code and something is granted (always, or once for exactly
        // this call through the gate's token); the base policy otherwise.
        // The addon judges the command again itself and takes the token out
        // of the environment in every case.
        const skills = discoverSkills(api, dirs)
        // No skill here: nothing to judge or read (the token variable still goes).
        const plan = skills.length
          ? skillGate(api, agent).forExec({ command, workdir: workdir || workspace, skills, workspace, policy, env: commandEnv(env), values: skillValues(api, skills), snapshotRoot: snapshotRoot() })
          : { policy, env: withoutToken(commandEnv(env)), notices: [], redact: [], expose: [] }
        if (plan.skill) {
          l.skill = plan.skill
          audit(api, { kind: 'grant_applied', ...l, tool: 'exec', skill: plan.skill, decision: 'allow', reason: plan.approvalId ? `approved once (${plan.approvalId})` : 'granted always', detail: { identity: plan.identity, capabilities: plan.applied } })
        }
        // OpenClaw 2026.9 always passes usePty: false to sandboxes; a later
        // one that passes true gets the sandbox's own terminal (sc exec --pty).
        // A skill call runs its judged argv directly, no shell in between.
        const argv = sc.buildExecArgv(plan.policy, plan.argv ?? ['/bin/sh', '-c', command], { workspace, env: plan.env, resultFile, readOnly: [...readOnly, ...plan.expose], homeLayer, network: { ...network, toolCall: l.toolCall, skill: plan.skill ?? undefined, scope: plan.skill ? `skill:${plan.skill}` : undefined }, pty: usePty === true, notices: plan.notices, redact: plan.redact })
        pendingExec.set(resultFile, { command, labels: l, argv })
        state.specArgv.add(argv)
        return { argv, env: sc.launcherEnv(), cwd: workdir && fs.existsSync(workdir) ? workdir : workspace, stdinMode: 'pipe-open', finalizeToken: resultFile }
      },
      async finalizeExec({ status, exitCode, timedOut, token } = {}) {
        api.logger?.debug?.(`sharkcage: ${JSON.stringify({ event: 'finalizeExec', runtimeId, status, exitCode, timedOut })}`)
        // Only a token this backend issued (buildExecSpec) names a result
        // file: anything else is ignored, never opened or deleted.
        if (typeof token !== 'string' || !pendingExec.has(token)) return
        let result = null
        try {
          result = JSON.parse(fs.readFileSync(token, 'utf8'))
        } catch {}
        fs.rmSync(token, { force: true })
        const pend = pendingExec.get(token)
        pendingExec.delete(token)
        // The launcher deleted its spec file as it started; if the spawn
        // never happened, it goes now.
        if (pend?.argv) discardSpec(pend.argv)
        auditExec(api, pend?.labels ?? labels(), pend?.command, result ?? { exitCode, timedOut, violations: [] })
        if (result?.violations?.length) {
          api.logger?.warn?.(`sharkcage: ${JSON.stringify({ event: 'violations', runtimeId, exitCode: result.exitCode, violations: result.violations })}`)
        }
        logNetwork(api, runtimeId, result?.network)
        noteRefusals(pend?.labels?.skill, result?.network)
        // The launcher kills the sandbox's whole PID namespace when the
        // command ends, times out, or the launcher itself is killed.
      },
      async runShellCommand({ script, args = [], stdin, allowFailure, signal }) {
        api.logger?.debug?.(`sharkcage: ${JSON.stringify({ event: 'runShellCommand', runtimeId, args: args.length })}`)
        const r = await sc.exec({ command: ['/bin/sh', '-c', script, 'openclaw-sandbox-fs', ...args], cwd: workspace, policy, stdin, signal, readOnly, network: { ...network, toolCall: labels().toolCall } })
        logNetwork(api, runtimeId, r.network)
        auditExec(api, labels(), script, r)
        const code = r.exitCode ?? 128
        if (code !== 0 && !allowFailure) {
          const e = new Error(`sandboxed command failed with exit code ${code}: ${r.stderr.toString().slice(0, 500)}`)
          e.code = code
          throw e
        }
        return { stdout: r.stdout, stderr: r.stderr, code }
      },
      createFsBridge() {
        return makeFsBridge(view, workspace, api.logger, (op) =>
          audit(api, { kind: 'file_op', ...labels(), tool: `fs.${op.op}`, path: op.path, decision: op.decision, reason: op.reason }),
        )
      },
    }
  }
}

const manager = {
  async describeRuntime() {
    // A sharkcage sandbox exists only while a call runs: nothing to keep alive.
    return { running: false, actualConfigLabel: 'sharkcage', configLabelMatch: true }
  },
  async removeRuntime() {},
}

export default {
  id: BACKEND_ID,
  name: 'sharkcage',
  description: 'Kernel sandbox backend for exec and file tools',
  // `openclaw security audit` reads collectors from the entry itself.
  securityAuditCollectors: [(ctx) => auditFindings(ctx?.config ?? {})],
  register(api) {
    // Hooks belong to the registry being loaded, and OpenClaw records a
    // plugin's hook surface at install time (discovery mode): register them
    // in every mode; they only observe.
    registerGate(api)
    registerTimingHooks(api)
    registerDispatcher(api)
    registerCli(api)
    if (api.registrationMode !== 'full') return
    // The backend registry is process-global: register once.
    if (state.unregister) return
    state.unregister = registerSandboxBackend(BACKEND_ID, { factory: createFactory(api), manager })
    api.lifecycle?.registerRuntimeLifecycle?.({
      id: 'sharkcage-backend',
      cleanup: ({ reason, sessionKey, runId }) => {
        if (sessionKey !== undefined || runId !== undefined) return
        if ((reason === 'disable' || reason === 'restart') && state.unregister) {
          state.unregister()
          state.unregister = null
        }
      },
    })
  },
}

// The tool-call gate: in a session sandboxed by sharkcage every tool call is
// judged before it runs (the rule is the addon's `ToolGate`, the core crate's
// `gate` module): Code Mode's JavaScript, host-control tools and network
// tools that would run in the gateway outside the sandbox are refused, a
// web_fetch must pass the sandbox's own network policy, a child session is
// forced into a sandbox, and unknown tools are refused by default. Highest
// priority: no other plugin rewrites a call before it is judged. A failure
// to judge refuses the call.
const GATE_PRIORITY = 1_000_000

function registerGate(api) {
  api.on?.(
    'before_tool_call',
    (ev, ctx) => {
      // The dispatcher runs skills in a sandbox in every session, so its
      // approvals are asked for in every session.
      if (String(ev?.toolName ?? ctx?.toolName ?? '') === RUN_TOOL) return judgeRun(api, ev, ctx)
      if (!sandboxedBySharkcage(api, ctx)) return
      let v
      try {
        v = toolGate(api).judge(String(ev?.toolName ?? ctx?.toolName ?? ''), ev?.toolKind ?? ctx?.toolKind ?? undefined, ev?.params ?? {})
      } catch (e) {
        return { block: true, blockReason: `sharkcage could not judge this tool call (${e.code ?? 'error'}: ${e.message}): refused` }
      }
      if (v.decision === 'allow' || v.decision === 'rewrite') {
        const params = v.decision === 'rewrite' ? v.params : ev?.params ?? {}
        const tool = String(ev?.toolName ?? ctx?.toolName ?? '')
        if (tool === 'exec' && typeof params.command === 'string') return judgeSkill(api, ev, ctx, params, v.decision === 'rewrite')
        return v.decision === 'rewrite' ? { params: v.params } : undefined
      }
      if (v.decision === 'approve') {
        return { requireApproval: { title: v.title.slice(0, 80), description: v.description.slice(0, 512), severity: 'warning', allowedDecisions: ['allow-once', 'deny'] } }
      }
      api.logger?.warn?.(`sharkcage: ${JSON.stringify({ event: 'gate-refused', tool: ev?.toolName, session: ctx?.sessionKey, reason: v.reason })}`)
      audit(api, {
        kind: 'gate', session: ctx?.sessionKey, agent: ctx?.agentId, run: ev?.runId ?? ctx?.runId, tool: ev?.toolName, toolCall: ev?.toolCallId ?? ctx?.toolCallId,
        params: ev?.params, decision: 'deny', reason: v.reason, detail: ev?.toolKind ? { toolKind: ev.toolKind } : undefined,
      })
      return { block: true, blockReason: `sharkcage: ${v.reason}` }
    },
    { priority: GATE_PRIORITY },
  )
}

/**
 * An exec call and skills: the call runs with a skill's grants only if
 * everything it runs is that skill's code (the addon's rule, the same the
 * backend applies). Granted already: it runs. Something missing: the user
 * is asked through OpenClaw's approval prompt, and an approval travels to
 * the backend as a one-time token in the call's env (SHARKCAGE_GRANT),
 * bound there to this skill version and this exact command. A token the
 * model wrote itself is always removed first. Above the operator's ceiling,
 * denied before, or not expressible: refused with the reason.
 */
function judgeSkill(api, ev, ctx, params, rewritten) {
  const session = ctx?.sessionKey
  const dirs = (session && state.sessionDirs.get(session)) ?? { workspace: api.config?.agents?.defaults?.workspace }
  const env = { ...(params.env && typeof params.env === 'object' ? params.env : {}) }
  const hadToken = Object.prototype.hasOwnProperty.call(env, 'SHARKCAGE_GRANT')
  delete env.SHARKCAGE_GRANT
  const clean = hadToken || rewritten ? { ...params, env } : undefined
  const workspace = dirs.workspace ?? process.cwd()
  const skills = discoverSkills(api, dirs)
  if (!skills.length) return clean ? { params: clean } : undefined
  const agent = ctx?.agentId ?? agentOf(session)
  const j = skillGate(api, agent).judge({ command: params.command, workdir: typeof params.workdir === 'string' ? params.workdir : workspace, skills, workspace, refused: pendingRefusals() })
  const rec = { session, agent, run: ev?.runId ?? ctx?.runId, tool: 'exec', toolCall: ev?.toolCallId ?? ctx?.toolCallId, skill: j.skill ?? undefined }
  if (j.decision === 'block') {
    audit(api, { kind: 'approval', ...rec, decision: 'deny', reason: j.reason, detail: { identity: j.identity, missing: j.missing } })
    return { block: true, blockReason: j.reason }
  }
  if (j.decision !== 'ask') return clean ? { params: clean } : undefined
  return askApproval(api, skillGate(api, agent), j, rec, { ...params, env: { ...env, SHARKCAGE_GRANT: j.token } })
}

/** OpenClaw's approval prompt for a skill judgement, with the one-time token in `approvedParams`. */
function askApproval(api, gate, j, rec, approvedParams) {
  const timeoutMs = Math.min(Math.max(Number(skillConfig(api).approvalTimeoutMs) || 120_000, 1_000), 600_000)
  const about = { identity: j.identity, approvalId: j.approvalId, capabilities: j.missing, ...(j.expansion?.length ? { widens: j.expansion } : {}) }
  audit(api, { kind: 'approval', ...rec, decision: 'requested', reason: j.title, detail: about })
  return {
    params: approvedParams,
    requireApproval: {
      title: j.title,
      description: j.description,
      severity: j.severity,
      allowedDecisions: j.allowedDecisions,
      timeoutMs,
      timeoutReason: `sharkcage: nobody approved skill ${j.skill} in time; the call did not run`,
      onResolution: (decision) => {
        let recorded = []
        try {
          const r = gate.resolve(j.token, String(decision), undefined)
          recorded = r.recorded
          // A widened grant reaches the skill's running sandboxes too (the
          // proxy's live scope of the skill).
          if (r.skill && r.domains.length) loadAddon(api.rootDir).setNetworkPolicy(`skill:${r.skill}`, { allowedDomains: r.domains })
        } catch (e) {
          api.logger?.error?.(`sharkcage: ${JSON.stringify({ event: 'grant-failed', skill: j.skill, message: e.message })}`)
        }
        settleRefusals(j.skill, String(decision))
        const allowed = decision === 'allow-once' || decision === 'allow-always'
        audit(api, { kind: 'approval', ...rec, decision: allowed ? 'allow' : 'deny', reason: String(decision), detail: { ...about, recorded } })
      },
    },
  }
}

// ---- the dispatcher for the predecessor's skills (plugin.json) ----

const RUN_TOOL = 'sharkcage_run'
// The parameter the gate puts a one-time approval in (never the model's).
const RUN_GRANT = '__sharkcageGrant'

/** The directories a call of this session works in (the sandbox's, else the agent's). */
function sessionDirs(api, ctx) {
  const session = ctx?.sessionKey
  const known = session && state.sessionDirs.get(session)
  if (known) return known
  const ws = ctx?.workspaceDir ?? api.config?.agents?.defaults?.workspace
  return { workspace: ws, agentWorkspace: ws }
}

/** The gate for sharkcage_run: the named skill's grants, asked for like exec's. */
function judgeRun(api, ev, ctx) {
  const params = { ...(ev?.params ?? {}) }
  delete params[RUN_GRANT]
  const dirs = sessionDirs(api, ctx)
  const agent = ctx?.agentId ?? agentOf(ctx?.sessionKey)
  const rec = { session: ctx?.sessionKey, agent, run: ev?.runId ?? ctx?.runId, tool: RUN_TOOL, toolCall: ev?.toolCallId ?? ctx?.toolCallId, skill: typeof params.skill === 'string' ? params.skill : undefined }
  if (typeof params.skill !== 'string' || typeof params.tool !== 'string') return { block: true, blockReason: 'sharkcage_run needs {skill, tool, args}' }
  const gate = skillGate(api, agent)
  const j = gate.judgeRun({ skill: params.skill, tool: params.tool, args: params.args ?? {}, skills: discoverSkills(api, dirs), workspace: dirs.workspace ?? process.cwd(), refused: pendingRefusals() })
  if (j.decision === 'block') {
    audit(api, { kind: 'approval', ...rec, decision: 'deny', reason: j.reason, detail: { identity: j.identity, missing: j.missing } })
    return { block: true, blockReason: j.reason }
  }
  if (j.decision !== 'ask') return { params }
  return askApproval(api, gate, j, rec, { ...params, [RUN_GRANT]: j.token })
}

/**
 * `sharkcage_run {skill, tool, args}`: runs a predecessor-format skill's
 * entry (plugin.json `main`) in its own sandbox with that skill's grants:
 * the request as JSON on stdin, the result from stdout. OpenClaw's tool
 * names are static, so this one tool serves every such skill.
 */
function registerDispatcher(api) {
  api.registerTool?.(
    (ctx) => ({
      name: RUN_TOOL,
      label: 'Run a sharkcage skill',
      description: "Run a tool of an installed skill that has a plugin.json (sharkcage's skill format) in its own sandbox. Input: {skill, tool, args}. The skill's permissions are asked for once and enforced by the kernel.",
      parameters: {
        type: 'object',
        required: ['skill', 'tool'],
        properties: {
          skill: { type: 'string', description: 'The skill (its directory name).' },
          tool: { type: 'string', description: 'One of the tools its plugin.json lists.' },
          args: { type: 'object', description: 'Arguments for that tool (JSON).' },
        },
      },
      async execute(toolCallId, params, signal) {
        const sc = loadAddon(api.rootDir)
        const dirs = sessionDirs(api, ctx)
        const workspace = dirs.workspace
        if (!workspace) throw new Error('sharkcage_run: no workspace for this session')
        const agent = ctx?.agentId ?? agentOf(ctx?.sessionKey)
        const skills = discoverSkills(api, dirs)
        const token = typeof params?.[RUN_GRANT] === 'string' ? params[RUN_GRANT] : undefined
        const policy = protectSkills(protectWorkspaceHooks(api.pluginConfig?.policy ?? {}, dirs.agentWorkspace), api, dirs)
        const plan = skillGate(api, agent).forRun({ skill: String(params?.skill), tool: String(params?.tool), args: params?.args ?? {}, skills, workspace, policy, env: token ? { SHARKCAGE_GRANT: token } : {}, values: skillValues(api, skills), snapshotRoot: snapshotRoot() })
        const labels = { session: ctx?.sessionKey, agent, toolCall: toolCallId, skill: plan.skill ?? String(params?.skill) }
        if (plan.skill) audit(api, { kind: 'grant_applied', ...labels, tool: RUN_TOOL, decision: 'allow', reason: plan.approvalId ? `approved once (${plan.approvalId})` : 'granted always', detail: { identity: plan.identity, capabilities: plan.applied } })
        const timeoutMs = Math.min(Math.max(Number(skillConfig(api).runTimeoutMs) || 60_000, 1_000), 600_000)
        const readOnly = [...(typeof dirs.skillsWorkspace === 'string' && dirs.skillsWorkspace !== workspace && fs.existsSync(dirs.skillsWorkspace) ? [dirs.skillsWorkspace] : []), ...plan.expose]
        const r = await sc.exec({ command: plan.argv, cwd: workspace, policy: plan.policy, env: plan.env, stdin: JSON.stringify({ tool: params?.tool, args: params?.args ?? {} }), timeoutMs, signal, readOnly, redact: plan.redact, network: { session: labels.session, agent, toolCall: toolCallId, skill: labels.skill, scope: plan.skill ? `skill:${plan.skill}` : undefined } })
        auditExec(api, labels, `${RUN_TOOL} ${params?.skill} ${params?.tool}`, r)
        if (plan.skill) noteRefusals(plan.skill, r.network)
        const notices = [...plan.notices, ...(r.timedOut ? [`sc: timed out after ${timeoutMs} ms`] : []), ...(r.violations ?? []).map((v) => `sc: ${v.detail}`)]
        const out = r.stdout.toString('utf8').trim()
        const err = r.stderr.toString('utf8').trim()
        const text = [...notices, r.exitCode === 0 ? out : `the skill's tool failed (exit ${r.exitCode ?? r.signal}): ${err || out}`.slice(0, 4000)].filter(Boolean).join('\n')
        let json
        try {
          json = JSON.parse(out)
        } catch {}
        return { content: [{ type: 'text', text }], details: { status: r.exitCode === 0 ? 'completed' : 'failed', exitCode: r.exitCode, skill: plan.skill ?? null, result: json ?? null } }
      },
    }),
    { names: [RUN_TOOL] },
  )
}

// ---- `openclaw sharkcage …` and `openclaw security audit` ----

/** The `sc` commands OpenClaw's CLI passes on (`openclaw sharkcage grants list`, …). */
const SC_COMMANDS = ['skill', 'grants', 'approve', 'explain', 'config', 'audit', 'home', 'doctor']

function registerCli(api) {
  api.registerCli?.(
    ({ program }) => {
      const cmd = program.command('sharkcage').description("sharkcage: skills, grants, services, the audit log (the same as the `sc` command)")
      for (const name of SC_COMMANDS) {
        cmd
          .command(name)
          .description(`sc ${name} … (see sc ${name} --help)`)
          .allowUnknownOption(true)
          .helpOption(false)
          .argument('[args...]')
          .action((args) => {
            const launcher = process.env.SHARKCAGE_LAUNCHER ?? path.join(api.rootDir, 'sharkcage-launcher')
            const r = spawnSync(launcher, [name, ...(args ?? [])], { stdio: 'inherit' })
            process.exitCode = r.status ?? 1
          })
      }
    },
    { descriptors: [{ name: 'sharkcage', description: 'sharkcage: skills, grants, services, the audit log', hasSubcommands: true }] },
  )
}

/** What `openclaw security audit` should say about sharkcage's setup. */
function auditFindings(cfg) {
  const out = []
  const sb = cfg.agents?.defaults?.sandbox ?? {}
  if (sb.backend !== BACKEND_ID || (sb.mode ?? 'off') === 'off') {
    out.push({ checkId: 'sharkcage.sandbox_off', severity: 'warn', title: 'sharkcage is installed but not the sandbox of the default agent', detail: `agents.defaults.sandbox is ${JSON.stringify({ backend: sb.backend, mode: sb.mode })}: tool calls run on the host unsandboxed.`, remediation: 'Run `sc init` (sets agents.defaults.sandbox to the sharkcage backend).' })
  }
  if (cfg.tools?.elevated?.enabled === true) {
    out.push({ checkId: 'sharkcage.elevated_enabled', severity: 'warn', title: 'Elevated exec is enabled', detail: 'exec with elevated:true leaves the sandbox; sharkcage refuses it in sandboxed sessions, but sessions without a sandbox can use it.', remediation: 'Set tools.elevated.enabled to false unless an operator needs it.' })
  }
  if (cfg.tools?.codeMode !== false) {
    out.push({ checkId: 'sharkcage.code_mode', severity: 'info', title: 'Code Mode is not off', detail: 'Code Mode runs model JavaScript in the gateway; sharkcage refuses it in sandboxed sessions.', remediation: 'Set tools.codeMode to false (sc init does).' })
  }
  const also = cfg.tools?.sandbox?.tools?.alsoAllow ?? []
  if (!also.some((x) => x === RUN_TOOL || x === BACKEND_ID || x === 'group:plugins')) {
    out.push({ checkId: 'sharkcage.dispatcher_hidden', severity: 'info', title: 'sharkcage_run is hidden in sandboxed sessions', detail: 'Skills in the plugin.json format cannot be run by sandboxed agents.', remediation: 'Add "sharkcage_run" to tools.sandbox.tools.alsoAllow (sc init does).' })
  }
  return out
}

/** The gate for the configured policy (one per policy and allow list). */
function toolGate(api) {
  const policy = api.pluginConfig?.policy ?? {}
  const allowTools = api.pluginConfig?.gate?.allowTools ?? []
  const key = JSON.stringify([policy, allowTools])
  let g = state.gates.get(key)
  if (!g) {
    g = new (loadAddon(api.rootDir).ToolGate)(policy, { allowTools })
    state.gates.set(key, g)
  }
  return g
}

/** Whether this call's session runs in a sharkcage sandbox (when unsure and sharkcage is the configured backend: yes). */
function sandboxedBySharkcage(api, ctx) {
  const sessionKey = ctx?.sessionKey
  if (sessionKey && state.sandboxed.has(sessionKey)) return true
  const cfg = api.config ?? {}
  // A call judged without its session (a catalog tool wrapped out of
  // context): judged whenever any agent is sandboxed by sharkcage.
  if (!sessionKey) {
    const sb = [cfg.agents?.defaults?.sandbox, ...(cfg.agents?.list ?? []).map?.((a) => a?.sandbox) ?? []]
    const defaults = cfg.agents?.defaults?.sandbox ?? {}
    return sb.some((x) => x && (x.backend ?? defaults.backend)?.trim?.() === BACKEND_ID && (x.mode ?? defaults.mode ?? 'off') !== 'off')
  }
  const agent = (cfg.agents?.list ?? []).find?.((a) => a?.id === ctx?.agentId)
  const backend = (agent?.sandbox?.backend ?? cfg.agents?.defaults?.sandbox?.backend ?? '').trim()
  if (backend !== BACKEND_ID) return false
  try {
    return sandboxSdk.resolveSandboxRuntimeStatus({ cfg, sessionKey, agentId: ctx?.agentId }).sandboxed === true
  } catch {
    const mode = agent?.sandbox?.mode ?? cfg.agents?.defaults?.sandbox?.mode ?? 'off'
    return mode !== 'off'
  }
}

function registerTimingHooks(api) {
    // Per-call timing, before_tool_call → after_tool_call, as structured log
    // lines (and, for examples/openclaw-bench.mjs, as JSON lines in a file).
    const started = new Map()
    const benchLog = process.env.SHARKCAGE_BENCH_LOG
    const callId = (ev, ctx) => ev?.toolCallId ?? ctx?.toolCallId
    api.on?.('before_tool_call', (ev, ctx) => {
      const id = callId(ev, ctx)
      if (id) started.set(id, process.hrtime.bigint())
      if (id && ctx?.sessionKey) state.currentCall.set(ctx.sessionKey, id)
    })
    api.on?.('after_tool_call', (ev, ctx) => {
      const id = callId(ev, ctx)
      const t0 = id && started.get(id)
      if (id) started.delete(id)
      const ms = t0 ? Number(process.hrtime.bigint() - t0) / 1e6 : ev.durationMs
      if (t0) {
        const rec = { event: 'tool_call', tool: ev.toolName, toolCallId: id, ms, error: ev.error ? String(ev.error).slice(0, 200) : undefined }
        api.logger?.debug?.(`sharkcage: ${JSON.stringify(rec)}`)
        if (benchLog) fs.appendFileSync(benchLog, JSON.stringify(rec) + '\n')
      }
      // Every tool call, sandboxed or not, blocked or not, in the audit log.
      try {
        loadAddon(api.rootDir)
      } catch {}
      // A one-time approval token is nobody's business after the call.
      let params = ev.params?.env?.SHARKCAGE_GRANT !== undefined ? { ...ev.params, env: { ...ev.params.env, SHARKCAGE_GRANT: '(one-time approval)' } } : ev.params
      if (params?.[RUN_GRANT] !== undefined) params = { ...params, [RUN_GRANT]: '(one-time approval)' }
      audit(api, {
        kind: 'tool_call', session: ctx?.sessionKey, agent: ctx?.agentId, run: ev.runId ?? ctx?.runId, tool: ev.toolName, toolCall: id,
        params, durationMs: ms, decision: ev.error ? (/block|denied|not allowed|refused|^sharkcage:/i.test(String(ev.error)) ? 'deny' : 'error') : 'allow',
        reason: ev.error ? String(ev.error).slice(0, 500) : undefined,
      })
    })
}
