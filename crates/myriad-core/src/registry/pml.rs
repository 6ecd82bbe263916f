//! PML, the Pulse Message Language: Myriad's small versioned JSON protocol between agents and the
//! runtime (documented in the README). Parsing is strict about what it needs and never panics:
//! every problem becomes a [`PmlError`] with a stable code and a reason.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::ErrorCode;

pub const PML_VERSION: u64 = 1;
/// Largest accepted message, whole (bytes of JSON text).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest accepted `body`.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest `msgId`, `from`, `to`, `taskId` (UUIDs are 36 bytes).
pub const MAX_ID_BYTES: usize = 256;
/// Longest specialty text or query.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PmlError {
    pub code: ErrorCode,
    pub reason: String,
}

impl PmlError {
    pub(crate) fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        PmlError { code, reason: reason.into() }
    }
    fn field(reason: impl Into<String>) -> Self {
        PmlError::new(ErrorCode::PmlField, reason)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Idle,
    Busy,
    Offline,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Idle => "idle",
            Status::Busy => "busy",
            Status::Offline => "offline",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "idle" => Some(Status::Idle),
            "busy" => Some(Status::Busy),
            "offline" => Some(Status::Offline),
            _ => None,
        }
    }
}

/// A validated message, borrowing from the JSON text where it can (no escapes): parsing allocates
/// only what the registry keeps. `from` is always a non-empty id; `to` is checked per type.
#[derive(Debug, Clone, PartialEq)]
pub struct Message<'a> {
    pub msg_id: Cow<'a, str>,
    pub from: Cow<'a, str>,
    pub to: Option<Cow<'a, str>>,
    /// Milliseconds since the Unix epoch, as the sender stamped it.
    pub ts: f64,
    pub body: Body<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    Register { specialty: Cow<'a, str>, capacity: u32 },
    Heartbeat { load: Option<u32>, status: Option<Status> },
    Request { task_id: Cow<'a, str>, query: Cow<'a, str> },
    Offer { task_id: Cow<'a, str> },
    Result { task_id: Cow<'a, str>, success: bool, latency_ms: Option<f64> },
    Feedback { task_id: Option<Cow<'a, str>>, success: bool, latency_ms: Option<f64> },
    Deregister,
}

impl Body<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Register { .. } => "register",
            Body::Heartbeat { .. } => "heartbeat",
            Body::Request { .. } => "request",
            Body::Offer { .. } => "offer",
            Body::Result { .. } => "result",
            Body::Feedback { .. } => "feedback",
            Body::Deregister => "deregister",
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    // Raw, so that a wrong type here reads as a version or field problem rather than bad JSON.
    #[serde(borrow)]
    v: Option<&'a RawValue>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "msgId", borrow)]
    msg_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ts: Option<&'a RawValue>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
}

/// The envelope's fields as read, before validation; `v`, `ts` and `body` as their JSON text.
/// Both readers (serde, and the scanner in [`super::pml_scan`]) produce this, and one validation
/// follows, so the two cannot disagree on what is valid.
pub(super) struct Fields<'a> {
    pub v: Option<&'a str>,
    pub kind: Option<Cow<'a, str>>,
    pub msg_id: Option<Cow<'a, str>>,
    pub from: Option<Cow<'a, str>>,
    pub to: Option<Cow<'a, str>>,
    pub ts: Option<&'a str>,
    pub body: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterBody<'a> {
    #[serde(borrow)]
    pub specialty: Cow<'a, str>,
    pub capacity: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HeartbeatBody<'a> {
    pub load: Option<u32>,
    #[serde(borrow)]
    pub status: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RequestBody<'a> {
    #[serde(borrow)]
    pub task_id: Cow<'a, str>,
    #[serde(borrow)]
    pub query: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct OfferBody<'a> {
    #[serde(borrow)]
    pub task_id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct OutcomeBody<'a> {
    #[serde(borrow)]
    pub task_id: Option<Cow<'a, str>>,
    pub success: bool,
    pub latency_ms: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// A body as read, before validation (`Outcome` serves `result` and `feedback`).
pub(super) enum RawBody<'a> {
    Register(RegisterBody<'a>),
    Heartbeat(HeartbeatBody<'a>),
    Request(RequestBody<'a>),
    Offer(OfferBody<'a>),
    Outcome(OutcomeBody<'a>),
    Deregister,
}

/// Parses and validates one PML message.
pub fn parse(raw: &str) -> Result<Message<'_>, PmlError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(PmlError::new(ErrorCode::PmlTooLarge, format!("message of {} bytes exceeds {MAX_MESSAGE_BYTES}", raw.len())));
    }
    // The scanner reads the usual message in one pass, several times faster than serde; it gives
    // up on anything unusual (escapes, nulls, repeated keys...), and serde then reads the message
    // and words any error. A body the scanner gives up on is read by serde alone.
    match super::pml_scan::envelope(raw) {
        Some(fields) => validate(fields, |kind, body| super::pml_scan::body(kind, body).map_or_else(|| read_body(kind, body), Ok)),
        None => parse_with_serde(raw),
    }
}

/// [`parse`] without the scanner (the size already checked).
pub(super) fn parse_with_serde(raw: &str) -> Result<Message<'_>, PmlError> {
    let env: Envelope = serde_json::from_str(raw).map_err(|e| PmlError::new(ErrorCode::PmlJson, format!("not a PML JSON object: {e}")))?;
    let fields = Fields {
        v: env.v.map(RawValue::get),
        kind: env.kind,
        msg_id: env.msg_id,
        from: env.from,
        to: env.to,
        ts: env.ts.map(RawValue::get),
        body: env.body.map(RawValue::get),
    };
    validate(fields, read_body)
}

fn validate<'a>(f: Fields<'a>, read: impl FnOnce(&str, &'a str) -> Result<RawBody<'a>, PmlError>) -> Result<Message<'a>, PmlError> {
    match f.v.map(str::parse::<u64>) {
        Some(Ok(PML_VERSION)) => {}
        Some(Ok(other)) => {
            return Err(PmlError::new(ErrorCode::PmlVersion, format!("version {other} is not supported (this is PML {PML_VERSION})")))
        }
        _ => return Err(PmlError::new(ErrorCode::PmlVersion, format!("`v` must be the number {PML_VERSION}"))),
    }
    let kind = f.kind.ok_or_else(|| PmlError::field("`type` is missing"))?;
    let msg_id = id(f.msg_id, "msgId")?;
    let from = id(f.from, "from")?;
    let to = f.to.map(|t| id(Some(t), "to")).transpose()?;
    let ts = f.ts.ok_or_else(|| PmlError::field("`ts` (milliseconds since the epoch) is missing"))?;
    let ts: f64 = ts.parse().map_err(|_| PmlError::field("`ts` must be a number"))?;
    if !ts.is_finite() || ts < 0.0 {
        return Err(PmlError::field("`ts` must be a non-negative number"));
    }
    let body_raw = f.body.ok_or_else(|| PmlError::field("`body` is missing"))?;
    if body_raw.len() > MAX_BODY_BYTES {
        return Err(PmlError::new(ErrorCode::PmlTooLarge, format!("body of {} bytes exceeds {MAX_BODY_BYTES}", body_raw.len())));
    }
    let body = check_body(&kind, read(&kind, body_raw)?)?;
    if matches!(body, Body::Offer { .. } | Body::Feedback { .. }) && to.is_none() {
        return Err(PmlError::field(format!("`{kind}` needs `to`")));
    }
    Ok(Message { msg_id, from, to, ts, body })
}

/// Reads a body of type `kind` with serde.
fn read_body<'a>(kind: &str, raw: &'a str) -> Result<RawBody<'a>, PmlError> {
    fn de<'a, T: Deserialize<'a>>(kind: &str, raw: &'a str) -> Result<T, PmlError> {
        serde_json::from_str(raw).map_err(|e| PmlError::field(format!("bad `{kind}` body: {e}")))
    }
    Ok(match kind {
        "register" => RawBody::Register(de(kind, raw)?),
        "heartbeat" => RawBody::Heartbeat(de(kind, raw)?),
        "request" => RawBody::Request(de(kind, raw)?),
        "offer" => RawBody::Offer(de(kind, raw)?),
        "result" | "feedback" => RawBody::Outcome(de(kind, raw)?),
        "deregister" => {
            let _: EmptyBody = de(kind, raw)?;
            RawBody::Deregister
        }
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(PmlError::new(ErrorCode::PmlType, format!("unknown type '{shown}'")));
        }
    })
}

