//! permessage-deflate negotiation (RFC 7692 section 7.1): the client's offer, the server's
//! choice among offers, and the client's check of the answer. Pure string work, no zlib.

use std::fmt::Write as _;

/// The extension's name.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The smallest and largest LZ77 window a peer may ask for, in bits.
pub const WINDOW_BITS: std::ops::RangeInclusive<u8> = 8..=15;

/// How an endpoint wants permessage-deflate, in both roles.
///
/// A client offers it with these parameters; a server accepts the first offer it can and
/// answers with its own choices. Messages smaller than `min_message_size` are sent uncompressed,
/// and so are those that compression would not make smaller (unless `always_compress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateOptions {
    /// Messages shorter than this many bytes are sent uncompressed (default 32).
    pub min_message_size: usize,
    /// Sends every message of at least `min_message_size` bytes compressed, even when that
    /// makes it larger (default `false`: such a message goes uncompressed, as RFC 7692 allows
    /// per message; random bytes grow by 5.5% at level 1). For peers that mishandle an
    /// uncompressed message in a compressed session, such as the kosoku Autobahn runner.
    pub always_compress: bool,
    /// The zlib compression level, 0 (none) to 9 (best); default 1, the fastest that compresses.
    /// On GraphQL-like JSON messages of ~1 KiB with context takeover (`examples/deflate_memory.rs`)
    /// level 1 sends 20.4% of the bytes in 2.3 us a message, level 2 17.6% in 8 us, level 6
    /// 14.5% in 14 us: above 1, zlib-rs builds Huffman tables for every message.
    pub level: u32,
    /// zlib's memLevel for our compressor, 1 to 9 (default 5): the size of its literal
    /// buffers, 896 bytes times 2 to the power of `memory_level - 1` (14 KiB at 5, 112 KiB at
    /// zlib's usual 8), held with the compressor. Lower levels end DEFLATE blocks more often:
    /// on GraphQL-like JSON (`examples/deflate_memory.rs`) 5 compresses exactly as 8 does at
    /// every level, and 1 loses up to a tenth at levels 2 and above. Local: not negotiated.
    pub memory_level: u8,
    /// The client resets its compressor after every message. A client offers it; a server
    /// demands it of the client.
    pub client_no_context_takeover: bool,
    /// The server resets its compressor after every message. A client asks for it; a server
    /// does it.
    pub server_no_context_takeover: bool,
    /// The client's compression window, 8-15 bits. A client offers `client_max_window_bits`
    /// with this value (`None`: without a value, letting the server choose); a server limits
    /// a client that offered the parameter to it.
    pub client_max_window_bits: Option<u8>,
    /// The server's compression window, 8-15 bits. A client asks for it; a server uses at most
    /// this.
    pub server_max_window_bits: Option<u8>,
}

/// zlib's memLevel unless set: 5, as Python's `websockets` uses too. It holds 98 KiB less than
/// zlib's 8 (a compressor of 15-bit window: 273 KiB instead of 371 KiB) for the same ratio on
/// messages of up to 2 KiB of literals per block.
pub(crate) const DEFAULT_MEMORY_LEVEL: u8 = 5;

impl Default for DeflateOptions {
    fn default() -> Self {
        Self {
            min_message_size: 32,
            always_compress: false,
            level: 1,
            memory_level: DEFAULT_MEMORY_LEVEL,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: None,
            server_max_window_bits: None,
        }
    }
}

impl DeflateOptions {
    /// The defaults for a server that holds many connections: as [`Default`], and the server
    /// takes no context over (`server_no_context_takeover`, which a server may always answer).
    /// Its compressor is then made per message and dropped after it, so that an idle
    /// connection holds only its inflater (46 KiB, and none until the client compresses): 54
    /// KiB per idle connection in all, against 327 KiB with context takeover. The price, on
    /// GraphQL subscription messages of ~1 KiB (`examples/deflate_memory.rs`): the server's
    /// messages take 42.5% of their size on the wire instead of 20.4%, and 7.0 us each to
    /// compress instead of 2.3 us.
    pub fn server_default() -> Self {
        Self {
            server_no_context_takeover: true,
            ..Self::default()
        }
    }
}

/// What both ends agreed: the parameters of one permessage-deflate session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client's compression window in bits (15 unless agreed otherwise).
    pub client_max_window_bits: u8,
    /// The server's compression window in bits (15 unless agreed otherwise).
    pub server_max_window_bits: u8,
}

impl Default for DeflateParams {
    fn default() -> Self {
        Self {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
        }
    }
}

/// Why an extension answer or offer is unacceptable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidExtension(pub String);

impl std::fmt::Display for InvalidExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidExtension {}

fn invalid(message: impl Into<String>) -> InvalidExtension {
    InvalidExtension(message.into())
}

