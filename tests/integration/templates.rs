//! The examples in other languages (built by `cargo xtask guests`) and
//! what each promises: shared by the integration and live tests.

/// A template and how its samples or pixels travel.
pub struct Template {
    pub name: &'static str,
    pub world: &'static str,
    pub mapped: bool,
}

/// The `gain` examples, checked against the Rust `gain` (tests/live runs
/// each a minute in real time).
pub const GAINS: &[Template] = &[
    mapped("gain-c", "audio-effect-mapped"),
    mapped("gain-cpp", "audio-effect-mapped"),
    mapped("gain-zig", "audio-effect-mapped"),
    mapped("gain-go", "audio-effect-mapped"),
    lists("gain-py", "audio-effect"),
    lists("gain-js", "audio-effect"),
];

/// The `grayscale` examples, checked against the Rust `grayscale`
/// (JavaScript's is in `mapped.rs`).
pub const GRAYSCALES: &[Template] = &[
    mapped("grayscale-c", "video-effect-mapped"),
    mapped("grayscale-cpp", "video-effect-mapped"),
    mapped("grayscale-zig", "video-effect-mapped"),
    mapped("grayscale-go", "video-effect-mapped"),
    mapped("grayscale-py", "video-effect-mapped"),
];

/// The A/V examples (gain and grayscale in one instance), checked against
/// both Rust examples.
pub const AVS: &[Template] = &[
    mapped("gain-grayscale-c", "av-effect-mapped"),
    mapped("gain-grayscale-cpp", "av-effect-mapped"),
    mapped("gain-grayscale-zig", "av-effect-mapped"),
    mapped("gain-grayscale-go", "av-effect-mapped"),
    mapped("gain-grayscale-py", "av-effect-mapped"),
    lists("gain-grayscale-js", "av-effect"),
];

const fn mapped(name: &'static str, world: &'static str) -> Template {
    Template {
        name,
        world,
        mapped: true,
    }
}

const fn lists(name: &'static str, world: &'static str) -> Template {
    Template {
        name,
        world,
        mapped: false,
    }
}
