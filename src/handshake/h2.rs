//! The opening handshake over HTTP/2 (RFC 8441, extended CONNECT), sans-IO: the client's
//! request, the judgement of the server's answer, and the server's checks and answer.
//!
//! There is no `Sec-WebSocket-Key` or `Accept` (RFC 8441 section 5): a `200` to a CONNECT with
//! `:protocol websocket` opens the stream, which then carries ordinary WebSocket frames.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use super::client::{CONTROLLED, negotiate};
use super::{HandshakeError, HandshakeRequest, Negotiated};

/// The `:protocol` of a WebSocket over HTTP/2.
pub const PROTOCOL: &str = "websocket";

/// Headers that HTTP/2 forbids (RFC 9113 section 8.2.2): connection-specific ones.
const CONNECTION_SPECIFIC: [&str; 5] = [
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "http2-settings",
];

/// The extended CONNECT request for `request`: `:method CONNECT`, `:scheme` `https` for `wss`
/// and `http` for `ws`, `:authority`, `:path`, `sec-websocket-version: 13`, the offered
/// subprotocols and extensions, and the caller's headers (less those HTTP/2 forbids). The
/// `:protocol` pseudo-header is for the HTTP/2 layer to add ([`PROTOCOL`]).
pub fn extended_connect_request(request: &HandshakeRequest) -> Request<()> {
    let url = &request.url;
    let scheme = if request.is_secure() { "https" } else { "http" };
    let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let uri = format!("{scheme}://{authority}{target}");
    let mut headers = HeaderMap::with_capacity(request.headers.len() + 3);
    for (name, value) in &request.headers {
        if CONTROLLED.contains(name) || CONNECTION_SPECIFIC.contains(&name.as_str()) {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static("13"),
    );
    if !request.protocols.is_empty()
        && let Ok(value) = HeaderValue::try_from(request.protocols.join(", "))
    {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    if let Some(value) = request
        .extensions
        .as_deref()
        .and_then(|e| HeaderValue::try_from(e).ok())
    {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    let mut connect = Request::new(());
    *connect.method_mut() = Method::CONNECT;
    *connect.uri_mut() = uri.parse().unwrap_or_default();
    *connect.version_mut() = http::Version::HTTP_2;
    *connect.headers_mut() = headers;
    connect
}

/// Judges the server's answer to [`extended_connect_request`]: a `200` (any other status,
/// redirects included, fails), then the subprotocol and extensions as on HTTP/1.1.
pub fn check_extended_connect_response(
    request: &HandshakeRequest,
    response: &Response<()>,
) -> Result<Negotiated, HandshakeError> {
    if response.status() != StatusCode::OK {
        return Err(HandshakeError::Status(response.status().as_u16()));
    }
    negotiate(request, response.headers())
}

/// The server side of one extended CONNECT: the request's checks, the subprotocol and
/// extension offers, and the answer.
#[derive(Debug)]
pub struct H2ServerHandshake {
    request: Request<()>,
}

impl H2ServerHandshake {
    /// Checks a request whose `:protocol` is `protocol`: `CONNECT`, `:protocol websocket`, and
    /// `sec-websocket-version: 13`.
    pub fn new(request: Request<()>, protocol: Option<&str>) -> Result<Self, HandshakeError> {
        if request.method() != Method::CONNECT || protocol != Some(PROTOCOL) {
            return Err(HandshakeError::NotGet);
        }
        if request
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(HandshakeError::UnsupportedVersion);
        }
        Ok(Self { request })
    }

    /// The request.
    pub fn request(&self) -> &Request<()> {
        &self.request
    }

    /// The first of `supported` (the server's order of preference) that the client offered.
    pub fn select_protocol<'a>(&self, supported: &'a [String]) -> Option<&'a str> {
        super::server::select_protocol(self.request.headers(), supported)
    }

    /// The client's `sec-websocket-extensions` offers, joined, or `""`.
    pub fn offered_extensions(&self) -> String {
        super::server::joined(self.request.headers(), header::SEC_WEBSOCKET_EXTENSIONS)
    }

    /// The `200` that opens the stream, with the selected `protocol` and accepted
    /// `extensions`.
    pub fn response(&self, protocol: Option<&str>, extensions: Option<&str>) -> Response<()> {
        let mut response = Response::new(());
        let headers = response.headers_mut();
        let mut set = |name: HeaderName, value: Option<&str>| {
            if let Some(value) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
                headers.insert(name, value);
            }
        };
        set(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        set(header::SEC_WEBSOCKET_EXTENSIONS, extensions);
        response
    }
}

