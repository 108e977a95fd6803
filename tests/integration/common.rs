use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A built guest, e.g. `guest("gain")`.
pub fn guest(name: &str) -> PathBuf {
    let dir = std::env::var_os("SANDSTREAM_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/guests"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask guests` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// A fresh, empty directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("sandstream-test-{}-{test}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiled guests are shared by all tests through one cache directory.
pub fn cache_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    target
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("test-compile-cache")
}

/// Runs the `sandstream` binary quietly (only errors on stderr).
pub fn sandstream(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .arg("--quiet")
        .args(args)
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .output()
        .expect("the sandstream binary runs")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs an external tool (sox, ffmpeg, ffprobe) and returns stdout+stderr.
pub fn tool(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed by this test (cargo xtask setup installs it): {e}")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{program} {args:?} failed: {text}");
    text
}

pub fn s(path: &Path) -> String {
    path.display().to_string()
}

/// `file:` spec for a path.
pub fn file(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// A 8-bit 4:2:0 Y4M file read by the test's own minimal parser.
pub struct Y4m {
    pub width: usize,
    pub height: usize,
    pub colourspace: String,
    pub frames: Vec<Vec<u8>>,
}

impl Y4m {
    pub fn read(path: &Path) -> Y4m {
        let bytes = std::fs::read(path).unwrap();
        let header_end = bytes.iter().position(|&b| b == b'\n').unwrap();
        let header = std::str::from_utf8(&bytes[..header_end]).unwrap();
        assert!(header.starts_with("YUV4MPEG2 "), "{header}");
        let field = |tag: char| {
            header
                .split(' ')
                .find_map(|f| f.strip_prefix(tag))
                .map(str::to_string)
        };
        let width: usize = field('W').unwrap().parse().unwrap();
        let height: usize = field('H').unwrap().parse().unwrap();
        let colourspace = field('C').unwrap_or_else(|| "420jpeg".into());
        assert!(
            colourspace.starts_with("420"),
            "test parser reads 4:2:0 only, got {colourspace}"
        );
        let frame_len = width * height + 2 * width.div_ceil(2) * height.div_ceil(2);
        let mut frames = Vec::new();
        let mut at = header_end + 1;
        while at < bytes.len() {
            let line_end = at + bytes[at..].iter().position(|&b| b == b'\n').unwrap();
            assert!(bytes[at..line_end].starts_with(b"FRAME"));
            at = line_end + 1;
            frames.push(bytes[at..at + frame_len].to_vec());
            at += frame_len;
        }
        Y4m {
            width,
            height,
            colourspace,
            frames,
        }
    }

    pub fn luma<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[..self.width * self.height]
    }

    pub fn chroma<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[self.width * self.height..]
    }
}

/// The value of a `sox FILE -n stat` line, e.g. "RMS     amplitude".
pub fn sox_stat(path: &Path, key: &str) -> f64 {
    let text = tool("sox", &[&s(path), "-n", "stat"]);
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` in sox stat output:\n{text}"))
}

/// A Y4M made by ffmpeg's `testsrc` (colour bars, gradients, a counter).
pub fn testsrc(path: &Path, size: &str, rate: u32, seconds: f64, pix_fmt: &str) {
    let source = format!("testsrc=size={size}:rate={rate}");
    let seconds = seconds.to_string();
    tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-strict",
            "-1",
            "-f",
            "lavfi",
            "-i",
            &source,
            "-t",
            &seconds,
            "-pix_fmt",
            pix_fmt,
            &s(path),
        ],
    );
}

/// How a measured `sandstream` run went.
pub struct Ran {
    pub code: Option<i32>,
    pub log: String,
    pub took: Duration,
}

impl Ran {
    /// The host's peak resident memory, from its end-of-run report.
    pub fn peak_mib(&self) -> u64 {
        let line = self
            .log
            .lines()
            .find_map(|l| l.strip_prefix("memory: peak "));
        let mib = line.and_then(|l| l.split(' ').next()?.parse().ok());
        mib.unwrap_or_else(|| panic!("no peak memory in the report: {}", self.log))
    }
}

