use std::sync::Arc;

use bytes::Bytes;
use myriad_core::bus::{Bus, BusOptions, Kind, Outbound, Protocol, Qos, SubscribeMode, TlsOptions};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::error::{guarded, Result};
use crate::settle::{settle, Settled};

/// Options of `NativeBus.connect`, documented in the TS schema `src/bus/options.ts`.
#[napi(object)]
#[derive(Default)]
pub struct NativeBusConfig {
    pub url: Option<String>,
    pub local: Option<bool>,
    pub exp: String,
    pub client_id: String,
    pub agents: Option<Vec<String>>,
    pub subscribe: Option<String>,
    pub protocol: Option<u32>,
    pub qos: Option<Vec<u32>>,
    pub persistent: Option<bool>,
    pub session_expiry_s: Option<u32>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: Option<bool>,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub max_payload: Option<u32>,
    pub inflight: Option<u32>,
    pub inbox_capacity: Option<u32>,
    pub dedupe_window: Option<u32>,
    pub keep_alive_s: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub close_timeout_ms: Option<u32>,
    pub end_mark_idle_ms: Option<u32>,
    pub credit_window: Option<u32>,
}

fn options(c: NativeBusConfig) -> myriad_core::Result<BusOptions> {
    let mut o = BusOptions::new(c.exp, c.client_id);
    o.url = c.url;
    o.local = c.local.unwrap_or(o.local);
    o.agents = c.agents.unwrap_or_default();
    if let Some(mode) = c.subscribe {
        o.subscribe = SubscribeMode::parse(&mode)?;
    }
    if let Some(level) = c.protocol {
        o.protocol = Protocol::from_level(level)?;
    }
    if let Some(q) = c.qos {
        if q.len() != Kind::ALL.len() {
            return Err(invalid("qos needs three levels: agent-chat, user-chat, user-survey"));
        }
        for (i, level) in q.into_iter().enumerate() {
            o.qos[i] = Qos::from_u8(level.min(255) as u8)?;
        }
    }
    o.persistent = c.persistent.unwrap_or(o.persistent);
    o.session_expiry_s = c.session_expiry_s.unwrap_or(o.session_expiry_s);
    o.username = c.username;
    o.password = c.password;
    if c.tls.unwrap_or(false) || c.tls_ca.is_some() || c.tls_cert.is_some() {
        o.tls = Some(TlsOptions { ca: c.tls_ca.map(Into::into), cert: c.tls_cert.map(Into::into), key: c.tls_key.map(Into::into) });
    }
    o.max_payload = c.max_payload.map(|v| v as usize).unwrap_or(o.max_payload);
    if let Some(v) = c.inflight {
        o.inflight = u16::try_from(v).map_err(|_| invalid("inflight must be in 1..=65534"))?;
    }
    o.inbox_capacity = c.inbox_capacity.map(|v| v as usize).unwrap_or(o.inbox_capacity);
    o.dedupe_window = c.dedupe_window.map(|v| v as usize).unwrap_or(o.dedupe_window);
    if let Some(v) = c.keep_alive_s {
        o.keep_alive_s = u16::try_from(v).map_err(|_| invalid("keepAliveS must be at most 65535"))?;
    }
    o.connect_timeout_ms = c.connect_timeout_ms.map(u64::from).unwrap_or(o.connect_timeout_ms);
    o.close_timeout_ms = c.close_timeout_ms.map(u64::from).unwrap_or(o.close_timeout_ms);
    o.end_mark_idle_ms = c.end_mark_idle_ms.map(u64::from).unwrap_or(o.end_mark_idle_ms);
    o.credit_window = c.credit_window.or(o.credit_window);
    Ok(o)
}

fn invalid(msg: impl Into<String>) -> myriad_core::Error {
    myriad_core::Error::InvalidArg(msg.into())
}

