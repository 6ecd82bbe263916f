//! [`memory`](memory/main.rs) with mimalloc as the global allocator, as in the addon
//! (`crates/myriad-node/src/lib.rs`): `cargo run --release --example memory_mimalloc -p myriad-core`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "memory/run.rs"]
mod run;

fn main() {
    run::main("mimalloc");
}
