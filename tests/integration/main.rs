//! Integration tests: real guests (built by `cargo xtask guests`), real
//! media made by sox and ffmpeg, outputs checked by ffprobe, sox and our own
//! readers. One binary for all, to link once.

mod common;

mod adversary;
mod audio;
mod av;
mod cache;
mod camera_decode;
mod cli_errors;
mod fake_device;
mod forged;
mod hostile;
mod interrupt;
mod languages;
mod latency;
mod live_commands;
mod malformed;
mod mapped;
mod observability;
mod sandbox;
mod templates;
mod video;
