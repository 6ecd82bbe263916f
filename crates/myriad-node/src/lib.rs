//! The N-API binding: thin `#[napi]` wrappers over `myriad-core`. Each wrapper checks arguments,
//! moves heavy work off the JS thread (the libuv pool through `AsyncTask`; embedding onto its
//! model's own thread, see `embedder.rs`) and maps core errors to JS errors.
//!
//! Error convention: the message starts with the stable code (`ERR_DIMENSION: ...`); the TypeScript
//! layer turns that into `error.code`, the same way for sync calls and rejected promises.

#![deny(clippy::all)]

/// mimalloc for every Rust allocation in the addon. Messages, rows and batches are built on
/// worker threads and freed on the JS thread (or the reverse), which glibc's malloc handles
/// slowly: on the local bus, freeing drained inbound messages took ~13 % of the JS thread. In
/// alternating runs (2026-11-29, 1,000,000 local-transport messages) the JS thread's time went
/// from 1.05-1.21 to 0.88-1.15 us a message and throughput from 643-777 k to 702 k-1.0 M msgs/s;
/// the registry and sink suites stayed within their noise.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bus;
mod embedder;
mod index;
mod policy;
mod registry;
mod sink;
mod text;

use std::panic::{catch_unwind, AssertUnwindSafe};

use napi::bindgen_prelude::*;
use napi_derive::napi;

pub(crate) fn to_js(e: myriad_core::Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, format!("{}: {e}", e.code()))
}

pub(crate) fn invalid(msg: impl std::fmt::Display) -> napi::Error {
    to_js(myriad_core::Error::InvalidArg(msg.to_string()))
}

/// Runs `f` and turns a panic into an `ERR_INTERNAL` error: no Rust panic may cross into Node.
pub(crate) fn guarded<T>(f: impl FnOnce() -> myriad_core::Result<T>) -> napi::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(to_js),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(to_js(myriad_core::Error::Internal(format!("panic: {what}"))))
        }
    }
}

/// A closure run on the libuv thread pool; its result becomes the promise's value.
pub struct Job<T: ToNapiValue + TypeName + Send + 'static> {
    work: Option<Box<dyn FnOnce() -> myriad_core::Result<T> + Send>>,
}

impl<T: ToNapiValue + TypeName + Send + 'static> Job<T> {
    pub fn spawn(work: impl FnOnce() -> myriad_core::Result<T> + Send + 'static) -> AsyncTask<Job<T>> {
        AsyncTask::new(Job { work: Some(Box::new(work)) })
    }
}

impl<T: ToNapiValue + TypeName + Send + 'static> Task for Job<T> {
    type Output = T;
    type JsValue = T;

    fn compute(&mut self) -> napi::Result<T> {
        let work = self.work.take().ok_or_else(|| napi::Error::from_reason("ERR_INTERNAL: job ran twice"))?;
        guarded(work)
    }

    fn resolve(&mut self, _env: Env, output: T) -> napi::Result<T> {
        Ok(output)
    }
}

#[napi(object)]
pub struct RuntimeInfo {
    pub path: String,
    pub version: String,
}

/// Loads ONNX Runtime from `path` (absolute), or from `ORT_DYLIB_PATH` when omitted. Idempotent:
/// later calls report the runtime already loaded.
#[napi]
pub fn init_runtime(path: Option<String>) -> napi::Result<RuntimeInfo> {
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
