//! Host-side bindings of `wit/`, generated once for the world that holds
//! every export (`host-view`).
//!
//! Each exported interface is loaded on its own (`GuestIndices`), so the same
//! bindings serve audio-only, video-only and A/V guests.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "sandstream:av/host-view",
});

pub use self::sandstream::av::log;
pub use self::sandstream::av::types;
pub use exports::sandstream::av::{audio, mapped_audio, mapped_video, setup, state, video};
