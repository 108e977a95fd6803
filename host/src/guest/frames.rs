//! Moving blocks and frames in and out of a guest: the mapped path
//! through the guest's own buffers when it offers them (`mapped`, `memory`),
//! lists otherwise. Nothing else in the host passes media to a guest.

use super::bindings::{mapped_audio, mapped_video, types};
use super::mapped::{self, Buffers};
use super::memory::GuestMemory;
use super::sandbox::TEXT_TRANSFER_BYTES;
use super::{DataPath, GuestInstance, StreamFormats, StreamPath, inspect};
use crate::lifecycle::{AudioCall, Fault, Processed, VideoCall};
use crate::text::{ERROR_BYTES, GuestText};

/// The linear memories an instance was made with.
pub(super) struct Memories {
    /// The only one, when there is exactly one.
    pub(super) only: Option<GuestMemory>,
    pub(super) count: usize,
}

impl Memories {
    pub(super) fn new(mut all: Vec<GuestMemory>) -> Self {
        let count = all.len();
        // The mapped path needs to know which memory the guest's buffers
        // are in; with exactly one there is no doubt (every Rust, C and Zig
        // guest). Several (e.g. a preview-1 adapter's own) mean lists.
        let only = (count == 1).then(|| all.remove(0));
        Self { only, count }
    }
}

/// The instance's side of the mapped path.
pub(super) struct Mapped {
    /// The guest's linear memory, when it has exactly one.
    memory: Option<GuestMemory>,
    memory_count: usize,
    audio_api: Option<mapped_audio::Guest>,
    video_api: Option<mapped_video::Guest>,
    /// Checked buffers; `None` while the stream goes through lists.
    audio: Option<Buffers>,
    video: Option<Buffers>,
}

impl Mapped {
    pub(super) fn new(
        memories: Memories,
        audio_api: Option<mapped_audio::Guest>,
        video_api: Option<mapped_video::Guest>,
    ) -> Self {
        Self {
            memory: memories.only,
            memory_count: memories.count,
            audio_api,
            video_api,
            audio: None,
            video: None,
        }
    }
}

impl GuestInstance {
    /// Whether the last block or frame went through the guest's buffers
    /// (rather than as a list).
    pub fn last_call_mapped(&self) -> bool {
        self.last_call_mapped
    }

    /// How audio travels to this instance.
    pub fn audio_path(&self) -> &StreamPath {
        &self.audio_path
    }

    /// How video travels to this instance.
    pub fn video_path(&self) -> &StreamPath {
        &self.video_path
    }

    /// Asks the guest for its buffers (after `configure`, for the streams
    /// in `formats`) and checks them. Streams whose buffers are missing or
    /// unusable go through lists, with the reason in [`Self::audio_path`] /
    /// [`Self::video_path`].
    ///
    /// # Errors
    /// A trap or timeout in `prepare` (the guest's own error just means
    /// lists), or [`Fault::NoDataPath`] for a guest of a `-mapped` world
    /// whose buffers cannot be used (it has no list path).
    pub fn map_buffers(&mut self, formats: &StreamFormats, path: DataPath) -> Result<(), Fault> {
        if path == DataPath::Lists {
            let asked = || Some("--data-path list".to_string());
            self.audio_path = StreamPath::Lists { reason: asked() };
            self.video_path = StreamPath::Lists { reason: asked() };
        } else {
            self.map_each_stream(formats)?;
        }
        // A `-mapped` guest has no list path to fall back on.
        let unusable = |path: &StreamPath, has_lists: bool, interface| match path {
            StreamPath::Lists { reason } if !has_lists => Err(Fault::NoDataPath {
                interface,
                reason: reason.clone().unwrap_or_default(),
            }),
            _ => Ok(()),
        };
        if formats.audio.is_some() {
            unusable(
                &self.audio_path,
                self.audio.is_some(),
                inspect::MAPPED_AUDIO,
            )?;
        }
        if formats.video.is_some() {
            unusable(
                &self.video_path,
                self.video.is_some(),
                inspect::MAPPED_VIDEO,
            )?;
        }
        Ok(())
    }

    fn map_each_stream(&mut self, formats: &StreamFormats) -> Result<(), Fault> {
        if let Some((format, block)) = formats.audio {
            let needed = block as usize * usize::from(format.channels) * size_of::<f32>();
            self.arm(TEXT_TRANSFER_BYTES);
            let announced =
                (self.mapped.audio_api.as_ref()).map(|api| api.call_prepare(&mut self.store));
            (self.mapped.audio, self.audio_path) = self.accept(announced, needed)?;
        }
        if let Some(format) = formats.video {
            let needed = format.frame_bytes();
            self.arm(TEXT_TRANSFER_BYTES);
            let announced =
                (self.mapped.video_api.as_ref()).map(|api| api.call_prepare(&mut self.store));
            (self.mapped.video, self.video_path) = self.accept(announced, needed)?;
        }
        Ok(())
    }

