// A fake OpenAI-compatible model server on 127.0.0.1 (Node stdlib only) that
// answers a real OpenClaw turn with scripted tool calls, then with text that
// echoes every tool result it was given. Every request body is appended to
// a JSONL log, so tests can check what reached the model.
//
//   node fake-model.mjs <port-file> <script.json> <log.jsonl>
// script.json: [{"name": "exec", "arguments": {"command": "echo hi"}}, ...]
import http from 'node:http'
import fs from 'node:fs'

const [portFile, scriptFile, logFile] = process.argv.slice(2)
// Read per request: a test may give a later turn another script.
const readScript = () => JSON.parse(fs.readFileSync(scriptFile, 'utf8'))
const INTERNAL = '<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>'

const textOf = (m) => (typeof m.content === 'string' ? m.content : Array.isArray(m.content) ? m.content.map((p) => p.text ?? '').join('') : '')

function decide(body) {
  const script = readScript()
  const msgs = body.messages ?? []
  // The last real user message (OpenClaw appends internal-context user messages).
  let lastUser = -1
  msgs.forEach((m, i) => {
    if (m.role === 'user' && !textOf(m).startsWith(INTERNAL)) lastUser = i
  })
  const toolResults = msgs.slice(lastUser + 1).filter((m) => m.role === 'tool')
  const tools = new Set((body.tools ?? []).map((t) => t.function?.name))
  const n = toolResults.length
  if (n < script.length && tools.has(script[n].name)) return { call: script[n], index: n }
  // A tool deferred behind Tool Search: called through its bridge.
  if (n < script.length && tools.has('tool_call')) return { call: { name: 'tool_call', arguments: { id: script[n].name, args: script[n].arguments } }, index: n }
  return { text: 'RESULTS:\n' + toolResults.map((m) => textOf(m)).join('\n---\n') }
}

function chunk(res, delta, finish) {
  const c = { id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: 'fake-tool-model', choices: [{ index: 0, delta, finish_reason: finish }] }
  res.write(`data: ${JSON.stringify(c)}\n\n`)
}

const server = http.createServer((req, res) => {
  let raw = ''
  req.on('data', (d) => (raw += d))
  req.on('end', () => {
    if (req.method === 'GET' && req.url.endsWith('/models')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake-tool-model', object: 'model', owned_by: 'fake' }] }))
    }
    let body = {}
    try {
      body = JSON.parse(raw || '{}')
    } catch {}
    fs.appendFileSync(logFile, JSON.stringify(body) + '\n')
    const d = decide(body)
    const id = `call_fake_${d.index ?? 0}`
    if (body.stream === false) {
      const message = d.call
        ? { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: d.call.name, arguments: JSON.stringify(d.call.arguments) } }] }
        : { role: 'assistant', content: d.text }
      res.writeHead(200, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion', model: 'fake-tool-model', choices: [{ index: 0, message, finish_reason: d.call ? 'tool_calls' : 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }))
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    if (d.call) {
      chunk(res, { role: 'assistant', content: null, tool_calls: [{ index: 0, id, type: 'function', function: { name: d.call.name, arguments: '' } }] }, null)
      chunk(res, { tool_calls: [{ index: 0, function: { arguments: JSON.stringify(d.call.arguments) } }] }, null)
      chunk(res, {}, 'tool_calls')
    } else {
      chunk(res, { role: 'assistant', content: d.text }, null)
      chunk(res, {}, 'stop')
    }
    res.write(`data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 0, model: 'fake-tool-model', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } })}\n\n`)
    res.end('data: [DONE]\n\n')
  })
})
server.listen(0, '127.0.0.1', () => fs.writeFileSync(portFile, String(server.address().port)))
