//! An embedder's calls on threads of its own. They serialise on the one ONNX Runtime session
//! anyway, and on a shared pool (libuv's four threads, in Node) each waiting call would hold a
//! thread, so file reads, DNS lookups and crypto queued behind them would wait as well.
//!
//! Two threads: the model's, which runs the calls in order, and a follow-up thread for what comes
//! after an embedding (the search of `topK(text)`) while other calls wait for the model. The
//! model's thread then goes on to the next embedding meanwhile, so concurrent searches overlap
//! embeddings instead of queueing behind them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Embedder;
use crate::error::{catch_panic, Error, Result};

/// How long the model's thread polls for the next call before it sleeps: a caller that awaits one
/// query and sends the next is back within this, and finds the thread awake (on a VM, waking a
/// thread whose vCPU went idle is slow, and that wake-up showed in the latency of single queries).
/// It costs at most this much CPU after each call.
const POLL_BEFORE_SLEEP: Duration = Duration::from_micros(250);

/// What both threads share. Each holds it, so the model is freed only once both have ended.
struct Shared<M> {
    model: M,
    /// Calls sent to the model's thread and not started there yet.
    waiting: AtomicUsize,
}

/// A call for the model's thread. It gets the shared state, or `None` when the thread is gone (then
/// it only reports that).
type ModelJob<M> = Box<dyn FnOnce(Option<&Shared<M>>) + Send>;
type FollowUp = Box<dyn FnOnce() + Send>;

/// A model (an [`Embedder`]; any `M` in tests) and the two threads that run its calls. Dropping it
/// ends the threads once the calls already queued are done.
pub struct EmbedQueue<M: Send + Sync + 'static = Embedder> {
    shared: Arc<Shared<M>>,
    /// The model's thread; it ends when the last sender (this one) is dropped.
    jobs: Sender<ModelJob<M>>,
    /// The follow-up thread; it ends when this sender and the clones held by queued calls are gone.
    follow_ups: Sender<FollowUp>,
}

impl<M: Send + Sync + 'static> EmbedQueue<M> {
    /// Starts the two threads for `model`.
    pub fn start(model: M) -> Result<Self> {
        let shared = Arc::new(Shared { model, waiting: AtomicUsize::new(0) });
        let spawn = |name: &str, serve: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(serve).map(drop).map_err(|e| Error::Internal(format!("{name} thread: {e}")))
        };
        let (jobs, queued) = channel::<ModelJob<M>>();
        let on_model_thread = shared.clone();
        spawn(
            "myriad-embed",
            Box::new(move || {
                while let Some(job) = next_job(&queued) {
                    // A job reports its own panics (see `submit`); this keeps the thread alive
                    // should its report itself panic.
                    let _ = catch_panic(|| {
                        job(Some(&on_model_thread));
                        Ok(())
                    });
                }
            }),
        )?;
        let (follow_ups, later) = channel::<FollowUp>();
        let on_follow_up_thread = shared.clone();
        spawn(
            "myriad-embed-next",
            Box::new(move || {
                let _shared = on_follow_up_thread;
                for job in later {
                    let _ = catch_panic(|| {
                        job();
                        Ok(())
                    });
                }
            }),
        )?;
        Ok(EmbedQueue { shared, jobs, follow_ups })
    }

    /// The model, for calls cheap enough to make on the caller's thread.
    pub fn model(&self) -> &M {
        &self.shared.model
    }

    /// Runs `work` with the model on its thread, then `done` with the result there.
    pub fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&M) -> Result<T> + Send + 'static,
        done: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        self.submit(work, Ok, false, done)
    }

    /// As [`EmbedQueue::run`], then `then` on the result before `done`: on the model's thread when
    /// no other call waits for the model, else on the follow-up thread.
    pub fn run_then<T: Send + 'static, U: Send + 'static>(
        &self,
        work: impl FnOnce(&M) -> Result<T> + Send + 'static,
        then: impl FnOnce(T) -> Result<U> + Send + 'static,
        done: impl FnOnce(Result<U>) + Send + 'static,
    ) {
        self.submit(work, then, true, done)
    }

    /// Queues `work` for the model's thread, then `then` on its result (on the follow-up thread if
    /// `may_hand_off` and other calls wait for the model), then `done` with the outcome. `done` is
    /// called exactly once: a panic in `work` or `then` reaches it as [`Error::Internal`], and so
    /// does a model thread that is gone.
    pub fn submit<T: Send + 'static, U: Send + 'static>(
        &self,
        work: impl FnOnce(&M) -> Result<T> + Send + 'static,
        then: impl FnOnce(T) -> Result<U> + Send + 'static,
        may_hand_off: bool,
        done: impl FnOnce(Result<U>) + Send + 'static,
    ) {
        let follow_ups = self.follow_ups.clone();
        let job: ModelJob<M> = Box::new(move |shared: Option<&Shared<M>>| {
            let Some(shared) = shared else {
                return done(Err(Error::Internal("the embedding thread has stopped".into())));
            };
            shared.waiting.fetch_sub(1, Ordering::AcqRel);
            let value = match catch_panic(|| work(&shared.model)) {
                Ok(value) => value,
                Err(error) => return done(Err(error)),
            };
            let finish = move || done(catch_panic(|| then(value)));
            if may_hand_off && shared.waiting.load(Ordering::Acquire) > 0 {
                // The follow-up thread lives as long as any sender: the send cannot fail while
                // this job holds one, but if it did, the work still gets done here.
                if let Err(unsent) = follow_ups.send(Box::new(finish)) {
                    (unsent.0)();
                }
            } else {
                finish();
            }
        });
        self.shared.waiting.fetch_add(1, Ordering::AcqRel);
        if let Err(unsent) = self.jobs.send(job) {
            self.shared.waiting.fetch_sub(1, Ordering::AcqRel);
            (unsent.0)(None);
        }
    }
}

