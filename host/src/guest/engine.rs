//! The wasmtime `Engine` guests are compiled for and run on, configured for
//! low call overhead.

use super::memory::HostMemoryCreator;
use std::sync::Arc;
use wasmtime::{Config, Engine, OptLevel};

/// The engine for untrusted guests: epoch interruption on, so every call
/// can be given a deadline.
///
/// # Errors
/// When wasmtime rejects the configuration (not expected on supported hosts).
pub fn new_engine() -> anyhow::Result<Engine> {
    engine_for(false)
}

/// The engine for a run; `trusted` drops the epoch checks compiled into
/// guest code (faster, but a guest can then run forever).
///
/// # Errors
/// When wasmtime rejects the configuration.
pub fn engine_for(trusted: bool) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Async component-model features cost ~420 ns on every entry into the
    // guest (field notes); we make plain synchronous calls.
    config.concurrency_support(false);
    config.cranelift_opt_level(OptLevel::Speed);
    config.wasm_simd(true);
    config.epoch_interruption(!trusted);
    // The host allocates every linear memory, so it knows where each one
    // is and can move frames in and out directly (`memory`). Copy-on-write
    // images need wasmtime's own mmaps, so data segments are copied instead
    // (a few KB for our guests, once per instantiation).
    config.with_host_memory(Arc::new(HostMemoryCreator));
    config.memory_init_cow(false);
    Ok(Engine::new(&config)?)
}
