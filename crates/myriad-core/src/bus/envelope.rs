//! The envelope every Myriad message carries: `msgId`, `seq`, `from`, `ts`, and `src`, the sending
//! bus instance (the stream `seq` counts in). Under MQTT 5 these travel as user properties; under
//! 3.1.1, which has no properties, as a header in front of the payload:
//!
//! ```text
//! 0x00 'M' 'Y' 'R' 0x01 | u16 big-endian header length | "msgId\nseq\nfrom\nsrc\nts" (UTF-8) | payload
//! ```
//!
//! A message without an envelope (a foreign client's) is delivered with empty fields.

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

/// MQTT 5 user property names (also documented in the README).
pub const PROP_MSG_ID: &str = "msgId";
pub const PROP_SEQ: &str = "seq";
pub const PROP_FROM: &str = "from";
pub const PROP_SRC: &str = "src";
pub const PROP_TS: &str = "ts";

impl Envelope {
    pub fn to_user_properties(&self) -> Vec<(String, String)> {
        vec![
            (PROP_MSG_ID.into(), self.msg_id.clone()),
            (PROP_SEQ.into(), self.seq.to_string()),
            (PROP_FROM.into(), self.from.clone()),
            (PROP_SRC.into(), self.src.clone()),
            (PROP_TS.into(), self.ts.to_string()),
        ]
    }

    /// The envelope in user properties, if all five are there and well formed.
    pub fn from_user_properties(props: &[(String, String)]) -> Option<Envelope> {
        let get = |name: &str| props.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        Some(Envelope {
            msg_id: get(PROP_MSG_ID)?.to_string(),
            seq: get(PROP_SEQ)?.parse().ok()?,
            from: get(PROP_FROM)?.to_string(),
            src: get(PROP_SRC)?.to_string(),
            ts: get(PROP_TS)?.parse().ok()?,
        })
    }

    /// The 3.1.1 wire form: header, then `body`.
    pub fn prefix(&self, body: &[u8]) -> Bytes {
        let header = format!("{}\n{}\n{}\n{}\n{}", self.msg_id, self.seq, self.from, self.src, self.ts);
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
        let mut fields = header.split('\n');
        let env = Envelope {
            msg_id: fields.next()?.to_string(),
            seq: fields.next()?.parse().ok()?,
            from: fields.next()?.to_string(),
            src: fields.next()?.to_string(),
            ts: fields.next()?.parse().ok()?,
        };
        if fields.next().is_some() {
            return None;
        }
        Some((env, HEADER_MAGIC.len() + 2 + len))
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
    fn user_properties_round_trip() {
        assert_eq!(Envelope::from_user_properties(&sample().to_user_properties()), Some(sample()));
        assert_eq!(Envelope::from_user_properties(&[("seq".into(), "1".into())]), None);
    }
}
