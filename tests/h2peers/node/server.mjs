// WebSocket echo servers on Node's built-in http2/http modules, for
// tests/h2peers/run (which documents the modes). No npm dependencies.
//
// Usage: node server.mjs h2 PORT [CERT_PEM KEY_PEM]
//        node server.mjs h2-noconnect PORT CERT_PEM KEY_PEM
//        node server.mjs ws1 PORT
//
// h2            HTTP/2 server with SETTINGS_ENABLE_CONNECT_PROTOCOL=1: a CONNECT
//               with :protocol websocket and sec-websocket-version 13 gets
//               :status 200 (+ sec-websocket-protocol: the first one offered)
//               and then the RFC 6455 echo of ws_echo.mjs runs on the stream.
//               Cleartext h2c with prior knowledge without CERT/KEY, TLS with
//               ALPN h2 with them. Other requests get 200 and a short text.
// h2-noconnect  TLS, ALPN h2 and http/1.1 on one port (allowHTTP1), WITHOUT
//               enableConnectProtocol: HTTP/2 clients see no extended CONNECT;
//               HTTP/1.1 WebSocket upgrades (GET + Upgrade: websocket) get 101
//               and the echo. Node 20's Http2SecureServer with allowHTTP1 hands
//               HTTP/1.1 connections to Node's HTTP/1 connection listener,
//               which emits 'upgrade' on the http2 server itself, so a plain
//               server.on('upgrade') works (checked with Node 20.20).
// ws1           cleartext HTTP/1.1 WebSocket echo (a backend for nginx-h2).
//
// Binds 127.0.0.1 only. Prints one "listening" line on stderr once the port
// accepts connections, and errors on stderr. With H2PEERS_LOG=FILE, one line
// per connection, stream and close goes to FILE.
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { firstSubprotocol, handleHttp1Upgrade, runEcho } from './ws_echo.mjs';

const usage = `usage: node server.mjs h2 PORT [CERT_PEM KEY_PEM]
       node server.mjs h2-noconnect PORT CERT_PEM KEY_PEM
       node server.mjs ws1 PORT`;

function die(msg) {
    process.stderr.write(`server.mjs: ${msg}\n${usage}\n`);
    process.exit(2);
}

const [mode, portArg, certPath, keyPath, ...extra] = process.argv.slice(2);
if (!mode || !portArg || extra.length) die('wrong number of arguments');
if (!/^\d{1,5}$/.test(portArg) || +portArg < 1 || +portArg > 65535) die(`invalid port '${portArg}'`);
const port = +portArg;
const tls = certPath !== undefined;
if (tls && keyPath === undefined) die('CERT_PEM needs KEY_PEM');
if (mode === 'h2-noconnect' && !tls) die('h2-noconnect needs CERT_PEM and KEY_PEM');
if (mode === 'ws1' && tls) die('ws1 takes no certificate');
if (!['h2', 'h2-noconnect', 'ws1'].includes(mode)) die(`unknown mode '${mode}'`);

let cert;
let key;
if (tls) {
    try {
        cert = fs.readFileSync(certPath);
        key = fs.readFileSync(keyPath);
    } catch (err) {
        die(err.message);
    }
}

const logFile = process.env.H2PEERS_LOG;
const logStream = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null;
let nextId = 1;
function logger(prefix) {
    return (msg) => {
        if (logStream) logStream.write(`${new Date().toISOString()} ${prefix} ${msg}\n`);
    };
}

function textResponse(what) {
    return `h2peers node ${mode} WebSocket echo (${what})\n`;
}

// ---- HTTP/2 streams ----------------------------------------------------------

function onH2Stream(stream, headers) {
    const log = logger(`h2#${stream.session?.h2peersId ?? '?'}/${stream.id}`);
    stream.on('error', (err) => log(`stream error: ${err.message}`));
    const method = headers[':method'];
    if (method === 'CONNECT') {
        if (headers[':protocol'] !== 'websocket') {
            log(`CONNECT with :protocol ${headers[':protocol']} rejected`);
            stream.respond({ ':status': 400 }, { endStream: true });
            return;
        }
        if (headers['sec-websocket-version'] !== '13') {
            log('extended CONNECT without sec-websocket-version 13 rejected');
            stream.respond({ ':status': 400, 'sec-websocket-version': '13' }, { endStream: true });
            return;
        }
        const response = { ':status': 200 };
        const protocol = firstSubprotocol(headers['sec-websocket-protocol']);
        if (protocol !== null) response['sec-websocket-protocol'] = protocol;
        stream.respond(response);
        log(`RFC 8441 WebSocket ${headers[':path']}${protocol !== null ? ` protocol ${protocol}` : ''}`);
        runEcho(stream, { log });
        return;
    }
    const body = textResponse('HTTP/2');
    stream.respond({ ':status': 200, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    stream.end(body);
}

function watchSessions(server) {
    server.on('session', (session) => {
        session.h2peersId = nextId++;
        const log = logger(`h2#${session.h2peersId}`);
        log('HTTP/2 session');
        session.on('error', (err) => log(`session error: ${err.message}`));
        session.on('close', () => log('session closed'));
    });
    server.on('sessionError', (err) => logger('h2')(`session error: ${err.message}`));
}

// ---- servers -------------------------------------------------------------------

let server;
if (mode === 'h2') {
    const settings = { enableConnectProtocol: true };
    server = tls
        ? http2.createSecureServer({ cert, key, settings, ALPNProtocols: ['h2'] })
        : http2.createServer({ settings });
    watchSessions(server);
    server.on('stream', onH2Stream);
    if (tls) {
        // A client that offers no h2 in ALPN is dropped at once (by default
        // Node waits 10 s before it drops such sockets).
        server.on('unknownProtocol', (socket) => socket.destroy());
    }
} else if (mode === 'h2-noconnect') {
    // No enableConnectProtocol: SETTINGS carry no ENABLE_CONNECT_PROTOCOL, and
    // nghttp2 itself refuses a :protocol pseudo-header (RST_STREAM
    // PROTOCOL_ERROR), so the handlers below never see one.
    server = http2.createSecureServer({ cert, key, allowHTTP1: true });
    watchSessions(server);
    // With allowHTTP1, 'request' gets both HTTP/1.1 requests and (through
    // the compat layer) HTTP/2 streams; WebSocket upgrades arrive as 'upgrade'.
    server.on('request', (req, res) => {
        if (req.method === 'CONNECT') {
            res.writeHead(405, { 'content-length': 0 });
            res.end();
            return;
        }
        const body = textResponse(`HTTP/${req.httpVersion}`);
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
    });
    server.on('upgrade', (req, socket, head) => {
        handleHttp1Upgrade(req, socket, head, logger(`h1#${nextId++}`));
    });
} else {
    server = http.createServer((req, res) => {
        const body = textResponse(`HTTP/${req.httpVersion}`);
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
    });
    server.on('upgrade', (req, socket, head) => {
        handleHttp1Upgrade(req, socket, head, logger(`h1#${nextId++}`));
    });
}

server.on('error', (err) => {
    process.stderr.write(`server.mjs: ${mode} on 127.0.0.1:${port}: ${err.message}\n`);
    process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
    process.stderr.write(`server.mjs: ${mode} listening on 127.0.0.1:${port}${tls ? ' (TLS)' : ''}\n`);
});
