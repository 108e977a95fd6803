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
//! host receives back, so no copy is made inside the guest.

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

/// Generates the bindings of one world: exactly one of these applies.
macro_rules! bindings_for {
    ($world:tt) => {
        #[doc(hidden)]
        pub mod bindings {
            wit_bindgen::generate!({
                path: "../wit",
                world: $world,
                pub_export_macro: true,
                export_macro_name: "__export_world",
                default_bindings_module: "sandstream_guest::bindings",
                runtime_path: "sandstream_guest::__private::wit_bindgen::rt",
            });
        }
    };
}

#[cfg(all(feature = "audio", feature = "video", not(feature = "state")))]
bindings_for!("sandstream:av/av-effect");
#[cfg(all(feature = "audio", not(feature = "video"), not(feature = "state")))]
bindings_for!("sandstream:av/audio-effect");
#[cfg(all(feature = "video", not(feature = "audio"), not(feature = "state")))]
bindings_for!("sandstream:av/video-effect");
#[cfg(all(feature = "audio", feature = "video", feature = "state"))]
bindings_for!("sandstream:av/av-effect-stateful");
#[cfg(all(feature = "audio", not(feature = "video"), feature = "state"))]
bindings_for!("sandstream:av/audio-effect-stateful");
#[cfg(all(feature = "video", not(feature = "audio"), feature = "state"))]
bindings_for!("sandstream:av/video-effect-stateful");

/// Glue used by [`export!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;

    use crate::bindings::sandstream::av::types as wit;
    use crate::{Config, Effect, Formats};
    use std::cell::RefCell;

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
        let effect = T::setup(&config, &formats)?;
        *slot.borrow_mut() = Some(effect);
        Ok(())
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
