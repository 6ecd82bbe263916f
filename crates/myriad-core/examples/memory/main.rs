//! Resident memory of a population, as a user sees it (RSS from /proc/self/statm), with the
//! system allocator: `cargo run --release --example memory -p myriad-core [-- N [index|registry|both] [uuid]]`.
//! The same with mimalloc (the addon's allocator): `--example memory_mimalloc`.
mod run;

fn main() {
    run::main("system");
}
