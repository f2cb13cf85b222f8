//! The HTTP CONNECT tunnel (RFC 9110 section 9.3.6): a request head, then the proxy's answer.
//! Every WebSocket, `ws` as well as `wss`, goes through a tunnel: proxies such as tinyproxy and
//! squid drop `Upgrade` from a forwarded request, so a forwarded handshake never opens.

use bytes::BytesMut;
use http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ProxyError;
use crate::Failure;
use crate::dispatcher::Io;
use crate::handshake::{Http1Handshake, has_head_end};

/// Writes the CONNECT request head for `authority` (`host:port`) with `headers` (credentials
/// and the caller's extra headers) into `dst`.
pub(super) fn encode_connect(authority: &str, headers: &HeaderMap, dst: &mut Vec<u8>) {
    dst.extend_from_slice(b"CONNECT ");
    dst.extend_from_slice(authority.as_bytes());
    dst.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    dst.extend_from_slice(authority.as_bytes());
    dst.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == http::header::HOST {
            continue;
        }
        dst.extend_from_slice(name.as_str().as_bytes());
        dst.extend_from_slice(b": ");
        dst.extend_from_slice(value.as_bytes());
        dst.extend_from_slice(b"\r\n");
    }
    dst.extend_from_slice(b"\r\n");
}

/// Judges the response head in `buf`: `Ok(false)` while it is incomplete, `Ok(true)` when the
/// tunnel is open (any 2xx), an error otherwise. A head longer than `max_head`, or
/// bytes after a 2xx head (the proxy cannot have tunnelled anything: nothing was sent), are
/// malformed.
pub(super) fn decode_connect_response(buf: &[u8], max_head: usize) -> Result<bool, ProxyError> {
    let decoded = Http1Handshake::decode_response(buf, max_head)
        .map_err(|e| ProxyError::Malformed(e.to_string()))?;
    let Some((response, len)) = decoded else {
        return Ok(false);
    };
    let status = response.status();
    if !status.is_success() {
        let proxy_authenticate = response
            .headers()
            .get_all(http::header::PROXY_AUTHENTICATE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        return Err(ProxyError::Refused {
            status: status.as_u16(),
            proxy_authenticate,
        });
    }
    if len != buf.len() {
        return Err(ProxyError::Malformed(
            "bytes after the CONNECT response, before anything was sent".into(),
        ));
    }
    Ok(true)
}

/// Asks the proxy at the other end of `io` for a tunnel to `authority`.
pub(super) async fn tunnel(
    io: &mut impl Io,
    authority: &str,
    headers: &HeaderMap,
    max_head: usize,
) -> Result<(), Failure> {
    let mut head = Vec::with_capacity(256);
    encode_connect(authority, headers, &mut head);
    io.write_all(&head).await.map_err(Failure::Io)?;
    io.flush().await.map_err(Failure::Io)?;
    let mut buf = BytesMut::with_capacity(512);
    let mut scanned = 0;
    loop {
        if (has_head_end(&buf, &mut scanned) || buf.len() > max_head)
            && decode_connect_response(&buf, max_head).map_err(Failure::Proxy)?
        {
            return Ok(());
        }
        if io.read_buf(&mut buf).await.map_err(Failure::Io)? == 0 {
            return Err(Failure::Proxy(ProxyError::ConnectionClosed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_the_target_twice_and_carries_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("proxy-authorization", "Basic dTpw".parse().unwrap());
        headers.insert("x-trace", "1".parse().unwrap());
        headers.insert("host", "ignored".parse().unwrap());
        let mut head = Vec::new();
        encode_connect("[::1]:443", &headers, &mut head);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\
             proxy-authorization: Basic dTpw\r\nx-trace: 1\r\n\r\n"
        );
    }

    #[test]
    fn a_2xx_opens_the_tunnel_and_anything_else_is_refused() {
        let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
        for end in 0..ok.len() {
            assert_eq!(decode_connect_response(&ok[..end], 1024), Ok(false));
        }
        assert_eq!(decode_connect_response(ok, 1024), Ok(true));
        assert_eq!(
            decode_connect_response(b"HTTP/1.0 200 OK\r\nVia: x\r\n\r\n", 1024),
            Ok(true)
        );
        let refused = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
            Proxy-Authenticate: Basic realm=\"a\"\r\nProxy-Authenticate: Bearer\r\n\
            Content-Length: 5\r\n\r\nnope!";
        assert_eq!(
            decode_connect_response(refused, 1024),
            Err(ProxyError::Refused {
                status: 407,
                proxy_authenticate: vec!["Basic realm=\"a\"".into(), "Bearer".into()],
            })
        );
        assert_eq!(
            decode_connect_response(b"HTTP/1.1 403 Forbidden\r\n\r\n", 1024),
            Err(ProxyError::Refused {
                status: 403,
                proxy_authenticate: vec![],
            })
        );
    }

    #[test]
    fn broken_oversized_or_overlong_answers_are_malformed() {
        for answer in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n\x81\x00",
            &[b'x'; 2000],
        ] {
            assert!(
                matches!(
                    decode_connect_response(answer, 1024),
                    Err(ProxyError::Malformed(_))
                ),
                "{answer:?}"
            );
        }
    }
}
