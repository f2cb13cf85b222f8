//! The SOCKS5 client handshake (RFC 1928) with username/password authentication (RFC 1929):
//! the messages are built and judged here, and [`handshake`] exchanges them.

use std::net::IpAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ProxyError;
use super::uri::Credentials;
use crate::Failure;
use crate::dispatcher::Io;

const VERSION: u8 = 5;
const NO_AUTHENTICATION: u8 = 0x00;
const USERNAME_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;
const AUTH_VERSION: u8 = 1;
const CONNECT: u8 = 1;
const IPV4: u8 = 1;
const DOMAIN: u8 = 3;
const IPV6: u8 = 4;

/// Where the proxy is asked to connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Target<'a> {
    /// An address (`socks5://` resolves names here).
    Ip(IpAddr),
    /// A name the proxy resolves (`socks5h://`).
    Domain(&'a str),
}

/// Checks that credentials fit RFC 1929's one-byte lengths.
pub(super) fn check_credentials(credentials: &Credentials) -> Result<(), ProxyError> {
    if credentials.username.is_empty() || credentials.username.len() > 255 {
        return Err(ProxyError::InvalidOption(
            "a SOCKS5 username must be 1 to 255 bytes".into(),
        ));
    }
    if credentials.password.len() > 255 {
        return Err(ProxyError::InvalidOption(
            "a SOCKS5 password must be at most 255 bytes".into(),
        ));
    }
    Ok(())
}

/// The method selection message: no authentication, and username/password when there are
/// credentials.
pub(super) fn greeting(with_credentials: bool) -> Vec<u8> {
    if with_credentials {
        vec![VERSION, 2, NO_AUTHENTICATION, USERNAME_PASSWORD]
    } else {
        vec![VERSION, 1, NO_AUTHENTICATION]
    }
}

/// Judges the method the proxy chose: `true` when it wants the username and password.
pub(super) fn chosen_method(reply: [u8; 2], with_credentials: bool) -> Result<bool, ProxyError> {
    match reply {
        [VERSION, NO_AUTHENTICATION] => Ok(false),
        [VERSION, USERNAME_PASSWORD] if with_credentials => Ok(true),
        [VERSION, USERNAME_PASSWORD] => Err(ProxyError::SocksAuth(
            "the proxy requires a username and password",
        )),
        [VERSION, NO_ACCEPTABLE_METHOD] => Err(ProxyError::SocksAuth(
            "the proxy accepted none of the offered methods",
        )),
        [VERSION, method] => Err(ProxyError::Malformed(format!(
            "SOCKS5 method {method:#04x} was not offered"
        ))),
        [version, _] => Err(ProxyError::Malformed(format!(
            "SOCKS version {version}, not 5"
        ))),
    }
}

/// The username/password request (RFC 1929); the lengths were checked at construction.
pub(super) fn auth_request(credentials: &Credentials) -> Vec<u8> {
    let mut request =
        Vec::with_capacity(3 + credentials.username.len() + credentials.password.len());
    request.push(AUTH_VERSION);
    request.push(credentials.username.len() as u8);
    request.extend_from_slice(&credentials.username);
    request.push(credentials.password.len() as u8);
    request.extend_from_slice(&credentials.password);
    request
}

/// Judges the answer to the username/password request.
pub(super) fn auth_status(reply: [u8; 2]) -> Result<(), ProxyError> {
    match reply {
        [AUTH_VERSION, 0] => Ok(()),
        [AUTH_VERSION, _] => Err(ProxyError::SocksAuth(
            "the proxy rejected the username and password",
        )),
        [version, _] => Err(ProxyError::Malformed(format!(
            "SOCKS5 authentication version {version}, not 1"
        ))),
    }
}

