//! The constructor's URL and protocol checks (WHATWG WebSockets, "new WebSocket(url, protocols)").

use url::Url;

use crate::Error;

/// Parses `input` with the WHATWG URL parser and applies the standard's rules: `http` becomes
/// `ws` and `https` becomes `wss`; any other scheme, and any fragment (even a bare `#`), is a
/// `SyntaxError`.
pub(crate) fn parse_url(input: &str) -> Result<Url, Error> {
    let mut url =
        Url::parse(input).map_err(|e| Error::Syntax(format!("invalid URL {input:?}: {e}")))?;
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => {
            return Err(Error::Syntax(format!(
                "URL scheme {other:?} is not ws, wss, http or https"
            )));
        }
    };
    if url.fragment().is_some() {
        return Err(Error::Syntax(format!("URL {input:?} has a fragment")));
    }
    if url.scheme() != scheme {
        // Both are special schemes, which `set_scheme` allows to swap.
        url.set_scheme(scheme)
            .map_err(|()| Error::Syntax(format!("cannot use {input:?} as a {scheme} URL")))?;
    }
    if url.host().is_none() {
        return Err(Error::Syntax(format!("URL {input:?} has no host")));
    }
    Ok(url)
}

/// Checks the protocol list: each a non-empty RFC 7230 token, no two equal ignoring ASCII case.
pub(crate) fn validate_protocols(protocols: &[String]) -> Result<(), Error> {
    for (i, protocol) in protocols.iter().enumerate() {
        if protocol.is_empty() || !protocol.bytes().all(is_token_byte) {
            return Err(Error::Syntax(format!(
                "protocol {protocol:?} is not a token"
            )));
        }
        if protocols[..i]
            .iter()
            .any(|p| p.eq_ignore_ascii_case(protocol))
        {
            return Err(Error::Syntax(format!(
                "protocol {protocol:?} is listed twice"
            )));
        }
    }
    Ok(())
}

/// RFC 7230 `tchar`: visible ASCII except the separators.
pub(crate) fn is_token_byte(byte: u8) -> bool {
    matches!(byte, 0x21..=0x7E) && !b"()<>@,;:\\\"/[]?={}".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_map_and_others_fail() {
        assert_eq!(
            parse_url("http://a.test/x?y").unwrap().as_str(),
            "ws://a.test/x?y"
        );
        assert_eq!(
            parse_url("https://a.test").unwrap().as_str(),
            "wss://a.test/"
        );
        assert_eq!(
            parse_url("WSS://A.test:443/").unwrap().as_str(),
            "wss://a.test/"
        );
        for bad in [
            "ftp://a.test",
            "file:///x",
            "mailto:a@b",
            "data:text/plain,x",
            "a.test",
            "",
        ] {
            assert!(matches!(parse_url(bad), Err(Error::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn any_fragment_fails() {
        for bad in ["ws://a.test/#", "ws://a.test/#x", "http://a.test/p?q#f"] {
            assert!(matches!(parse_url(bad), Err(Error::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn a_space_in_the_host_fails_and_ipv6_literals_parse() {
        assert!(matches!(parse_url("ws://a b.test/"), Err(Error::Syntax(_))));
        assert_eq!(
            parse_url("ws://[::1]:9001/").unwrap().host_str(),
            Some("[::1]")
        );
    }

    #[test]
    fn protocols_must_be_distinct_tokens() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            validate_protocols(&list(&["chat", "graphql-transport-ws", "v1.json"])),
            Ok(())
        );
        for bad in [&["a", "A"][..], &[""], &["a b"], &["a,b"], &["é"], &["x{"]] {
            assert!(
                matches!(validate_protocols(&list(bad)), Err(Error::Syntax(_))),
                "{bad:?}"
            );
        }
    }
}