/// Inbound messages in columns: five N-API values per take instead of eight per message. Each
/// value costs the JS thread, and one typed array per column cost several times what one buffer
/// for all of them does. Agent and sender ids repeat across a take, so each distinct one travels
/// once, in `names` (newline-joined), indexed per message. `msgIds` is newline-joined (a foreign
/// id's newlines become spaces). `data` holds the numeric columns that `inboundColumns()` lists,
/// then the payloads (native byte order).
#[napi(object)]
pub struct InboundColumns {
    pub count: u32,
    pub names: String,
    pub msg_ids: String,
    pub data: Buffer,
    pub gaps: Vec<GapInfo>,
}

#[napi(object)]
pub struct GapInfo {
    pub agent_id: String,
    pub kind: String,
    pub from: String,
    pub expected: f64,
    pub got: f64,
}

#[napi(object)]
pub struct NativeBusStats {
    pub published: f64,
    pub delivered: f64,
    pub foreign: f64,
    pub not_ours: f64,
    pub duplicates: f64,
    pub gaps: f64,
    pub missing: f64,
    pub reordered: f64,
    pub reconnects: f64,
    pub inflight: f64,
    pub queued: f64,
    pub credit_released: f64,
}

/// The message bus of one agent group: MQTT (an outside broker or the embedded one) or the
/// in-process router. Inbound messages wait in its inbox until `take` reads them.
#[napi]
pub struct NativeBus {
    bus: Arc<Bus>,
}

#[napi]
impl NativeBus {
    // A static method rather than a factory: an async factory must resolve to the class itself,
    // and its rejection (a `napi::Result` made off the JS thread) could not carry the error's code.
    #[napi(ts_return_type = "Promise<NativeBus>")]
    pub async fn connect(config: NativeBusConfig) -> Settled<NativeBus> {
        settle(async move { Ok(NativeBus { bus: Bus::connect(options(config)?).await? }) }).await
    }

    /// A batch in columns: recipients newline-joined, one kind index each, payloads concatenated
    /// with their end offsets; `from` and `msgIds` optional (newline-joined, empty entry = default).
    #[napi(ts_return_type = "Promise<number>")]
    pub async fn publish(
        &self,
        to: String,
        kinds: Uint8Array,
        payloads: Buffer,
        ends: Uint32Array,
        from: Option<String>,
        msg_ids: Option<String>,
    ) -> Settled<u32> {
        settle(async {
            let batch = outbound(&to, &kinds, &payloads, &ends, from.as_deref(), msg_ids.as_deref())?;
            let n = batch.len() as u32;
            self.bus.publish(batch).await?;
            Ok(n)
        })
        .await
    }

    /// Registers the function called (with no arguments) when messages wait to be taken: once per
    /// non-empty stretch, so the JS side takes one batch per event-loop turn.
    #[napi]
    pub fn on_inbound(&self, callback: ThreadsafeFunction<(), (), (), Status, false>) -> Result<()> {
        self.bus.inbox().set_waker(move || {
            callback.call((), ThreadsafeFunctionCallMode::NonBlocking);
        });
        Ok(())
    }

