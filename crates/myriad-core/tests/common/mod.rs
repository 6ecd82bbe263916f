//! Shared by the integration tests that need ONNX Runtime.

use std::path::PathBuf;

use myriad_core::runtime;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub fn load_runtime() {
    let path = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|| {
        let (os, arch, name) = match (std::env::consts::OS, std::env::consts::ARCH) {
            ("linux", "x86_64") => ("linux", "x64", "libonnxruntime.so.1"),
            ("linux", "aarch64") => ("linux", "arm64", "libonnxruntime.so.1"),
            ("macos", "aarch64") => ("darwin", "arm64", "libonnxruntime.1.dylib"),
            ("windows", "x86_64") => ("win32", "x64", "onnxruntime.dll"),
            other => panic!("no onnxruntime-node build for {other:?}; set ORT_DYLIB_PATH"),
        };
        repo_root().join("node_modules/onnxruntime-node/bin/napi-v6").join(os).join(arch).join(name)
    });
    let info = runtime::init(Some(&path)).expect("ONNX Runtime loads (run `npm install` first)");
    assert!(info.version.starts_with("1."), "{info:?}");
}