    /// Turns the answer to `prepare` into the stream's path.
    fn accept(
        &self,
        announced: Option<wasmtime::Result<Result<types::Buffers, String>>>,
        needed: usize,
    ) -> Result<(Option<Buffers>, StreamPath), Fault> {
        let lists = |reason: String| {
            Ok((
                None,
                StreamPath::Lists {
                    reason: Some(reason),
                },
            ))
        };
        let announced = match announced {
            None => return Ok((None, StreamPath::Lists { reason: None })),
            Some(Err(trap)) => return Err(self.classify(trap)),
            Some(Ok(Err(message))) => {
                let message = GuestText::new(&message, ERROR_BYTES);
                return lists(format!("the guest declined: \"{message}\""));
            }
            Some(Ok(Ok(announced))) => announced,
        };
        let Some(memory) = &self.mapped.memory else {
            return lists(format!(
                "the guest has {} linear memories, so its buffers are ambiguous",
                self.mapped.memory_count
            ));
        };
        match mapped::check_announcement(announced, needed, memory.size()) {
            Ok(buffers) => Ok((
                Some(buffers),
                StreamPath::Mapped {
                    in_place: buffers.in_place(),
                },
            )),
            Err(problem) => {
                tracing::warn!(
                    "guest {} announced unusable buffers: {problem}; using lists instead",
                    self.name
                );
                lists(format!("unusable buffers: {problem}"))
            }
        }
    }

    /// Sends one audio block through the guest, in place: on
    /// [`Processed::Kept`] `samples` holds the output; otherwise (and on
    /// error) it is untouched.
    ///
    /// # Errors
    /// A trap, an error the guest reported, or output of the wrong length.
    pub fn process_audio(
        &mut self,
        call: AudioCall,
        samples: &mut Vec<f32>,
    ) -> Result<Processed, Fault> {
        let info = types::AudioInfo {
            timestamp_ns: call.timestamp_ns,
            first_frame: call.first_frame,
            sample_rate: call.format.sample_rate,
            channels: u32::from(call.format.channels),
        };
        let bytes = samples.len() * size_of::<f32>();
        // A block longer than the buffer (not sent by the pipeline, whose
        // block size is fixed) goes as a list; a shorter one fits.
        let mapped = self.mapped.audio.filter(|b| bytes <= b.input.length);
        self.last_call_mapped = mapped.is_some();
        if let Some(buffers) = mapped {
            self.arm(TEXT_TRANSFER_BYTES);
            self.guest_bytes(buffers.input, bytes)?
                .copy_from_slice(bytemuck::cast_slice(samples));
            let api = self
                .mapped
                .audio_api
                .as_ref()
                .expect("buffers imply the api");
            let count = samples.len() as u32;
            let result = api.call_process(&mut self.store, info, count);
            let processed = self.settle(result)?;
            if processed == Processed::Kept {
                let output = self.guest_bytes(buffers.output, bytes)?;
                bytemuck::cast_slice_mut(samples).copy_from_slice(output);
            }
            return Ok(processed);
        }
        // The result may be the block or an error message, nothing larger.
        self.arm(bytes.max(TEXT_TRANSFER_BYTES));
        let audio = self.audio.as_ref().ok_or(Fault::NotImplemented("audio"))?;
        let result = audio.call_process_audio(&mut self.store, info, samples);
        let output = self.settle(result)?;
        keep_list(output, samples, "samples")
    }

    /// Sends one RGBA8 frame through the guest, in place: on
    /// [`Processed::Kept`] `pixels` holds the output; otherwise (and on
    /// error) it is untouched.
    ///
    /// # Errors
    /// A trap, an error the guest reported, or output of the wrong size.
    pub fn process_video(
        &mut self,
        call: VideoCall,
        pixels: &mut Vec<u8>,
    ) -> Result<Processed, Fault> {
        match self.mapped_video_for(pixels.len()) {
            Some(buffers) => {
                self.guest_bytes(buffers.input, pixels.len())?
                    .copy_from_slice(pixels);
                let processed = self.call_mapped_video(call)?;
                if processed == Processed::Kept {
                    let bytes = pixels.len();
                    pixels.copy_from_slice(self.guest_bytes(buffers.output, bytes)?);
                }
                Ok(processed)
            }
            None => {
                let output = self.call_video_list(call, pixels)?;
                keep_list(output, pixels, "bytes of RGBA frame")
            }
        }
    }