    #[napi]
    pub fn take(&self, max: Option<u32>) -> Result<InboundColumns> {
        guarded(|| Ok(columns(self.bus.take(max.map(|m| m as usize).unwrap_or(usize::MAX)))))
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn drain(&self) -> Settled<()> {
        settle(self.bus.drain()).await
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn close(&self) -> Settled<()> {
        settle(self.bus.close()).await
    }

    #[napi]
    pub fn stats(&self) -> NativeBusStats {
        let s = self.bus.stats();
        NativeBusStats {
            published: s.published as f64,
            delivered: s.delivered as f64,
            foreign: s.foreign as f64,
            not_ours: s.not_ours as f64,
            duplicates: s.receive.duplicates as f64,
            gaps: s.receive.gaps as f64,
            missing: s.receive.missing as f64,
            reordered: s.receive.reordered as f64,
            reconnects: s.reconnects as f64,
            inflight: s.inflight as f64,
            queued: s.queued as f64,
            credit_released: s.credit_released as f64,
        }
    }
}

fn outbound(
    to: &str,
    kinds: &[u8],
    payloads: &[u8],
    ends: &[u32],
    from: Option<&str>,
    msg_ids: Option<&str>,
) -> myriad_core::Result<Vec<Outbound>> {
    let recipients: Vec<&str> = if to.is_empty() { Vec::new() } else { to.split('\n').collect() };
    let n = recipients.len();
    if kinds.len() != n || ends.len() != n {
        return Err(invalid(format!("batch columns disagree: {n} recipients, {} kinds, {} payload ends", kinds.len(), ends.len())));
    }
    let column = |joined: Option<&str>, what: &str| -> myriad_core::Result<Vec<Option<String>>> {
        match joined {
            None => Ok(vec![None; n]),
            Some(s) => {
                let v: Vec<Option<String>> = s.split('\n').map(|x| (!x.is_empty()).then(|| x.to_string())).collect();
                if v.len() != n {
                    return Err(invalid(format!("{what}: {} entries for {n} messages", v.len())));
                }
                Ok(v)
            }
        }
    };
    let froms = column(from, "from")?;
    let ids = column(msg_ids, "msgIds")?;
    let all = Bytes::copy_from_slice(payloads);
    let mut start = 0usize;
    let mut out = Vec::with_capacity(n);
    for (i, ((to, from), msg_id)) in recipients.into_iter().zip(froms).zip(ids).enumerate() {
        let end = ends[i] as usize;
        if end < start || end > all.len() {
            return Err(invalid(format!("message {i}: payload end {end} is out of order or past the buffer")));
        }
        let kind = Kind::from_index(kinds[i]).ok_or_else(|| invalid(format!("message {i}: unknown kind index {}", kinds[i])))?;
        out.push(Outbound { to: to.to_string(), kind, from, msg_id, payload: all.slice(start..end) });
        start = end;
    }
    Ok(out)
}

/// The numeric columns of `InboundColumns::data`, in buffer order, with each element's size in
/// bytes: seqs and ts (f64), agent and sender name indexes and payload ends (u32, relative to the
/// payloads), kinds (u8). Each holds one element per message, so with `n` messages a column starts
/// at `n` times the sizes before it, and the payloads follow the last one. The f64 columns come
/// first so every column sits at a multiple of its element size. The TypeScript reader computes
/// its offsets from this list (`inboundColumns()`).
const INBOUND_COLUMNS: [(&str, usize); 6] = [("seqs", 8), ("ts", 8), ("agents", 4), ("froms", 4), ("ends", 4), ("kinds", 1)];
const SEQS: usize = 0;
const TS: usize = 1;
const AGENTS: usize = 2;
const FROMS: usize = 3;
const ENDS: usize = 4;
const KINDS: usize = 5;
// The element sizes `columns` writes.
const _: () = assert!(INBOUND_COLUMNS[SEQS].1 == 8 && INBOUND_COLUMNS[TS].1 == 8 && INBOUND_COLUMNS[KINDS].1 == 1);
const _: () = assert!(INBOUND_COLUMNS[AGENTS].1 == 4 && INBOUND_COLUMNS[FROMS].1 == 4 && INBOUND_COLUMNS[ENDS].1 == 4);

/// Byte offsets in `InboundColumns::data` for `n` messages: where each of `INBOUND_COLUMNS`
/// starts, and where the payloads do.
struct ColumnLayout {
    starts: [usize; INBOUND_COLUMNS.len()],
    payloads: usize,
}

fn column_layout(n: usize) -> ColumnLayout {
    let mut starts = [0; INBOUND_COLUMNS.len()];
    let mut at = 0;
    for (start, (_, bytes)) in starts.iter_mut().zip(INBOUND_COLUMNS) {
        *start = at;
        at += n * bytes;
    }
    ColumnLayout { starts, payloads: at }
}

#[napi(object)]
pub struct NativeColumn {
    pub name: String,
    /// Bytes per element.
    pub bytes: u32,
}

/// The numeric columns of `take()`'s `data`, in buffer order (the payloads follow them): with `n`
/// messages, a column starts at `n` times the `bytes` of the columns before it.
#[napi]
pub fn inbound_columns() -> Vec<NativeColumn> {
    INBOUND_COLUMNS.iter().map(|&(name, bytes)| NativeColumn { name: name.into(), bytes: bytes as u32 }).collect()
}

fn columns(taken: myriad_core::bus::Taken) -> InboundColumns {
    let n = taken.messages.len();
    let at = column_layout(n);
    let mut data = vec![0u8; at.payloads + taken.messages.iter().map(|m| m.payload.len()).sum::<usize>()];
    let mut names = Names::default();
    let mut msg_ids = String::with_capacity(n * 40);
    let mut payload_end = at.payloads;
    let mut put = |offset: usize, bytes: &[u8]| data[offset..offset + bytes.len()].copy_from_slice(bytes);
    // Where element `i` of `column` goes.
    let cell = |column: usize, i: usize| at.starts[column] + i * INBOUND_COLUMNS[column].1;
    for (i, m) in taken.messages.iter().enumerate() {
        if i > 0 {
            msg_ids.push('\n');
        }
        msg_ids.push_str(&m.msg_id);
        put(cell(SEQS, i), &(m.seq as f64).to_ne_bytes());
        put(cell(TS, i), &(m.ts as f64).to_ne_bytes());
        put(cell(AGENTS, i), &names.index(&m.agent).to_ne_bytes());
        put(cell(FROMS, i), &names.index(&m.from).to_ne_bytes());
        put(cell(KINDS, i), &[m.kind as u8]);
        put(payload_end, &m.payload);
        payload_end += m.payload.len();
        put(cell(ENDS, i), &((payload_end - at.payloads) as u32).to_ne_bytes());
    }
    // One count over the whole column instead of a search per id (see `one_line`).
    if msg_ids.bytes().filter(|&b| b == b'\n').count() != n.saturating_sub(1) {
        msg_ids = taken.messages.iter().map(|m| one_line(&m.msg_id)).collect::<Vec<_>>().join("\n");
    }
    InboundColumns {
        count: n as u32,
        names: names.joined,
        msg_ids,
        data: Buffer::from(data),
        gaps: taken
            .gaps
            .into_iter()
            .map(|g| GapInfo {
                agent_id: g.agent,
                kind: g.kind.as_str().into(),
                from: g.from,
                expected: g.expected as f64,
                got: g.got as f64,
            })
            .collect(),
    }
}

/// The distinct ids of one take, '\n'-joined in first-seen order.
#[derive(Default)]
struct Names<'a> {
    seen: foldhash::HashMap<&'a str, u32>,
    joined: String,
}

impl<'a> Names<'a> {
    fn index(&mut self, name: &'a str) -> u32 {
        let next = self.seen.len() as u32;
        *self.seen.entry(name).or_insert_with(|| {
            if next > 0 {
                self.joined.push('\n');
            }
            self.joined.push_str(&one_line(name));
            next
        })
    }
}

/// An id as one line: foreign senders may put anything in an id, and a newline in a
/// newline-joined column would shift every id after it.
fn one_line(id: &str) -> std::borrow::Cow<'_, str> {
    if id.contains('\n') {
        id.replace('\n', " ").into()
    } else {
        id.into()
    }
}

/// `mqtt://127.0.0.1:<port>` of the embedded broker (started on first use), for MQTT 5 (default)
/// or 4 (3.1.1): for other clients (mqtt.js, mosquitto_sub) to reach the same broker.
#[napi]
pub fn embedded_broker_url(protocol: Option<u32>) -> Result<String> {
    guarded(|| myriad_core::bus::embedded_broker_url(protocol.map_or(Ok(Protocol::V5), Protocol::from_level)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_sits_at_a_multiple_of_its_element_size() {
        for n in [0, 1, 3, 1000] {
            let at = column_layout(n);
            for (&start, (name, bytes)) in at.starts.iter().zip(INBOUND_COLUMNS) {
                assert_eq!(start % bytes, 0, "{name} with {n} messages");
            }
            assert_eq!(at.payloads, n * INBOUND_COLUMNS.iter().map(|c| c.1).sum::<usize>());
        }
        let names: Vec<String> = inbound_columns().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["seqs", "ts", "agents", "froms", "ends", "kinds"]);
    }
}
