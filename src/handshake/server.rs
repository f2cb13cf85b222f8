//! The server side of the HTTP/1.1 opening handshake.

use std::fmt::Write as _;

use http::header;
use http::{Method, Request, Version};

use super::client::to_header_map;
use super::key::{accept_key, is_valid_key};
use super::{HandshakeError, MAX_HEADERS, head_len, header_has_token};

/// A client's opening handshake request that passed every check, ready to be answered.
#[derive(Debug)]
pub struct ServerHandshake {
    request: Request<()>,
    accept: String,
}

impl ServerHandshake {
    /// Parses a request head from the start of `buf`: `Ok(None)` until it is complete, then the
    /// request and the head's length.
    pub fn decode_request(
        buf: &[u8],
        max_head: usize,
    ) -> Result<Option<(Request<()>, usize)>, HandshakeError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        let status = parsed
            .parse(buf)
            .map_err(|e| HandshakeError::Malformed(e.to_string()))?;
        let Some(len) = head_len(status, buf.len(), max_head)? else {
            return Ok(None);
        };
        let mut request = Request::new(());
        *request.method_mut() = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
            .map_err(|_| HandshakeError::Malformed("method".into()))?;
        *request.uri_mut() = parsed
            .path
            .unwrap_or("/")
            .parse()
            .map_err(|_| HandshakeError::Malformed("request target".into()))?;
        *request.version_mut() = if parsed.version == Some(1) {
            Version::HTTP_11
        } else {
            Version::HTTP_10
        };
        *request.headers_mut() = to_header_map(parsed.headers)?;
        Ok(Some((request, len)))
    }

    /// Checks an HTTP/1.1 upgrade request: `GET`, HTTP/1.1, `Upgrade: websocket`,
    /// `Connection: upgrade`, `Sec-WebSocket-Version: 13`, and a 16-byte `Sec-WebSocket-Key`.
    pub fn new(request: Request<()>) -> Result<Self, HandshakeError> {
        if request.method() != Method::GET || request.version() != Version::HTTP_11 {
            return Err(HandshakeError::NotGet);
        }
        let headers = request.headers();
        if !header_has_token(headers, header::UPGRADE, "websocket") {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !header_has_token(headers, header::CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes())
            != Some(b"13")
        {
            return Err(HandshakeError::UnsupportedVersion);
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !is_valid_key(key) {
            return Err(HandshakeError::InvalidKey);
        }
        let accept = accept_key(key);
        Ok(Self { request, accept })
    }

    /// The `Sec-WebSocket-Accept` value that answers this request.
    pub fn accept(&self) -> &str {
        &self.accept
    }

    /// The request.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// The subprotocols the client offered, in its order.
    pub fn offered_protocols(&self) -> impl Iterator<Item = &str> {
        offered_protocols(self.request.headers())
    }

    /// The first of `supported` (the server's order of preference) that the client offered.
    pub fn select_protocol<'a>(&self, supported: &'a [String]) -> Option<&'a str> {
        select_protocol(self.request.headers(), supported)
    }

    /// Writes the `101 Switching Protocols` response, with `protocol` if one was selected.
    pub fn encode_response(&self, protocol: Option<&str>, dst: &mut String) {
        self.encode_response_with_extensions(protocol, None, dst);
    }

    /// The client's `Sec-WebSocket-Extensions` offers, joined, or `""`.
    pub fn offered_extensions(&self) -> String {
        joined(self.request.headers(), header::SEC_WEBSOCKET_EXTENSIONS)
    }

    /// Writes the `101 Switching Protocols` response, with `protocol` if one was selected and
    /// the accepted `extensions` (e.g. permessage-deflate's answer) if any.
    pub fn encode_response_with_extensions(
        &self,
        protocol: Option<&str>,
        extensions: Option<&str>,
        dst: &mut String,
    ) {
        let _ = write!(
            dst,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n",
            self.accept
        );
        if let Some(protocol) = protocol {
            let _ = write!(dst, "Sec-WebSocket-Protocol: {protocol}\r\n");
        }
        if let Some(extensions) = extensions {
            let _ = write!(dst, "Sec-WebSocket-Extensions: {extensions}\r\n");
        }
        dst.push_str("\r\n");
    }
}

