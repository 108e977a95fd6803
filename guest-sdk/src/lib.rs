//! Write a [Sandstream](https://example.invalid/sandstream) effect in Rust.
//!
//! A guest is one type implementing [`Effect`] plus one [`export!`] call:
//!
//! ```ignore
//! use sandstream_guest::prelude::*;
//!
//! struct Gain { gain: f32 }
//!
//! impl Effect for Gain {
//!     fn setup(config: &Config, _formats: &Formats) -> Result<Self, String> {
//!         Ok(Gain { gain: config.get_or("gain", 1.0)? })
//!     }
//!
//!     fn process_audio(&mut self, block: AudioBlock<'_>) -> Result<Output, String> {
//!         block.samples.iter_mut().for_each(|s| *s *= self.gain);
//!         Ok(Output::Keep)
//!     }
//! }
//!
//! sandstream_guest::export!(Gain);
//! ```
//!
//! Which streams the guest processes is chosen with this crate's features:
//! `audio`, `video`, or both (see `Cargo.toml`). Build with
//! `cargo build --release --target wasm32-wasip2`; the result is a component
//! the host runs directly.
//!
//! Frames are processed in place: the slice a guest mutates is the buffer the
//! host receives back, so no copy is made inside the guest. The SDK also
//! exports the mapped data path (`mapped-audio` / `mapped-video`): it keeps
//! one buffer per stream in the guest's memory, the host writes each block
//! or frame straight into it and reads the result back from it, and the
//! effect code is exactly the same.

#[cfg(not(any(feature = "audio", feature = "video")))]
compile_error!(
    "enable the `audio` and/or `video` feature of sandstream-guest to choose which streams this \
     effect processes"
);

// Lets the generated bindings name this crate by its external path.
extern crate self as sandstream_guest;

mod config;
mod formats;
pub mod log;

pub use config::Config;
pub use formats::{AudioBlock, AudioFormat, Formats, Output, VideoFormat, VideoFrame};

/// Everything a guest usually needs.
pub mod prelude {
    pub use crate::{
        AudioBlock, AudioFormat, Config, Effect, Formats, Output, VideoFormat, VideoFrame,
    };
}

/// An effect: state created once by [`Effect::setup`], then called for every
/// audio block and/or video frame.
///
/// The methods present depend on the crate features: `process_audio` with
/// `audio`, `process_video` with `video`.
pub trait Effect: Sized + 'static {
    /// Creates the effect from the user's configuration and the formats of
    /// the streams it will receive. An `Err` is shown to the user and the
    /// host refuses to start.
    fn setup(config: &Config, formats: &Formats) -> Result<Self, String>;

    /// Processes one block of interleaved samples in place.
    #[cfg(feature = "audio")]
    fn process_audio(&mut self, block: AudioBlock<'_>) -> Result<Output, String>;

    /// Processes one RGBA8 frame in place.
    #[cfg(feature = "video")]
    fn process_video(&mut self, frame: VideoFrame<'_>) -> Result<Output, String>;

    /// What survives a hot swap (feature `state`): any serde type. The host
    /// moves it, as JSON, from the old guest to the new one.
    #[cfg(feature = "state")]
    type State: serde::Serialize + serde::de::DeserializeOwned;

    /// The state to hand to the next version of this guest.
    #[cfg(feature = "state")]
    fn save_state(&self) -> Self::State;

    /// Takes over the previous guest's state (called after `setup`).
    #[cfg(feature = "state")]
    fn restore_state(&mut self, state: Self::State);
}

/// Generates the bindings of one world: exactly one of these applies. Each
/// is one of the package's worlds plus the mapped interfaces of its streams.
macro_rules! bindings_for {
    ($inline:literal) => {
        #[doc(hidden)]
        pub mod bindings {
            wit_bindgen::generate!({
                path: "../wit",
                inline: $inline,
                generate_all,
                pub_export_macro: true,
                export_macro_name: "__export_world",
                default_bindings_module: "sandstream_guest::bindings",
                runtime_path: "sandstream_guest::__private::wit_bindgen::rt",
            });
        }
    };
}

#[cfg(all(feature = "audio", feature = "video", not(feature = "state")))]
bindings_for!(
    "package sandstream:sdk; world effect {
        include sandstream:av/av-effect@0.1.0;
        export sandstream:av/mapped-audio@0.1.0;
        export sandstream:av/mapped-video@0.1.0;
    }"
);
#[cfg(all(feature = "audio", not(feature = "video"), not(feature = "state")))]
bindings_for!(
    "package sandstream:sdk; world effect {
        include sandstream:av/audio-effect@0.1.0;
        export sandstream:av/mapped-audio@0.1.0;
    }"
);
#[cfg(all(feature = "video", not(feature = "audio"), not(feature = "state")))]
bindings_for!(
    "package sandstream:sdk; world effect {
        include sandstream:av/video-effect@0.1.0;
        export sandstream:av/mapped-video@0.1.0;
    }"
);
#[cfg(all(feature = "audio", feature = "video", feature = "state"))]
bindings_for!(
    "package sandstream:sdk; world effect {
        include sandstream:av/av-effect-stateful@0.1.0;
        export sandstream:av/mapped-audio@0.1.0;
        export sandstream:av/mapped-video@0.1.0;
    }"
);
#[cfg(all(feature = "audio", not(feature = "video"), feature = "state"))]
bindings_for!(
    "package sandstream:sdk; world effect {
        include sandstream:av/audio-effect-stateful@0.1.0;
        export sandstream:av/mapped-audio@0.1.0;
    }"
);
#[cfg(all(feature = "video", not(feature = "audio"), feature = "state"))]
bindings_for!(
    "package sandstream:sdk; world effect {
        include sandstream:av/video-effect-stateful@0.1.0;
        export sandstream:av/mapped-video@0.1.0;
    }"
);