/// The answer refusing a bad extended CONNECT: `400`, with `sec-websocket-version: 13` for a
/// wrong version (RFC 6455 section 4.4).
pub fn h2_rejection(error: &HandshakeError) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    if *error == HandshakeError::UnsupportedVersion {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> HandshakeRequest {
        let mut headers = HeaderMap::new();
        headers.insert("x-token", HeaderValue::from_static("t"));
        headers.insert("connection", HeaderValue::from_static("keep-alive"));
        headers.insert("keep-alive", HeaderValue::from_static("5"));
        headers.insert("host", HeaderValue::from_static("elsewhere"));
        HandshakeRequest {
            url: url::Url::parse(url).unwrap(),
            protocols: vec!["chat".into(), "superchat".into()],
            extensions: Some("permessage-deflate".into()),
            headers,
        }
    }

    #[test]
    fn the_request_has_the_rfc_8441_shape() {
        let connect = extended_connect_request(&request("wss://example.com:8443/chat?room=1"));
        assert_eq!(connect.method(), Method::CONNECT);
        assert_eq!(connect.uri(), "https://example.com:8443/chat?room=1");
        let plain = extended_connect_request(&request("ws://[::1]/"));
        assert_eq!(plain.uri(), "http://[::1]/");
        let headers = connect.headers();
        assert_eq!(headers["sec-websocket-version"], "13");
        assert_eq!(headers["sec-websocket-protocol"], "chat, superchat");
        assert_eq!(headers["sec-websocket-extensions"], "permessage-deflate");
        assert_eq!(headers["x-token"], "t");
        for forbidden in [
            "connection",
            "keep-alive",
            "host",
            "upgrade",
            "sec-websocket-key",
        ] {
            assert!(!headers.contains_key(forbidden), "{forbidden}");
        }
    }

    #[test]
    fn only_a_200_opens_and_the_negotiation_is_checked() {
        let request = request("wss://example.com/");
        let mut ok = Response::new(());
        ok.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("chat"));
        assert_eq!(
            check_extended_connect_response(&request, &ok)
                .unwrap()
                .protocol,
            "chat"
        );
        for status in [101, 204, 301, 400, 404] {
            let mut response = ok.clone();
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                check_extended_connect_response(&request, &response),
                Err(HandshakeError::Status(status))
            );
        }
        let mut unoffered = ok.clone();
        unoffered
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("other"));
        assert!(matches!(
            check_extended_connect_response(&request, &unoffered),
            Err(HandshakeError::UnexpectedProtocol(_))
        ));
    }

    #[test]
    fn the_server_checks_method_protocol_and_version() {
        let good = extended_connect_request(&request("ws://h/"));
        let handshake = H2ServerHandshake::new(good.clone(), Some("websocket")).unwrap();
        assert_eq!(
            handshake.select_protocol(&["superchat".into(), "chat".into()]),
            Some("superchat")
        );
        assert_eq!(handshake.offered_extensions(), "permessage-deflate");
        let response = handshake.response(Some("superchat"), None);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["sec-websocket-protocol"], "superchat");
        assert!(!response.headers().contains_key("sec-websocket-extensions"));
        assert_eq!(
            H2ServerHandshake::new(good.clone(), Some("webtransport")).unwrap_err(),
            HandshakeError::NotGet
        );
        assert_eq!(
            H2ServerHandshake::new(good.clone(), None).unwrap_err(),
            HandshakeError::NotGet
        );
        let mut old = good;
        old.headers_mut()
            .insert("sec-websocket-version", HeaderValue::from_static("8"));
        let error = H2ServerHandshake::new(old, Some("websocket")).unwrap_err();
        assert_eq!(error, HandshakeError::UnsupportedVersion);
        assert_eq!(
            h2_rejection(&error).headers()["sec-websocket-version"],
            "13"
        );
    }
}
