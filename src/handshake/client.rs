//! The client side of the HTTP/1.1 opening handshake.

use std::fmt::Write as _;

use http::header::{self, HeaderMap};
use http::{Response, StatusCode};

use super::key::{accept_key, generate_key};
use super::{
    HandshakeError, HandshakeRequest, MAX_HEADERS, Negotiated, head_len, header_has_token,
};
use crate::proto::deflate::DeflateOptions;

/// Headers the handshake sets itself; the caller's values for them are not sent.
pub(super) const CONTROLLED: [header::HeaderName; 7] = [
    header::HOST,
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

/// One HTTP/1.1 opening handshake from the client side: a fresh key, the request bytes, and
/// the checks of the response.
#[derive(Debug)]
pub struct Http1Handshake {
    key: String,
}

impl Default for Http1Handshake {
    fn default() -> Self {
        Self::new()
    }
}

impl Http1Handshake {
    /// A handshake with a fresh `Sec-WebSocket-Key` from the OS CSPRNG.
    pub fn new() -> Self {
        Self {
            key: generate_key(),
        }
    }

    /// The `Sec-WebSocket-Key` this handshake sends.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Writes the `GET` request for `request` to `dst`.
    pub fn encode_request(&self, request: &HandshakeRequest, dst: &mut String) {
        let url = &request.url;
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let _ = write!(
            dst,
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            self.key
        );
        if !request.protocols.is_empty() {
            let _ = write!(
                dst,
                "Sec-WebSocket-Protocol: {}\r\n",
                request.protocols.join(", ")
            );
        }
        if let Some(extensions) = &request.extensions {
            let _ = write!(dst, "Sec-WebSocket-Extensions: {extensions}\r\n");
        }
        for (name, value) in &request.headers {
            if CONTROLLED.contains(name) {
                continue;
            }
            // `HeaderValue` forbids CR, LF and NUL, so a value cannot break the head; it may
            // hold obs-text, which is written byte for byte.
            dst.push_str(name.as_str());
            dst.push_str(": ");
            dst.push_str(&String::from_utf8_lossy(value.as_bytes()));
            dst.push_str("\r\n");
        }
        dst.push_str("\r\n");
    }

    /// Parses a response head from the start of `buf`: `Ok(None)` until it is complete, then
    /// the response and the head's length (bytes after it belong to the WebSocket).
    pub fn decode_response(
        buf: &[u8],
        max_head: usize,
    ) -> Result<Option<(Response<()>, usize)>, HandshakeError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let status = parsed
            .parse(buf)
            .map_err(|e| HandshakeError::Malformed(e.to_string()))?;
        let Some(len) = head_len(status, buf.len(), max_head)? else {
            return Ok(None);
        };
        let code = parsed.code.unwrap_or_default();
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::from_u16(code)
            .map_err(|_| HandshakeError::Malformed(format!("status {code}")))?;
        *response.headers_mut() = to_header_map(parsed.headers)?;
        Ok(Some((response, len)))
    }

    /// Checks the HTTP/1.1-specific rules: 101 (a redirect fails too), `Upgrade: websocket`,
    /// `Connection: upgrade`, and the exact `Sec-WebSocket-Accept`.
    pub fn validate(&self, response: &Response<()>) -> Result<(), HandshakeError> {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::Status(response.status().as_u16()));
        }
        let headers = response.headers();
        let upgrade = headers.get(header::UPGRADE).map(|v| v.as_bytes());
        if !upgrade.is_some_and(|v| v.eq_ignore_ascii_case(b"websocket")) {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !header_has_token(headers, header::CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let mut accepts = headers.get_all(header::SEC_WEBSOCKET_ACCEPT).iter();
        match (accepts.next(), accepts.next()) {
            (Some(accept), None)
                if accept.as_bytes() == accept_key(self.key.as_bytes()).as_bytes() =>
            {
                Ok(())
            }
            _ => Err(HandshakeError::InvalidAccept),
        }
    }
}