/// The subprotocols offered in `headers`, in the client's order.
fn offered_protocols(headers: &http::HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The first of `supported` that `headers` offer.
pub(super) fn select_protocol<'a>(
    headers: &http::HeaderMap,
    supported: &'a [String],
) -> Option<&'a str> {
    supported
        .iter()
        .map(String::as_str)
        .find(|s| offered_protocols(headers).any(|o| o == *s))
}

/// All the values of `name` in `headers`, joined with `, `.
pub(super) fn joined(headers: &http::HeaderMap, name: header::HeaderName) -> String {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    values.join(", ")
}

/// Writes the response refusing a bad upgrade request: `426 Upgrade Required` with
/// `Sec-WebSocket-Version: 13` for a wrong version, `400 Bad Request` otherwise.
pub fn encode_rejection(error: &HandshakeError, dst: &mut String) {
    match error {
        HandshakeError::UnsupportedVersion => dst.push_str(
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ),
        _ => dst.push_str("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{HandshakeRequest, Http1Handshake};

    fn parse(head: &str) -> Request<()> {
        ServerHandshake::decode_request(head.as_bytes(), 4096)
            .unwrap()
            .unwrap()
            .0
    }

    const GOOD: &str = "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, b\r\n\r\n";

    #[test]
    fn a_good_request_is_accepted_with_the_rfc_accept_value() {
        let hs = ServerHandshake::new(parse(GOOD)).unwrap();
        assert_eq!(hs.request().uri().path(), "/chat");
        assert_eq!(hs.offered_protocols().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(hs.select_protocol(&["b".into(), "a".into()]), Some("b"));
        assert_eq!(hs.select_protocol(&["c".into()]), None);
        let mut out = String::new();
        hs.encode_response(Some("b"), &mut out);
        assert!(out.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(out.contains("Sec-WebSocket-Protocol: b\r\n"));
    }

    #[test]
    fn bad_requests_are_refused() {
        let cases = [
            (GOOD.replace("GET", "POST"), HandshakeError::NotGet),
            (GOOD.replace("HTTP/1.1", "HTTP/1.0"), HandshakeError::NotGet),
            (
                GOOD.replace("Upgrade: websocket", "Upgrade: h2c"),
                HandshakeError::MissingUpgrade,
            ),
            (
                GOOD.replace("keep-alive, Upgrade", "keep-alive"),
                HandshakeError::MissingConnectionUpgrade,
            ),
            (
                GOOD.replace("Version: 13", "Version: 8"),
                HandshakeError::UnsupportedVersion,
            ),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
                HandshakeError::InvalidKey,
            ),
        ];
        for (head, expected) in cases {
            assert_eq!(
                ServerHandshake::new(parse(&head)).unwrap_err(),
                expected,
                "{head}"
            );
        }
        let mut out = String::new();
        encode_rejection(&HandshakeError::UnsupportedVersion, &mut out);
        assert!(out.starts_with("HTTP/1.1 426") && out.contains("Sec-WebSocket-Version: 13"));
    }

    #[test]
    fn our_client_request_satisfies_our_server() {
        let request = HandshakeRequest {
            url: crate::handshake::url::parse_url("ws://127.0.0.1:1/p").unwrap(),
            protocols: vec!["x".into()],
            extensions: None,
            headers: Default::default(),
        };
        let client = Http1Handshake::new();
        let mut head = String::new();
        client.encode_request(&request, &mut head);
        let server = ServerHandshake::new(parse(&head)).unwrap();
        let mut response = String::new();
        server.encode_response(server.select_protocol(&["x".into()]), &mut response);
        let (resp, _) = Http1Handshake::decode_response(response.as_bytes(), 4096)
            .unwrap()
            .unwrap();
        assert_eq!(client.validate(&resp), Ok(()));
        assert_eq!(
            crate::handshake::negotiate(&request, resp.headers())
                .unwrap()
                .protocol,
            "x"
        );
    }
}
