use std::sync::Arc;

use bytes::Bytes;
use myriad_core::bus::{Bus, BusOptions, Kind, Outbound, Protocol, Qos, SubscribeMode, TlsOptions};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use crate::{guarded, invalid, to_js};

#[napi(object)]
#[derive(Default)]
pub struct NativeBusConfig {
    pub url: Option<String>,
    pub local: Option<bool>,
    pub exp: String,
    pub client_id: String,
    pub agents: Option<Vec<String>>,
    /// 'agents' (default) or 'experiment'.
    pub subscribe: Option<String>,
    /// 5 (default) or 4 (MQTT 3.1.1).
    pub protocol: Option<u32>,
    /// QoS of agent-chat, user-chat, user-survey.
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
    /// A stream quiet this long gets an end mark (0: at close only).
    pub end_mark_idle_ms: Option<u32>,
    /// QoS 1/2 messages out that no receiver has reported reading yet (0: credits off; default
    /// 512, 0 on the embedded broker).
    pub credit_window: Option<u32>,
}

fn options(c: NativeBusConfig) -> Result<BusOptions> {
    let mut o = BusOptions::new(c.exp, c.client_id);
    o.url = c.url;
    o.local = c.local.unwrap_or(false);
    o.agents = c.agents.unwrap_or_default();
    o.subscribe = match c.subscribe.as_deref() {
        None | Some("agents") => SubscribeMode::Agents,
        Some("experiment") => SubscribeMode::Experiment,
        Some(other) => return Err(invalid(format!("subscribe must be 'agents' or 'experiment', got {other:?}"))),
    };
    o.protocol = match c.protocol {
        None | Some(5) => Protocol::V5,
        Some(4) | Some(3) => Protocol::V311,
        Some(other) => return Err(invalid(format!("protocol must be 5 or 4 (3.1.1), got {other}"))),
    };
    if let Some(q) = c.qos {
        if q.len() != 3 {
            return Err(invalid("qos needs three levels: agent-chat, user-chat, user-survey"));
        }
        for (i, level) in q.into_iter().enumerate() {
            o.qos[i] = Qos::from_u8(level.min(255) as u8).map_err(to_js)?;
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

/// Inbound messages in columns: five N-API values per take instead of eight per message. Each
/// value costs the JS thread: with one typed array per column, taking one message cost 27 us
/// (median), against 10 us with one buffer for all of them. Agent and sender ids repeat across a
/// take, so each distinct one travels once, in `names` (newline-joined), indexed per message.
/// `msgIds` is newline-joined (a foreign id's newlines become spaces). `data` holds the numeric
/// columns, then the payloads, in the layout `column_layout` gives (native byte order).
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

#[napi]
pub struct NativeBus {
    bus: Arc<Bus>,
}

#[napi]
impl NativeBus {
    #[napi(factory)]
    pub async fn connect(config: NativeBusConfig) -> Result<NativeBus> {
        let opts = options(config)?;
        let bus = Bus::connect(opts).await.map_err(to_js)?;
        Ok(NativeBus { bus })
    }

    /// A batch in columns: recipients joined by '\n', one kind index each, payloads concatenated
    /// with their end offsets; `from` and `msgIds` optional ('\n'-joined, empty entry = default).
    #[napi]
    pub async fn publish(
        &self,
        to: String,
        kinds: Uint8Array,
        payloads: Buffer,
        ends: Uint32Array,
        from: Option<String>,
        msg_ids: Option<String>,
    ) -> Result<u32> {
        let batch = guarded(|| Ok(outbound(&to, &kinds, &payloads, &ends, from.as_deref(), msg_ids.as_deref())))??;
        let n = batch.len() as u32;
        self.bus.publish(batch).await.map_err(to_js)?;
        Ok(n)
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

    #[napi]
    pub async fn drain(&self) -> Result<()> {
        self.bus.drain().await.map_err(to_js)
    }

    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.bus.close().await.map_err(to_js)
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

fn outbound(to: &str, kinds: &[u8], payloads: &[u8], ends: &[u32], from: Option<&str>, msg_ids: Option<&str>) -> Result<Vec<Outbound>> {
    let recipients: Vec<&str> = if to.is_empty() { Vec::new() } else { to.split('\n').collect() };
    let n = recipients.len();
    if kinds.len() != n || ends.len() != n {
        return Err(invalid(format!("batch columns disagree: {n} recipients, {} kinds, {} payload ends", kinds.len(), ends.len())));
    }
    let column = |joined: Option<&str>, what: &str| -> Result<Vec<Option<String>>> {
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

/// Byte offsets in `InboundColumns::data` for `n` messages: seqs and ts (f64), agent and sender
/// name indexes and payload ends (u32, relative to `payloads`), kinds (u8), then the payloads.
/// The f64 columns come first so every column sits at a multiple of its element size.
struct ColumnLayout {
    ts: usize,
    agents: usize,
    froms: usize,
    ends: usize,
    kinds: usize,
    payloads: usize,
}

fn column_layout(n: usize) -> ColumnLayout {
    ColumnLayout { ts: 8 * n, agents: 16 * n, froms: 20 * n, ends: 24 * n, kinds: 28 * n, payloads: 29 * n }
}

fn columns(taken: myriad_core::bus::Taken) -> InboundColumns {
    let n = taken.messages.len();
    let at = column_layout(n);
    let mut data = vec![0u8; at.payloads + taken.messages.iter().map(|m| m.payload.len()).sum::<usize>()];
    let mut names = Names::default();
    let mut msg_ids = String::with_capacity(n * 40);
    let mut payload_end = at.payloads;
    let mut put = |offset: usize, bytes: &[u8]| data[offset..offset + bytes.len()].copy_from_slice(bytes);
    for (i, m) in taken.messages.iter().enumerate() {
        if i > 0 {
            msg_ids.push('\n');
        }
        msg_ids.push_str(&m.msg_id);
        put(8 * i, &(m.seq as f64).to_ne_bytes());
        put(at.ts + 8 * i, &(m.ts as f64).to_ne_bytes());
        put(at.agents + 4 * i, &names.index(&m.agent).to_ne_bytes());
        put(at.froms + 4 * i, &names.index(&m.from).to_ne_bytes());
        put(at.kinds + i, &[m.kind as u8]);
        put(payload_end, &m.payload);
        payload_end += m.payload.len();
        put(at.ends + 4 * i, &((payload_end - at.payloads) as u32).to_ne_bytes());
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
    let protocol = match protocol {
        None | Some(5) => Protocol::V5,
        Some(4) | Some(3) => Protocol::V311,
        Some(other) => return Err(invalid(format!("protocol must be 5 or 4, got {other}"))),
    };
    guarded(|| myriad_core::bus::embedded_broker_url(protocol))
}