/// Checks what the server negotiated against what `request` offered: a subprotocol must be one
/// offered, and present when any was (an empty `Sec-WebSocket-Protocol` when none was offered
/// names a subprotocol that was not offered, RFC 6455 section 4.1); an extension must have been
/// offered. Applies to HTTP/1.1 and HTTP/2 alike.
pub fn negotiate(
    request: &HandshakeRequest,
    headers: &HeaderMap,
) -> Result<Negotiated, HandshakeError> {
    let protocol = super::server::joined(headers, header::SEC_WEBSOCKET_PROTOCOL);
    if protocol.is_empty() {
        if !request.protocols.is_empty() {
            return Err(HandshakeError::MissingProtocol);
        }
        if headers.contains_key(header::SEC_WEBSOCKET_PROTOCOL) {
            return Err(HandshakeError::UnexpectedProtocol(protocol));
        }
    } else if !request.protocols.contains(&protocol) {
        return Err(HandshakeError::UnexpectedProtocol(protocol));
    }
    let extensions = super::server::joined(headers, header::SEC_WEBSOCKET_EXTENSIONS);
    if !extensions.is_empty() {
        let offered: Vec<&str> = request
            .extensions
            .iter()
            .flat_map(|o| o.split(','))
            .filter_map(|e| e.split(';').next())
            .map(str::trim)
            .collect();
        for accepted in extensions.split(',') {
            let name = accepted.split(';').next().unwrap_or_default().trim();
            if !offered.iter().any(|o| o.eq_ignore_ascii_case(name)) {
                return Err(HandshakeError::UnexpectedExtension(name.to_owned()));
            }
        }
        if let Some(offer) = request
            .extensions
            .as_deref()
            .and_then(DeflateOptions::from_offer)
        {
            offer
                .accept_answer(&extensions)
                .map_err(|e| HandshakeError::InvalidExtension(e.0))?;
        }
    }
    Ok(Negotiated {
        protocol,
        extensions,
    })
}

