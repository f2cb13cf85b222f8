// Benchmark client for the side-by-side comparison: undici's WebSocket.
//
// Usage: node client.mjs <ws-url> <scenario-json>
//   scenario-json: {"connections":100,"size":20,"in_flight":1,"messages":200000,
//                   "warmup":20000,"latency":false,"text":false}
//
// Opens `connections` sockets, waits for all of them to open, then keeps
// `in_flight` messages outstanding on every socket, sending the next message
// each time an echo arrives, until `messages` echoes have arrived in total.
// The first `warmup` echoes are not timed. Prints one line of JSON on stdout
// and exits 0; on any error (or a close before completion) prints the error to
// stderr and exits 1.

import { WebSocket, Agent } from 'undici'

const IMPL = 'undici'
// Fail instead of hanging forever if no echo arrives for this long.
const STALL_TIMEOUT_MS = 60_000
// How long to wait for the closing handshakes once done.
const CLOSE_TIMEOUT_MS = 10_000
const TEXT_PATTERN = 'héllo wörld ☃ '

let finished = false

function fail (msg) {
  if (finished) return
  finished = true
  process.stderr.write(`client.mjs (${IMPL}): ${msg}\n`)
  process.exit(1)
}

process.on('uncaughtException', (err) => fail(`uncaught exception: ${err && err.stack ? err.stack : err}`))
process.on('unhandledRejection', (err) => fail(`unhandled rejection: ${err && err.stack ? err.stack : err}`))

function describeEvent (ev) {
  if (!ev) return 'unknown'
  const parts = [ev.type]
  if (ev.message) parts.push(ev.message)
  if (ev.error) {
    parts.push(String(ev.error.stack ? ev.error.stack : ev.error))
    if (ev.error.cause) parts.push(`cause: ${ev.error.cause.stack ? ev.error.cause.stack : ev.error.cause}`)
  }
  if (ev.code !== undefined) parts.push(`code=${ev.code}`)
  if (ev.reason) parts.push(`reason=${JSON.stringify(ev.reason)}`)
  if (ev.wasClean !== undefined) parts.push(`wasClean=${ev.wasClean}`)
  return parts.join(' ')
}

function parseArgs () {
  const [url, json] = process.argv.slice(2)
  if (!url || !json) {
    fail('usage: node client.mjs <ws-url> <scenario-json>')
  }
  let s
  try {
    s = JSON.parse(json)
  } catch (err) {
    fail(`bad scenario JSON: ${err.message}`)
  }
  const int = (name, dflt, min) => {
    if (s.idle && name !== 'connections') return dflt ?? 0
    const v = s[name] ?? dflt
    if (!Number.isSafeInteger(v) || v < min) fail(`scenario.${name} must be an integer >= ${min}, got ${JSON.stringify(s[name])}`)
    return v
  }
  const sc = {
    connections: int('connections', 1, 1),
    size: int('size', undefined, 0),
    inFlight: int('in_flight', 1, 1),
    messages: int('messages', undefined, 1),
    warmup: int('warmup', 0, 0),
    latency: Boolean(s.latency ?? false),
    text: Boolean(s.text ?? false),
    idle: Boolean(s.idle ?? false)
  }
  if (sc.idle) return { url, sc }
  if (sc.warmup >= sc.messages) fail(`scenario.warmup (${sc.warmup}) must be < messages (${sc.messages})`)
  return { url, sc }
}

// A string whose UTF-8 encoding is the repeated non-ASCII pattern, truncated
// at a character boundary to at most `size` bytes.
function makeText (size) {
  const pat = Buffer.from(TEXT_PATTERN, 'utf8')
  // Repeat the pattern a few bytes past `size` so the byte at the cut can be
  // examined, then back off while it is a UTF-8 continuation byte.
  const buf = Buffer.allocUnsafe(size + 4)
  for (let off = 0; off < buf.length; off += pat.length) pat.copy(buf, off, 0, Math.min(pat.length, buf.length - off))
  let cut = size
  while (cut > 0 && (buf[cut] & 0xc0) === 0x80) cut--
  return buf.toString('utf8', 0, cut)
}

