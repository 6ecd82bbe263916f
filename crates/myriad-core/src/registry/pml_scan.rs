//! A reader for the usual shape of a PML message: a JSON object of plain strings, numbers and
//! booleans, read without allocating. serde parses the envelope, keeps the body as raw text,
//! then parses that by type; with this, a whole `pml::parse` (validation included) is markedly
//! faster than with serde alone.
//!
//! It is strict rather than complete: it returns `None` on anything it does not handle (escapes,
//! `null`, a repeated key, an unknown body field, a top level that is not an object, deep
//! nesting...), and the caller then leaves the message to serde. So it only has to be right when
//! it answers: what it returns is exactly what serde would read from the same text. The tests
//! below check that against serde on generated and mutated messages.

use std::borrow::Cow;

use super::pml::{Fields, HeartbeatBody, OfferBody, OutcomeBody, RawBody, RegisterBody, RequestBody};

/// Nesting past this is left to serde (whose own limit is 128).
const MAX_DEPTH: usize = 32;

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Skips JSON whitespace and returns the next byte, not consuming it.
    fn next_token(&mut self) -> Option<u8> {
        while let Some(b) = self.peek() {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next_token()? == byte).then(|| self.at += 1)
    }

    /// A string without escapes or control characters, borrowed.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let rest = &self.text.as_bytes()[self.at..];
        let len = first_special(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        let start = self.at;
        self.at += len + 1;
        // Both ends sit next to an ASCII quote, so they are character boundaries.
        Some(&self.text[start..start + len])
    }

    /// The text of a JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<&'a str> {
        self.next_token()?;
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.digits_at_least_one()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.digits_at_least_one()?;
        }
        Some(&self.text[start..self.at])
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn digits_at_least_one(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    fn boolean(&mut self) -> Option<bool> {
        self.next_token()?;
        let rest = &self.text.as_bytes()[self.at..];
        let (value, len) = if rest.starts_with(b"true") {
            (true, 4)
        } else if rest.starts_with(b"false") {
            (false, 5)
        } else {
            return None;
        };
        self.at += len;
        Some(value)
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.text.as_bytes()[self.at..].starts_with(word.as_bytes()).then(|| self.at += word.len())
    }

    /// Steps over any value (checking that it is valid JSON) and returns its text.
    fn value(&mut self, depth: usize) -> Option<&'a str> {
        let start = self.next_token().map(|_| self.at)?;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' => self.members(depth + 1, |c, _| c.value(depth + 1).map(drop))?,
            b'[' => {
                if depth + 1 > MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                if self.next_token()? == b']' {
                    self.at += 1;
                } else {
                    loop {
                        self.value(depth + 1)?;
                        match self.next_token()? {
                            b',' => self.at += 1,
                            b']' => break self.at += 1,
                            _ => return None,
                        }
                    }
                }
            }
            b't' => self.literal("true")?,
            b'f' => self.literal("false")?,
            b'n' => self.literal("null")?,
            _ => {
                self.number()?;
            }
        }
        Some(&self.text[start..self.at])
    }

    /// Reads an object, handing each key to `member`, which must read the value.
    fn members(&mut self, depth: usize, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        if self.next_token()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.next_token()? {
                b',' => self.at += 1,
                b'}' => break,
                _ => return None,
            }
        }
        self.at += 1;
        Some(())
    }

    /// Reads a whole text that is one object: only whitespace may follow it.
    fn whole_object(&mut self, member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.members(1, member)?;
        self.next_token().is_none().then_some(())
    }
}

/// The first byte that ends a plain string: a quote, a backslash, or a control character (not
/// allowed raw in JSON). Eight bytes at a time (the strings are short: ids, words), with the
/// usual has-zero-byte tests; a false hit can only follow a true one, so the lowest is right.
fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let hits = zero_byte(w ^ (ONES * b'"' as u64)) | zero_byte(w ^ (ONES * b'\\' as u64)) | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS);
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| at + i)
}

/// Fills `slot` with `value`; `None` when either is missing or the slot was already filled
/// (serde rejects a repeated field).
fn set<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

