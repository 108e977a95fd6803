//! The wasmtime `Engine` guests are compiled for and run on, configured for
//! low call overhead.

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
    Ok(Engine::new(&config)?)
}
