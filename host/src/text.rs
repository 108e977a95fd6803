//! Text that comes from a guest — log messages, stdout/stderr lines, error
//! strings, panic messages, its file name — made safe to show before anyone
//! sees it.
//!
//! Control characters, newlines and invisible format characters (bidi
//! overrides, zero-width characters, line separators) are escaped, so guest
//! text always stays on the line the host started for it: it cannot begin a
//! line of its own, forge a host `error:` or report line, or send a terminal
//! escape. Length is capped before escaping, so the escaped text is bounded
//! too (at most 10 bytes per input byte, in practice far less).

use std::fmt;

/// Guest text, sanitized and capped. Display it as is: it is one line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuestText(String);

/// Longest error message kept from a guest (bytes of the original).
pub const ERROR_BYTES: usize = 1024;

/// Longest log or output line kept from a guest (bytes of the original).
pub const LINE_BYTES: usize = 4096;

impl GuestText {
    /// `raw`, escaped and cut to `max_bytes` of the original.
    pub fn new(raw: &str, max_bytes: usize) -> Self {
        let kept = &raw[..floor_char_boundary(raw, max_bytes)];
        Self::escape(kept, raw.len())
    }

    /// Like [`GuestText::new`], for bytes that should be UTF-8 (invalid
    /// sequences become U+FFFD).
    pub fn from_bytes(raw: &[u8], max_bytes: usize) -> Self {
        Self::from_prefix(&raw[..raw.len().min(max_bytes)], raw.len())
    }

    /// The first bytes of a text of `total_len` bytes (the rest was never
    /// kept), escaped; says it was cut when it was.
    pub fn from_prefix(kept: &[u8], total_len: usize) -> Self {
        let mut text = Self::escape(&String::from_utf8_lossy(kept), 0);
        if total_len > kept.len() {
            text.0
                .push_str(&format!(" [cut: {total_len} bytes in all]"));
        }
        text
    }

    /// Escapes `kept`; says the text was cut when the original had more
    /// than `kept.len()` bytes (`original_len`).
    fn escape(kept: &str, original_len: usize) -> Self {
        let mut text = String::with_capacity(kept.len() + 16);
        for c in kept.chars() {
            if must_escape(c) {
                text.extend(c.escape_debug());
            } else {
                text.push(c);
            }
        }
        if original_len > kept.len() {
            text.push_str(&format!(" [cut: {original_len} bytes in all]"));
        }
        GuestText(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GuestText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `c` would change how the surrounding host text reads: control
/// characters (newlines, tabs, ESC, C1), and everything Rust's own debug
/// escaping treats as unprintable (format characters such as bidi
/// overrides and zero-width spaces, separators, unassigned code points).
fn must_escape(c: char) -> bool {
    if matches!(c, '\\' | '"' | '\'') {
        return false;
    }
    c.is_control() || c.escape_debug().nth(1).is_some()
}

/// The largest index `<= at` on a char boundary of `s`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_escapes_cannot_leave_the_line() {
        let forged = "ok\nerror: the host is compromised\r\x1b[2J\x07\u{85}\u{2028}";
        let text = GuestText::new(forged, 1024).to_string();
        assert!(!text.contains(['\n', '\r', '\x1b', '\x07', '\u{85}', '\u{2028}']));
        assert!(text.starts_with("ok\\nerror: the host"), "{text}");
        assert!(text.contains("\\u{1b}[2J"), "{text}");
    }

    #[test]
    fn invisible_format_characters_are_shown() {
        let text = GuestText::new("safe\u{202e}txt.exe\u{200b}\u{feff}", 1024).to_string();
        assert_eq!(text, "safe\\u{202e}txt.exe\\u{200b}\\u{feff}");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for plain in [
            "gain: expected a number, got 'loud'",
            "Grüße, 世界 \"quoted\" \\",
        ] {
            assert_eq!(GuestText::new(plain, 1024).as_str(), plain);
        }
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_says_so() {
        let long = "é".repeat(1000);
        let text = GuestText::new(&long, 101).to_string();
        assert!(text.starts_with(&"é".repeat(50)), "{text}");
        assert!(text.ends_with(" [cut: 2000 bytes in all]"), "{text}");
        let bytes = GuestText::from_bytes(&[b'x'; 10_000], 10).to_string();
        assert_eq!(bytes, "xxxxxxxxxx [cut: 10000 bytes in all]");
    }

    #[test]
    fn escaping_is_bounded() {
        let worst = "\u{1}".repeat(LINE_BYTES * 4);
        let text = GuestText::new(&worst, LINE_BYTES);
        assert!(
            text.as_str().len() <= LINE_BYTES * 10,
            "{}",
            text.as_str().len()
        );
    }
}