/// One extension of a `Sec-WebSocket-Extensions` list: its name and parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension's name.
    pub name: &'a str,
    /// Its parameters, each with its value if it has one (quotes removed).
    pub params: Vec<(&'a str, Option<&'a str>)>,
}

/// Parses a `Sec-WebSocket-Extensions` value (RFC 6455 9.1): `name; param; param=value, name2`.
pub fn parse_extensions(value: &str) -> Result<Vec<Extension<'_>>, InvalidExtension> {
    let mut extensions = Vec::new();
    for item in value.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        if name.is_empty() {
            if item.trim().is_empty() {
                continue; // An empty list element, as HTTP allows.
            }
            return Err(invalid("an extension without a name"));
        }
        if !is_token(name) {
            return Err(invalid(format!("invalid extension name {name:?}")));
        }
        let mut params = Vec::new();
        for part in parts {
            let (key, value) = match part.split_once('=') {
                Some((key, value)) => (key.trim(), Some(unquote(value.trim())?)),
                None => (part, None),
            };
            if !is_token(key) {
                return Err(invalid(format!("invalid parameter name {key:?}")));
            }
            params.push((key, value));
        }
        extensions.push(Extension { name, params });
    }
    Ok(extensions)
}

fn unquote(value: &str) -> Result<&str, InvalidExtension> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .ok_or_else(|| invalid("an unterminated quoted value"))?,
        None => value,
    };
    if inner.is_empty() || !is_token(inner) {
        return Err(invalid(format!("invalid parameter value {value:?}")));
    }
    Ok(inner)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(crate::handshake::url::is_token_byte)
}

fn window_bits(name: &str, value: &str) -> Result<u8, InvalidExtension> {
    // RFC 7692 7.1.2: 1*DIGIT, no leading zero, 8 to 15.
    match value.parse::<u8>() {
        Ok(bits) if WINDOW_BITS.contains(&bits) && !value.starts_with('0') => Ok(bits),
        _ => Err(invalid(format!("{name}={value:?} is not 8 to 15"))),
    }
}

/// The parameters of one permessage-deflate element, each checked once.
#[derive(Default)]
struct Seen<'a> {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<Option<&'a str>>,
    client_max_window_bits: Option<Option<&'a str>>,
}

fn read_params<'a>(ext: &Extension<'a>) -> Result<Seen<'a>, InvalidExtension> {
    let mut seen = Seen::default();
    for &(key, value) in &ext.params {
        let duplicate = match key {
            "server_no_context_takeover" | "client_no_context_takeover" => {
                if value.is_some() {
                    return Err(invalid(format!("{key} takes no value")));
                }
                let flag = if key.starts_with("server") {
                    &mut seen.server_no_context_takeover
                } else {
                    &mut seen.client_no_context_takeover
                };
                std::mem::replace(flag, true)
            }
            "server_max_window_bits" => seen.server_max_window_bits.replace(value).is_some(),
            "client_max_window_bits" => seen.client_max_window_bits.replace(value).is_some(),
            _ => return Err(invalid(format!("unknown parameter {key:?}"))),
        };
        if duplicate {
            return Err(invalid(format!("duplicate parameter {key:?}")));
        }
    }
    Ok(seen)
}