/// Glue used by [`export!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::bindings::sandstream::av::types as wit;
    use crate::{Config, Effect, Formats};
    use std::cell::{Cell, RefCell};

    /// Where the one effect instance lives. Wasm guests are single-threaded.
    pub type Slot<T> = RefCell<Option<T>>;

    pub fn configure<T: Effect>(
        slot: &Slot<T>,
        config: Vec<(String, String)>,
        formats: wit::StreamFormats,
    ) -> Result<(), String> {
        crate::log::install_panic_hook();
        let config = Config::new(config);
        let formats = Formats::from_wit(formats);
        FORMATS.set(Some(formats));
        let effect = T::setup(&config, &formats)?;
        *slot.borrow_mut() = Some(effect);
        Ok(())
    }

    thread_local! {
        /// The formats of the last `configure`: they size the mapped buffers.
        static FORMATS: Cell<Option<Formats>> = const { Cell::new(None) };
        /// The mapped buffers, each allocated once by `prepare` and never
        /// resized afterwards, so the addresses announced stay valid.
        static AUDIO_BUFFER: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
        static VIDEO_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    /// Allocates a zeroed buffer of `len` elements and announces it as both
    /// input and output (processing is in place). When the memory cap
    /// leaves no room, says so: the host then uses lists.
    fn announce<E: Copy + Default>(
        buffer: &RefCell<Vec<E>>,
        len: usize,
    ) -> Result<wit::Buffers, String> {
        let bytes = len * size_of::<E>();
        let mut fresh = Vec::new();
        fresh
            .try_reserve_exact(len)
            .map_err(|_| format!("cannot allocate a {bytes}-byte buffer"))?;
        fresh.resize(len, E::default());
        let mut buffer = buffer.borrow_mut();
        *buffer = fresh;
        let region = wit::Region {
            // Linear memory addresses are 32-bit in wasm32.
            offset: buffer.as_mut_ptr() as usize as u32,
            length: u32::try_from(bytes).map_err(|_| format!("a {bytes}-byte buffer"))?,
        };
        Ok(wit::Buffers {
            input: region,
            output: region,
        })
    }

    fn outcome(output: crate::Output) -> wit::Outcome {
        match output {
            crate::Output::Keep => wit::Outcome::Keep,
            crate::Output::Drop => wit::Outcome::Drop,
        }
    }

    #[cfg(feature = "audio")]
    pub fn prepare_audio() -> Result<wit::Buffers, String> {
        let format = FORMATS
            .get()
            .and_then(|f| f.audio)
            .ok_or("no audio stream was configured")?;
        let len = format.block_frames as usize * format.channels as usize;
        AUDIO_BUFFER.with(|buffer| announce(buffer, len))
    }

    #[cfg(feature = "audio")]
    pub fn process_mapped_audio<T: Effect>(
        slot: &Slot<T>,
        info: wit::AudioInfo,
        samples: u32,
    ) -> Result<wit::Outcome, String> {
        AUDIO_BUFFER.with_borrow_mut(|buffer| {
            let len = buffer.len();
            let samples = buffer.get_mut(..samples as usize).ok_or_else(|| {
                format!("a block of {samples} samples does not fit the {len} announced")
            })?;
            let block = crate::AudioBlock {
                samples,
                channels: info.channels,
                sample_rate: info.sample_rate,
                timestamp_ns: info.timestamp_ns,
                first_frame: info.first_frame,
            };
            with_effect(slot, |effect| effect.process_audio(block)).map(outcome)
        })
    }

    #[cfg(feature = "video")]
    pub fn prepare_video() -> Result<wit::Buffers, String> {
        let format = FORMATS
            .get()
            .and_then(|f| f.video)
            .ok_or("no video stream was configured")?;
        let len = format.width as usize * format.height as usize * 4;
        VIDEO_BUFFER.with(|buffer| announce(buffer, len))
    }

    #[cfg(feature = "video")]
    pub fn process_mapped_video<T: Effect>(
        slot: &Slot<T>,
        info: wit::VideoInfo,
    ) -> Result<wit::Outcome, String> {
        VIDEO_BUFFER.with_borrow_mut(|pixels| {
            let frame = crate::VideoFrame {
                pixels,
                width: info.width,
                height: info.height,
                timestamp_ns: info.timestamp_ns,
                index: info.index,
            };
            with_effect(slot, |effect| effect.process_video(frame)).map(outcome)
        })
    }

    fn with_effect<T: Effect, R>(
        slot: &Slot<T>,
        f: impl FnOnce(&mut T) -> Result<R, String>,
    ) -> Result<R, String> {
        match slot.borrow_mut().as_mut() {
            Some(effect) => f(effect),
            None => Err("called before setup.configure".to_string()),
        }
    }

    #[cfg(feature = "audio")]
    pub fn process_audio<T: Effect>(
        slot: &Slot<T>,
        info: wit::AudioInfo,
        mut samples: Vec<f32>,
    ) -> Result<Vec<f32>, String> {
        let block = crate::AudioBlock {
            samples: &mut samples,
            channels: info.channels,
            sample_rate: info.sample_rate,
            timestamp_ns: info.timestamp_ns,
            first_frame: info.first_frame,
        };
        match with_effect(slot, |effect| effect.process_audio(block))? {
            crate::Output::Keep => Ok(samples),
            crate::Output::Drop => Ok(Vec::new()),
        }
    }

    #[cfg(feature = "video")]
    pub fn process_video<T: Effect>(
        slot: &Slot<T>,
        info: wit::VideoInfo,
        mut pixels: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let frame = crate::VideoFrame {
            pixels: &mut pixels,
            width: info.width,
            height: info.height,
            timestamp_ns: info.timestamp_ns,
            index: info.index,
        };
        match with_effect(slot, |effect| effect.process_video(frame))? {
            crate::Output::Keep => Ok(pixels),
            crate::Output::Drop => Ok(Vec::new()),
        }
    }

    #[cfg(feature = "state")]
    pub fn snapshot<T: Effect>(slot: &Slot<T>) -> Vec<u8> {
        match slot.borrow().as_ref() {
            Some(effect) => serde_json::to_vec(&effect.save_state()).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    #[cfg(feature = "state")]
    pub fn restore<T: Effect>(slot: &Slot<T>, snapshot: Vec<u8>) -> Result<(), String> {
        let state: T::State = serde_json::from_slice(&snapshot)
            .map_err(|err| format!("cannot read the previous guest's state: {err}"))?;
        with_effect(slot, |effect| {
            effect.restore_state(state);
            Ok(())
        })
    }

    #[cfg(feature = "state")]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __impl_state {
        ($export:ident, $ty:ty, $slot:ident) => {
            impl $crate::bindings::exports::sandstream::av::state::Guest for $export {
                fn snapshot() -> ::std::vec::Vec<u8> {
                    $slot.with(|slot| $crate::__private::snapshot::<$ty>(slot))
                }

                fn restore(
                    state: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $slot.with(|slot| $crate::__private::restore::<$ty>(slot, state))
                }
            }
        };
    }

    #[cfg(not(feature = "state"))]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __impl_state {
        ($($any:tt)*) => {};
    }

    #[cfg(feature = "audio")]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __impl_audio {
        ($export:ident, $ty:ty, $slot:ident) => {
            impl $crate::bindings::exports::sandstream::av::audio::Guest for $export {
                fn process_audio(
                    info: $crate::bindings::sandstream::av::types::AudioInfo,
                    samples: ::std::vec::Vec<f32>,
                ) -> ::std::result::Result<::std::vec::Vec<f32>, ::std::string::String> {
                    $slot.with(|slot| $crate::__private::process_audio::<$ty>(slot, info, samples))
                }
            }

            impl $crate::bindings::exports::sandstream::av::mapped_audio::Guest for $export {
                fn prepare() -> ::std::result::Result<
                    $crate::bindings::sandstream::av::types::Buffers,
                    ::std::string::String,
                > {
                    $crate::__private::prepare_audio()
                }

                fn process(
                    info: $crate::bindings::sandstream::av::types::AudioInfo,
                    samples: u32,
                ) -> ::std::result::Result<
                    $crate::bindings::sandstream::av::types::Outcome,
                    ::std::string::String,
                > {
                    $slot.with(|slot| {
                        $crate::__private::process_mapped_audio::<$ty>(slot, info, samples)
                    })
                }
            }
        };
    }

    #[cfg(not(feature = "audio"))]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __impl_audio {
        ($($any:tt)*) => {};
    }

    #[cfg(feature = "video")]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __impl_video {
        ($export:ident, $ty:ty, $slot:ident) => {
            impl $crate::bindings::exports::sandstream::av::video::Guest for $export {
                fn process_video(
                    info: $crate::bindings::sandstream::av::types::VideoInfo,
                    pixels: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, ::std::string::String> {
                    $slot.with(|slot| $crate::__private::process_video::<$ty>(slot, info, pixels))
                }
            }

            impl $crate::bindings::exports::sandstream::av::mapped_video::Guest for $export {
                fn prepare() -> ::std::result::Result<
                    $crate::bindings::sandstream::av::types::Buffers,
                    ::std::string::String,
                > {
                    $crate::__private::prepare_video()
                }

                fn process(
                    info: $crate::bindings::sandstream::av::types::VideoInfo,
                ) -> ::std::result::Result<
                    $crate::bindings::sandstream::av::types::Outcome,
                    ::std::string::String,
                > {
                    $slot.with(|slot| $crate::__private::process_mapped_video::<$ty>(slot, info))
                }
            }
        };
    }

    #[cfg(not(feature = "video"))]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __impl_video {
        ($($any:tt)*) => {};
    }
}

/// Exports an [`Effect`] type as this component's implementation of the
/// Sandstream world chosen by the crate features.
#[macro_export]
macro_rules! export {
    ($ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static SANDSTREAM_EFFECT: $crate::__private::Slot<$ty> =
                    const { ::std::cell::RefCell::new(None) };
            }

            struct SandstreamExport;

            impl $crate::bindings::exports::sandstream::av::setup::Guest for SandstreamExport {
                fn configure(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                    formats: $crate::bindings::sandstream::av::types::StreamFormats,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    SANDSTREAM_EFFECT
                        .with(|slot| $crate::__private::configure::<$ty>(slot, config, formats))
                }
            }

            $crate::__impl_audio!(SandstreamExport, $ty, SANDSTREAM_EFFECT);
            $crate::__impl_video!(SandstreamExport, $ty, SANDSTREAM_EFFECT);
            $crate::__impl_state!(SandstreamExport, $ty, SANDSTREAM_EFFECT);

    $crate::bindings::__export_world!(SandstreamExport with_types_in $crate::bindings);
        };
    };
}