/// Checks what a body says (lengths, ranges, known words) and gives it its final shape.
fn check_body<'a>(kind: &str, body: RawBody<'a>) -> Result<Body<'a>, PmlError> {
    Ok(match body {
        RawBody::Register(b) => {
            text(&b.specialty, "specialty")?;
            let capacity = b.capacity.unwrap_or(1);
            if capacity == 0 {
                return Err(PmlError::field("`capacity` must be at least 1"));
            }
            Body::Register { specialty: b.specialty, capacity }
        }
        RawBody::Heartbeat(b) => {
            let status = match b.status.as_deref() {
                None => None,
                Some(s) => Some(Status::parse(s).ok_or_else(|| PmlError::field(format!("unknown status '{s}' (idle, busy, offline)")))?),
            };
            Body::Heartbeat { load: b.load, status }
        }
        RawBody::Request(b) => {
            text(&b.query, "query")?;
            Body::Request { task_id: id(Some(b.task_id), "taskId")?, query: b.query }
        }
        RawBody::Offer(b) => Body::Offer { task_id: id(Some(b.task_id), "taskId")? },
        RawBody::Outcome(b) => {
            if let Some(ms) = b.latency_ms {
                if !ms.is_finite() || ms < 0.0 {
                    return Err(PmlError::field("`latencyMs` must be a non-negative number"));
                }
            }
            let task_id = b.task_id.map(|t| id(Some(t), "taskId")).transpose()?;
            if kind == "result" {
                let task_id = task_id.ok_or_else(|| PmlError::field("`result` needs `taskId`"))?;
                Body::Result { task_id, success: b.success, latency_ms: b.latency_ms }
            } else {
                Body::Feedback { task_id, success: b.success, latency_ms: b.latency_ms }
            }
        }
        RawBody::Deregister => Body::Deregister,
    })
}

fn id<'a>(value: Option<Cow<'a, str>>, name: &str) -> Result<Cow<'a, str>, PmlError> {
    let v = value.ok_or_else(|| PmlError::field(format!("`{name}` is missing")))?;
    if v.is_empty() || v.len() > MAX_ID_BYTES {
        return Err(PmlError::field(format!("`{name}` must be 1..={MAX_ID_BYTES} bytes")));
    }
    Ok(v)
}

fn text(value: &str, name: &str) -> Result<(), PmlError> {
    if value.len() > MAX_TEXT_BYTES {
        return Err(PmlError::new(ErrorCode::PmlTooLarge, format!("`{name}` exceeds {MAX_TEXT_BYTES} bytes")));
    }
    Ok(())
}