function percentileUs (sortedNs, p) {
  const n = sortedNs.length
  if (n === 0) return null
  const idx = Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))
  return sortedNs[idx] / 1000
}

function round (x, digits) {
  if (x === null || !Number.isFinite(x)) return x
  const f = 10 ** digits
  return Math.round(x * f) / f
}

// Idle memory: opens `connections` sockets, waits for the handshakes to settle, and reports
// the resident bytes added per open connection (the Rust clients' `bytes_per_connection`).
async function idle (url, sc) {
  const dispatcher = new Agent()
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  if (global.gc) global.gc()
  await sleep(200)
  const before = process.memoryUsage().rss
  const sockets = []
  const opened = []
  for (let i = 0; i < sc.connections; i++) {
    const ws = new WebSocket(url, { dispatcher })
    sockets.push(ws)
    opened.push(new Promise((resolve, reject) => {
      ws.addEventListener('open', () => resolve())
      ws.addEventListener('error', (ev) => reject(new Error(`connection ${i}: ${describeEvent(ev)}`)))
    }))
  }
  try {
    await Promise.all(opened)
  } catch (err) {
    fail(err.message)
  }
  await sleep(500)
  if (global.gc) global.gc()
  const after = process.memoryUsage().rss
  finished = true
  const result = {
    impl: IMPL,
    messages: 0,
    seconds: 0,
    msgs_per_sec: 0,
    mb_per_sec: 0,
    p50_us: null,
    p99_us: null,
    p999_us: null,
    user_cpu_s: 0,
    sys_cpu_s: 0,
    rss_bytes: after,
    bytes_per_connection: Math.max(0, after - before) / sc.connections
  }
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
}

