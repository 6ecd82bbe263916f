//! Promises. Whatever runs the work (the libuv pool, the embedder's threads, tokio), the result
//! settles on the JS thread as a [`Settled`], which makes the rejection's error object there, with
//! its `code` (see `error`).

use std::future::Future;
use std::task::Poll;

use napi::bindgen_prelude::*;

use crate::error::to_js;

/// A core result on its way to a promise: `Ok` resolves it with the value, `Err` rejects it with
/// an error whose `code` is the core error's code.
pub struct Settled<T>(pub myriad_core::Result<T>);

impl<T: ToNapiValue> ToNapiValue for Settled<T> {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val.0 {
            Ok(value) => unsafe { T::to_napi_value(env, value) },
            Err(e) => {
                let error = to_js(e);
                let reason = error.reason.clone();
                // The error object, made here with its code; handed back as an error that refers
                // to it, so napi-rs rejects the promise with this very object.
                let value = unsafe { JsError::from(error).into_value(env) };
                if value.is_null() {
                    // The environment is shutting down; nothing will see the rejection.
                    return Err(napi::Error::from_reason(reason));
                }
                Err(napi::Error::from(unsafe { Unknown::from_raw_unchecked(env, value) }))
            }
        }
    }
}

impl<T: TypeName> TypeName for Settled<T> {
    fn type_name() -> &'static str {
        T::type_name()
    }

    fn value_type() -> ValueType {
        T::value_type()
    }
}

/// Awaits `work` and settles with its result; a panic while polling it becomes `ERR_INTERNAL`.
pub async fn settle<T>(work: impl Future<Output = myriad_core::Result<T>>) -> Settled<T> {
    let mut work = std::pin::pin!(work);
    let result = std::future::poll_fn(|cx| match myriad_core::catch_panic(|| Ok(work.as_mut().poll(cx))) {
        Ok(Poll::Pending) => Poll::Pending,
        Ok(Poll::Ready(result)) => Poll::Ready(result),
        Err(panic) => Poll::Ready(Err(panic)),
    })
    .await;
    Settled(result)
}

/// A closure run on the libuv thread pool; its result settles the promise (a panic becomes
/// `ERR_INTERNAL`).
pub struct Job<T: ToNapiValue + TypeName + Send + 'static> {
    work: Option<Box<dyn FnOnce() -> myriad_core::Result<T> + Send>>,
}

impl<T: ToNapiValue + TypeName + Send + 'static> Job<T> {
    pub fn spawn(work: impl FnOnce() -> myriad_core::Result<T> + Send + 'static) -> AsyncTask<Job<T>> {
        AsyncTask::new(Job { work: Some(Box::new(work)) })
    }
}

impl<T: ToNapiValue + TypeName + Send + 'static> Task for Job<T> {
    type Output = myriad_core::Result<T>;
    type JsValue = Settled<T>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(match self.work.take() {
            Some(work) => myriad_core::catch_panic(work),
            None => Err(myriad_core::Error::Internal("job ran twice".into())),
        })
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Settled<T>> {
        Ok(Settled(output))
    }
}
