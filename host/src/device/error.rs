//! Device errors with kinds the pipeline can act on: a disconnect stops the
//! run but keeps its outputs; the others are set-up errors that say what
//! exists or what to do.

use std::fmt;

/// Whether a device captures or plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

impl Direction {
    pub fn noun(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// No device matched the name; lists those that exist.
    NotFound {
        /// What was looked for: "audio input", "camera".
        what: String,
        wanted: String,
        host: String,
        available: Vec<String>,
    },
    /// The device cannot do the format asked for; lists what it can.
    FormatUnsupported {
        device: String,
        wanted: String,
        supported: Vec<String>,
    },
    /// The device went away while running.
    Disconnected { device: String, detail: String },
    /// The device system itself cannot be reached (no sound server).
    Unavailable {
        host: String,
        detail: String,
        hint: String,
    },
    /// Anything else the backend reported.
    Backend { device: String, detail: String },
}

impl DeviceError {
    /// A disconnect ends the run, but what was written so far is kept.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, Self::Disconnected { .. })
    }
}

/// True when `error` is (or wraps) a device disconnect.
pub fn is_disconnect(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<DeviceError>())
        .any(DeviceError::is_disconnect)
}

fn list(f: &mut fmt::Formatter<'_>, items: &[String]) -> fmt::Result {
    for item in items {
        write!(f, "\n  {item}")?;
    }
    Ok(())
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound {
                what,
                wanted,
                host,
                available,
            } => {
                write!(f, "no {what} matches `{wanted}` on {host}")?;
                if available.is_empty() {
                    write!(f, "; it has no {what}s")
                } else {
                    write!(f, "; {what}s there:")?;
                    list(f, available)
                }
            }
            Self::FormatUnsupported {
                device,
                wanted,
                supported,
            } => {
                write!(f, "{device} cannot do {wanted}; it supports:")?;
                list(f, supported)
            }
            Self::Disconnected { device, detail } => {
                write!(f, "{device} disconnected: {detail}")
            }
            Self::Unavailable { host, detail, hint } => {
                if detail.ends_with("not available") || detail.is_empty() {
                    write!(f, "{host} is not available: {hint}")
                } else {
                    write!(f, "{host} is not available ({detail}): {hint}")
                }
            }
            Self::Backend { device, detail } => write!(f, "{device}: {detail}"),
        }
    }
}

impl std::error::Error for DeviceError {}