/// `sandstream ARGS` with the log at `warn` and `stdin` written to it,
/// timed.
pub fn measured(args: &[&str], stdin: &[u8]) -> Ran {
    measured_at("warn", args, stdin)
}

/// [`measured`] with the log at `level`.
pub fn measured_at(level: &str, args: &[&str], stdin: &[u8]) -> Ran {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandstream"))
        .args(args)
        .env("SANDSTREAM_CACHE_DIR", cache_dir())
        .env("RUST_LOG", level)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let status = child.wait().unwrap();
    Ran {
        code: status.code(),
        log,
        took: start.elapsed(),
    }
}

/// A 1 s, 1 kHz stereo sine at half scale (48 kHz, float), made by sox in a
/// directory of its own.
pub fn sine_wav(test: &str) -> PathBuf {
    sine_wav_in(&scratch(test), 1000, 1)
}

/// A stereo float WAV of a `hz` sine at half scale, `seconds` long, in `dir`.
pub fn sine_wav_in(dir: &Path, hz: u32, seconds: u32) -> PathBuf {
    let wav = dir.join(format!("sine{hz}.wav"));
    let (seconds, hz) = (seconds.to_string(), hz.to_string());
    let format = ["-r", "48000", "-c", "2", "-b", "32", "-e", "floating-point"];
    let mut args = vec!["-n"];
    args.extend(format);
    args.extend([
        wav.to_str().unwrap(),
        "synth",
        &seconds,
        "sine",
        &hz,
        "vol",
        "0.5",
    ]);
    tool("sox", &args);
    wav
}

/// Every sample of a float WAV file.
pub fn read_wav(path: &Path) -> Vec<f32> {
    hound::WavReader::open(path)
        .unwrap()
        .samples::<f32>()
        .map(Result::unwrap)
        .collect()
}

/// Per block of `frames` stereo frames: how `output` relates to `input`
/// (0.5 = a guest's half gain, 1.0 = bypassed, 0.0 = muted).
pub fn block_ratios(input: &[f32], output: &[f32], frames: usize) -> Vec<f64> {
    input
        .chunks(frames * 2)
        .zip(output.chunks(frames * 2))
        .map(|(i, o)| {
            let dot: f64 = i
                .iter()
                .zip(o)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let norm: f64 = i.iter().map(|a| f64::from(*a).powi(2)).sum();
            dot / norm
        })
        .collect()
}

/// A tone's frequency (from its zero crossings) and peak level, in mono
/// samples at `rate`.
pub fn tone_of(mono: &[f32], rate: u32) -> (f64, f32) {
    let crossings: Vec<f64> = mono
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| i as f64 + f64::from(w[0] / (w[0] - w[1])))
        .collect();
    let peak = mono.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    match (crossings.first(), crossings.last()) {
        (Some(first), Some(last)) if crossings.len() > 2 => {
            let periods = (crossings.len() - 1) as f64;
            (periods * f64::from(rate) / (last - first), peak)
        }
        _ => (0.0, peak),
    }
}

/// Discontinuities in a pure tone of `hz`: samples off the recurrence
/// x[n] = 2cos(w)x[n-1] - x[n-2] by more than 0.01 (a clean tone's error
/// is ~1e-6; a dropped or repeated stretch breaks it).
pub fn glitches(mono: &[f32], hz: f64, rate: u32) -> usize {
    let k = 2.0 * (std::f64::consts::TAU * hz / f64::from(rate)).cos();
    mono.windows(3)
        .filter(|w| {
            let predicted = k * f64::from(w[1]) - f64::from(w[0]);
            (f64::from(w[2]) - predicted).abs() > 0.01
        })
        .count()
}

/// The left channel of interleaved stereo.
pub fn left(stereo: &[f32]) -> Vec<f32> {
    stereo.chunks_exact(2).map(|f| f[0]).collect()
}

/// The number after `label` in a log, e.g. "median" in the latency line.
pub fn number_after(log: &str, label: &str) -> Option<f64> {
    let at = log.find(label)? + label.len();
    log[at..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?
        .parse()
        .ok()
}