/// The next job, or None once the queue is gone.
fn next_job<M>(jobs: &Receiver<ModelJob<M>>) -> Option<ModelJob<M>> {
    let deadline = Instant::now() + POLL_BEFORE_SLEEP;
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if Instant::now() < deadline => std::hint::spin_loop(),
            Err(TryRecvError::Empty) => return jobs.recv().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{sync_channel, SyncSender};
    use std::sync::Mutex;

    use super::*;
    use crate::ErrorCode;

    /// A stand-in model: it says when it is dropped.
    struct Probe(Mutex<SyncSender<()>>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = self.0.lock().map(|dropped| dropped.send(()));
        }
    }

    fn probe() -> (EmbedQueue<Probe>, Receiver<()>) {
        let (dropped, on_drop) = sync_channel(1);
        (EmbedQueue::start(Probe(Mutex::new(dropped))).unwrap(), on_drop)
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn results_come_back_in_order_and_a_panic_is_reported_without_stopping_the_queue() {
        let (queue, _) = probe();
        let (results, got) = channel();
        for i in 0..20u32 {
            let results = results.clone();
            let work = move |_: &Probe| if i == 7 { panic!("job {i} fails") } else { Ok(i) };
            if i % 2 == 0 {
                queue.run(work, move |r| results.send((i, r)).unwrap());
            } else {
                queue.run_then(work, |v| Ok(v * 10), move |r| results.send((i, r.map(|v| v / 10))).unwrap());
            }
        }
        let mut seen = Vec::new();
        for _ in 0..20 {
            let (i, r) = got.recv_timeout(WAIT).unwrap();
            match r {
                Ok(v) => assert_eq!(v, i),
                Err(e) => {
                    assert_eq!((i, e.code()), (7, ErrorCode::Internal));
                    assert!(e.to_string().contains("job 7 fails"), "{e}");
                }
            }
            seen.push(i);
        }
        // Follow-ups may finish out of order; the model's work ran in order.
        seen.sort();
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        let (results, got) = channel();
        for i in 0..5u32 {
            let results = results.clone();
            queue.run(move |_| Ok(i), move |r| results.send(r.unwrap()).unwrap());
        }
        assert_eq!((0..5).map(|_| got.recv_timeout(WAIT).unwrap()).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_panic_in_the_follow_up_is_reported_too() {
        let (queue, _) = probe();
        let (results, got) = channel();
        queue.run_then(|_| Ok(1), |_: u32| -> Result<u32> { panic!("then fails") }, move |r| results.send(r).unwrap());
        let e = got.recv_timeout(WAIT).unwrap().unwrap_err();
        assert_eq!(e.code(), ErrorCode::Internal);
    }

    #[test]
    fn dropping_the_queue_ends_its_threads_after_the_queued_calls() {
        let (queue, dropped) = probe();
        let (results, got) = channel();
        let (release, gate) = channel::<()>();
        queue.run(
            move |_| {
                gate.recv_timeout(WAIT).unwrap();
                Ok(1)
            },
            {
                let results = results.clone();
                move |r| results.send(r.unwrap()).unwrap()
            },
        );
        queue.run_then(|_| Ok(2), Ok, move |r| results.send(r.unwrap()).unwrap());
        drop(queue);
        assert!(dropped.try_recv().is_err(), "the model is still in use");
        release.send(()).unwrap();
        assert_eq!([got.recv_timeout(WAIT).unwrap(), got.recv_timeout(WAIT).unwrap()], [1, 2]);
        // Both threads hold the model: it is dropped once the last of them has ended.
        dropped.recv_timeout(WAIT).expect("the queue's threads did not end");
    }
}