impl DeflateOptions {
    /// The client's offer, e.g. `permessage-deflate; client_max_window_bits`.
    pub fn offer(&self) -> String {
        let mut offer = String::from(PERMESSAGE_DEFLATE);
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            let _ = write!(offer, "; server_max_window_bits={bits}");
        }
        match self.client_max_window_bits {
            Some(bits) => {
                let _ = write!(offer, "; client_max_window_bits={bits}");
            }
            None => offer.push_str("; client_max_window_bits"),
        }
        offer
    }

    /// The options an [`offer`](Self::offer) states (sizes and level at their defaults);
    /// `None` if it offers no valid permessage-deflate.
    pub fn from_offer(offer: &str) -> Option<Self> {
        let extensions = parse_extensions(offer).ok()?;
        let ext = extensions.iter().find(|e| e.name == PERMESSAGE_DEFLATE)?;
        let seen = read_params(ext).ok()?;
        let bits = |value: Option<Option<&str>>, name| match value {
            Some(Some(v)) => window_bits(name, v).map(Some),
            _ => Ok(None),
        };
        Some(Self {
            client_no_context_takeover: seen.client_no_context_takeover,
            server_no_context_takeover: seen.server_no_context_takeover,
            client_max_window_bits: bits(seen.client_max_window_bits, "client_max_window_bits")
                .ok()?,
            server_max_window_bits: bits(seen.server_max_window_bits, "server_max_window_bits")
                .ok()?,
            ..Self::default()
        })
    }

    /// The client's check of the server's `Sec-WebSocket-Extensions` answer to [`offer`]:
    /// at most one permessage-deflate, every parameter valid, known and not repeated, and
    /// within what was offered. `Ok(None)` when the server declined.
    ///
    /// [`offer`]: Self::offer
    pub fn accept_answer(&self, answer: &str) -> Result<Option<DeflateParams>, InvalidExtension> {
        let mut agreed = None;
        for ext in parse_extensions(answer)? {
            if ext.name != PERMESSAGE_DEFLATE {
                return Err(invalid(format!("extension {:?} was not offered", ext.name)));
            }
            if agreed.is_some() {
                return Err(invalid("permessage-deflate accepted twice"));
            }
            let seen = read_params(&ext)?;
            let mut params = DeflateParams {
                client_no_context_takeover: seen.client_no_context_takeover,
                server_no_context_takeover: seen.server_no_context_takeover,
                ..DeflateParams::default()
            };
            if self.server_no_context_takeover && !params.server_no_context_takeover {
                return Err(invalid(
                    "server_no_context_takeover was requested but not accepted",
                ));
            }
            match seen.server_max_window_bits {
                Some(Some(value)) => {
                    let bits = window_bits("server_max_window_bits", value)?;
                    if self
                        .server_max_window_bits
                        .is_some_and(|limit| bits > limit)
                    {
                        return Err(invalid("server_max_window_bits above the requested limit"));
                    }
                    params.server_max_window_bits = bits;
                }
                Some(None) => return Err(invalid("server_max_window_bits without a value")),
                None if self.server_max_window_bits.is_some() => {
                    return Err(invalid(
                        "server_max_window_bits was requested but not accepted",
                    ));
                }
                None => {}
            }
            match seen.client_max_window_bits {
                Some(Some(value)) => {
                    let bits = window_bits("client_max_window_bits", value)?;
                    if self
                        .client_max_window_bits
                        .is_some_and(|limit| bits > limit)
                    {
                        return Err(invalid("client_max_window_bits above the offered value"));
                    }
                    params.client_max_window_bits = bits;
                }
                Some(None) => return Err(invalid("client_max_window_bits without a value")),
                None => {
                    params.client_max_window_bits = self.client_max_window_bits.unwrap_or(15);
                }
            }
            agreed = Some(params);
        }
        Ok(agreed)
    }

    /// The server's choice: the first permessage-deflate offer in `offers` it can accept, with
    /// the answer to send. Offers with invalid parameters are declined, as RFC 7692 says; a
    /// malformed header declines them all.
    pub fn select(&self, offers: &str) -> Option<(DeflateParams, String)> {
        let offers = parse_extensions(offers).ok()?;
        offers
            .iter()
            .filter(|ext| ext.name == PERMESSAGE_DEFLATE)
            .find_map(|ext| self.accept_offer(ext).ok())
    }

    fn accept_offer(
        &self,
        offer: &Extension<'_>,
    ) -> Result<(DeflateParams, String), InvalidExtension> {
        let seen = read_params(offer)?;
        let mut params = DeflateParams {
            client_no_context_takeover: seen.client_no_context_takeover
                || self.client_no_context_takeover,
            server_no_context_takeover: seen.server_no_context_takeover
                || self.server_no_context_takeover,
            ..DeflateParams::default()
        };
        let mut answer = String::from(PERMESSAGE_DEFLATE);
        if params.server_no_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if params.client_no_context_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        // Our window: at most what the client asked for and what we are configured to.
        let requested = match seen.server_max_window_bits {
            Some(Some(value)) => Some(window_bits("server_max_window_bits", value)?),
            Some(None) => return Err(invalid("server_max_window_bits without a value")),
            None => None,
        };
        let server_bits = match (requested, self.server_max_window_bits) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(bits) = server_bits {
            params.server_max_window_bits = bits;
            let _ = write!(answer, "; server_max_window_bits={bits}");
        }
        // The client's window: only limitable if it offered the parameter.
        if let Some(value) = seen.client_max_window_bits {
            let offered = value
                .map(|v| window_bits("client_max_window_bits", v))
                .transpose()?;
            let bits = match (offered, self.client_max_window_bits) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(bits) = bits {
                params.client_max_window_bits = bits;
                let _ = write!(answer, "; client_max_window_bits={bits}");
            }
        }
        Ok((params, answer))
    }
}

