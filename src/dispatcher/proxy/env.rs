//! `EnvHttpProxyAgent`: the proxy named by the environment, as undici reads it.

use std::sync::Arc;

use super::{NoProxy, ProxyAgent, ProxyError};
use crate::dispatcher::{Agent, AgentOptions, DispatchFuture, Dispatcher, TlsRoots};
use crate::handshake::HandshakeRequest;

/// Settings for an [`EnvHttpProxyAgent`]; a proxy or `no_proxy` given here replaces the
/// environment's.
#[derive(Clone, Debug, Default)]
pub struct EnvHttpProxyOptions {
    /// The proxy for `ws` URLs (else `http_proxy`, else `HTTP_PROXY`).
    pub http_proxy: Option<String>,
    /// The proxy for `wss` URLs (else `https_proxy`, else `HTTPS_PROXY`, else the `ws` proxy).
    pub https_proxy: Option<String>,
    /// The hosts reached directly (else `no_proxy`, else `NO_PROXY`); see [`NoProxy`].
    pub no_proxy: Option<String>,
    /// The timeouts and the servers' certificates, for direct and proxied connections alike.
    pub agent: AgentOptions,
    /// The certificates that an `https` proxy is checked against.
    pub proxy_tls: TlsRoots,
}

/// The dispatcher that follows the environment's proxy settings (undici's
/// `EnvHttpProxyAgent`): `ws` URLs go through `http_proxy`, `wss` URLs through `https_proxy`
/// (or `http_proxy` when that is unset), hosts matching `no_proxy` are reached directly, and
/// so is everything when no proxy is set.
///
/// Each variable is read in lower case first, then upper case; a lower-case variable wins
/// even when it is empty, and an empty value means no proxy. The environment is read once,
/// by [`new`](Self::new). A value without a scheme (`127.0.0.1:3128`) is taken as `http://`;
/// `socks5://` and `socks5h://` work as with [`ProxyAgent`].
///
/// Differences from curl, which follow undici:
/// - upper-case `HTTP_PROXY` is read (curl ignores it, against the "httpoxy" CGI attack);
/// - `wss` falls back to `http_proxy` when `https_proxy` is unset (curl would connect
///   directly);
/// - `ALL_PROXY` is not read;
/// - `no_proxy` matching differs in its details: see [`NoProxy`].
#[derive(Clone, Debug)]
pub struct EnvHttpProxyAgent {
    direct: Agent,
    http: Option<ProxyAgent>,
    https: Option<ProxyAgent>,
    no_proxy: NoProxy,
}

impl EnvHttpProxyAgent {
    /// Reads `http_proxy`, `https_proxy` and `no_proxy` (and their upper-case forms) now.
    pub fn new() -> Result<Self, ProxyError> {
        Self::with_options(EnvHttpProxyOptions::default())
    }

    /// Like [`new`](Self::new), with `options` taking precedence over the environment.
    pub fn with_options(options: EnvHttpProxyOptions) -> Result<Self, ProxyError> {
        Self::from_lookup(options, |name| {
            std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
        })
    }

