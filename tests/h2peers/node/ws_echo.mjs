// RFC 6455 WebSocket echo over any duplex byte stream, shared by the servers in
// server.mjs: an HTTP/2 stream after an RFC 8441 extended CONNECT, or a TCP/TLS
// socket after an HTTP/1.1 Upgrade. Node built-ins only.
//
// Server side of RFC 6455 section 5:
// - every client frame must be masked (else Close 1002); RSV bits must be 0
//   (no extension is ever agreed; else 1002); control frames must be FIN with
//   at most 125 bytes (else 1002); all three length forms are parsed;
// - fragmented messages are reassembled and echoed as ONE unmasked frame with
//   the opcode of the first fragment (text stays text, binary stays binary);
//   a continuation without a message, or a new data frame inside a fragmented
//   message, is 1002; text must be valid UTF-8 (else 1007); a message over
//   64 MiB is 1009;
// - Ping is answered at once with a Pong with the same payload (also between
//   fragments); an unsolicited Pong is ignored;
// - Close is answered with a Close carrying the same code and reason (an empty
//   Close with an empty one; a 1-byte payload or a code that may not appear on
//   the wire is 1002), and then the server ends its side: end() on the duplex,
//   which on HTTP/2 is END_STREAM and on TCP is a FIN. Bytes after the Close
//   are ignored.
import { createHash } from 'node:crypto';

export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_MESSAGE = 64 * 1024 * 1024;

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2). */
export function acceptKey(key) {
    return createHash('sha1').update(key + GUID).digest('base64');
}

/** The first subprotocol a client offered in sec-websocket-protocol, or null. */
export function firstSubprotocol(header) {
    if (header === undefined || header === null) return null;
    const value = Array.isArray(header) ? header.join(',') : String(header);
    const first = value.split(',').map((s) => s.trim()).find((s) => s.length > 0);
    return first === undefined ? null : first;
}

