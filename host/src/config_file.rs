//! `--config FILE.toml`: run options and the guest's `[config]` table.
//!
//! ```toml
//! audio-in = "tone:440"
//! audio-out = "file:out.wav"     # or a list of outputs
//! duration = 2.5
//! block = 256
//!
//! [config]                       # passed to the guest's configure
//! gain = 0.5
//! ```
//! Flags given on the command line win over the file; `--set` wins over
//! `[config]`.

use anyhow::{Context as _, bail};
use serde::Deserialize;
use std::path::Path;

/// One output or several.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The file's contents; every field optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ConfigFile {
    pub audio_in: Option<String>,
    pub audio_out: Option<OneOrMany>,
    pub video_in: Option<String>,
    pub video_out: Option<OneOrMany>,
    pub duration: Option<f64>,
    pub block: Option<u32>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub max_unsynced: Option<f64>,
    pub realtime: Option<bool>,
    pub audio_host: Option<String>,
    pub device_buffer: Option<u32>,
    pub latency: Option<f64>,
    pub on_fault: Option<String>,
    pub deadline: Option<f64>,
    pub memory_limit: Option<u64>,
    pub recycle_at: Option<u8>,
    pub limiter: Option<bool>,
    pub trusted: Option<bool>,
    pub data_path: Option<String>,
    pub grant_dir: Option<OneOrMany>,
    pub grant_env: Option<OneOrMany>,
    pub max_guest_size: Option<u64>,
    pub compile_timeout: Option<f64>,
    #[serde(default)]
    pub config: toml::Table,
}

impl ConfigFile {
    /// # Errors
    /// Unreadable file, TOML syntax errors, unknown keys (with their line).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// # Errors
    /// See [`ConfigFile::load`].
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        // toml's messages are multi-line; keep the first line for our
        // one-line errors.
        toml::from_str(text).map_err(|err| {
            let message = err.to_string();
            let first = message
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            anyhow::anyhow!("{first}")
        })
    }

    /// The `[config]` table as the guest's key/value strings.
    ///
    /// # Errors
    /// Nested tables or arrays, which have no string form.
    pub fn guest_config(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut pairs = Vec::new();
        for (key, value) in &self.config {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Datetime(d) => d.to_string(),
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    bail!(
                        "[config] {key}: only strings, numbers and booleans can be passed to a guest"
                    )
                }
            };
            pairs.push((key.clone(), text));
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_options_and_guest_config() {
        let file = ConfigFile::parse(
            "audio-in = 'tone:440'\naudio-out = ['file:a.wav', 'null']\nduration = 1.5\n[config]\ngain = 0.5\nname = 'x'\non = true\n",
        )
        .unwrap();
        assert_eq!(file.audio_in.as_deref(), Some("tone:440"));
        assert_eq!(
            file.audio_out.unwrap().into_vec(),
            vec!["file:a.wav", "null"]
        );
        assert_eq!(file.duration, Some(1.5));
        let config = ConfigFile::parse("[config]\ngain = 0.5\n")
            .unwrap()
            .guest_config()
            .unwrap();
        assert_eq!(config, vec![("gain".to_string(), "0.5".to_string())]);
    }

    #[test]
    fn unknown_keys_and_nested_values_are_errors() {
        let err = ConfigFile::parse("audio_inn = 'x'\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("audio_inn"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        let nested = ConfigFile::parse("[config]\nx = [1, 2]\n").unwrap();
        let err = nested.guest_config().unwrap_err().to_string();
        assert!(err.contains("[config] x"), "{err}");
    }
}