    /// Builds the agent with `lookup` standing in for the environment.
    fn from_lookup(
        options: EnvHttpProxyOptions,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProxyError> {
        let read = |name: &str| lookup(name).or_else(|| lookup(&name.to_ascii_uppercase()));
        let agent = |uri: Option<String>| {
            uri.filter(|uri| !uri.trim().is_empty())
                .map(|uri| {
                    ProxyAgent::builder(uri)
                        .options(options.agent.clone())
                        .proxy_tls(options.proxy_tls.clone())
                        .build()
                })
                .transpose()
        };
        let http = agent(options.http_proxy.clone().or_else(|| read("http_proxy")))?;
        let https = match options.https_proxy.clone().or_else(|| read("https_proxy")) {
            Some(uri) if !uri.trim().is_empty() => agent(Some(uri))?,
            _ => http.clone(),
        };
        let no_proxy = options.no_proxy.clone().or_else(|| read("no_proxy"));
        Ok(Self {
            direct: Agent::with_options(options.agent),
            http,
            https,
            no_proxy: NoProxy::parse(no_proxy.as_deref().unwrap_or_default()),
        })
    }

    /// The proxy a connection to `request`'s URL goes through, or `None` for a direct one.
    fn proxy_for(&self, request: &HandshakeRequest) -> Option<&ProxyAgent> {
        let proxy = if request.is_secure() {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }?;
        let (host, port) = request.host_and_port();
        (!self.no_proxy.matches(host, port)).then_some(proxy)
    }
}

impl Dispatcher for EnvHttpProxyAgent {
    fn dispatch(&self, request: HandshakeRequest) -> DispatchFuture {
        match self.proxy_for(&request) {
            Some(proxy) => proxy.dispatch(request),
            None => self.direct.dispatch(request),
        }
    }
}

impl From<EnvHttpProxyAgent> for Arc<dyn Dispatcher> {
    fn from(agent: EnvHttpProxyAgent) -> Self {
        Arc::new(agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> HandshakeRequest {
        HandshakeRequest {
            url: url::Url::parse(url).unwrap(),
            protocols: Vec::new(),
            extensions: None,
            headers: Default::default(),
        }
    }

    /// The proxy `url` goes through ("direct" for none), with `env` as the environment.
    fn route(env: &[(&str, &str)], options: EnvHttpProxyOptions, url: &str) -> String {
        let agent = EnvHttpProxyAgent::from_lookup(options, |name| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        match agent.proxy_for(&request(url)) {
            Some(proxy) => proxy.inner.uri.authority(),
            None => "direct".into(),
        }
    }

    #[test]
    fn ws_takes_http_proxy_and_wss_takes_https_proxy() {
        let env = [("http_proxy", "http://h:1"), ("https_proxy", "http://s:2")];
        let options = EnvHttpProxyOptions::default;
        assert_eq!(route(&env, options(), "ws://example.com/"), "h:1");
        assert_eq!(route(&env, options(), "wss://example.com/"), "s:2");
        assert_eq!(route(&[], options(), "ws://example.com/"), "direct");
        assert_eq!(route(&[], options(), "wss://example.com/"), "direct");
    }

    #[test]
    fn wss_falls_back_to_http_proxy_but_not_the_other_way() {
        let options = EnvHttpProxyOptions::default;
        assert_eq!(
            route(&[("http_proxy", "h:1")], options(), "wss://a/"),
            "h:1"
        );
        assert_eq!(
            route(&[("https_proxy", "s:2")], options(), "ws://a/"),
            "direct"
        );
    }

    #[test]
    fn lower_case_wins_even_when_empty() {
        let options = EnvHttpProxyOptions::default;
        let both = [("http_proxy", "low:1"), ("HTTP_PROXY", "up:2")];
        assert_eq!(route(&both, options(), "ws://a/"), "low:1");
        assert_eq!(
            route(&[("HTTP_PROXY", "up:2")], options(), "ws://a/"),
            "up:2"
        );
        let empty_lower = [("http_proxy", ""), ("HTTP_PROXY", "up:2")];
        assert_eq!(route(&empty_lower, options(), "ws://a/"), "direct");
        let no_proxy = [("http_proxy", "h:1"), ("no_proxy", ""), ("NO_PROXY", "a")];
        assert_eq!(route(&no_proxy, options(), "ws://a/"), "h:1");
        let upper_no_proxy = [("http_proxy", "h:1"), ("NO_PROXY", "a")];
        assert_eq!(route(&upper_no_proxy, options(), "ws://a/"), "direct");
    }

    #[test]
    fn no_proxy_is_matched_with_the_default_ports() {
        let env = [
            ("http_proxy", "h:1"),
            ("no_proxy", "internal:80,.corp:443,[::1]"),
        ];
        let options = EnvHttpProxyOptions::default;
        assert_eq!(route(&env, options(), "ws://internal/"), "direct");
        assert_eq!(route(&env, options(), "ws://internal:8080/"), "h:1");
        assert_eq!(route(&env, options(), "wss://internal/"), "h:1");
        assert_eq!(route(&env, options(), "wss://git.corp/"), "direct");
        assert_eq!(route(&env, options(), "ws://git.corp/"), "h:1");
        assert_eq!(route(&env, options(), "ws://[::1]:9/"), "direct");
        let all = [("http_proxy", "h:1"), ("no_proxy", "*")];
        assert_eq!(route(&all, options(), "ws://anything/"), "direct");
    }

    #[test]
    fn options_replace_the_environment() {
        let env = [
            ("http_proxy", "h:1"),
            ("https_proxy", "s:2"),
            ("no_proxy", "a"),
        ];
        let options = EnvHttpProxyOptions {
            http_proxy: Some("o:3".into()),
            https_proxy: Some(String::new()),
            no_proxy: Some("b".into()),
            ..Default::default()
        };
        assert_eq!(route(&env, options.clone(), "ws://a/"), "o:3");
        assert_eq!(route(&env, options.clone(), "ws://b/"), "direct");
        // An empty https_proxy falls back to the ws proxy, as an unset one does.
        assert_eq!(route(&env, options, "wss://a/"), "o:3");
    }

    #[test]
    fn a_bad_proxy_url_is_an_error_at_construction() {
        let result = EnvHttpProxyAgent::from_lookup(EnvHttpProxyOptions::default(), |name| {
            (name == "http_proxy").then(|| "ftp://nope".to_owned())
        });
        assert!(matches!(result, Err(ProxyError::InvalidUri(_))));
    }
}
