//! The envelope every Myriad message carries: `msgId`, `seq`, `from`, `ts`, and `src`, the sending
//! bus instance (the stream `seq` counts in), as one text of those five fields in that order.
//! Under MQTT 5 the text is the value of one user property, `myriad`, with fields separated by `/`
//! (`"msgId/seq/from/src/ts"`: MQTT 5 brokers may refuse control characters in properties, and
//! only `msgId`, first, may hold a `/`). Under 3.1.1, which has no properties, it is a header in
//! front of the payload, fields separated by newlines:
//!
//! ```text
//! 0x00 'M' 'Y' 'R' 0x01 | u16 big-endian header length | "msgId\nseq\nfrom\nsrc\nts" | payload
//! ```
//!
//! Why one property and not five named ones: brokers and clients copy each property's name and
//! value per message (rumqttd clones the whole property set twice), and five made MQTT 5
//! markedly slower than one on the embedded broker. Five properties named `msgId`, `seq`,
//! `from`, `src` and `ts` are still read, for senders that prefer them. An MQTT 5 receiver reads
//! the 3.1.1 header of a message without the property (a 3.1.1 sender's). A message without an
//! envelope (a foreign client's) is delivered with empty fields.
//!
//! An envelope with an empty `msgId` (which a message never has) and an empty payload is an end
//! mark: `seq` is the last its sender stamped on that stream (see `streams`). It is not delivered.

use bytes::{BufMut, Bytes, BytesMut};

pub const HEADER_MAGIC: &[u8; 5] = b"\0MYR\x01";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Envelope {
    pub msg_id: String,
    pub seq: u64,
    pub from: String,
    /// The sending bus instance (random per connection object): `seq` counts per (src, topic).
    pub src: String,
    /// Milliseconds since the Unix epoch at publish.
    pub ts: u64,
}

/// The MQTT 5 user property that carries the envelope text (documented in the README).
pub const PROP_ENVELOPE: &str = "myriad";
const PROP_SEPARATOR: char = '/';
const HEADER_SEPARATOR: char = '\n';
/// The five-property form, also read: one property per field.
const PROP_FIELDS: [&str; 5] = ["msgId", "seq", "from", "src", "ts"];

impl Envelope {
    /// An end mark rather than a message (see the module doc).
    pub fn is_end_mark(&self) -> bool {
        self.msg_id.is_empty()
    }

    /// The envelope as the one MQTT 5 user property Myriad sends.
    pub fn to_user_properties(&self) -> Vec<(String, String)> {
        vec![(PROP_ENVELOPE.into(), self.text(PROP_SEPARATOR))]
    }

    /// The envelope in user properties: the `myriad` property, or all five field properties, well
    /// formed.
    pub fn from_user_properties(props: &[(String, String)]) -> Option<Envelope> {
        let get = |name: &str| props.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if let Some(text) = get(PROP_ENVELOPE) {
            return Self::parse_text(text, PROP_SEPARATOR);
        }
        let [msg_id, seq, from, src, ts] = PROP_FIELDS.map(get);
        Some(Envelope { msg_id: msg_id?.into(), seq: seq?.parse().ok()?, from: from?.into(), src: src?.into(), ts: ts?.parse().ok()? })
    }

    /// The five fields, in order, separated by `separator`.
    fn text(&self, separator: char) -> String {
        let s = separator;
        format!("{}{s}{}{s}{}{s}{}{s}{}", self.msg_id, self.seq, self.from, self.src, self.ts)
    }

    /// Read from the right: only `msgId`, the first field, may hold the separator (a `/`).
    fn parse_text(text: &str, separator: char) -> Option<Envelope> {
        let mut fields = text.rsplitn(5, separator);
        let (ts, src, from, seq) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        let msg_id = fields.next()?;
        if msg_id.contains(HEADER_SEPARATOR) {
            return None;
        }
        Some(Envelope { msg_id: msg_id.into(), seq: seq.parse().ok()?, from: from.into(), src: src.into(), ts: ts.parse().ok()? })
    }

    /// The 3.1.1 wire form: header, then `body`.
    pub fn prefix(&self, body: &[u8]) -> Bytes {
        let header = self.text(HEADER_SEPARATOR);
        let mut out = BytesMut::with_capacity(HEADER_MAGIC.len() + 2 + header.len() + body.len());
        out.put_slice(HEADER_MAGIC);
        out.put_u16(header.len() as u16);
        out.put_slice(header.as_bytes());
        out.put_slice(body);
        out.freeze()
    }

    /// Splits a 3.1.1 payload into its envelope and body; a payload without a valid header is all body.
    pub fn strip(payload: Bytes) -> (Option<Envelope>, Bytes) {
        match Self::parse_header(&payload) {
            Some((env, body_at)) => (Some(env), payload.slice(body_at..)),
            None => (None, payload),
        }
    }

    fn parse_header(payload: &[u8]) -> Option<(Envelope, usize)> {
        let rest = payload.strip_prefix(HEADER_MAGIC.as_slice())?;
        let len = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize;
        let header = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
        Some((Self::parse_text(header, HEADER_SEPARATOR)?, HEADER_MAGIC.len() + 2 + len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope { msg_id: "m-1".into(), seq: 42, from: "agent-7".into(), src: "0badc0de".into(), ts: 1_700_000_000_123 }
    }

    #[test]
    fn header_round_trips_and_foreign_payloads_stay_whole() {
        let wire = sample().prefix(b"{\"hello\":1}");
        let (env, body) = Envelope::strip(wire);
        assert_eq!(env, Some(sample()));
        assert_eq!(&body[..], b"{\"hello\":1}");

        let foreign = Bytes::from_static(b"plain text from mosquitto_pub");
        let (env, body) = Envelope::strip(foreign.clone());
        assert_eq!(env, None);
        assert_eq!(body, foreign);

        // A header that claims more bytes than there are is not a header.
        let mut broken = sample().prefix(b"").to_vec();
        broken.truncate(broken.len() - 3);
        assert_eq!(Envelope::strip(Bytes::from(broken)).0, None);
    }

    #[test]
    fn user_properties_round_trip_in_one_property_and_are_read_in_five() {
        let props = sample().to_user_properties();
        assert_eq!(props, [("myriad".to_string(), "m-1/42/agent-7/0badc0de/1700000000123".to_string())]);
        assert_eq!(Envelope::from_user_properties(&props), Some(sample()));
        let slashed = Envelope { msg_id: "a/b//c".into(), ..sample() };
        assert_eq!(Envelope::from_user_properties(&slashed.to_user_properties()), Some(slashed.clone()));
        let (env, _) = Envelope::strip(slashed.prefix(b"x"));
        assert_eq!(env, Some(slashed));
        let five: Vec<(String, String)> =
            [("msgId", "m-1"), ("seq", "42"), ("from", "agent-7"), ("src", "0badc0de"), ("ts", "1700000000123"), ("other", "x")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .to_vec();
        assert_eq!(Envelope::from_user_properties(&five), Some(sample()));
        assert_eq!(Envelope::from_user_properties(&five[1..]), None);
        assert_eq!(Envelope::from_user_properties(&[("seq".into(), "1".into())]), None);
        for bad in ["m-1/42/agent-7/0badc0de", "m-1/x/agent-7/0badc0de/1", "m-1/42/agent-7/0badc0de/1/extra", "m\n1/42/agent-7/0badc0de/1"]
        {
            assert_eq!(Envelope::from_user_properties(&[("myriad".into(), bad.into())]), None, "{bad:?}");
        }
    }
}
