//! `--video-out pipewire:NAME`: a virtual camera. The processed video is
//! offered as a PipeWire `Video/Source` node with the camera role, which
//! browsers, the camera portal and `pipewiresrc` list like a webcam — no
//! kernel module, no root.
//!
//! PipeWire objects live on one thread, which runs PipeWire's loop. The
//! stream's writer thread posts each frame into a triple buffer and wakes
//! that loop through an eventfd; the loop then asks the stream to process,
//! which copies the newest frame into a PipeWire buffer (RGBA as is, or
//! NV12 when the consumer asks for it). The node drives its own graph, so
//! frames leave as soon as they are written.

use super::Sink;
use super::latest::{FramePoster, FrameReader, latest_frame};
use crate::device::DeviceError;
use crate::media::{VideoFormat, VideoFrame};
use crate::metrics::StreamCounters;
use anyhow::{Context as _, anyhow};
use pipewire as pw;
use pw::spa;
use pw::spa::param::format::{FormatProperties, MediaSubtype, MediaType};
use pw::spa::param::video::{VideoFormat as SpaVideoFormat, VideoInfoRaw};
use pw::spa::pod::{Object, Pod, Property, Value, serialize::PodSerializer};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long to wait for PipeWire to accept the node.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Buffers PipeWire keeps for the node.
const BUFFERS: i32 = 4;

/// The node's name as PipeWire keys it (`node.name`): lower case, no
/// spaces, so `target-object=NAME` and `pw-cli` find it easily.
pub fn node_name(name: &str) -> String {
    let slug: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.trim_matches('-').to_string()
}

/// What the PipeWire thread tells the writer.
#[derive(Default)]
struct NodeStatus {
    streaming: AtomicBool,
    frames_sent: AtomicU64,
    /// Process calls that found no free buffer: the consumer held them all.
    no_buffer: AtomicU64,
    /// Set once `error` holds why the node failed: the writer checks this
    /// flag, not the lock, per frame.
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

impl NodeStatus {
    fn fail(&self, why: String) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        self.failed.store(true, Release);
    }

    /// Why the node failed, if it did.
    fn failure(&self) -> Option<String> {
        if !self.failed.load(Acquire) {
            return None;
        }
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Wakes PipeWire's loop from another thread: an eventfd, and whether the
/// wake means "stop".
struct Wake {
    fd: OwnedFd,
    quit: AtomicBool,
}

impl Wake {
    fn new() -> anyhow::Result<Self> {
        // SAFETY: eventfd takes no pointers; a negative result is an error.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("creating an eventfd");
        }
        Ok(Self {
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            quit: AtomicBool::new(false),
        })
    }

    /// Never blocks or allocates: one write to an eventfd.
    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own eventfd.
        unsafe {
            libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8);
        }
    }

    fn clear(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own eventfd.
        unsafe {
            libc::read(self.fd.as_raw_fd(), (&raw mut count).cast(), 8);
        }
    }
}

