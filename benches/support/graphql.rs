//! A deterministic corpus of GraphQL subscription traffic (graphql-ws `next` messages): nested
//! objects with `__typename`, ids, ISO timestamps, enums, prices and short texts, ~100 B to
//! ~4 KiB each, as a server pushes them to a browser. Shared by `benches/deflate.rs` and
//! `examples/deflate_memory.rs`.

use std::fmt::Write as _;

/// xorshift64: the same corpus on every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "order", "shipped", "the", "payment", "was", "received", "for", "your", "new", "account",
    "update", "please", "review", "ticket", "closed", "by", "support", "team", "price", "alert",
    "delivery", "tomorrow", "delayed", "thanks", "hello", "meeting", "at", "noon", "draft",
    "approved", "invoice", "overdue",
];
const STATUSES: &[&str] = &["PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"];
const CURRENCIES: &[&str] = &["USD", "EUR", "GBP"];
const SYMBOLS: &[&str] = &[
    "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "NFLX",
];

fn timestamp(out: &mut String, ms: u64) {
    let s = ms / 1000;
    let _ = write!(
        out,
        "\"2025-03-{:02}T{:02}:{:02}:{:02}.{:03}Z\"",
        1 + (s / 86_400) % 28,
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    );
}

fn words(out: &mut String, rng: &mut Rng, n: u64) {
    out.push('"');
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(WORDS));
    }
    out.push('"');
}

/// `count` messages of the corpus, the same for the same arguments.
pub(crate) fn corpus(count: usize) -> Vec<String> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut clock = 1_740_000_000_000u64;
    (0..count)
        .map(|i| {
            clock += 1 + rng.below(900);
            let mut m = String::with_capacity(512);
            // graphql-ws ids: one per subscription, a handful live at once.
            let _ = write!(
                m,
                r#"{{"id":"{:08x}-sub","type":"next","payload":{{"data":{{"#,
                0x1f00_0000 + rng.below(6) as u32
            );
            match i % 4 {
                // A price tick: small.
                0 => {
                    let _ = write!(
                        m,
                        r#""priceChanged":{{"__typename":"Quote","symbol":"{}","bid":{}.{:02},"ask":{}.{:02},"volume":{},"at":"#,
                        rng.pick(SYMBOLS),
                        100 + rng.below(400),
                        rng.below(100),
                        100 + rng.below(400),
                        rng.below(100),
                        rng.below(10_000_000)
                    );
                    timestamp(&mut m, clock);
                    m.push('}');
                }
                // A chat message with its author.
                1 => {
                    let _ = write!(
                        m,
                        r#""messageAdded":{{"__typename":"Message","id":"msg_{}","channelId":"ch_{}","author":{{"__typename":"User","id":"usr_{}","name":"user{}","avatarUrl":"https://cdn.example.com/avatars/{}.png"}},"body":"#,
                        rng.next() % 100_000_000,
                        rng.below(20),
                        rng.below(500),
                        rng.below(500),
                        rng.below(500)
                    );
                    let n = 3 + rng.below(40);
                    words(&mut m, &mut rng, n);
                    m.push_str(r#","createdAt":"#);
                    timestamp(&mut m, clock);
                    let _ = write!(m, r#","reactions":[],"edited":{}}}"#, rng.below(8) == 0);
                }
                // An order update with its line items: up to ~4 KiB.
                2 => {
                    let _ = write!(
                        m,
                        r#""orderUpdated":{{"__typename":"Order","id":"ord_{}","status":"{}","currency":"{}","updatedAt":"#,
                        rng.next() % 10_000_000,
                        rng.pick(STATUSES),
                        rng.pick(CURRENCIES)
                    );
                    timestamp(&mut m, clock);
                    m.push_str(r#","items":["#);
                    for item in 0..rng.below(24) {
                        if item > 0 {
                            m.push(',');
                        }
                        let _ = write!(
                            m,
                            r#"{{"__typename":"LineItem","sku":"SKU-{:05}","quantity":{},"unitPrice":{{"amount":"{}.{:02}","currency":"USD"}},"product":{{"__typename":"Product","id":"prd_{}","name":"#,
                            rng.below(3000),
                            1 + rng.below(5),
                            rng.below(300),
                            rng.below(100),
                            rng.below(3000)
                        );
                        let n = 2 + rng.below(3);
                        words(&mut m, &mut rng, n);
                        m.push_str("}}");
                    }
                    let _ = write!(
                        m,
                        r#"],"total":{{"amount":"{}.{:02}"}}}}"#,
                        rng.below(5000),
                        rng.below(100)
                    );
                }
                // A notification list.
                _ => {
                    m.push_str(r#""notifications":{"__typename":"NotificationConnection","edges":["#);
                    for edge in 0..1 + rng.below(8) {
                        if edge > 0 {
                            m.push(',');
                        }
                        let _ = write!(
                            m,
                            r#"{{"__typename":"NotificationEdge","cursor":"Y3Vyc29y{:06}","node":{{"__typename":"Notification","id":"ntf_{}","kind":"{}","read":false,"text":"#,
                            rng.below(1_000_000),
                            rng.next() % 100_000_000,
                            rng.pick(&["MENTION", "REPLY", "FOLLOW", "SYSTEM"])
                        );
                        let n = 4 + rng.below(12);
                        words(&mut m, &mut rng, n);
                        m.push_str(r#","at":"#);
                        timestamp(&mut m, clock - rng.below(100_000));
                        m.push_str("}}");
                    }
                    let _ = write!(
                        m,
                        r#"],"pageInfo":{{"hasNextPage":{},"endCursor":"Y3Vyc29y{:06}"}}}}"#,
                        rng.below(2) == 0,
                        rng.below(1_000_000)
                    );
                }
            }
            m.push_str("}}}");
            m
        })
        .collect()
}
