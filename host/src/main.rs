//! The `sandstream` command line. The CLI lives in the binary only, so the
//! library does not depend on clap, ctrlc or tracing-subscriber.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