/// The envelope of a message, or `None` to leave the message to serde.
pub(super) fn envelope(raw: &str) -> Option<Fields<'_>> {
    let mut f = Fields { v: None, kind: None, msg_id: None, from: None, to: None, ts: None, body: None };
    Cursor::new(raw).whole_object(|c, key| match key {
        "v" => set(&mut f.v, c.number()),
        "type" => set(&mut f.kind, c.string().map(Cow::Borrowed)),
        "msgId" => set(&mut f.msg_id, c.string().map(Cow::Borrowed)),
        "from" => set(&mut f.from, c.string().map(Cow::Borrowed)),
        "to" => set(&mut f.to, c.string().map(Cow::Borrowed)),
        "ts" => set(&mut f.ts, c.number()),
        // serde reads `"body": null` as no body.
        "body" => set(&mut f.body, c.value(1).filter(|v| *v != "null")),
        // serde skips other fields (checking that they are valid JSON).
        _ => c.value(1).map(drop),
    })?;
    Some(f)
}

/// A body of type `kind`, or `None` to leave it to serde (which also words the errors).
pub(super) fn body<'a>(kind: &str, raw: &'a str) -> Option<RawBody<'a>> {
    let mut c = Cursor::new(raw);
    let text = |c: &mut Cursor<'a>| c.string().map(Cow::Borrowed);
    Some(match kind {
        "register" => {
            let (mut specialty, mut capacity) = (None, None);
            c.whole_object(|c, key| match key {
                "specialty" => set(&mut specialty, text(c)),
                "capacity" => set(&mut capacity, unsigned(c)),
                _ => None,
            })?;
            RawBody::Register(RegisterBody { specialty: specialty?, capacity })
        }
        "heartbeat" => {
            let (mut load, mut status) = (None, None);
            c.whole_object(|c, key| match key {
                "load" => set(&mut load, unsigned(c)),
                "status" => set(&mut status, text(c)),
                _ => None,
            })?;
            RawBody::Heartbeat(HeartbeatBody { load, status })
        }
        "request" => {
            let (mut task_id, mut query) = (None, None);
            c.whole_object(|c, key| match key {
                "taskId" => set(&mut task_id, text(c)),
                "query" => set(&mut query, text(c)),
                _ => None,
            })?;
            RawBody::Request(RequestBody { task_id: task_id?, query: query? })
        }
        "offer" => {
            let mut task_id = None;
            c.whole_object(|c, key| if key == "taskId" { set(&mut task_id, text(c)) } else { None })?;
            RawBody::Offer(OfferBody { task_id: task_id? })
        }
        "result" | "feedback" => {
            let (mut task_id, mut success, mut latency_ms) = (None, None, None);
            c.whole_object(|c, key| match key {
                "taskId" => set(&mut task_id, text(c)),
                "success" => set(&mut success, c.boolean()),
                // serde's own number reading, so that the value is the same to the last bit.
                "latencyMs" => set(&mut latency_ms, c.number().and_then(|n| serde_json::from_str::<f64>(n).ok())),
                _ => None,
            })?;
            RawBody::Outcome(OutcomeBody { task_id, success: success?, latency_ms })
        }
        "deregister" => {
            c.whole_object(|_, _| None)?;
            RawBody::Deregister
        }
        _ => return None,
    })
}

