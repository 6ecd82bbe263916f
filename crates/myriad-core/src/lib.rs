//! Myriad's hot paths in pure Rust. Nothing here knows about N-API: the `myriad-node` crate wraps
//! these types for JavaScript, and cargo tests exercise them directly.

pub mod bus;
mod chunked;
pub mod embed;
pub mod error;
pub mod index;
pub mod io;
pub mod model;
mod names;
pub mod policy;
pub mod registry;
pub mod runtime;
pub mod sink;

pub use bus::{Bus, BusOptions, BusStats, Inbound, Kind, Outbound};
pub use embed::{EmbedQueue, Embedder, EmbedderOptions, Encoded, Provider};
pub use error::{catch_panic, Error, ErrorCode, Result};
pub use index::{Hit, IndexMemory, IndexOptions, SemanticIndex, Storage};
pub use model::{ModelSource, Precision};
pub use policy::{Choice, Decision, Policy, PolicyOptions, Transition};
pub use registry::{Outcome, Registry, RegistryMemory, RegistryOptions};
pub use sink::{Sink, SinkOptions, SinkStats, WriteOutcome};
