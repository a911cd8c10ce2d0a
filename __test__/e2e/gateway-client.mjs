// A Gateway operator client (run with OpenClaw's Node 24: global WebSocket)
// that starts one chat turn with `chat.send` and answers each plugin
// approval the turn asks for with the next decision from a list ("none":
// leave it unanswered, so it times out). Prints one JSON object: the
// approvals requested (title, description, allowed decisions), what was
// answered, and how the turn ended.
//   node gateway-client.mjs <port> <token> <sessionKey> <message> <decision,decision,...>
const [port, token, sessionKey, message, decisionList] = process.argv.slice(2)
const decisions = (decisionList ?? '').split(',').filter(Boolean)
const out = { approvals: [], answered: [], final: null, error: null }
let n = 0
const ws = new WebSocket(`ws://127.0.0.1:${port}`)
const pending = new Map()
const send = (method, params) =>
  new Promise((resolve, reject) => {
    const id = `r${++n}`
    pending.set(id, { resolve, reject })
    ws.send(JSON.stringify({ type: 'req', id, method, params }))
  })
const done = (code) => {
  console.log(JSON.stringify(out))
  try {
    ws.close()
  } catch {}
  process.exit(code)
}
setTimeout(() => {
  out.error = 'the turn did not finish in time'
  done(2)
}, 200_000)
let runId = null
ws.addEventListener('message', async (m) => {
  const f = JSON.parse(m.data)
  if (f.type === 'res') {
    const p = pending.get(f.id)
    pending.delete(f.id)
    if (f.ok) p?.resolve(f.payload)
    else p?.reject(new Error(JSON.stringify(f.error)))
    return
  }
  if (f.type !== 'event') return
  if (f.event === 'connect.challenge') {
    try {
      await send('connect', {
        minProtocol: 4,
        maxProtocol: 4,
        client: { id: 'gateway-client', version: '1.0.0', platform: 'linux', mode: 'backend' },
        role: 'operator',
        scopes: ['operator.read', 'operator.write', 'operator.approvals', 'operator.admin'],
        caps: ['tool-events', 'plugin-approvals'],
        auth: { token },
        userAgent: 'sharkcage-e2e',
      })
      runId = `e2e-${Date.now()}-${process.pid}`
      await send('chat.send', { sessionKey, message, idempotencyKey: runId })
    } catch (e) {
      out.error = e.message
      done(3)
    }
    return
  }
  if (f.event === 'plugin.approval.requested') {
    const r = f.payload?.request ?? {}
    out.approvals.push({ id: f.payload.id, title: r.title, description: r.description, severity: r.severity, allowedDecisions: r.allowedDecisions, toolName: r.toolName })
    const d = decisions[out.approvals.length - 1] ?? 'none'
    if (d !== 'none') {
      try {
        await send('plugin.approval.resolve', { id: f.payload.id, decision: d })
        out.answered.push(d)
      } catch (e) {
        out.answered.push(`failed: ${e.message}`)
      }
    } else out.answered.push('none')
    return
  }
  if (f.event === 'chat' && f.payload?.state === 'final' && (!runId || f.payload?.runId === runId)) {
    out.final = f.payload?.message ?? true
    done(0)
  }
  if (f.event === 'chat' && f.payload?.state === 'error') {
    out.error = JSON.stringify(f.payload).slice(0, 2000)
    done(4)
  }
})
ws.addEventListener('error', (e) => {
  out.error = `websocket: ${e.message ?? e}`
  done(5)
})