/// A `u32` as serde reads one: a non-negative integer without fraction or exponent, in range.
fn unsigned(c: &mut Cursor<'_>) -> Option<u32> {
    let text = c.number()?;
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::pml::{parse, parse_with_serde};
    use super::*;
    use proptest::prelude::*;

    /// Picks from `choices` with the generator's next draw.
    fn pick<'c>(rng: &mut u64, choices: &[&'c str]) -> &'c str {
        // xorshift64*: enough to vary the cases a proptest seed drives.
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        choices[(rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % choices.len()]
    }

    const SPACE: &[&str] = &["", "", "", " ", "\n\t ", "\r\n"];

    /// A JSON object from `(key, value)` members, with whitespace drawn around every token.
    fn object(rng: &mut u64, members: &[(&str, &str)]) -> String {
        let mut out = format!("{}{{", pick(rng, SPACE));
        for (i, (key, value)) in members.iter().enumerate() {
            let comma = if i > 0 { "," } else { "" };
            out += &format!("{comma}{}\"{key}\"{}:{}{value}{}", pick(rng, SPACE), pick(rng, SPACE), pick(rng, SPACE), pick(rng, SPACE));
        }
        out + "}" + pick(rng, SPACE)
    }

    const TEXT: &[&str] = &["\"a\"", "\"agent-7\"", "\"\"", "\"é 🙂\"", "\"a\\nb\"", "\"\\u0041\"", "null", "3", "\"runtime\""];
    const NUMBER: &[&str] = &[
        "1",
        "0",
        "2",
        "1.0",
        "-1",
        "-0",
        "3.5",
        "1e3",
        "1E+2",
        "0.1e-5",
        "1e400",
        "4294967296",
        "12345678901234567890123",
        "\"1\"",
        "null",
        "true",
    ];
    const BOOL: &[&str] = &["true", "false", "1", "null", "\"true\""];
    const EXTRA: &[&str] = &["{}", "[]", "[1,{\"x\":[null]}]", "{\"a\":{\"b\":{\"c\":[]}}}", "\"x\"", "[1,]", "{\"a\" 1}", "nul"];

    /// A message of some type, its fields drawn from plain and awkward values, sometimes with a
    /// field missing, repeated or unknown, in any order.
    fn message(seed: u64) -> String {
        let rng = &mut (seed | 1);
        let kind = pick(rng, &["register", "heartbeat", "request", "offer", "result", "feedback", "deregister", "bogus"]);
        let (plain, awkward) =
            (0..4).map(|_| pick(rng, &["0", "1"])).fold((0, 0), |(p, a), x| if x == "1" { (p + 1, a) } else { (p, a + 1) });
        let mut body: Vec<(&str, &str)> = match kind {
            "register" => vec![("specialty", "\"tax\""), ("capacity", "4")],
            "heartbeat" => vec![("load", "2"), ("status", "\"busy\"")],
            "request" => vec![("taskId", "\"t1\""), ("query", "\"who?\"")],
            "offer" => vec![("taskId", "\"t1\"")],
            "result" | "feedback" => vec![("taskId", "\"t1\""), ("success", "true"), ("latencyMs", "42.5")],
            _ => vec![],
        };
        // Roughly half the messages keep their plain values; the rest get awkward ones.
        if awkward > plain {
            for (key, value) in body.iter_mut() {
                *value = match *key {
                    "capacity" | "load" | "latencyMs" => pick(rng, NUMBER),
                    "success" => pick(rng, BOOL),
                    _ => pick(rng, TEXT),
                };
            }
            match pick(rng, &["drop", "repeat", "unknown", "keep"]) {
                "drop" if !body.is_empty() => {
                    body.pop();
                }
                "repeat" if !body.is_empty() => body.push(body[0]),
                "unknown" => body.push(("extra", pick(rng, EXTRA))),
                _ => {}
            }
        }
        let body =
            if pick(rng, &["object", "object", "object", "other"]) == "object" { object(rng, &body) } else { pick(rng, EXTRA).to_string() };
        let kind = format!("\"{kind}\"");
        let mut envelope: Vec<(&str, &str)> = vec![
            ("v", "1"),
            ("type", &kind),
            ("msgId", "\"m-1\""),
            ("from", "\"agent-7\""),
            ("to", "\"runtime\""),
            ("ts", "1700000000000"),
            ("body", &body),
        ];
        if awkward > plain {
            let i = pick(rng, &["0", "1", "2", "3", "4", "5", "6"]).parse::<usize>().unwrap();
            match pick(rng, &["drop", "repeat", "unknown", "value"]) {
                "drop" => {
                    envelope.remove(i);
                }
                "repeat" => envelope.push(envelope[i]),
                "unknown" => envelope.push(("trace", pick(rng, EXTRA))),
                _ => envelope[i].1 = if i == 0 || i == 5 { pick(rng, NUMBER) } else { pick(rng, TEXT) },
            }
        }
        // Any order: rotate by a drawn amount.
        let turn = pick(rng, &["0", "1", "2", "3", "4", "5", "6"]).parse::<usize>().unwrap() % envelope.len();
        envelope.rotate_left(turn);
        object(rng, &envelope)
    }

    #[test]
    fn string_ends_are_found_at_any_offset() {
        for special in [b'"', b'\\', b'\n', 0x1f, 0] {
            for len in 0..20 {
                for at in 0..=len {
                    let mut bytes = vec![b'a'; len];
                    bytes.extend_from_slice("é".as_bytes());
                    bytes.insert(at, special);
                    // A later special byte must not hide the first.
                    bytes.push(b'"');
                    assert_eq!(first_special(&bytes), Some(at), "{special} at {at} of {len}");
                }
                assert_eq!(first_special(&vec![b'a'; len]), None);
            }
        }
        assert_eq!(first_special(&[0x7f, 0x80, 0xff, 0x20, b'"']), Some(4));
    }

    #[test]
    fn the_usual_messages_are_read_by_the_scanner() {
        let bodies = [
            ("register", r#"{"specialty":"tax","capacity":4}"#),
            ("heartbeat", r#"{"load":2,"status":"busy"}"#),
            ("request", r#"{"taskId":"t1","query":"who can help?"}"#),
            ("offer", r#"{"taskId":"t1"}"#),
            ("result", r#"{"taskId":"t1","success":true,"latencyMs":42.5}"#),
            ("feedback", r#"{"success":false}"#),
            ("deregister", "{}"),
        ];
        for (kind, body) in bodies {
            let raw =
                format!(r#"{{"v":1,"msgId":"9b2c","ts":1700000000000,"type":"{kind}","from":"agent-7","to":"runtime","body":{body}}}"#);
            let fields = envelope(&raw).unwrap_or_else(|| panic!("envelope of {raw}"));
            assert_eq!(fields.body, Some(body));
            assert!(super::body(kind, body).is_some(), "{kind} body");
            assert_eq!(parse(&raw), parse_with_serde(&raw));
            assert!(parse(&raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn the_scanner_leaves_what_it_does_not_handle_to_serde() {
        let gives_up = [
            r#"{"v":1,"msgId":"a\"b"}"#,
            r#"{"v":1,"to":null}"#,
            r#"{"v":1,"v":1}"#,
            r#"[1]"#,
            r#"{"v":1} x"#,
            "\u{feff}{}",
            r#"{"v":01}"#,
        ];
        for raw in gives_up {
            assert!(envelope(raw).is_none(), "{raw}");
        }
        assert!(super::body("heartbeat", r#"{"load":2.0}"#).is_none());
        assert!(super::body("heartbeat", r#"{"load":-0}"#).is_none());
        assert!(super::body("register", r#"{"specialty":"a","specialty":"b"}"#).is_none());
        assert!(super::body("offer", r#"{"taskId":"t","x":1}"#).is_none());
        assert!(super::body("result", r#"{"success":true,"latencyMs":1e400}"#).is_none());
        let deep = format!("{{\"v\":1,\"x\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(envelope(&deep).is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

        /// Whatever the text, the scanner-first parse gives exactly serde's answer: the same
        /// message, or the same error code and reason.
        #[test]
        fn parsing_agrees_with_serde_on_generated_messages(seed in any::<u64>()) {
            let raw = message(seed);
            prop_assert_eq!(parse(&raw), parse_with_serde(&raw), "{}", raw);
        }

        #[test]
        fn parsing_agrees_with_serde_on_mutated_messages(seed in any::<u64>(), pos in any::<usize>(), byte in any::<u8>(), how in 0u8..3) {
            let mut bytes = message(seed).into_bytes();
            let pos = pos % (bytes.len() + 1);
            match how {
                0 => bytes.truncate(pos),
                1 if pos < bytes.len() => bytes[pos] = byte,
                _ => bytes.insert(pos, byte),
            }
            let raw = String::from_utf8_lossy(&bytes);
            prop_assert_eq!(parse(&raw), parse_with_serde(&raw), "{}", raw);
        }
    }
}
