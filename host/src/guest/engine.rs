//! The one wasmtime `Engine` the host uses, configured for low call overhead.

use wasmtime::{Config, Engine, OptLevel};

/// Builds the engine every guest is compiled for and run on.
///
/// # Errors
/// When wasmtime rejects the configuration (not expected on supported hosts).
pub fn new_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Async component-model features cost ~420 ns on every entry into the
    // guest (field notes); we make plain synchronous calls.
    config.concurrency_support(false);
    config.cranelift_opt_level(OptLevel::Speed);
    config.wasm_simd(true);
    Ok(Engine::new(&config)?)
}