impl DeflateParams {
    /// The parameters an accepted `Sec-WebSocket-Extensions` answer states (the same for both
    /// ends); `None` when it does not accept permessage-deflate or is invalid.
    pub fn from_answer(answer: &str) -> Option<Self> {
        let extensions = parse_extensions(answer).ok()?;
        let ext = extensions.iter().find(|e| e.name == PERMESSAGE_DEFLATE)?;
        let seen = read_params(ext).ok()?;
        let bits = |value: Option<Option<&str>>, name| match value {
            Some(Some(v)) => window_bits(name, v).ok(),
            _ => Some(15),
        };
        Some(Self {
            client_no_context_takeover: seen.client_no_context_takeover,
            server_no_context_takeover: seen.server_no_context_takeover,
            client_max_window_bits: bits(seen.client_max_window_bits, "client_max_window_bits")?,
            server_max_window_bits: bits(seen.server_max_window_bits, "server_max_window_bits")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_lists_parse_with_quoted_values_and_reject_garbage() {
        let parsed = parse_extensions("permessage-deflate; a; b=\"10\", x-other").unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].params, [("a", None), ("b", Some("10"))]);
        assert_eq!(parsed[1].name, "x-other");
        for bad in [
            "; a",
            "permessage-deflate; a=\"10",
            "p; =1",
            "p; a=",
            "p d",
            "p; a=\"\"",
        ] {
            assert!(parse_extensions(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_offer_and_the_answers_a_client_accepts() {
        let options = DeflateOptions::default();
        assert_eq!(
            options.offer(),
            "permessage-deflate; client_max_window_bits"
        );
        assert_eq!(options.accept_answer(""), Ok(None));
        assert_eq!(
            options.accept_answer("permessage-deflate"),
            Ok(Some(DeflateParams::default()))
        );
        let params = options
            .accept_answer(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=10; client_max_window_bits=9",
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            params,
            DeflateParams {
                client_no_context_takeover: true,
                server_no_context_takeover: true,
                client_max_window_bits: 9,
                server_max_window_bits: 10,
            }
        );
    }

    #[test]
    fn a_client_rejects_unacceptable_answers() {
        let options = DeflateOptions {
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(12),
            server_no_context_takeover: true,
            ..DeflateOptions::default()
        };
        let ok = "permessage-deflate; server_no_context_takeover; server_max_window_bits=10";
        assert!(options.accept_answer(ok).unwrap().is_some());
        for bad in [
            "permessage-deflate; server_max_window_bits=10", // takeover requested, not granted
            "permessage-deflate; server_no_context_takeover", // window requested, not granted
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=13",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=010",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover=1; server_max_window_bits=10",
            "x-unoffered",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10, permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
        ] {
            assert!(options.accept_answer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_server_accepts_the_first_valid_offer_and_answers_its_choices() {
        let server = DeflateOptions::default();
        let (params, answer) = server
            .select("permessage-deflate; client_max_window_bits")
            .unwrap();
        assert_eq!(params, DeflateParams::default());
        assert_eq!(answer, "permessage-deflate");
        // An invalid first offer is declined; the second is taken.
        let (params, answer) = server
            .select(
                "permessage-deflate; server_max_window_bits=20, \
                 permessage-deflate; server_no_context_takeover; server_max_window_bits=9",
            )
            .unwrap();
        assert!(params.server_no_context_takeover);
        assert_eq!(params.server_max_window_bits, 9);
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
        );
        assert_eq!(server.select("x-other, permessage-deflate; bogus"), None);
        assert_eq!(
            server.select("permessage-deflate; client_max_window_bits=16"),
            None
        );
        // A server configured to limit the client does so only if the client offered it.
        let limiting = DeflateOptions {
            client_max_window_bits: Some(10),
            client_no_context_takeover: true,
            ..DeflateOptions::default()
        };
        let (params, answer) = limiting
            .select("permessage-deflate; client_max_window_bits")
            .unwrap();
        assert_eq!(
            (
                params.client_max_window_bits,
                params.client_no_context_takeover
            ),
            (10, true)
        );
        assert_eq!(
            answer,
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=10"
        );
        let (params, _) = limiting.select("permessage-deflate").unwrap();
        assert_eq!(params.client_max_window_bits, 15);
        // Both sides read the same parameters from the answer.
        assert_eq!(
            DeflateParams::from_answer(&answer),
            Some(params_for(&answer))
        );
    }

    #[test]
    fn the_server_default_takes_no_context_over_whatever_a_browser_offers() {
        let (params, answer) = DeflateOptions::server_default()
            .select("permessage-deflate; client_max_window_bits")
            .unwrap();
        assert!(params.server_no_context_takeover);
        assert!(!params.client_no_context_takeover);
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
        assert_eq!(params_for(&answer), params);
    }

    #[test]
    fn an_offer_reads_back_as_the_options_it_states() {
        let options = DeflateOptions {
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(12),
            ..DeflateOptions::default()
        };
        assert_eq!(DeflateOptions::from_offer(&options.offer()), Some(options));
        assert_eq!(DeflateOptions::from_offer("x-other"), None);
    }

    fn params_for(answer: &str) -> DeflateParams {
        DeflateOptions {
            client_max_window_bits: Some(15),
            ..DeflateOptions::default()
        }
        .accept_answer(answer)
        .unwrap()
        .unwrap()
    }
}
