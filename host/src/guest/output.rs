//! Guest output — the `log` import, stdout and stderr — into the host log,
//! always marked as the guest's and always within one budget per guest
//! program, shared by all three channels and every instance of the program
//! (restarts included):
//!
//! - each line is sanitized ([`GuestText`]) and cut at [`MAX_LINE`] bytes;
//! - at most [`MAX_LINES_PER_SECOND`] lines a second; the rest of that
//!   second is dropped (said once per second), so a chatty guest cannot
//!   stall the processing thread on log I/O;
//! - at most [`MAX_TOTAL`] bytes in all; then everything is dropped (said
//!   once), so a guest cannot fill the log or the disk behind it.
//!
//! What a single write may hand over is bounded before it is copied by the
//! call's transfer cap (`sandbox::TEXT_TRANSFER_BYTES`).

use crate::text::{GuestText, LINE_BYTES};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line kept; the rest of a longer line is cut (and said so).
pub const MAX_LINE: usize = LINE_BYTES;

/// Bytes of output a guest program may produce in all.
pub const MAX_TOTAL: usize = 256 * 1024;

/// Lines per second a guest program may log.
pub const MAX_LINES_PER_SECOND: u32 = 50;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Log(tracing::Level),
    Stdout,
    Stderr,
}

/// The output budget of one guest program, and where its lines go.
pub struct GuestLog {
    /// Already sanitized.
    name: Arc<str>,
    budget: Mutex<Budget>,
}

#[derive(Default)]
struct Budget {
    /// Bytes received so far (kept or not).
    received: usize,
    /// Start of the current one-second window, and lines seen in it.
    window: Option<Instant>,
    lines_in_window: u32,
}

impl GuestLog {
    pub fn new(name: Arc<str>) -> Arc<Self> {
        Arc::new(Self {
            name,
            budget: Mutex::default(),
        })
    }

    /// Charges `bytes` of raw output to the budget; false once the total is
    /// spent (announced the first time).
    fn charge(&self, budget: &mut Budget, bytes: usize, channel: Channel) -> bool {
        if budget.received >= MAX_TOTAL {
            return false;
        }
        budget.received = budget.received.saturating_add(bytes);
        if budget.received >= MAX_TOTAL {
            tracing::warn!(
                target: "guest",
                "[{}{}] more than {} KiB of output: the rest is dropped",
                self.name,
                suffix(channel),
                MAX_TOTAL / 1024
            );
            return false;
        }
        true
    }

    /// May another line be logged now? Announces the first line dropped in
    /// each one-second window.
    fn admit(&self, budget: &mut Budget, channel: Channel) -> bool {
        let now = Instant::now();
        if budget
            .window
            .is_none_or(|start| now - start >= Duration::from_secs(1))
        {
            budget.window = Some(now);
            budget.lines_in_window = 0;
        }
        budget.lines_in_window = budget.lines_in_window.saturating_add(1);
        if budget.lines_in_window <= MAX_LINES_PER_SECOND {
            return true;
        }
        if budget.lines_in_window == MAX_LINES_PER_SECOND + 1 {
            tracing::warn!(
                target: "guest",
                "[{}{}] over {MAX_LINES_PER_SECOND} lines/s: the rest of this second is dropped",
                self.name,
                suffix(channel),
            );
        }
        false
    }

    /// A `log` import call: one message, one line.
    pub fn message(&self, level: tracing::Level, message: &str) {
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        let channel = Channel::Log(level);
        if self.charge(&mut budget, message.len(), channel) && self.admit(&mut budget, channel) {
            self.emit(channel, &GuestText::new(message, MAX_LINE));
        }
    }

    fn emit(&self, channel: Channel, text: &GuestText) {
        let name = &*self.name;
        match channel {
            Channel::Log(tracing::Level::TRACE) => {
                tracing::trace!(target: "guest", "[{name}] {text}")
            }
            Channel::Log(tracing::Level::DEBUG) => {
                tracing::debug!(target: "guest", "[{name}] {text}")
            }
            Channel::Log(tracing::Level::INFO) => {
                tracing::info!(target: "guest", "[{name}] {text}")
            }
            Channel::Log(tracing::Level::WARN) => {
                tracing::warn!(target: "guest", "[{name}] {text}")
            }
            Channel::Log(tracing::Level::ERROR) => {
                tracing::error!(target: "guest", "[{name}] {text}")
            }
            Channel::Stdout => tracing::info!(target: "guest", "[{name} stdout] {text}"),
            Channel::Stderr => tracing::info!(target: "guest", "[{name} stderr] {text}"),
        }
    }
}

fn suffix(channel: Channel) -> &'static str {
    match channel {
        Channel::Log(_) => "",
        Channel::Stdout => " stdout",
        Channel::Stderr => " stderr",
    }
}

/// A WASI output stream (stdout or stderr of one instance) that writes
/// complete lines into the program's [`GuestLog`].
#[derive(Clone)]
pub struct LogStream {
    log: Arc<GuestLog>,
    channel: Channel,
    line: Arc<Mutex<Line>>,
}

/// The line being written: its first [`MAX_LINE`] bytes, and its length.
#[derive(Default)]
struct Line {
    kept: Vec<u8>,
    len: usize,
}

impl LogStream {
    pub fn stdout(log: Arc<GuestLog>) -> Self {
        Self::new(log, Channel::Stdout)
    }

    pub fn stderr(log: Arc<GuestLog>) -> Self {
        Self::new(log, Channel::Stderr)
    }

    fn new(log: Arc<GuestLog>, channel: Channel) -> Self {
        Self {
            log,
            channel,
            line: Arc::default(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut budget = self.log.budget.lock().unwrap_or_else(|e| e.into_inner());
        if !self.log.charge(&mut budget, bytes.len(), self.channel) {
            return;
        }
        let mut line = self.line.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            let (content, ends) = match chunk.strip_suffix(b"\n") {
                Some(content) => (content, true),
                None => (chunk, false),
            };
            let room = MAX_LINE.saturating_sub(line.kept.len());
            line.kept
                .extend_from_slice(&content[..content.len().min(room)]);
            line.len += content.len();
            if ends {
                let Line { kept, len } = std::mem::take(&mut *line);
                if self.log.admit(&mut budget, self.channel) {
                    self.log
                        .emit(self.channel, &GuestText::from_prefix(&kept, len));
                }
            }
        }
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        // The last clone flushes an unterminated final line.
        if Arc::strong_count(&self.line) > 1 {
            return;
        }
        let Line { kept, len } =
            std::mem::take(&mut *self.line.lock().unwrap_or_else(|e| e.into_inner()));
        if len == 0 {
            return;
        }
        let mut budget = self.log.budget.lock().unwrap_or_else(|e| e.into_inner());
        if budget.received < MAX_TOTAL && self.log.admit(&mut budget, self.channel) {
            self.log
                .emit(self.channel, &GuestText::from_prefix(&kept, len));
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LogStream {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
