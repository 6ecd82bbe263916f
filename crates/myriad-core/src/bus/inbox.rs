//! The bounded queue between the wire and the consumer (JavaScript, through the binding).
//!
//! Producers (the MQTT poll task, the local router) wait while it is full, so a slow consumer
//! slows the network reads and, through the broker's flow control, the publishers. The consumer is
//! woken once per non-empty stretch (`set_waker`) and takes everything queued in one go.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::streams::Gap;
use super::topic::Kind;

/// One delivered message. Envelope fields are empty (seq 0, ts 0) for a foreign message.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub agent: String,
    pub kind: Kind,
    pub from: String,
    pub msg_id: String,
    pub seq: u64,
    pub ts: u64,
    pub payload: Bytes,
}

#[derive(Default)]
pub struct Taken {
    pub messages: Vec<Inbound>,
    pub gaps: Vec<Gap>,
}

type Waker = Arc<dyn Fn() + Send + Sync>;

/// Wakes come at most this often while messages trickle in, so that each consumer turn takes a
/// batch rather than a handful (a wake costs the JS thread several microseconds); a queue of
/// `WAKE_NOW` messages or more wakes at once.
const MIN_WAKE_GAP: Duration = Duration::from_millis(1);
const WAKE_NOW: usize = 256;

pub struct Inbox {
    capacity: usize,
    queue: Mutex<Taken>,
    space: Notify,
    waker: Mutex<Option<Waker>>,
    wake_pending: AtomicBool,
    last_wake: Mutex<Option<Instant>>,
}

impl Inbox {
    pub fn new(capacity: usize) -> Self {
        Inbox {
            capacity: capacity.max(1),
            queue: Mutex::new(Taken::default()),
            space: Notify::new(),
            waker: Mutex::new(None),
            wake_pending: AtomicBool::new(false),
            last_wake: Mutex::new(None),
        }
    }

    /// Called (from any thread) when messages arrive and the consumer has not been told yet.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        *self.waker.lock().unwrap() = Some(Arc::new(waker));
        if !self.queue.lock().unwrap().messages.is_empty() {
            self.wake();
        }
    }

    pub fn clear_waker(&self) {
        self.waker.lock().unwrap().take();
    }

    /// Queues `messages`, waiting while the queue is full. A batch is admitted whole once there is
    /// any room (the bound is soft by at most one batch), so one large batch cannot wait forever.
    pub async fn push(&self, messages: Vec<Inbound>, gaps: Vec<Gap>) {
        if messages.is_empty() && gaps.is_empty() {
            return;
        }
        loop {
            let notified = self.space.notified();
            {
                let mut q = self.queue.lock().unwrap();
                if q.messages.len() < self.capacity {
                    q.messages.extend(messages);
                    q.gaps.extend(gaps);
                    break;
                }
            }
            notified.await;
        }
        self.wake();
    }

    /// Everything queued (at most `max` messages; all gaps).
    pub fn take(&self, max: usize) -> Taken {
        // Cleared before taking: a push racing with this take wakes the consumer again.
        self.wake_pending.store(false, Ordering::SeqCst);
        let taken = {
            let mut q = self.queue.lock().unwrap();
            if q.messages.len() <= max {
                std::mem::take(&mut *q)
            } else {
                let rest = q.messages.split_off(max);
                Taken { messages: std::mem::replace(&mut q.messages, rest), gaps: std::mem::take(&mut q.gaps) }
            }
        };
        self.space.notify_waiters();
        if !self.queue.lock().unwrap().messages.is_empty() {
            self.wake();
        }
        taken
    }

    pub fn len(&self) -> usize {
        self.queue.lock().unwrap().messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn wake(&self) {
        if self.wake_pending.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(waker) = self.waker.lock().unwrap().clone() else {
            // Nobody to tell yet: the next set_waker call wakes.
            self.wake_pending.store(false, Ordering::SeqCst);
            return;
        };
        let now = Instant::now();
        let wait = {
            let mut last = self.last_wake.lock().unwrap();
            let since = last.map(|t| now.saturating_duration_since(t)).unwrap_or(MIN_WAKE_GAP);
            let wait = if since >= MIN_WAKE_GAP || self.len() >= WAKE_NOW { Duration::ZERO } else { MIN_WAKE_GAP - since };
            *last = Some(now + wait);
            wait
        };
        if wait.is_zero() {
            waker();
        } else {
            super::runtime().spawn(async move {
                tokio::time::sleep(wait).await;
                waker();
            });
        }
    }
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox::new(65_536)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    fn msg(i: usize) -> Inbound {
        Inbound {
            agent: "a".into(),
            kind: Kind::AgentChat,
            from: String::new(),
            msg_id: i.to_string(),
            seq: 0,
            ts: 0,
            payload: Bytes::new(),
        }
    }

    #[tokio::test]
    async fn a_full_inbox_holds_producers_until_taken() {
        let inbox = Arc::new(Inbox::new(2));
        let wakes = Arc::new(AtomicUsize::new(0));
        let w = wakes.clone();
        inbox.set_waker(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        inbox.push(vec![msg(0), msg(1)], vec![]).await;
        let producer = tokio::spawn({
            let inbox = inbox.clone();
            async move { inbox.push(vec![msg(2)], vec![]).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!producer.is_finished(), "a full inbox must make the producer wait");
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "one wake per non-empty stretch");
        assert_eq!(inbox.take(usize::MAX).messages.len(), 2);
        producer.await.unwrap();
        let rest = inbox.take(usize::MAX).messages;
        assert_eq!(rest.iter().map(|m| m.msg_id.as_str()).collect::<Vec<_>>(), ["2"]);
        assert_eq!(wakes.load(Ordering::SeqCst), 2);
    }
}
