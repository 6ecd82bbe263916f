//! The tokio runtime that network I/O runs on: the bus's MQTT connections and the sink's database
//! writers. Two workers: the I/O is light, and the cores are for the rest of the simulation.

use std::sync::OnceLock;

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("myriad-io")
            .enable_all()
            .build()
            .expect("the I/O runtime must start")
    })
}