impl AsRawFd for Wake {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A virtual camera on PipeWire.
pub struct PipeWireCamera {
    label: String,
    poster: FramePoster,
    wake: Arc<Wake>,
    status: Arc<NodeStatus>,
    thread: Option<JoinHandle<()>>,
    /// Frames replaced before PipeWire took them, while someone watched.
    missed: u64,
    /// Misses already added to the stream's counters.
    reported: AtomicU64,
}

impl PipeWireCamera {
    /// Creates the node `name` (see [`node_name`]) offering `format`.
    ///
    /// # Errors
    /// PipeWire not running, or refusing the node.
    pub fn create(name: &str, format: VideoFormat) -> anyhow::Result<Self> {
        let node = node_name(name);
        if node.is_empty() {
            anyhow::bail!("`pipewire:{name}` needs a name with letters or digits");
        }
        let description = name.trim().to_string();
        let label = format!("PipeWire camera {node}");
        let (poster, reader) = latest_frame(format.frame_bytes());
        let wake = Arc::new(Wake::new()?);
        let status = Arc::new(NodeStatus::default());
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread = {
            let (wake, status) = (wake.clone(), status.clone());
            let node = node.clone();
            std::thread::Builder::new()
                .name("sandstream-pipewire".into())
                .spawn(move || {
                    let served = serve(
                        &node,
                        &description,
                        format,
                        reader,
                        &wake,
                        &status,
                        &ready_tx,
                    );
                    if let Err(error) = served {
                        let text = error.to_string();
                        let _ = ready_tx.try_send(Err(text.clone()));
                        status.fail(text);
                    }
                })
                .context("spawning the PipeWire thread")?
        };
        let unavailable = |detail: String| DeviceError::Unavailable {
            host: "PipeWire".into(),
            detail,
            hint: "start pipewire and wireplumber (desktop sessions run them), or use \
                   --video-out v4l2:/dev/videoN with v4l2loopback"
                .into(),
        };
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(detail)) => return Err(unavailable(detail).into()),
            Err(_) => {
                wake.quit.store(true, Relaxed);
                wake.signal();
                return Err(unavailable(format!(
                    "the node was not ready within {} s",
                    READY_TIMEOUT.as_secs()
                ))
                .into());
            }
        }
        tracing::info!("virtual camera `{name}` is PipeWire node {node} ({format})");
        Ok(Self {
            label,
            poster,
            wake,
            status,
            thread: Some(thread),
            missed: 0,
            reported: AtomicU64::new(0),
        })
    }

    fn stop(&mut self) {
        self.wake.quit.store(true, Relaxed);
        self.wake.signal();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Sink<VideoFrame> for PipeWireCamera {
    fn is_real_time(&self) -> bool {
        true
    }

    fn write(&mut self, frame: &VideoFrame) -> anyhow::Result<()> {
        // A flag, a copy and an eventfd write: nothing that allocates,
        // locks or waits (tests/realtime checks it).
        let _hot = crate::rt::hot();
        if let Some(error) = self.status.failure() {
            return Err(DeviceError::Disconnected {
                device: self.label.clone(),
                detail: error,
            }
            .into());
        }
        let replaced = self.poster.replaced;
        self.poster.post(frame);
        if self.poster.replaced > replaced && self.status.streaming.load(Relaxed) {
            self.missed += 1;
        }
        self.wake.signal();
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.stop();
        let sent = self.status.frames_sent.load(Relaxed);
        tracing::info!("{}: {sent} frames served", self.label);
        Ok(())
    }

    fn abort(mut self: Box<Self>) {
        self.stop();
    }

    fn describe(&self) -> String {
        self.label.clone()
    }

    fn report(&self, counters: &StreamCounters) {
        // Deltas: the stream's counters are shared by all its outputs.
        let missed = self.missed + self.status.no_buffer.load(Relaxed);
        let before = self.reported.swap(missed, Relaxed);
        if missed > before {
            counters.output_drops.fetch_add(missed - before, Relaxed);
        }
    }
}

impl Drop for PipeWireCamera {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The PipeWire side's state, owned by its loop.
struct Serving {
    reader: FrameReader,
    format: VideoFormat,
    /// What the consumer chose (RGBA or NV12), once negotiated.
    negotiated: Option<SpaVideoFormat>,
    status: Arc<NodeStatus>,
    ready: Option<crossbeam_channel::Sender<Result<(), String>>>,
}

fn serve(
    node: &str,
    description: &str,
    format: VideoFormat,
    reader: FrameReader,
    wake: &Arc<Wake>,
    status: &Arc<NodeStatus>,
    ready: &crossbeam_channel::Sender<Result<(), String>>,
) -> anyhow::Result<()> {
    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None).context("creating PipeWire's loop")?;
    let context = pw::context::ContextRc::new(&mainloop, None)?;
    let core = context
        .connect_rc(None)
        .map_err(|e| anyhow!("cannot connect to the PipeWire server ({e})"))?;
    let mut props = pw::properties::PropertiesBox::new();
    props.insert(*pw::keys::MEDIA_TYPE, "Video");
    props.insert(*pw::keys::MEDIA_CATEGORY, "Capture");
    props.insert(*pw::keys::MEDIA_ROLE, "Camera");
    props.insert(*pw::keys::MEDIA_CLASS, "Video/Source");
    props.insert(*pw::keys::NODE_NAME, node);
    props.insert(*pw::keys::NODE_DESCRIPTION, description);
    let stream = pw::stream::StreamRc::new(core, node, props)?;

    let serving = Serving {
        reader,
        format,
        negotiated: None,
        status: status.clone(),
        ready: Some(ready.clone()),
    };
    let _listener = stream
        .add_local_listener_with_user_data(serving)
        .state_changed(|_, serving, _, new| {
            use pw::stream::StreamState;
            serving
                .status
                .streaming
                .store(matches!(new, StreamState::Streaming), Relaxed);
            match new {
                StreamState::Paused | StreamState::Streaming => {
                    if let Some(ready) = serving.ready.take() {
                        let _ = ready.try_send(Ok(()));
                    }
                }
                StreamState::Error(text) => {
                    if let Some(ready) = serving.ready.take() {
                        let _ = ready.try_send(Err(text.clone()));
                    }
                    serving.status.fail(text);
                }
                _ => {}
            }
        })
        .param_changed(|stream, serving, id, param| {
            if id != spa::param::ParamType::Format.as_raw() {
                return;
            }
            let Some(param) = param else { return };
            let mut info = VideoInfoRaw::new();
            if info.parse(param).is_err() {
                return;
            }
            serving.negotiated = Some(info.format());
            let (size, stride) = buffer_layout(serving.format, info.format());
            if let Ok(bytes) = serialize(buffers_param(size, stride))
                && let Some(pod) = Pod::from_bytes(&bytes)
            {
                let _ = stream.update_params(&mut [pod]);
            }
        })
        .process(|stream, serving| {
            let _hot = crate::rt::hot();
            let Some(layout) = serving.negotiated else {
                return;
            };
            let format = serving.format;
            let Some(slot) = serving.reader.take_new() else {
                return;
            };
            let Some(mut buffer) = stream.dequeue_buffer() else {
                serving.status.no_buffer.fetch_add(1, Relaxed);
                return;
            };
            let (size, stride) = buffer_layout(format, layout);
            let data = &mut buffer.datas_mut()[0];
            let Some(bytes) = data.data() else { return };
            if bytes.len() < size {
                return;
            }
            fill(&slot.pixels, &mut bytes[..size], format, layout);
            let chunk = data.chunk_mut();
            *chunk.offset_mut() = 0;
            *chunk.stride_mut() = stride as i32;
            *chunk.size_mut() = size as u32;
            serving.status.frames_sent.fetch_add(1, Relaxed);
        })
        .register()?;

    let formats = [SpaVideoFormat::RGBA, SpaVideoFormat::NV12]
        .map(|f| serialize(format_param(format, f)))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mut params: Vec<&Pod> = formats
        .iter()
        .filter_map(|bytes| Pod::from_bytes(bytes))
        .collect();
    stream.connect(
        spa::utils::Direction::Output,
        None,
        pw::stream::StreamFlags::DRIVER | pw::stream::StreamFlags::MAP_BUFFERS,
        &mut params,
    )?;

    let _wake_source = {
        let (quit_loop, stream, wake_in_loop) = (mainloop.clone(), stream.clone(), wake.clone());
        let flags = spa::support::system::IoFlags::IN;
        mainloop.loop_().add_io(wake.clone(), flags, move |_| {
            wake_in_loop.clear();
            if wake_in_loop.quit.load(Relaxed) {
                quit_loop.quit();
            } else {
                let _ = stream.trigger_process();
            }
        })
    };
    mainloop.run();
    let _ = stream.disconnect();
    Ok(())
}

/// Bytes and row stride of one frame in `layout`.
fn buffer_layout(format: VideoFormat, layout: SpaVideoFormat) -> (usize, usize) {
    let (w, h) = (format.width as usize, format.height as usize);
    if layout == SpaVideoFormat::NV12 {
        (w * h + w.div_ceil(2) * 2 * h.div_ceil(2), w)
    } else {
        (w * h * 4, w * 4)
    }
}

/// Copies (RGBA) or converts (NV12, BT.601 limited range) a frame.
fn fill(rgba: &[u8], out: &mut [u8], format: VideoFormat, layout: SpaVideoFormat) {
    if layout != SpaVideoFormat::NV12 {
        out.copy_from_slice(&rgba[..out.len()]);
        return;
    }
    let (w, h) = (format.width as usize, format.height as usize);
    let (y_plane, uv_plane) = out.split_at_mut(w * h);
    let mut image = yuv::YuvBiPlanarImageMut {
        y_plane: yuv::BufferStoreMut::Borrowed(y_plane),
        y_stride: format.width,
        uv_plane: yuv::BufferStoreMut::Borrowed(uv_plane),
        uv_stride: (w.div_ceil(2) * 2) as u32,
        width: format.width,
        height: format.height,
    };
    let _ = yuv::rgba_to_yuv_nv12(
        &mut image,
        rgba,
        format.width * 4,
        yuv::YuvRange::Limited,
        yuv::YuvStandardMatrix::Bt601,
        yuv::YuvConversionMode::Balanced,
    );
}

/// One fixed format: browsers list a camera only with fixed choices.
fn format_param(format: VideoFormat, pixel: SpaVideoFormat) -> Object {
    Object {
        type_: spa::utils::SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties: vec![
            Property::new(
                FormatProperties::MediaType.as_raw(),
                Value::Id(spa::utils::Id(MediaType::Video.as_raw())),
            ),
            Property::new(
                FormatProperties::MediaSubtype.as_raw(),
                Value::Id(spa::utils::Id(MediaSubtype::Raw.as_raw())),
            ),
            Property::new(
                FormatProperties::VideoFormat.as_raw(),
                Value::Id(spa::utils::Id(pixel.as_raw())),
            ),
            Property::new(
                FormatProperties::VideoSize.as_raw(),
                Value::Rectangle(spa::utils::Rectangle {
                    width: format.width,
                    height: format.height,
                }),
            ),
            Property::new(
                FormatProperties::VideoFramerate.as_raw(),
                Value::Fraction(spa::utils::Fraction {
                    num: format.fps.num,
                    denom: format.fps.den,
                }),
            ),
        ],
    }
}

fn buffers_param(size: usize, stride: usize) -> Object {
    use spa::pod::ChoiceValue;
    use spa::sys;
    use spa::utils::{Choice, ChoiceEnum, ChoiceFlags};
    Object {
        type_: sys::SPA_TYPE_OBJECT_ParamBuffers,
        id: sys::SPA_PARAM_Buffers,
        properties: vec![
            Property::new(
                sys::SPA_PARAM_BUFFERS_buffers,
                Value::Choice(ChoiceValue::Int(Choice(
                    ChoiceFlags::empty(),
                    ChoiceEnum::Range {
                        default: BUFFERS,
                        min: 2,
                        max: 16,
                    },
                ))),
            ),
            Property::new(sys::SPA_PARAM_BUFFERS_blocks, Value::Int(1)),
            Property::new(sys::SPA_PARAM_BUFFERS_size, Value::Int(size as i32)),
            Property::new(sys::SPA_PARAM_BUFFERS_stride, Value::Int(stride as i32)),
            Property::new(
                sys::SPA_PARAM_BUFFERS_dataType,
                Value::Choice(ChoiceValue::Int(Choice(
                    ChoiceFlags::empty(),
                    ChoiceEnum::Flags {
                        default: (1 << sys::SPA_DATA_MemFd) | (1 << sys::SPA_DATA_MemPtr),
                        flags: vec![],
                    },
                ))),
            ),
        ],
    }
}

fn serialize(object: Object) -> anyhow::Result<Vec<u8>> {
    let (cursor, _) =
        PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &Value::Object(object))
            .map_err(|e| anyhow!("building a PipeWire parameter: {e:?}"))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_slugs_of_what_the_user_wrote() {
        assert_eq!(node_name("Sandstream Camera"), "sandstream-camera");
        assert_eq!(node_name(" blur cam! "), "blur-cam");
        assert_eq!(node_name("cam_1.hd"), "cam_1.hd");
        assert_eq!(node_name("!!"), "");
    }

    #[test]
    fn nv12_layout_of_odd_sizes_rounds_chroma_up() {
        let format = VideoFormat {
            width: 5,
            height: 3,
            fps: crate::media::Fps { num: 30, den: 1 },
        };
        assert_eq!(buffer_layout(format, SpaVideoFormat::NV12), (15 + 6 * 2, 5));
        assert_eq!(buffer_layout(format, SpaVideoFormat::RGBA), (60, 20));
    }
}