/// The CONNECT request for `target:port`.
pub(super) fn connect_request(target: Target<'_>, port: u16) -> Result<Vec<u8>, ProxyError> {
    let mut request = vec![VERSION, CONNECT, 0];
    match target {
        Target::Ip(IpAddr::V4(ip)) => {
            request.push(IPV4);
            request.extend_from_slice(&ip.octets());
        }
        Target::Ip(IpAddr::V6(ip)) => {
            request.push(IPV6);
            request.extend_from_slice(&ip.octets());
        }
        Target::Domain(name) => {
            let len = u8::try_from(name.len()).map_err(|_| {
                ProxyError::InvalidOption(format!(
                    "a host name sent to a SOCKS5 proxy must be at most 255 bytes ({name:.32}...)"
                ))
            })?;
            request.push(DOMAIN);
            request.push(len);
            request.extend_from_slice(name.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    Ok(request)
}

/// Judges the first five bytes of the CONNECT reply (through the first byte of the bound
/// address); returns how many bytes of the reply are left to read.
pub(super) fn reply_rest(head: [u8; 5]) -> Result<usize, ProxyError> {
    let [version, reply, _, address_type, first] = head;
    if version != VERSION {
        return Err(ProxyError::Malformed(format!(
            "SOCKS version {version}, not 5"
        )));
    }
    if reply != 0 {
        return Err(ProxyError::SocksRefused(reply));
    }
    // The rest of the bound address, then the two-byte port.
    match address_type {
        IPV4 => Ok(3 + 2),
        IPV6 => Ok(15 + 2),
        DOMAIN => Ok(usize::from(first) + 2),
        other => Err(ProxyError::Malformed(format!(
            "SOCKS5 address type {other}"
        ))),
    }
}

/// Runs the SOCKS5 handshake over `io` for `target:port`; afterwards `io` is the tunnel.
pub(super) async fn handshake(
    io: &mut impl Io,
    target: Target<'_>,
    port: u16,
    credentials: Option<&Credentials>,
) -> Result<(), Failure> {
    let request = connect_request(target, port).map_err(Failure::Proxy)?;
    send(io, &greeting(credentials.is_some())).await?;
    if chosen_method(receive(io).await?, credentials.is_some()).map_err(Failure::Proxy)? {
        let credentials = credentials.expect("the method is only accepted with credentials");
        send(io, &auth_request(credentials)).await?;
        auth_status(receive(io).await?).map_err(Failure::Proxy)?;
    }
    send(io, &request).await?;
    let rest = reply_rest(receive(io).await?).map_err(Failure::Proxy)?;
    // At most 255 + 2 bytes: the bound address is of no use to a client.
    let mut bound = [0; 257];
    read_exact(io, &mut bound[..rest]).await
}

async fn send(io: &mut impl Io, bytes: &[u8]) -> Result<(), Failure> {
    io.write_all(bytes).await.map_err(Failure::Io)?;
    io.flush().await.map_err(Failure::Io)
}

async fn receive<const N: usize>(io: &mut impl Io) -> Result<[u8; N], Failure> {
    let mut bytes = [0; N];
    read_exact(io, &mut bytes).await?;
    Ok(bytes)
}

async fn read_exact(io: &mut impl Io, bytes: &mut [u8]) -> Result<(), Failure> {
    match io.read_exact(bytes).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(Failure::Proxy(ProxyError::ConnectionClosed))
        }
        Err(e) => Err(Failure::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(username: &[u8], password: &[u8]) -> Credentials {
        Credentials {
            username: username.to_vec(),
            password: password.to_vec(),
        }
    }

    #[test]
    fn methods_are_offered_and_judged() {
        assert_eq!(greeting(false), [5, 1, 0]);
        assert_eq!(greeting(true), [5, 2, 0, 2]);
        assert_eq!(chosen_method([5, 0], true), Ok(false));
        assert_eq!(chosen_method([5, 2], true), Ok(true));
        assert!(matches!(
            chosen_method([5, 2], false),
            Err(ProxyError::SocksAuth(_))
        ));
        assert!(matches!(
            chosen_method([5, 0xff], true),
            Err(ProxyError::SocksAuth(_))
        ));
        assert!(matches!(
            chosen_method([5, 1], true),
            Err(ProxyError::Malformed(_))
        ));
        assert!(matches!(
            chosen_method([4, 0], true),
            Err(ProxyError::Malformed(_))
        ));
    }

    #[test]
    fn username_and_password_follow_rfc_1929() {
        assert_eq!(
            auth_request(&credentials(b"user", b"pw")),
            [1, 4, b'u', b's', b'e', b'r', 2, b'p', b'w']
        );
        assert_eq!(auth_status([1, 0]), Ok(()));
        assert!(matches!(auth_status([1, 1]), Err(ProxyError::SocksAuth(_))));
        assert!(matches!(auth_status([5, 0]), Err(ProxyError::Malformed(_))));
        assert!(check_credentials(&credentials(b"u", b"")).is_ok());
        assert!(check_credentials(&credentials(&[b'u'; 255], &[b'p'; 255])).is_ok());
        for (user, password) in [
            (&b""[..], &b"p"[..]),
            (&[b'u'; 256], b"p"),
            (b"u", &[b'p'; 256]),
        ] {
            assert!(matches!(
                check_credentials(&credentials(user, password)),
                Err(ProxyError::InvalidOption(_))
            ));
        }
    }

    #[test]
    fn connect_requests_carry_each_address_type() {
        assert_eq!(
            connect_request(Target::Ip("127.0.0.1".parse().unwrap()), 8080).unwrap(),
            [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]
        );
        let v6 = connect_request(Target::Ip("::1".parse().unwrap()), 443).unwrap();
        assert_eq!(v6[..4], [5, 1, 0, 4]);
        assert_eq!(v6[4..20], std::net::Ipv6Addr::LOCALHOST.octets());
        assert_eq!(v6[20..], [1, 187]);
        assert_eq!(
            connect_request(Target::Domain("a.io"), 80).unwrap(),
            [5, 1, 0, 3, 4, b'a', b'.', b'i', b'o', 0, 80]
        );
        let long = "a".repeat(256);
        assert!(matches!(
            connect_request(Target::Domain(&long), 80),
            Err(ProxyError::InvalidOption(_))
        ));
    }

    #[test]
    fn replies_are_judged_and_sized() {
        assert_eq!(reply_rest([5, 0, 0, 1, 127]), Ok(5));
        assert_eq!(reply_rest([5, 0, 0, 4, 0]), Ok(17));
        assert_eq!(reply_rest([5, 0, 0, 3, 9]), Ok(11));
        assert_eq!(
            reply_rest([5, 5, 0, 1, 0]),
            Err(ProxyError::SocksRefused(5))
        );
        assert!(matches!(
            reply_rest([5, 0, 0, 9, 0]),
            Err(ProxyError::Malformed(_))
        ));
        assert!(matches!(
            reply_rest([4, 0, 0, 1, 0]),
            Err(ProxyError::Malformed(_))
        ));
    }
}
