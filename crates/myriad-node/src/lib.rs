//! The N-API binding: thin `#[napi]` wrappers over `myriad-core`. Each wrapper checks and converts
//! arguments, moves heavy work off the JS thread (the libuv pool through `AsyncTask`; embedding
//! onto its model's own threads, `myriad_core::EmbedQueue`) and maps core errors to JS errors
//! with a `code` property (see `error`). Every class is `Native*` in JS; the TypeScript layer wraps
//! each one.

#![deny(clippy::all)]

/// mimalloc for every Rust allocation in the addon. Messages, rows and batches are built on
/// worker threads and freed on the JS thread (or the reverse), which glibc's malloc handles
/// slowly: on the local bus, freeing drained inbound messages took a visible share of the JS
/// thread's time, and with mimalloc the JS thread spends less time per message and the local
/// bus carries more messages a second, while the registry and sink suites stayed within their
/// noise (see docs/benchmarks/).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// napi-rs registers `#[napi]` functions with Node only outside `cfg(test)`: in the unit tests, the
// exported functions that nothing in Rust calls look unused.
#[cfg_attr(test, allow(dead_code, reason = "exports registered with Node outside tests only"))]
mod bus;
#[cfg_attr(test, allow(dead_code, reason = "exports registered with Node outside tests only"))]
mod defaults;
mod embedder;
#[cfg_attr(test, allow(dead_code, reason = "exports registered with Node outside tests only"))]
mod error;
mod index;
mod policy;
mod registry;
mod settle;
#[cfg_attr(test, allow(dead_code, reason = "exports registered with Node outside tests only"))]
mod sink;
mod text;

use napi_derive::napi;

use crate::error::{guarded, Result};

#[napi(object)]
pub struct RuntimeInfo {
    pub path: String,
    pub version: String,
}

/// Loads ONNX Runtime from `path` (absolute), or from `ORT_DYLIB_PATH` when omitted. Idempotent:
/// later calls report the runtime already loaded.
#[napi]
pub fn init_runtime(path: Option<String>) -> Result<RuntimeInfo> {
    guarded(|| {
        let info = myriad_core::runtime::init(path.as_deref().map(std::path::Path::new))?;
        Ok(RuntimeInfo { path: info.path.display().to_string(), version: info.version })
    })
}

/// Which SIMD kernels the index scan uses on this CPU (e.g. "avx2+fma+f16c" or "portable").
#[napi]
pub fn simd_kernels() -> String {
    myriad_core::index::kernels().name.to_string()
}