pub(super) fn to_header_map(parsed: &[httparse::Header<'_>]) -> Result<HeaderMap, HandshakeError> {
    let mut headers = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        let name = header::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HandshakeError::Malformed(format!("header name {:?}", h.name)))?;
        let value = header::HeaderValue::from_bytes(h.value)
            .map_err(|_| HandshakeError::Malformed(format!("value of header {:?}", h.name)))?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::handshake::url::parse_url;

    fn request(url: &str, protocols: &[&str], extensions: Option<&str>) -> HandshakeRequest {
        HandshakeRequest {
            url: parse_url(url).unwrap(),
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            extensions: extensions.map(str::to_owned),
            headers: HeaderMap::new(),
        }
    }

    fn response(handshake: &Http1Handshake, extra: &str) -> Response<()> {
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
            accept_key(handshake.key().as_bytes())
        );
        Http1Handshake::decode_response(head.as_bytes(), 4096)
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn the_request_carries_every_required_header_and_the_callers() {
        let mut req = request("ws://[::1]:9001/chat?room=1", &["a", "b"], None);
        req.headers.insert("x-token", HeaderValue::from_static("t"));
        req.headers
            .insert(header::HOST, HeaderValue::from_static("evil"));
        let hs = Http1Handshake::new();
        let mut text = String::new();
        hs.encode_request(&req, &mut text);
        assert!(
            text.starts_with("GET /chat?room=1 HTTP/1.1\r\nHost: [::1]:9001\r\n"),
            "{text}"
        );
        for line in [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: a, b",
            "x-token: t",
        ] {
            assert!(text.contains(&format!("{line}\r\n")), "{line} in {text}");
        }
        assert!(text.contains(&format!("Sec-WebSocket-Key: {}\r\n", hs.key())));
        assert!(!text.contains("evil"));
        assert!(text.ends_with("\r\n\r\n"));
        let mut text = String::new();
        hs.encode_request(&request("wss://h.test/", &[], None), &mut text);
        assert!(
            text.contains("Host: h.test\r\n") && !text.contains("Protocol"),
            "{text}"
        );
    }

    #[test]
    fn a_valid_response_passes() {
        let hs = Http1Handshake::new();
        assert_eq!(hs.validate(&response(&hs, "")), Ok(()));
    }

    #[test]
    fn every_rule_of_the_response_is_checked() {
        let hs = Http1Handshake::new();
        let accept = accept_key(hs.key().as_bytes());
        let cases = [
            ("HTTP/1.1 200 OK\r\n\r\n".to_string(), HandshakeError::Status(200)),
            ("HTTP/1.1 302 Found\r\nLocation: ws://x/\r\n\r\n".to_string(), HandshakeError::Status(302)),
            (format!("HTTP/1.1 101 S\r\nConnection: upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"), HandshakeError::MissingUpgrade),
            (format!("HTTP/1.1 101 S\r\nUpgrade: h2c\r\nConnection: upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"), HandshakeError::MissingUpgrade),
            (format!("HTTP/1.1 101 S\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"), HandshakeError::MissingConnectionUpgrade),
            (format!("HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"), HandshakeError::MissingConnectionUpgrade),
            ("HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n".to_string(), HandshakeError::InvalidAccept),
            ("HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n".to_string(), HandshakeError::InvalidAccept),
        ];
        for (head, expected) in cases {
            let (resp, _) = Http1Handshake::decode_response(head.as_bytes(), 4096)
                .unwrap()
                .unwrap();
            assert_eq!(hs.validate(&resp), Err(expected), "{head}");
        }
        // Token lists and case are handled.
        let ok = format!(
            "HTTP/1.1 101 S\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        let (resp, _) = Http1Handshake::decode_response(ok.as_bytes(), 4096)
            .unwrap()
            .unwrap();
        assert_eq!(hs.validate(&resp), Ok(()));
    }

    #[test]
    fn the_head_is_bounded_and_the_rest_is_left_over() {
        assert!(matches!(
            Http1Handshake::decode_response(b"HTTP/1.1 101 S\r\nA: b\r\n", 4096),
            Ok(None)
        ));
        let long = format!("HTTP/1.1 101 S\r\nA: {}\r\n", "b".repeat(5000));
        assert!(matches!(
            Http1Handshake::decode_response(long.as_bytes(), 4096),
            Err(HandshakeError::HeadTooLarge { limit: 4096 })
        ));
        let (_, len) = Http1Handshake::decode_response(b"HTTP/1.1 101 S\r\n\r\n\x81\x00", 4096)
            .unwrap()
            .unwrap();
        assert_eq!(len, 18);
        assert!(matches!(
            Http1Handshake::decode_response(b"HTTP/1.1 abc\r\n\r\n", 4096),
            Err(HandshakeError::Malformed(_))
        ));
    }

    #[test]
    fn an_empty_protocol_answer_is_refused_when_none_was_offered() {
        let hs = Http1Handshake::new();
        let none = request("ws://h/", &[], None);
        assert_eq!(
            negotiate(
                &none,
                response(&hs, "Sec-WebSocket-Protocol: \r\n").headers()
            ),
            Err(HandshakeError::UnexpectedProtocol(String::new()))
        );
        let offered = request("ws://h/", &["a"], None);
        assert_eq!(
            negotiate(
                &offered,
                response(&hs, "Sec-WebSocket-Protocol: \r\n").headers()
            ),
            Err(HandshakeError::MissingProtocol)
        );
    }

    #[test]
    fn subprotocol_and_extension_negotiation() {
        let hs = Http1Handshake::new();
        let offered = request("ws://h/", &["a", "b"], None);
        let chose = |extra: &str| negotiate(&offered, response(&hs, extra).headers());
        assert_eq!(
            chose("Sec-WebSocket-Protocol: b\r\n").map(|n| n.protocol),
            Ok("b".to_string())
        );
        assert_eq!(chose(""), Err(HandshakeError::MissingProtocol));
        assert_eq!(
            chose("Sec-WebSocket-Protocol: c\r\n"),
            Err(HandshakeError::UnexpectedProtocol("c".into()))
        );
        let none = request("ws://h/", &[], None);
        assert_eq!(
            negotiate(
                &none,
                response(&hs, "Sec-WebSocket-Protocol: a\r\n").headers()
            ),
            Err(HandshakeError::UnexpectedProtocol("a".into()))
        );
        assert_eq!(
            negotiate(&none, response(&hs, "").headers()),
            Ok(Negotiated::default())
        );
        assert_eq!(
            negotiate(
                &none,
                response(&hs, "Sec-WebSocket-Extensions: permessage-deflate\r\n").headers()
            ),
            Err(HandshakeError::UnexpectedExtension(
                "permessage-deflate".into()
            ))
        );
        let deflate = request(
            "ws://h/",
            &[],
            Some("permessage-deflate; client_max_window_bits"),
        );
        let got = negotiate(
            &deflate,
            response(
                &hs,
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n",
            )
            .headers(),
        );
        assert_eq!(
            got.map(|n| n.extensions),
            Ok("permessage-deflate; server_no_context_takeover".to_string())
        );
    }
}
