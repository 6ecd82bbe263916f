//! One error type for the whole core, and the one list of error codes. Every [`Error`] variant maps
//! to an [`ErrorCode`] that the binding hands to JavaScript as `error.code`, so callers can branch
//! on it without parsing messages. The list also holds the codes that only the TypeScript layer
//! raises (the LLM client's, `ERR_NO_EMBEDDER`): it is the single source that the TypeScript union
//! of codes and the error reference are generated from (see `errorCodes()` in the binding).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Defines [`ErrorCode`] from one list: `Variant = "ERR_CODE", "component", "summary";`.
macro_rules! error_codes {
    ($($variant:ident = $code:literal, $component:literal, $summary:literal;)*) => {
        /// A stable error code: what `error.code` holds in JavaScript.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(#[doc = $summary] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the list (grouped by component).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as JavaScript sees it, e.g. `ERR_DIMENSION`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The part of Myriad that raises it: `runtime`, `matching`, `registry`, `pml`,
            /// `policy`, `bus`, `sink`, `llm`, `agents`, `experiment` or `general`.
            pub const fn component(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $component,)*
                }
            }

            /// One sentence for the error reference: what the code means.
            pub const fn summary(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $summary,)*
                }
            }
        }
    };
}

error_codes! {
    OrtNotFound = "ERR_ORT_NOT_FOUND", "runtime",
        "ONNX Runtime could not be loaded: the library is missing or older than 1.22 (set ORT_DYLIB_PATH)";
    Ort = "ERR_ORT", "runtime",
        "ONNX Runtime failed while creating a session or running a model";
    ProviderUnavailable = "ERR_PROVIDER_UNAVAILABLE", "runtime",
        "The requested execution provider (coreml, cuda) is not part of this build or could not start";
    ModelNotFound = "ERR_MODEL_NOT_FOUND", "runtime",
        "The model's files are neither in the given directory nor in the Hugging Face cache, and could not be downloaded";
    InvalidModel = "ERR_INVALID_MODEL", "runtime",
        "A model file (embedding model, tokenizer or policy weights) is not in the expected format";
    Tokenizer = "ERR_TOKENIZER", "runtime",
        "The tokenizer failed on the given texts";
    Dimension = "ERR_DIMENSION", "matching",
        "A vector, query or policy state has the wrong number of floats for the index or policy";
    NotFinite = "ERR_NOT_FINITE", "matching",
        "A vector, policy state or reward contains NaN or an infinite value";
    ZeroVector = "ERR_ZERO_VECTOR", "matching",
        "A vector or query has zero length, so it has no direction to compare";
    UnknownId = "ERR_UNKNOWN_ID", "matching",
        "An id is not in the index (nothing was removed)";
    EmptyIndex = "ERR_EMPTY_INDEX", "matching",
        "A search ran on an index that holds no vectors";
    CorruptIndex = "ERR_CORRUPT_INDEX", "matching",
        "A file is not a valid index file: wrong format, truncated, or holding invalid values";
    NoEmbedder = "ERR_NO_EMBEDDER", "matching",
        "An index created without an embedder was given texts instead of vectors";
    CorruptSnapshot = "ERR_CORRUPT_SNAPSHOT", "registry",
        "A file is not a valid registry snapshot";
    UnknownAgent = "ERR_UNKNOWN_AGENT", "registry",
        "A PML message is from or to an agent that is not registered, or an agent's message is to an id that is not an agent of the experiment";
    PmlJson = "ERR_PML_JSON", "pml",
        "A PML message is not a JSON object";
    PmlVersion = "ERR_PML_VERSION", "pml",
        "A PML message's `v` is missing or is not a supported PML version";
    PmlField = "ERR_PML_FIELD", "pml",
        "A PML message has a missing, malformed or inconsistent field";
    PmlType = "ERR_PML_TYPE", "pml",
        "A PML message has an unknown `type`";
    PmlTooLarge = "ERR_PML_TOO_LARGE", "pml",
        "A PML message, its body or one of its texts exceeds its size limit";
    InvalidTopic = "ERR_INVALID_TOPIC", "bus",
        "An experiment, agent or client id is empty, too long, or contains '/', '+', '#' or a control character";
    PayloadTooLarge = "ERR_PAYLOAD_TOO_LARGE", "bus",
        "A message's payload exceeds the bus's maxPayload";
    BusClosed = "ERR_BUS_CLOSED", "bus",
        "The bus is closed";
    BusConnect = "ERR_BUS_CONNECT", "bus",
        "Could not connect to the MQTT broker: unreachable, refused, a TLS failure or bad credentials";
    BusRefused = "ERR_BUS_REFUSED", "bus",
        "The broker refused a message of the batch (for instance, not authorised to publish on its topic)";
    SinkClosed = "ERR_SINK_CLOSED", "sink",
        "The sink is closed";
    SinkConnect = "ERR_SINK_CONNECT", "sink",
        "Could not connect to the Postgres database";
    SinkWrite = "ERR_SINK_WRITE", "sink",
        "Rows were accepted but could not be written to the database or the archive";
    CorruptArchive = "ERR_CORRUPT_ARCHIVE", "sink",
        "A file is not a valid Myriad Avro archive file, or its schema does not match the table";
    SinkRead = "ERR_SINK_READ", "sink",
        "Reading records back from Postgres failed: the query was refused or the connection dropped";
    LlmTimeout = "ERR_LLM_TIMEOUT", "llm",
        "An LLM call did not finish within its deadline, or a stream went quiet for too long";
    LlmRateLimit = "ERR_LLM_RATE_LIMIT", "llm",
        "The LLM provider rate-limited the call (HTTP 429) and the retries ran out";
    LlmNetwork = "ERR_LLM_NETWORK", "llm",
        "The LLM provider could not be reached (connection refused or reset, DNS failure)";
    LlmServer = "ERR_LLM_SERVER", "llm",
        "The LLM provider answered with a server error (HTTP 5xx)";
    LlmRequest = "ERR_LLM_REQUEST", "llm",
        "The LLM provider rejected the request (HTTP 4xx), or the request names no known provider";
    LlmBadResponse = "ERR_LLM_BAD_RESPONSE", "llm",
        "The LLM provider sent a response that is not valid JSON or lacks what the call needs";
    LlmParse = "ERR_LLM_PARSE", "llm",
        "The model's reply does not match the schema of the requested structured output";
    LlmAborted = "ERR_LLM_ABORTED", "llm",
        "The LLM call was aborted through the caller's signal";
    LlmCircuitOpen = "ERR_LLM_CIRCUIT_OPEN", "llm",
        "The LLM call was not sent: the circuit breaker of every provider it may use is open";
    LlmSkipped = "ERR_LLM_SKIPPED", "llm",
        "The LLM call was not sent: the degradation ladder skipped it, or recorded it for later";
    LlmBudget = "ERR_LLM_BUDGET", "llm",
        "The prompt does not fit the token budget, even after trimming";
    LlmConfig = "ERR_LLM_CONFIG", "llm",
        "The LLM client or one of its providers is misconfigured";
    LlmClosed = "ERR_LLM_CLOSED", "llm",
        "The LLM client is closed";
    LlmNoProvider = "ERR_LLM_NO_PROVIDER", "llm",
        "An agent called the LLM and the experiment has no llm configured";
    AgentProfile = "ERR_AGENT_PROFILE", "agents",
        "A profile fails its agent type's schema, or a specialty is not a usable text";
    MessageSchema = "ERR_MESSAGE_SCHEMA", "agents",
        "A message body fails its kind's schema, or the kind is not declared";
    AgentTurn = "ERR_AGENT_TURN", "agents",
        "An agent's step or handler threw something that is not a MyriadError";
    StepTimeout = "ERR_STEP_TIMEOUT", "agents",
        "A turn ran past stepTimeoutMs and was aborted";
    AgentParked = "ERR_AGENT_PARKED", "agents",
        "An agent failed maxConsecutiveFailures turns in a row, or an intervention removed it: it takes no more turns";
    Undelivered = "ERR_UNDELIVERED", "agents",
        "A message reached an agent that takes no more turns (parked, or past its last turn): a failed delivery, recorded";
    ExperimentState = "ERR_EXPERIMENT_STATE", "experiment",
        "run() was called on an experiment that is running or has run, or on a stopped run";
    Survey = "ERR_SURVEY", "steering",
        "A survey is not valid: no questions, a question of an unknown kind, duplicate ids, options or a range that cannot be answered";
    TickPast = "ERR_TICK_PAST", "steering",
        "A survey, interview or intervention was scheduled for a tick the run has already started or passed";
    ReplayMismatch = "ERR_REPLAY_MISMATCH", "steering",
        "A replayed LLM call has no recorded call at its (agent, tick, call index), or the recorded request differs from this one";
    CheckpointCorrupt = "ERR_CHECKPOINT_CORRUPT", "steering",
        "A checkpoint file is damaged or truncated (a checksum or length does not match), or is not a Myriad checkpoint: nothing was loaded";
    CheckpointVersion = "ERR_CHECKPOINT_VERSION", "steering",
        "A checkpoint was written by a newer format version than this Myriad reads";
    CheckpointMismatch = "ERR_CHECKPOINT_MISMATCH", "steering",
        "Experiment.resume was given options that differ from the checkpoint's (the fields that differ are named)";
    Config = "ERR_CONFIG", "config",
        "An experiment file is not valid: broken YAML or JSON, an unknown key, a wrong type, a secret written in the file, or a run directory that exists";
    AgentsModule = "ERR_AGENTS_MODULE", "config",
        "The experiment's agents module is missing, fails to load, exports no agent type, or lacks a type or profiles export that the file names";
    LlmUnreachable = "ERR_LLM_UNREACHABLE", "config",
        "An LLM provider's URL does not answer when the run starts (checked before tick 0)";
    InvalidArg = "ERR_INVALID_ARG", "general",
        "An argument or option is invalid: wrong type, out of range, or inconsistent with another";
    Io = "ERR_IO", "general",
        "A file or directory could not be read or written";
    Internal = "ERR_INTERNAL", "general",
        "A bug in Myriad (a panic or a broken invariant), not a mistake of the caller: please report it";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ONNX Runtime could not be loaded: {0}")]
    OrtNotFound(String),
    #[error("ONNX Runtime failed: {0}")]
    Ort(String),
    #[error("execution provider `{provider}` is not available: {reason}")]
    ProviderUnavailable { provider: String, reason: String },
    #[error("model file not found: {0}")]
    ModelNotFound(String),
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),
    #[error("{what}: expected {expected} floats, got {got}")]
    Dimension { what: String, expected: usize, got: usize },
    #[error("{0} contains a NaN or infinite value")]
    NotFinite(String),
    #[error("{0} has zero length (norm 0), so it has no direction to compare")]
    ZeroVector(String),
    #[error("unknown id: {0}")]
    UnknownId(String),
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    #[error("the index is empty")]
    EmptyIndex,
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid index file: {reason}")]
    CorruptIndex { path: PathBuf, reason: String },
    #[error("{path} is not a valid registry snapshot: {reason}")]
    CorruptSnapshot { path: PathBuf, reason: String },
    #[error("invalid topic or id: {0}")]
    InvalidTopic(String),
    #[error("payload of {size} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("the bus is closed")]
    BusClosed,
    #[error("could not connect to the broker: {0}")]
    BusConnect(String),
    #[error("the broker refused a message of the batch: {0}")]
    BusRefused(String),
    #[error("the sink is closed")]
    SinkClosed,
    #[error("could not open the database: {0}")]
    SinkConnect(String),
    #[error("rows were accepted but could not be written: {0}")]
    SinkWrite(String),
    #[error("{path} is not a valid Myriad archive file: {reason}")]
    CorruptArchive { path: PathBuf, reason: String },
    #[error("reading records from Postgres: {0}")]
    SinkRead(String),
    #[error("{path} is not a valid checkpoint: {reason}")]
    CorruptCheckpoint { path: PathBuf, reason: String },
    #[error("{path} is a checkpoint of format version {found}; this Myriad reads versions up to {supported}: upgrade Myriad to resume it")]
    CheckpointVersion { path: PathBuf, found: u32, supported: u32 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable code JavaScript sees as `error.code`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::OrtNotFound(_) => ErrorCode::OrtNotFound,
            Error::Ort(_) => ErrorCode::Ort,
            Error::ProviderUnavailable { .. } => ErrorCode::ProviderUnavailable,
            Error::ModelNotFound(_) => ErrorCode::ModelNotFound,
            Error::InvalidModel(_) => ErrorCode::InvalidModel,
            Error::Tokenizer(_) => ErrorCode::Tokenizer,
            Error::Dimension { .. } => ErrorCode::Dimension,
            Error::NotFinite(_) => ErrorCode::NotFinite,
            Error::ZeroVector(_) => ErrorCode::ZeroVector,
            Error::UnknownId(_) => ErrorCode::UnknownId,
            Error::InvalidArg(_) => ErrorCode::InvalidArg,
            Error::EmptyIndex => ErrorCode::EmptyIndex,
            Error::Io { .. } => ErrorCode::Io,
            Error::CorruptIndex { .. } => ErrorCode::CorruptIndex,
            Error::CorruptSnapshot { .. } => ErrorCode::CorruptSnapshot,
            Error::InvalidTopic(_) => ErrorCode::InvalidTopic,
            Error::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Error::BusClosed => ErrorCode::BusClosed,
            Error::BusConnect(_) => ErrorCode::BusConnect,
            Error::BusRefused(_) => ErrorCode::BusRefused,
            Error::SinkClosed => ErrorCode::SinkClosed,
            Error::SinkConnect(_) => ErrorCode::SinkConnect,
            Error::SinkWrite(_) => ErrorCode::SinkWrite,
            Error::CorruptArchive { .. } => ErrorCode::CorruptArchive,
            Error::SinkRead(_) => ErrorCode::SinkRead,
            Error::CorruptCheckpoint { .. } => ErrorCode::CheckpointCorrupt,
            Error::CheckpointVersion { .. } => ErrorCode::CheckpointVersion,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::Ort(e.to_string())
    }
}

/// Runs `f`, turning a panic into [`Error::Internal`]: for work on threads that must outlive a
/// failed job, and for the binding, where no panic may cross into Node.
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::Internal(format!("panic: {what}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_prefixed_and_explained() {
        let components = [
            "runtime",
            "matching",
            "registry",
            "pml",
            "policy",
            "bus",
            "sink",
            "llm",
            "agents",
            "experiment",
            "steering",
            "config",
            "general",
        ];
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} is listed twice");
            assert!(
                code.as_str().starts_with("ERR_")
                    && code.as_str()[4..].bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
            assert!(components.contains(&code.component()), "{code}: unknown component {}", code.component());
            assert!(!code.summary().trim().is_empty() && !code.summary().contains('\n'), "{code} needs a one-line summary");
        }
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let e = catch_panic::<()>(|| panic!("boom")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Internal);
        assert_eq!(e.to_string(), "internal error: panic: boom");
        assert_eq!(catch_panic(|| Ok(7)).unwrap(), 7);
    }
}
