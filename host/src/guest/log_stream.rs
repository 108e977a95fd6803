//! Guest stdout/stderr, routed line by line into the host log.

use std::sync::{Arc, Mutex};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line kept; the rest of a longer line is cut (and said so).
const MAX_LINE: usize = 4096;

/// Bytes of output an instance may log in all; the rest is dropped, so a
/// guest cannot flood the log (or the disk behind it).
const MAX_TOTAL: usize = 256 * 1024;

/// Lines per second an instance may log; the excess in each second is
/// dropped and counted, so a chatty guest cannot stall the processing
/// thread on log I/O.
const MAX_LINES_PER_SECOND: u32 = 50;

/// A WASI output stream that writes complete lines to `tracing`.
#[derive(Clone)]
pub struct LogStream {
    guest: Arc<str>,
    stream: &'static str,
    pending: Arc<Mutex<Pending>>,
}

#[derive(Default)]
struct Pending {
    line: Vec<u8>,
    logged: usize,
    /// Start of the current one-second window, and lines seen in it.
    window: Option<std::time::Instant>,
    lines_in_window: u32,
}

impl Pending {
    /// May another line be logged now? Announces the first line dropped in
    /// each one-second window.
    fn admit(&mut self, guest: &str, stream: &str) -> bool {
        let now = std::time::Instant::now();
        if self
            .window
            .is_none_or(|start| now - start >= std::time::Duration::from_secs(1))
        {
            self.window = Some(now);
            self.lines_in_window = 0;
        }
        if self.lines_in_window < MAX_LINES_PER_SECOND {
            self.lines_in_window += 1;
            return true;
        }
        if self.lines_in_window == MAX_LINES_PER_SECOND {
            self.lines_in_window += 1;
            tracing::warn!(
                target: "guest",
                "[{guest} {stream}] over {MAX_LINES_PER_SECOND} lines/s: the rest of this second is dropped"
            );
        }
        false
    }
}

impl LogStream {
    pub fn new(guest: Arc<str>, stream: &'static str) -> Self {
        Self {
            guest,
            stream,
            pending: Arc::default(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.logged >= MAX_TOTAL {
            return;
        }
        for &byte in bytes {
            if byte == b'\n' {
                let line = std::mem::take(&mut pending.line);
                pending.logged += line.len() + 1;
                if pending.admit(&self.guest, self.stream) {
                    self.emit(&line);
                }
                if pending.logged >= MAX_TOTAL {
                    tracing::warn!(
                        target: "guest",
                        "[{} {}] more than {} KiB of output: the rest is dropped",
                        self.guest,
                        self.stream,
                        MAX_TOTAL / 1024
                    );
                    return;
                }
            } else if pending.line.len() < MAX_LINE {
                pending.line.push(byte);
            }
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let cut = if line.len() >= MAX_LINE {
            " [line cut]"
        } else {
            ""
        };
        tracing::info!(target: "guest", "[{} {}] {text}{cut}", self.guest, self.stream);
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        // The last clone flushes an unterminated final line.
        if Arc::strong_count(&self.pending) == 1 {
            let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if !pending.line.is_empty() && pending.logged < MAX_TOTAL {
                self.emit(&pending.line);
            }
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
