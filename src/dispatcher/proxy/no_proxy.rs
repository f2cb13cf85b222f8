//! `no_proxy`: which hosts bypass the proxy, with undici's matching rules.

/// A parsed `no_proxy` list: the hosts that [`EnvHttpProxyAgent`](super::EnvHttpProxyAgent)
/// connects to directly.
///
/// Entries are separated by commas or white space and compared without regard to ASCII case,
/// as undici compares them:
/// - `*` matches every host;
/// - `example.com` matches that host only (curl also matches its subdomains);
/// - `.example.com` and `*.example.com` match the subdomains of `example.com` but not
///   `example.com` itself (curl's `.example.com` matches both; curl has no `*.` form);
/// - `host:port` matches only that port, the scheme's default when the URL has none
///   (`ws` 80, `wss` 443);
/// - IPv6 literals are written `[::1]` or `[::1]:8080` (a bare `::1` is taken whole);
/// - addresses are compared as text: there are no CIDR ranges (curl has them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// Lower case, without IPv6 brackets; without the leading `*` of a suffix pattern.
    host: String,
    /// Whether `host` is a suffix (the entry began with `.` or `*`).
    suffix: bool,
    /// `None` for every port.
    port: Option<u16>,
}

impl NoProxy {
    /// Parses a `no_proxy` value. Entries that cannot match anything (an empty host, a port
    /// that is not a number) are kept as written and match only that text.
    pub fn parse(value: &str) -> Self {
        let entries = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(Entry::parse)
            .collect();
        Self { entries }
    }

    /// Whether the list is empty (every host goes through the proxy).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a connection to `host:port` bypasses the proxy. `host` is a name or an address,
    /// IPv6 without brackets.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.entries.iter().any(|entry| {
            entry.port.is_none_or(|p| p == port)
                && if entry.suffix {
                    host.ends_with(&entry.host)
                } else {
                    host == entry.host
                }
        })
    }
}

impl Entry {
    fn parse(entry: &str) -> Self {
        let entry = entry.to_ascii_lowercase();
        let (host, port) = split_port(&entry);
        let suffix = host.starts_with(['.', '*']);
        let host = host.strip_prefix('*').unwrap_or(host);
        Self {
            host: host.to_owned(),
            suffix,
            port,
        }
    }
}

/// Splits `host:port`, `[v6]` and `[v6]:port`; a bare IPv6 literal has no port.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(bracketed) = entry.strip_prefix('[') {
        return match bracketed.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, rest)) => match rest.strip_prefix(':').and_then(|p| p.parse().ok()) {
                Some(port) => (host, Some(port)),
                None => (entry, None),
            },
            None => (entry, None),
        };
    }
    match entry.split_once(':') {
        Some((host, port)) if !host.is_empty() && !port.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matching_table() {
        // (no_proxy, host, port, bypasses the proxy)
        let table: &[(&str, &str, u16, bool)] = &[
            ("", "example.com", 80, false),
            ("*", "example.com", 80, true),
            ("*", "::1", 443, true),
            ("example.com", "example.com", 80, true),
            ("example.com", "EXAMPLE.com", 80, true),
            ("EXAMPLE.COM", "example.com", 80, true),
            ("example.com", "www.example.com", 80, false),
            ("example.com", "notexample.com", 80, false),
            (".example.com", "www.example.com", 80, true),
            (".example.com", "a.b.example.com", 443, true),
            (".example.com", "example.com", 80, false),
            (".example.com", "badexample.com", 80, false),
            ("*.example.com", "www.example.com", 80, true),
            ("*.example.com", "example.com", 80, false),
            ("*example.com", "badexample.com", 80, true),
            ("example.com:8080", "example.com", 8080, true),
            ("example.com:8080", "example.com", 80, false),
            (".example.com:443", "ws.example.com", 443, true),
            (".example.com:443", "ws.example.com", 80, false),
            ("localhost,127.0.0.1", "127.0.0.1", 9001, true),
            ("localhost 127.0.0.1", "localhost", 9001, true),
            (" ,localhost,, ", "localhost", 1, true),
            ("127.0.0.1", "127.0.0.2", 80, false),
            ("127.0.0.0/8", "127.0.0.1", 80, false),
            ("[::1]", "::1", 80, true),
            ("[::1]:8080", "::1", 8080, true),
            ("[::1]:8080", "::1", 80, false),
            ("::1", "::1", 80, true),
            ("example.com:http", "example.com", 80, false),
            ("other.org,.example.com", "api.example.com", 443, true),
        ];
        for &(no_proxy, host, port, bypass) in table {
            assert_eq!(
                NoProxy::parse(no_proxy).matches(host, port),
                bypass,
                "no_proxy={no_proxy:?} host={host} port={port}"
            );
        }
    }

    #[test]
    fn an_empty_list_is_empty() {
        assert!(NoProxy::parse("").is_empty());
        assert!(NoProxy::parse(" , ").is_empty());
        assert!(!NoProxy::parse("a").is_empty());
    }
}