/** One unmasked server frame. */
export function encodeFrame(opcode, payload, fin = true) {
    const len = payload.length;
    let header;
    if (len < 126) {
        header = Buffer.from([(fin ? 0x80 : 0) | opcode, len]);
    } else if (len < 65536) {
        header = Buffer.alloc(4);
        header[0] = (fin ? 0x80 : 0) | opcode;
        header[1] = 126;
        header.writeUInt16BE(len, 2);
    } else {
        header = Buffer.alloc(10);
        header[0] = (fin ? 0x80 : 0) | opcode;
        header[1] = 127;
        header.writeBigUInt64BE(BigInt(len), 2);
    }
    return Buffer.concat([header, payload]);
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

function validUtf8(buf) {
    try {
        textDecoder.decode(buf);
        return true;
    } catch {
        return false;
    }
}

// Close codes a peer may send (RFC 6455 7.4.1, 7.4.2 and the IANA registry).
function validCloseCode(code) {
    if (code >= 3000 && code <= 4999) return true;
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

/**
 * Run the echo on `duplex` (a net.Socket, tls.TLSSocket or Http2Stream).
 * `head` holds bytes already read past the handshake (HTTP/1.1 upgrade).
 * `log(msg)` gets one line per notable event.
 */
export function runEcho(duplex, { head = null, log = () => {} } = {}) {
    let buf = head && head.length ? Buffer.from(head) : Buffer.alloc(0);
    let fragments = null; // { opcode, parts: [], size } while a message is open
    let closed = false; // a Close has been sent; nothing more is written

    const write = (opcode, payload) => {
        if (!closed && !duplex.destroyed && duplex.writable) duplex.write(encodeFrame(opcode, payload));
    };

    const fail = (code, why) => {
        if (closed) return;
        log(`closing with ${code}: ${why}`);
        const payload = Buffer.alloc(2);
        payload.writeUInt16BE(code, 0);
        write(8, payload);
        closed = true;
        duplex.end();
    };

    const onFrame = (fin, rsv, opcode, payload) => {
        if (rsv !== 0) return fail(1002, 'RSV bits set without an extension');
        if (opcode >= 8) {
            if (!fin || payload.length > 125) return fail(1002, 'bad control frame');
            if (opcode === 8) {
                if (payload.length === 1) return fail(1002, 'Close payload of 1 byte');
                if (payload.length >= 2) {
                    const code = payload.readUInt16BE(0);
                    if (!validCloseCode(code)) return fail(1002, `Close code ${code} not allowed`);
                    if (!validUtf8(payload.subarray(2))) return fail(1007, 'Close reason not UTF-8');
                }
                log(`Close ${payload.length >= 2 ? payload.readUInt16BE(0) : '(no code)'} echoed`);
                write(8, payload);
                closed = true;
                duplex.end();
                return;
            }
            if (opcode === 9) return write(10, payload);
            if (opcode === 10) return; // unsolicited Pong
            return fail(1002, `reserved control opcode ${opcode}`);
        }
        if (opcode === 0) {
            if (!fragments) return fail(1002, 'continuation frame without a message');
        } else if (opcode === 1 || opcode === 2) {
            if (fragments) return fail(1002, 'new data frame inside a fragmented message');
            fragments = { opcode, parts: [], size: 0 };
        } else {
            return fail(1002, `reserved data opcode ${opcode}`);
        }
        fragments.parts.push(payload);
        fragments.size += payload.length;
        if (fragments.size > MAX_MESSAGE) return fail(1009, 'message too big');
        if (!fin) return;
        const message = Buffer.concat(fragments.parts, fragments.size);
        const messageOpcode = fragments.opcode;
        fragments = null;
        if (messageOpcode === 1 && !validUtf8(message)) return fail(1007, 'text message not UTF-8');
        write(messageOpcode, message);
    };

    const parse = () => {
        while (!closed) {
            if (buf.length < 2) return;
            const b0 = buf[0];
            const b1 = buf[1];
            let len = b1 & 0x7f;
            let pos = 2;
            if (len === 126) {
                if (buf.length < 4) return;
                len = buf.readUInt16BE(2);
                pos = 4;
            } else if (len === 127) {
                if (buf.length < 10) return;
                const big = buf.readBigUInt64BE(2);
                if (big > BigInt(MAX_MESSAGE)) return fail(1009, 'frame too big');
                len = Number(big);
                pos = 10;
            }
            if (len > MAX_MESSAGE) return fail(1009, 'frame too big');
            if (!(b1 & 0x80)) return fail(1002, 'unmasked client frame');
            if (buf.length < pos + 4 + len) return;
            const mask = buf.subarray(pos, pos + 4);
            const payload = Buffer.from(buf.subarray(pos + 4, pos + 4 + len));
            for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
            buf = buf.subarray(pos + 4 + len);
            onFrame((b0 & 0x80) !== 0, b0 & 0x70, b0 & 0x0f, payload);
        }
    };

    duplex.on('data', (chunk) => {
        if (closed) return;
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        parse();
    });
    duplex.on('end', () => {
        // The client ended its side (END_STREAM / FIN). End ours too.
        if (!closed) log('peer ended without a Close');
        closed = true;
        if (!duplex.destroyed && duplex.writable) duplex.end();
    });
    duplex.on('error', (err) => log(`error: ${err.message}`));
    parse(); // bytes that came with the handshake
}

/**
 * HTTP/1.1 upgrade handler (`server.on('upgrade', ...)`): checks the RFC 6455
 * opening handshake, answers 101 with Sec-WebSocket-Accept (and the first
 * offered subprotocol), then runs the echo on the socket.
 */
export function handleHttp1Upgrade(req, socket, head, log = () => {}) {
    const reject = (status, text, extra = '') => {
        log(`HTTP/1.1 upgrade rejected: ${status} ${text}`);
        socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n${extra}\r\n`);
    };
    socket.on('error', (err) => log(`socket error: ${err.message}`));
    const upgrade = (req.headers.upgrade || '').toLowerCase();
    const connection = (req.headers.connection || '').toLowerCase().split(',').map((s) => s.trim());
    const key = req.headers['sec-websocket-key'];
    if (req.method !== 'GET') return reject(405, 'Method Not Allowed');
    if (upgrade !== 'websocket' || !connection.includes('upgrade')) return reject(400, 'Bad Request');
    if (req.headers['sec-websocket-version'] !== '13') {
        return reject(426, 'Upgrade Required', 'Sec-WebSocket-Version: 13\r\n');
    }
    if (typeof key !== 'string' || Buffer.from(key, 'base64').length !== 16) return reject(400, 'Bad Request');
    const lines = [
        'HTTP/1.1 101 Switching Protocols',
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Accept: ${acceptKey(key)}`,
    ];
    const protocol = firstSubprotocol(req.headers['sec-websocket-protocol']);
    if (protocol !== null) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
    socket.setNoDelay(true);
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    log(`HTTP/1.1 WebSocket ${req.url}${protocol !== null ? ` protocol ${protocol}` : ''}`);
    runEcho(socket, { head, log });
}
