//! Components no toolchain would make, forged by hand: a core module in
//! WAT, wrapped as an `audio-effect` component with wit-component. It
//! passes audio through (it returns the list it was given), and its
//! variants attack what toolchains never exercise: several memories,
//! many tables, a start function that never ends.

use crate::common::*;
use std::path::PathBuf;
use std::time::Duration;

/// The canonical-ABI exports of `audio-effect`, written by hand. `$setup`
/// and `$process` are called first by `configure` and `process-audio`.
const ADAPTER: &str = r#"
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
    (block $fits
      (br_if $fits
        (i32.le_u (global.get $heap) (i32.mul (memory.size 0) (i32.const 65536))))
      (br_if $fits (i32.ne (memory.grow 0 (i32.const 16)) (i32.const -1)))
      unreachable)
    (local.get $ptr))
  ;; configure(config: list, formats: record of two options) -> result<_, string>
  (func (export "sandstream:av/setup@0.1.0#configure")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32 f64) (result i32)
    (call $setup)
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.const 16))
  ;; process-audio(info, samples) -> result<list<f32>, string>: ok(samples)
  (func (export "sandstream:av/audio@0.1.0#process-audio")
    (param i64 i64 i32 i32 i32 i32) (result i32)
    (call $process)
    (i32.store8 (i32.const 32) (i32.const 0))
    (i32.store (i32.const 36) (local.get 4))
    (i32.store (i32.const 40) (local.get 5))
    (i32.const 32))
"#;

/// Grows memory `$m` by 1 MiB and writes every byte of it (so it is
/// resident); traps when the host refuses the growth.
fn grow_and_touch(memory: &str) -> String {
    format!(
        r#"
  (func $grow_{memory} (local $old i32)
    (local.set $old (memory.grow ${memory} (i32.const 16)))
    (if (i32.eq (local.get $old) (i32.const -1)) (then unreachable))
    (memory.fill ${memory}
      (i32.mul (local.get $old) (i32.const 65536)) (i32.const 1) (i32.const 1048576)))"#
    )
}

/// A core module: `body` plus the adapter, with `$setup` / `$process`
/// defined by the variant (or empty).
fn module(body: &str, setup: &str, process: &str) -> String {
    format!("(module\n{body}\n(func $setup {setup})\n(func $process {process})\n{ADAPTER})")
}

/// The forged component for `variant`, as a file.
fn forge(variant: &str) -> PathBuf {
    let memories =
        "(memory $m0 (export \"memory\") 1) (memory $m1 0) (memory $m2 0) (memory $m3 0)";
    let wat = match variant {
        // Four memories, each growing 1 MiB per block, every byte written.
        "many-memories" => {
            let grows: String = ["m0", "m1", "m2", "m3"].map(grow_and_touch).concat();
            module(
                &format!("{memories}{grows}"),
                "",
                "(call $grow_m0) (call $grow_m1) (call $grow_m2) (call $grow_m3)",
            )
        }
        // 100 MiB of memories at instantiation, 25 MiB each.
        "large-memories" => module(
            "(memory $m0 (export \"memory\") 1600) (memory $m1 1600) (memory $m2 1600) (memory $m3 1600)",
            "",
            "",
        ),
        // Eight tables of a million entries: 64 MiB of pointers.
        "many-tables" => {
            let tables = "(table 1000000 funcref)".repeat(8);
            module(&format!("(memory (export \"memory\") 1) {tables}"), "", "")
        }
        // A start function that never returns.
        "start-loop" => module(
            "(memory (export \"memory\") 1) (func $spin (loop $l (br $l))) (start $spin)",
            "",
            "",
        ),
        // A configure that never returns.
        "setup-loop" => module("(memory (export \"memory\") 1)", "(loop $l (br $l))", ""),
        "passthrough" => module("(memory (export \"memory\") 1)", "", ""),
        other => panic!("no forged variant {other}"),
    };
    let mut core = wat::parse_str(&wat).unwrap_or_else(|e| panic!("{variant}: {e}"));
    let mut resolve = wit_parser::Resolve::default();
    let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let (package, _) = resolve.push_dir(&wit).unwrap();
    let world = resolve
        .select_world(&[package], Some("audio-effect"))
        .unwrap();
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    let component = wit_component::ComponentEncoder::default()
        .module(&core)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap_or_else(|e| panic!("{variant}: {e:#}"));
    let path = scratch(&format!("forged-{variant}")).join(format!("{variant}.wasm"));
    std::fs::write(&path, component).unwrap();
    path
}

fn tone_through(guest: &std::path::Path, extra: &[&str]) -> (Ran, PathBuf) {
    let out = scratch("forged-out").join("out.wav");
    let spec = file(&out);
    let mut args = vec![
        "run",
        guest.to_str().unwrap(),
        "--audio-in",
        "tone:440",
        "--duration",
        "1",
        "--audio-out",
        &spec,
    ];
    args.extend(extra);
    (measured(&args, &[]), out)
}

fn samples(wav: &std::path::Path) -> u32 {
    hound::WavReader::open(wav).unwrap().len()
}

#[test]
fn the_forged_passthrough_runs_so_the_variants_test_what_they_say() {
    let (ran, out) = tone_through(&forge("passthrough"), &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.log);
    assert_eq!(samples(&out), 96_000, "every sample passed through");
}

/// What a run of the host holds besides its guest (wasmtime, buffers,
/// threads): 11–17 MiB measured; the bound leaves room.
const HOST_BASELINE_MIB: u64 = 48;

