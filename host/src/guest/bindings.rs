//! Host-side bindings of `wit/`, generated once for the widest world
//! (`av-effect-stateful`).
//!
//! Each exported interface is loaded on its own (`GuestIndices`), so the same
//! bindings serve audio-only, video-only and A/V guests.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "sandstream:av/av-effect-stateful",
});

pub use self::sandstream::av::log;
pub use self::sandstream::av::types;
pub use exports::sandstream::av::{audio, setup, state, video};
