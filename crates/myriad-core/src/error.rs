//! One error type for the whole core. Every variant maps to a stable code that the binding hands to
//! JavaScript as `error.code`, so callers can branch on it without parsing messages.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable code JavaScript sees as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::OrtNotFound(_) => "ERR_ORT_NOT_FOUND",
            Error::Ort(_) => "ERR_ORT",
            Error::ProviderUnavailable { .. } => "ERR_PROVIDER_UNAVAILABLE",
            Error::ModelNotFound(_) => "ERR_MODEL_NOT_FOUND",
            Error::InvalidModel(_) => "ERR_INVALID_MODEL",
            Error::Tokenizer(_) => "ERR_TOKENIZER",
            Error::Dimension { .. } => "ERR_DIMENSION",
            Error::NotFinite(_) => "ERR_NOT_FINITE",
            Error::ZeroVector(_) => "ERR_ZERO_VECTOR",
            Error::UnknownId(_) => "ERR_UNKNOWN_ID",
            Error::InvalidArg(_) => "ERR_INVALID_ARG",
            Error::EmptyIndex => "ERR_EMPTY_INDEX",
            Error::Io { .. } => "ERR_IO",
            Error::CorruptIndex { .. } => "ERR_CORRUPT_INDEX",
            Error::CorruptSnapshot { .. } => "ERR_CORRUPT_SNAPSHOT",
            Error::InvalidTopic(_) => "ERR_INVALID_TOPIC",
            Error::PayloadTooLarge { .. } => "ERR_PAYLOAD_TOO_LARGE",
            Error::BusClosed => "ERR_BUS_CLOSED",
            Error::BusConnect(_) => "ERR_BUS_CONNECT",
            Error::BusRefused(_) => "ERR_BUS_REFUSED",
            Error::SinkClosed => "ERR_SINK_CLOSED",
            Error::SinkConnect(_) => "ERR_SINK_CONNECT",
            Error::SinkWrite(_) => "ERR_SINK_WRITE",
            Error::CorruptArchive { .. } => "ERR_CORRUPT_ARCHIVE",
            Error::Internal(_) => "ERR_INTERNAL",
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