#[test]
fn four_memories_share_one_cap_and_the_host_stays_within_it() {
    // Without one cap for all, four memories of 64 MiB each would make
    // 256 MiB resident; with it the guest traps at 64 MiB in all. (Not
    // recycled at 48 MiB: that is the next test.)
    let (ran, out) = tone_through(
        &forge("many-memories"),
        &["--memory-limit", "64", "--recycle-at", "0"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.log);
    assert!(ran.log.contains("hit its memory limit"), "{}", ran.log);
    assert!(ran.log.contains("quarantined"), "{}", ran.log);
    assert_eq!(samples(&out), 96_000);
    assert!(
        ran.peak_mib() < 64 + HOST_BASELINE_MIB,
        "peaked at {} MiB",
        ran.peak_mib()
    );
}

/// The same guest with recycling on (the default, at 3/4 of the cap): the
/// four memories together reach 48 MiB and a fresh instance takes over,
/// again and again, with no fault and no lost block.
#[test]
fn four_growing_memories_are_recycled_at_three_quarters_of_the_cap() {
    let (ran, out) = tone_through(&forge("many-memories"), &["--memory-limit", "64"]);
    assert_eq!(ran.code, Some(0), "{}", ran.log);
    assert!(ran.log.contains("has grown to 48."), "{}", ran.log);
    assert!(!ran.log.contains("guest faults"), "{}", ran.log);
    assert!(
        number_after(&ran.log, "\nrecycled:").unwrap() >= 1.0,
        "{}",
        ran.log
    );
    assert_eq!(samples(&out), 96_000);
    assert!(ran.peak_mib() < 64 + HOST_BASELINE_MIB);
}

#[test]
fn memories_and_tables_over_the_cap_fail_at_instantiation() {
    for variant in ["large-memories", "many-tables"] {
        let (ran, out) = tone_through(&forge(variant), &["--memory-limit", "32"]);
        let log = &ran.log;
        assert_eq!(ran.code, Some(0), "{variant}: {log}");
        assert!(
            log.contains("in instantiation (start functions) while being set up: quarantined"),
            "{variant}: {log}"
        );
        assert!(log.contains("hit its memory limit"), "{variant}: {log}");
        assert_eq!(samples(&out), 96_000);
    }
}

#[test]
fn a_start_function_that_never_ends_hangs_nothing() {
    let guest = forge("start-loop");
    let expected = "ran past its 2000 ms deadline in instantiation (start functions)";
    // run: bypassed for the whole stream, exit 0.
    let (ran, out) = tone_through(&guest, &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.log);
    assert!(ran.log.contains(expected), "{}", ran.log);
    assert_eq!(samples(&out), 96_000);
    assert!(
        ran.took < Duration::from_secs(30),
        "run took {:?}",
        ran.took
    );
    // check and bench: a clear error, not a hang.
    for command in ["check", "bench"] {
        let ran = measured(&[command, guest.to_str().unwrap()], &[]);
        assert_eq!(ran.code, Some(1), "{command}: {}", ran.log);
        assert!(ran.log.contains(expected), "{command}: {}", ran.log);
        assert!(
            ran.took < Duration::from_secs(30),
            "{command} took {:?}",
            ran.took
        );
    }
}

#[test]
fn a_setup_that_never_ends_does_not_hang_check() {
    let ran = measured(&["check", forge("setup-loop").to_str().unwrap()], &[]);
    assert_eq!(ran.code, Some(1), "{}", ran.log);
    assert!(
        ran.log
            .contains("ran past its 2000 ms deadline in setup.configure"),
        "{}",
        ran.log
    );
    assert!(
        ran.took < Duration::from_secs(30),
        "check took {:?}",
        ran.took
    );
}

#[test]
fn guest_paths_that_are_not_small_regular_files_are_refused_before_reading() {
    let dir = scratch("load-bounds");
    let fifo = dir.join("fifo.wasm");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; mkfifo only creates a file.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let zero = dir.join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let big = dir.join("big.wasm");
    let mut bytes = std::fs::read(guest("gain")).unwrap();
    bytes.resize(2 << 20, 0);
    std::fs::write(&big, bytes).unwrap();
    let cases: [(&std::path::Path, &[&str], &str); 4] = [
        (&fifo, &[], "is a FIFO (named pipe), not a regular file"),
        (&zero, &[], "is a character device, not a regular file"),
        (&dir, &[], "is a directory, not a regular file"),
        (
            &big,
            &["--max-guest-size", "1"],
            "is 2.0 MiB, over the 1.0 MiB limit for guests (--max-guest-size)",
        ),
    ];
    for (guest, flags, expected) in cases {
        for command in ["run", "check"] {
            let mut args = vec![command, guest.to_str().unwrap()];
            if command == "run" {
                args.extend(["--audio-in", "silence", "--duration", "0.1"]);
            }
            args.extend(flags);
            let ran = measured(&args, &[]);
            assert_eq!(ran.code, Some(1), "{command} {guest:?}: {}", ran.log);
            let error = ran
                .log
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or("");
            assert!(error.contains(expected), "{command} {guest:?}: {}", ran.log);
            assert!(
                ran.took < Duration::from_secs(20),
                "{command} took {:?}",
                ran.took
            );
        }
    }
}

#[test]
fn compiling_is_bounded_in_time() {
    let gain = guest("gain");
    let ran = measured(
        &[
            "check",
            gain.to_str().unwrap(),
            "--no-cache",
            "--compile-timeout",
            "0.001",
        ],
        &[],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.log);
    assert!(
        ran.log
            .contains("compiling the component took longer than 0.001 s (--compile-timeout)"),
        "{}",
        ran.log
    );
}