    /// Sends one frame through the guest without the caller holding it:
    /// `fill` writes the input frame (`width * height * 4` bytes) and, if
    /// the guest keeps it, `drain` reads the output. On the mapped path
    /// both work directly on the guest's buffers, so a decoder can decode
    /// into the guest and an encoder read from it with no copy in between.
    ///
    /// # Errors
    /// As [`Self::process_video`].
    pub fn process_video_with(
        &mut self,
        call: VideoCall,
        fill: impl FnOnce(&mut [u8]),
        drain: impl FnOnce(&[u8]),
    ) -> Result<Processed, Fault> {
        let bytes = call.format.frame_bytes();
        if let Some(buffers) = self.mapped_video_for(bytes) {
            fill(self.guest_bytes(buffers.input, bytes)?);
            let processed = self.call_mapped_video(call)?;
            if processed == Processed::Kept {
                drain(self.guest_bytes(buffers.output, bytes)?);
            }
            return Ok(processed);
        }
        let mut input = std::mem::take(&mut self.video_scratch);
        input.resize(bytes, 0);
        fill(&mut input);
        let result = self.call_video_list(call, &input);
        self.video_scratch = input;
        let output = result?;
        if output.is_empty() {
            return Ok(Processed::Dropped);
        }
        check_len(output.len(), bytes, "bytes of RGBA frame")?;
        drain(&output);
        Ok(Processed::Kept)
    }

    /// The video buffers, if frames of `bytes` go through them; records
    /// which path this call takes.
    fn mapped_video_for(&mut self, bytes: usize) -> Option<Buffers> {
        let mapped = self.mapped.video.filter(|b| b.input.length == bytes);
        self.last_call_mapped = mapped.is_some();
        mapped
    }

    /// The first `bytes` of a buffer in the guest's memory, bounds-checked
    /// against the memory's size now.
    fn guest_bytes(&mut self, buffer: mapped::Span, bytes: usize) -> Result<&mut [u8], Fault> {
        debug_assert!(bytes <= buffer.length, "callers check the length");
        let memory = (self.mapped.memory.as_mut()).expect("buffers imply a memory");
        memory
            .slice_mut(buffer.offset, bytes)
            .map_err(|err| Fault::BadBuffer {
                detail: err.to_string(),
            })
    }

    fn call_mapped_video(&mut self, call: VideoCall) -> Result<Processed, Fault> {
        self.arm(TEXT_TRANSFER_BYTES);
        let api = self
            .mapped
            .video_api
            .as_ref()
            .expect("buffers imply the api");
        let result = api.call_process(&mut self.store, video_info(call));
        self.settle(result)
    }

    fn call_video_list(&mut self, call: VideoCall, pixels: &[u8]) -> Result<Vec<u8>, Fault> {
        // The result may be the frame or an error message, nothing larger.
        self.arm(pixels.len().max(TEXT_TRANSFER_BYTES));
        let video = self.video.as_ref().ok_or(Fault::NotImplemented("video"))?;
        let result = video.call_process_video(&mut self.store, video_info(call), pixels);
        self.settle(result)
    }
}

impl From<types::Outcome> for Processed {
    fn from(outcome: types::Outcome) -> Self {
        match outcome {
            types::Outcome::Keep => Processed::Kept,
            types::Outcome::Drop => Processed::Dropped,
        }
    }
}

fn video_info(call: VideoCall) -> types::VideoInfo {
    types::VideoInfo {
        timestamp_ns: call.timestamp_ns,
        index: call.index,
        width: call.format.width,
        height: call.format.height,
    }
}

/// The list path's result: the guest's vector replaces `buffer` (an empty
/// one means dropped).
fn keep_list<T>(
    output: Vec<T>,
    buffer: &mut Vec<T>,
    unit: &'static str,
) -> Result<Processed, Fault> {
    if output.is_empty() {
        return Ok(Processed::Dropped);
    }
    check_len(output.len(), buffer.len(), unit)?;
    *buffer = output;
    Ok(Processed::Kept)
}

fn check_len(got: usize, expected: usize, unit: &'static str) -> Result<(), Fault> {
    if got == expected || got == 0 {
        Ok(())
    } else {
        Err(Fault::WrongSize {
            got,
            expected,
            unit,
        })
    }
}