async function main () {
  const { url, sc } = parseArgs()
  if (sc.idle) return idle(url, sc)

  // undici's client has a receive limit through the dispatcher's `webSocket`
  // options (defaults: maxPayloadSize 128 MiB, maxFragments 131072). 0 means
  // no limit for both, so large messages never trip them.
  const dispatcher = new Agent({ webSocket: { maxPayloadSize: 0, maxFragments: 0 } })

  let payload, payloadBytes, expectedLen
  if (sc.text) {
    payload = makeText(sc.size)
    payloadBytes = Buffer.byteLength(payload, 'utf8')
    expectedLen = payload.length
  } else {
    payload = new Uint8Array(sc.size).fill(0x61)
    payloadBytes = sc.size
    expectedLen = sc.size
  }

  const timed = sc.messages - sc.warmup
  const rtts = sc.latency ? new Float64Array(timed) : null
  let nRtt = 0

  let sent = 0
  let received = 0
  let lastProgress = Date.now()
  let t0 = 0n
  let cpu0 = null
  let t1 = 0n
  let cpu1 = null
  let resolveDone
  const done = new Promise((resolve) => { resolveDone = resolve })

  const startTiming = () => {
    cpu0 = process.cpuUsage()
    t0 = process.hrtime.bigint()
  }

  // Open all connections and wait for every one to be open.
  const sockets = []
  const opened = []
  for (let i = 0; i < sc.connections; i++) {
    const ws = new WebSocket(url, { dispatcher })
    ws.binaryType = 'arraybuffer'
    const st = { ws, sendTimes: sc.latency ? [] : null, open: false, closed: false, closeEv: null }
    sockets.push(st)
    opened.push(new Promise((resolve, reject) => {
      ws.addEventListener('open', () => { st.open = true; resolve() })
      ws.addEventListener('error', (ev) => {
        if (!st.open) reject(new Error(`connection ${i}: error before open: ${describeEvent(ev)}`))
        else if (!finished && received < sc.messages) fail(`connection ${i}: error: ${describeEvent(ev)}`)
      })
      ws.addEventListener('close', (ev) => {
        st.closed = true
        st.closeEv = ev
        if (!st.open) reject(new Error(`connection ${i}: closed before open: ${describeEvent(ev)}`))
        else if (!finished && received < sc.messages) fail(`connection ${i}: closed before completion (${received}/${sc.messages} echoes): ${describeEvent(ev)}`)
      })
    }))
  }
  try {
    await Promise.all(opened)
  } catch (err) {
    fail(err.message)
  }

  const sendOne = (st) => {
    if (sent >= sc.messages) return
    sent++
    if (st.sendTimes) st.sendTimes.push(process.hrtime.bigint())
    st.ws.send(payload)
  }

  for (let i = 0; i < sockets.length; i++) {
    const st = sockets[i]
    st.ws.addEventListener('message', (ev) => {
      if (received >= sc.messages) return
      const now = st.sendTimes ? process.hrtime.bigint() : 0n
      const data = ev.data
      if (sc.text) {
        if (typeof data !== 'string' || data.length !== expectedLen) {
          fail(`connection ${i}: unexpected echo: ${typeof data} of length ${data && (data.length ?? data.byteLength)}, expected text of length ${expectedLen}`)
          return
        }
      } else if (!(data instanceof ArrayBuffer) || data.byteLength !== expectedLen) {
        fail(`connection ${i}: unexpected echo: ${typeof data === 'string' ? 'text' : Object.prototype.toString.call(data)} of length ${data && (data.length ?? data.byteLength)}, expected binary of ${expectedLen} bytes`)
        return
      }
      received++
      lastProgress = Date.now()
      if (st.sendTimes) {
        const ts = st.sendTimes.shift()
        if (received > sc.warmup) rtts[nRtt++] = Number(now - ts)
      }
      if (received === sc.warmup) startTiming()
      if (received === sc.messages) {
        t1 = process.hrtime.bigint()
        cpu1 = process.cpuUsage(cpu0)
        resolveDone()
        return
      }
      sendOne(st)
    })
  }

  const watchdog = setInterval(() => {
    if (Date.now() - lastProgress > STALL_TIMEOUT_MS) {
      fail(`no echo for ${STALL_TIMEOUT_MS / 1000} s (${received}/${sc.messages} echoes)`)
    }
  }, 1000)
  watchdog.unref()

  lastProgress = Date.now()
  if (sc.warmup === 0) startTiming()
  for (let k = 0; k < sc.inFlight; k++) {
    for (const st of sockets) sendOne(st)
  }

  await done
  finished = true
  clearInterval(watchdog)

  // Close every socket with 1000 and wait for the closing handshakes.
  const closes = sockets.map((st) => st.closed
    ? Promise.resolve()
    : new Promise((resolve) => st.ws.addEventListener('close', () => resolve(), { once: true })))
  for (const st of sockets) {
    if (!st.closed) st.ws.close(1000)
  }
  let closeTimer
  const closeTimedOut = await Promise.race([
    Promise.all(closes).then(() => false),
    new Promise((resolve) => { closeTimer = setTimeout(() => resolve(true), CLOSE_TIMEOUT_MS) })
  ])
  clearTimeout(closeTimer)
  if (closeTimedOut) {
    const open = sockets.filter((st) => !st.closed).length
    process.stderr.write(`client.mjs (${IMPL}): warning: ${open} socket(s) did not finish the closing handshake within ${CLOSE_TIMEOUT_MS / 1000} s\n`)
  }

  const seconds = Number(t1 - t0) / 1e9
  let p50 = null
  let p99 = null
  let p999 = null
  if (rtts) {
    const sorted = rtts.subarray(0, nRtt).sort()
    p50 = round(percentileUs(sorted, 0.50), 3)
    p99 = round(percentileUs(sorted, 0.99), 3)
    p999 = round(percentileUs(sorted, 0.999), 3)
  }
  const result = {
    impl: IMPL,
    messages: timed,
    seconds: round(seconds, 6),
    msgs_per_sec: round(timed / seconds, 3),
    mb_per_sec: round(payloadBytes * timed / 1e6 / seconds, 3),
    p50_us: p50,
    p99_us: p99,
    p999_us: p999,
    user_cpu_s: round(cpu1.user / 1e6, 6),
    sys_cpu_s: round(cpu1.system / 1e6, 6),
    rss_bytes: process.memoryUsage().rss
  }
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)))
