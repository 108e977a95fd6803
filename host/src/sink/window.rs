//! `--video-out window`: a preview window with the frame number and the
//! capture → screen latency in its title. Closing it ends the run cleanly,
//! as Ctrl-C does.
//!
//! The window lives on a thread of its own (minifb on X11 and Wayland
//! allows that), so a library user's main thread stays free. On macOS a
//! window must belong to the main thread: not supported there yet.

use super::Sink;
use super::latest::{FramePoster, FrameReader, latest_frame};
use crate::clock;
use crate::media::{VideoFormat, VideoFrame};
use crate::pipeline::UserStop;
use anyhow::Context as _;
use minifb::{ScaleMode, Window, WindowOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the title (frame, latency) is refreshed.
const TITLE_EVERY: Duration = Duration::from_millis(250);

/// What the window's thread shares with the writer.
#[derive(Default)]
struct Shared {
    closed: AtomicBool,
    quit: AtomicBool,
    shown: AtomicU64,
}

pub struct WindowSink {
    title: String,
    poster: FramePoster,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl WindowSink {
    /// Opens a window the size of `format`'s frames.
    ///
    /// # Errors
    /// No display to open it on.
    pub fn open(title: &str, format: VideoFormat) -> anyhow::Result<Self> {
        Self::open_with_input(title, format, None)
    }

    /// Opens a window with the input (frames posted to `input`'s other
    /// end) on the left and the output on the right.
    ///
    /// # Errors
    /// No display to open it on.
    pub fn open_with_input(
        title: &str,
        format: VideoFormat,
        input: Option<FrameReader>,
    ) -> anyhow::Result<Self> {
        let (poster, reader) = latest_frame(format.frame_bytes());
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread = {
            let (shared, title) = (shared.clone(), title.to_string());
            std::thread::Builder::new()
                .name("sandstream-window".into())
                .spawn(move || show(&title, format, (input, reader), &shared, &ready_tx))
                .context("spawning the window thread")?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(detail)) => anyhow::bail!("cannot open a preview window: {detail}"),
            Err(_) => anyhow::bail!("cannot open a preview window: its thread ended"),
        }
        Ok(Self {
            title: title.to_string(),
            poster,
            shared,
            thread: Some(thread),
        })
    }

    fn close(&mut self) {
        self.shared.quit.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Sink<VideoFrame> for WindowSink {
    fn is_real_time(&self) -> bool {
        true
    }

    fn write(&mut self, frame: &VideoFrame) -> anyhow::Result<()> {
        if self.shared.closed.load(Relaxed) {
            // Once: the run stops.
            return Err(UserStop("the preview window was closed".into()).into());
        }
        let _hot = crate::rt::hot();
        self.poster.post(frame);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.close();
        Ok(())
    }

    fn abort(mut self: Box<Self>) {
        self.close();
    }

    fn describe(&self) -> String {
        format!("window \"{}\"", self.title)
    }
}

impl Drop for WindowSink {
    fn drop(&mut self) {
        self.close();
    }
}

fn show(
    title: &str,
    format: VideoFormat,
    (mut input, mut output): (Option<FrameReader>, FrameReader),
    shared: &Shared,
    ready: &crossbeam_channel::Sender<Result<(), String>>,
) {
    let (w, h) = (format.width as usize, format.height as usize);
    // Side by side: input on the left, output on the right.
    let panes = if input.is_some() { 2 } else { 1 };
    let options = WindowOptions {
        resize: true,
        scale_mode: ScaleMode::AspectRatioStretch,
        ..WindowOptions::default()
    };
    let mut window = match Window::new(title, w * panes, h, options) {
        Ok(window) => window,
        Err(e) => {
            let hint = if std::env::var_os("DISPLAY").is_none()
                && std::env::var_os("WAYLAND_DISPLAY").is_none()
            {
                " (no DISPLAY or WAYLAND_DISPLAY is set)"
            } else {
                ""
            };
            let _ = ready.send(Err(format!("{e}{hint}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    window.set_target_fps(60);
    let mut pixels = vec![0u32; w * panes * h];
    let mut last_title_ns = 0;
    while window.is_open() && !shared.quit.load(Relaxed) {
        if let Some(slot) = input.as_mut().and_then(FrameReader::take_new) {
            to_xrgb(&slot.pixels, &mut pixels, w, 0, panes);
        }
        if let Some(slot) = output.take_new() {
            to_xrgb(&slot.pixels, &mut pixels, w, panes - 1, panes);
            let shown = shared.shown.fetch_add(1, Relaxed) + 1;
            let now = clock::now_ns();
            if now - last_title_ns >= TITLE_EVERY.as_nanos() as u64 {
                last_title_ns = now;
                let latency_ms = now.saturating_sub(slot.timestamp_ns) as f64 / 1e6;
                let sides = if panes == 2 {
                    " — input | output"
                } else {
                    ""
                };
                window.set_title(&format!(
                    "{title}{sides} — frame {} — {latency_ms:.0} ms — {shown} shown",
                    slot.index
                ));
            }
        }
        if window.update_with_buffer(&pixels, w * panes, h).is_err() {
            break;
        }
    }
    if !shared.quit.load(Relaxed) {
        shared.closed.store(true, Relaxed);
    }
}

/// RGBA rows `width` wide to the 0RGB words the window takes, into pane
/// `pane` of `panes` side by side.
fn to_xrgb(rgba: &[u8], out: &mut [u32], width: usize, pane: usize, panes: usize) {
    let rows = rgba.chunks_exact(width * 4);
    for (row, out_row) in rows.zip(out.chunks_exact_mut(width * panes)) {
        let out_row = &mut out_row[pane * width..][..width];
        for (px, word) in row.chunks_exact(4).zip(out_row.iter_mut()) {
            *word = u32::from(px[0]) << 16 | u32::from(px[1]) << 8 | u32::from(px[2]);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rgba_becomes_xrgb_in_its_pane() {
        let mut out = [0u32; 2];
        super::to_xrgb(&[1, 2, 3, 255, 255, 0, 128, 7], &mut out, 2, 0, 1);
        assert_eq!(out, [0x0001_0203, 0x00ff_0080]);
        // Two 1x2 frames side by side: the right pane of each row.
        let mut out = [0u32; 4];
        super::to_xrgb(&[9, 9, 9, 0, 1, 1, 1, 0], &mut out, 1, 1, 2);
        assert_eq!(out, [0, 0x0009_0909, 0, 0x0001_0101]);
    }
}
