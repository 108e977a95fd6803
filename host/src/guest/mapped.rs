//! The mapped data path: which buffers a guest announced, and whether the
//! host may use them.
//!
//! A guest exporting `mapped-audio` / `mapped-video` tells the host, once,
//! where in its linear memory it keeps its input and output buffers. The
//! announcement is checked here before a single byte is written: lengths
//! must match the stream's format, both buffers must lie inside the memory,
//! and they must be one buffer or two disjoint ones. Each later access is
//! checked again against the memory's size at that moment
//! ([`super::memory::GuestMemory`]), so a guest that lies costs itself the
//! mapped path, never the host its memory.

use super::bindings::types;
use std::fmt;
use std::str::FromStr;

/// How frames may travel to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataPath {
    /// Through the guest's own buffers when it exports `mapped-*`, as
    /// canonical-ABI lists otherwise.
    #[default]
    Auto,
    /// Always as lists (for comparison, or to rule the mapped path out).
    Lists,
}

impl FromStr for DataPath {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(Self::Auto),
            "list" | "lists" => Ok(Self::Lists),
            other => Err(format!(
                "unknown data path `{other}`; expected auto or list"
            )),
        }
    }
}

/// How one stream actually travels for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPath {
    /// Through the guest's buffers.
    Mapped { in_place: bool },
    /// As lists, and why (empty when the guest has no mapped export, or
    /// the user asked for lists).
    Lists { reason: Option<String> },
}

impl fmt::Display for StreamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamPath::Mapped { in_place: true } => {
                f.write_str("mapped memory (one buffer, in place)")
            }
            StreamPath::Mapped { in_place: false } => {
                f.write_str("mapped memory (input and output buffers)")
            }
            StreamPath::Lists { reason: None } => f.write_str("lists"),
            StreamPath::Lists {
                reason: Some(reason),
            } => write!(f, "lists ({reason})"),
        }
    }
}

/// A byte range in guest memory that passed the announcement checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: usize,
    pub length: usize,
}

impl Span {
    fn end(self) -> u64 {
        self.offset as u64 + self.length as u64
    }

    fn overlaps(self, other: Span) -> bool {
        (self.offset as u64) < other.end() && (other.offset as u64) < self.end()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes {}..{}", self.offset, self.end())
    }
}

/// One stream's buffers, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffers {
    pub input: Span,
    pub output: Span,
}

impl Buffers {
    pub fn in_place(&self) -> bool {
        self.input == self.output
    }
}

fn span(region: types::Region) -> Span {
    Span {
        offset: region.offset as usize,
        length: region.length as usize,
    }
}

/// Checks a guest's announcement for a stream whose blocks or frames take
/// `needed` bytes, in a memory of `memory_size` bytes.
///
/// # Errors
/// What is wrong, in words for the user's log.
pub fn check_announcement(
    announced: types::Buffers,
    needed: usize,
    memory_size: usize,
) -> Result<Buffers, String> {
    let buffers = Buffers {
        input: span(announced.input),
        output: span(announced.output),
    };
    for (name, span) in [("input", buffers.input), ("output", buffers.output)] {
        if span.length != needed {
            return Err(format!(
                "its {name} buffer holds {} bytes where {needed} are needed",
                span.length
            ));
        }
        if span.end() > memory_size as u64 {
            return Err(format!(
                "its {name} buffer ({span}) lies outside its {memory_size}-byte linear memory"
            ));
        }
    }
    if !buffers.in_place() && buffers.input.overlaps(buffers.output) {
        return Err(format!(
            "its input ({}) and output ({}) buffers overlap without being the same buffer",
            buffers.input, buffers.output
        ));
    }
    Ok(buffers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announce(input: (u32, u32), output: (u32, u32)) -> types::Buffers {
        let region = |(offset, length)| types::Region { offset, length };
        types::Buffers {
            input: region(input),
            output: region(output),
        }
    }

    #[test]
    fn good_announcements_pass() {
        let same = check_announcement(announce((64, 16), (64, 16)), 16, 1024).unwrap();
        assert!(same.in_place());
        let apart = check_announcement(announce((0, 16), (16, 16)), 16, 1024).unwrap();
        assert!(!apart.in_place());
        assert_eq!(apart.output.offset, 16);
    }

    #[test]
    fn lies_are_named() {
        let err =
            |input, output| check_announcement(announce(input, output), 16, 1024).unwrap_err();
        assert!(err((0, 8), (0, 16)).contains("input buffer holds 8 bytes where 16"));
        assert!(
            err((1020, 16), (0, 16))
                .contains("input buffer (bytes 1020..1036) lies outside its 1024-byte")
        );
        assert!(
            err((0, 16), (u32::MAX, 16)).contains("output buffer (bytes 4294967295..4294967311)")
        );
        assert!(err((0, 16), (8, 16)).contains("overlap without being the same buffer"));
    }

    #[test]
    fn data_path_parses() {
        assert_eq!("auto".parse(), Ok(DataPath::Auto));
        assert_eq!("list".parse(), Ok(DataPath::Lists));
        assert!(
            "zero-copy"
                .parse::<DataPath>()
                .unwrap_err()
                .contains("auto or list")
        );
    }
}
