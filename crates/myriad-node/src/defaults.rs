//! The defaults of every component's options, read from the core's `Default`s, in the units the
//! JS options use: the TypeScript schemas take their defaults from here instead of repeating them.
//! Defaults that depend on the machine (threads: one per core) or the environment (offline:
//! `HF_HUB_OFFLINE`) are left out.

use myriad_core::bus::{BusOptions, DEFAULT_CREDIT_WINDOW};
use myriad_core::sink::DEFAULT_ARCHIVE_DIR;
use myriad_core::{EmbedderOptions, IndexOptions, PolicyOptions, RegistryOptions, SinkOptions};
use napi_derive::napi;

#[napi(object)]
pub struct NativeIndexDefaults {
    pub dim: u32,
    pub storage: String,
    pub parallel_threshold: u32,
}

#[napi(object)]
pub struct NativeRegistryDefaults {
    pub window: u32,
    pub dedupe_capacity: u32,
}

#[napi(object)]
pub struct NativePolicyDefaults {
    pub sizes: Vec<u32>,
    pub seed: u32,
    pub learning_rate: f64,
    pub baseline_decay: f64,
    pub entropy_bonus: f64,
}

#[napi(object)]
pub struct NativeEmbedderDefaults {
    pub model: String,
    pub precision: String,
    pub provider: String,
}

#[napi(object)]
pub struct NativeBusDefaults {
    /// `mqtt` (`local` is the in-process router).
    pub transport: String,
    pub subscribe: String,
    pub protocol: u32,
    /// QoS of agent-chat, user-chat, user-survey, in that order.
    pub qos: Vec<u32>,
    /// `persistent` or `clean`.
    pub session: String,
    pub session_expiry_s: u32,
    pub max_payload: u32,
    pub inflight: u32,
    pub inbox_capacity: u32,
    pub dedupe_window: u32,
    pub keep_alive_s: u32,
    pub connect_timeout_ms: u32,
    pub close_timeout_ms: u32,
    pub end_mark_idle_ms: u32,
    /// The default with an outside MQTT broker; on the embedded broker it is 0 (credits off).
    pub credit_window: u32,
}

#[napi(object)]
pub struct NativeSinkDefaults {
    pub schema: String,
    pub dir: String,
    pub batch_rows: u32,
    pub flush_interval_ms: u32,
    pub max_pending: u32,
    pub max_pending_bytes: u32,
    pub concurrency: u32,
    pub connect_timeout_ms: u32,
    pub close_timeout_ms: u32,
}

#[napi(object)]
pub struct NativeOptionDefaults {
    pub index: NativeIndexDefaults,
    pub registry: NativeRegistryDefaults,
    pub policy: NativePolicyDefaults,
    pub embedder: NativeEmbedderDefaults,
    pub bus: NativeBusDefaults,
    pub sink: NativeSinkDefaults,
}

/// The JS value of an f32 option: the double nearest its shortest decimal form, so that 3e-4f32
/// reads as 0.0003 rather than 0.0003000000142492354 (and converts back to the same f32).
fn js_f32(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

fn u32_of(v: impl TryInto<u32>) -> u32 {
    v.try_into().unwrap_or(u32::MAX)
}

/// The default of every option that has one, per component.
#[napi]
pub fn option_defaults() -> NativeOptionDefaults {
    let index = IndexOptions::default();
    let registry = RegistryOptions::default();
    let policy = PolicyOptions::default();
    let embedder = EmbedderOptions::default();
    let bus = BusOptions::new("", "");
    let sink = SinkOptions::default();
    let ms = |d: std::time::Duration| u32_of(d.as_millis());
    NativeOptionDefaults {
        index: NativeIndexDefaults {
            dim: u32_of(index.dim),
            storage: index.storage.name().into(),
            parallel_threshold: u32_of(index.parallel_threshold),
        },
        registry: NativeRegistryDefaults { window: u32_of(registry.window), dedupe_capacity: u32_of(registry.dedupe_capacity) },
        policy: NativePolicyDefaults {
            sizes: policy.sizes.iter().map(|&s| u32_of(s)).collect(),
            seed: u32_of(policy.seed),
            learning_rate: js_f32(policy.learning_rate),
            baseline_decay: js_f32(policy.baseline_decay),
            entropy_bonus: js_f32(policy.entropy_bonus),
        },
        embedder: NativeEmbedderDefaults {
            model: embedder.source.model,
            precision: embedder.source.precision.name().into(),
            provider: embedder.provider.name().into(),
        },
        bus: NativeBusDefaults {
            transport: if bus.local { "local" } else { "mqtt" }.into(),
            subscribe: bus.subscribe.name().into(),
            protocol: bus.protocol.level(),
            qos: bus.qos.iter().map(|&q| q as u32).collect(),
            session: if bus.persistent { "persistent" } else { "clean" }.into(),
            session_expiry_s: bus.session_expiry_s,
            max_payload: u32_of(bus.max_payload),
            inflight: u32::from(bus.inflight),
            inbox_capacity: u32_of(bus.inbox_capacity),
            dedupe_window: u32_of(bus.dedupe_window),
            keep_alive_s: u32::from(bus.keep_alive_s),
            connect_timeout_ms: u32_of(bus.connect_timeout_ms),
            close_timeout_ms: u32_of(bus.close_timeout_ms),
            end_mark_idle_ms: u32_of(bus.end_mark_idle_ms),
            credit_window: bus.credit_window.unwrap_or(DEFAULT_CREDIT_WINDOW),
        },
        sink: NativeSinkDefaults {
            schema: sink.schema,
            dir: DEFAULT_ARCHIVE_DIR.into(),
            batch_rows: u32_of(sink.batch_rows),
            flush_interval_ms: ms(sink.flush_interval),
            max_pending: u32_of(sink.max_pending_rows),
            max_pending_bytes: u32_of(sink.max_pending_bytes),
            concurrency: u32_of(sink.concurrency),
            connect_timeout_ms: ms(sink.connect_timeout),
            close_timeout_ms: ms(sink.close_timeout),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_defaults_read_as_their_decimal_form() {
        assert_eq!(js_f32(3e-4), 0.0003);
        assert_eq!(js_f32(0.1), 0.1);
        assert_eq!(js_f32(0.01) as f32, 0.01f32);
    }
}
