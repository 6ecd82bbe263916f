//! Errors as JavaScript sees them: an `Error` whose message is the core error's text and whose
//! `code` property is its [`ErrorCode`] (`ERR_DIMENSION`, ...), for sync calls and rejected
//! promises alike.
//!
//! N-API makes an error with `napi_create_error(env, code, message)`, and napi-rs passes an
//! error's status string as that code; `napi::Error` is generic in its status, so the binding's
//! errors carry a [`Code`] as theirs. Synchronous functions return [`Result`] and the generated
//! glue throws the error with that code. Promises settle on the JS thread through
//! [`crate::settle::Settled`], which makes the error there.
//!
//! One exception: when napi-rs itself cannot convert an argument (a number where a string is
//! expected, a missing field), it throws before our code runs, with its own status as `code`
//! (`StringExpected`, `NumberExpected`, `InvalidArg`, ...); napi-rs offers no hook to change that.
//! The TypeScript layer maps those to `ERR_INVALID_ARG`.

use myriad_core::ErrorCode;
use napi_derive::napi;

/// An error's `code` in JavaScript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code(pub ErrorCode);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

pub type Result<T> = napi::Result<T, Code>;

pub fn to_js(e: myriad_core::Error) -> napi::Error<Code> {
    napi::Error::new(Code(e.code()), e.to_string())
}

pub fn invalid(msg: impl std::fmt::Display) -> napi::Error<Code> {
    to_js(myriad_core::Error::InvalidArg(msg.to_string()))
}

/// A failed N-API call of ours (making a promise, say): not the caller's doing.
pub fn napi_failed(e: napi::Error) -> napi::Error<Code> {
    to_js(myriad_core::Error::Internal(format!("N-API: {e}")))
}

/// Runs `f` and turns a panic into an `ERR_INTERNAL` error: no Rust panic may cross into Node.
pub fn guarded<T>(f: impl FnOnce() -> myriad_core::Result<T>) -> Result<T> {
    myriad_core::catch_panic(f).map_err(to_js)
}

#[napi(object)]
pub struct NativeErrorCode {
    pub code: String,
    /// `runtime`, `matching`, `registry`, `pml`, `policy`, `bus`, `sink`, `llm`, `agents`,
    /// `experiment` or `general`.
    pub component: String,
    /// One sentence for the error reference.
    pub summary: String,
}

/// Every error code Myriad uses, the TypeScript layer's included, in the order of the list in
/// `myriad_core::error`: the source of the TypeScript union of codes and of the error reference.
#[napi]
pub fn error_codes() -> Vec<NativeErrorCode> {
    ErrorCode::ALL
        .iter()
        .map(|c| NativeErrorCode { code: c.as_str().into(), component: c.component().into(), summary: c.summary().into() })
        .collect()
}
