//! Sandstream: a real-time audio/video host that runs processing
//! callbacks as sandboxed WebAssembly components.
//!
//! A tour:
//! - [`Streamer::builder`] configures a run: a guest (`.wasm` implementing a
//!   world of `wit/sandstream.wit`), inputs, outputs and timing. `build()`
//!   loads and configures the guest; `start()` runs the pipeline;
//!   [`RunningStream::wait`] returns a [`Report`].
//! - [`guest`]: loading, validating, caching and calling components, under
//!   the sandbox's limits.
//! - [`lifecycle`]: what happens when a guest faults, is restarted,
//!   quarantined or swapped; no wasm in it.
//! - [`source`] and [`sink`]: where media comes from and goes to, behind
//!   small traits; [`spec`] parses the user's `file:…`/`tone:…` strings.
//! - [`pipeline`]: the threads and queues between them, and A/V sync;
//!   [`metrics`]: what they count.
//! - [`text`]: guest text made safe to show.
//! - [`cli`]: the `sandstream` command line, a thin layer over the above.

pub mod bench;
pub mod camera;
pub mod clicks;
pub mod clock;
pub mod colour;
pub mod config_file;
pub mod device;
pub mod growth;
pub mod guest;
pub mod lifecycle;
pub mod media;
pub mod metrics;
pub mod pipeline;
pub mod rt;
pub mod sink;
pub mod source;
pub mod spec;
pub mod text;

pub use guest::{GuestProgram, LoadError, World};
pub use pipeline::{CacheSetting, Report, RunningStream, StopHandle, Streamer, StreamerBuilder};
