//! Loading ONNX Runtime at run time (`ort` with `load-dynamic`).
//!
//! The library is not linked: Myriad uses the `libonnxruntime` that the npm package `onnxruntime-node`
//! ships for each platform, so users need no separate install. Loading happens once per process.
//! Everything here returns errors: `ort` panics if a session is created before the library is
//! loaded, so [`ensure_loaded`] is the gate every session goes through.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// What was loaded, reported back to callers (and asserted by tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub path: PathBuf,
    /// e.g. "1.30.0", read from the library itself.
    pub version: String,
}

/// The oldest ONNX Runtime minor version our `ort` API level accepts (feature `api-22`).
pub const MIN_ORT_MINOR: u32 = ort::MINOR_VERSION;

static LOADED: Mutex<Option<RuntimeInfo>> = Mutex::new(None);

/// Loads ONNX Runtime from `path`, or from `ORT_DYLIB_PATH` when `path` is `None`.
/// Later calls return the first load's info, or fail if they name another file: a process can
/// hold only one ONNX Runtime.
pub fn init(path: Option<&Path>) -> Result<RuntimeInfo> {
    let mut loaded = LOADED.lock().map_err(|_| Error::Internal("runtime lock poisoned".into()))?;
    if let Some(info) = loaded.as_ref() {
        return match path {
            Some(p) if p != info.path => Err(Error::InvalidArg(format!(
                "ONNX Runtime {} is already loaded from {}; a process can hold only one",
                info.version,
                info.path.display()
            ))),
            _ => Ok(info.clone()),
        };
    }
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("ORT_DYLIB_PATH")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| Error::OrtNotFound("no library path given and ORT_DYLIB_PATH is not set".into()))?,
    };
    // A relative path would be resolved by `ort` against the node binary's folder: refuse it.
    if !path.is_absolute() {
        return Err(Error::OrtNotFound(format!("{}: the path must be absolute", path.display())));
    }
    if !path.is_file() {
        return Err(Error::OrtNotFound(format!("{}: no such file", path.display())));
    }
    let version = read_version(&path)?;
    let minor: u32 = version.split('.').nth(1).and_then(|m| m.parse().ok()).unwrap_or(0);
    if minor < MIN_ORT_MINOR {
        return Err(Error::OrtNotFound(format!("{} is ONNX Runtime {version}; Myriad needs 1.{MIN_ORT_MINOR} or newer", path.display())));
    }
    ort::init_from(&path).map_err(|e| Error::OrtNotFound(e.to_string()))?.with_name("myriad").commit();
    let info = RuntimeInfo { path, version };
    *loaded = Some(info.clone());
    Ok(info)
}

/// The runtime loaded so far, if any.
pub fn loaded() -> Option<RuntimeInfo> {
    LOADED.lock().ok().and_then(|l| l.clone())
}

/// Fails with `ERR_ORT_NOT_FOUND` unless [`init`] succeeded (tries `ORT_DYLIB_PATH` once).
pub fn ensure_loaded() -> Result<RuntimeInfo> {
    match loaded() {
        Some(info) => Ok(info),
        None => init(None),
    }
}

/// Opens the library on its own to read its version before handing it to `ort`, so an incompatible
/// file becomes an error with the version in it instead of a failure deep inside `ort`.
fn read_version(path: &Path) -> Result<String> {
    type GetApiBase = unsafe extern "C" fn() -> *const ApiBase;
    #[repr(C)]
    struct ApiBase {
        get_api: unsafe extern "C" fn(u32) -> *const std::ffi::c_void,
        get_version_string: unsafe extern "C" fn() -> *const std::ffi::c_char,
    }
    // SAFETY: loading a library runs its initialisers; this is the library the caller chose to run.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| Error::OrtNotFound(format!("{}: {e}", path.display())))?;
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime release (C API contract).
    let get_base: libloading::Symbol<GetApiBase> = unsafe { lib.get(b"OrtGetApiBase") }
        .map_err(|_| Error::OrtNotFound(format!("{} does not export OrtGetApiBase", path.display())))?;
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(Error::OrtNotFound(format!("{}: OrtGetApiBase returned null", path.display())));
    }
    // SAFETY: non-null ApiBase; the version string is a static C string owned by the library.
    let version = unsafe { CStr::from_ptr(((*base).get_version_string)()) }.to_string_lossy().into_owned();
    // Keep it mapped: `ort` opens the same file next, and unloading ONNX Runtime mid-process is not
    // something it supports well.
    std::mem::forget(lib);
    Ok(version)
}
