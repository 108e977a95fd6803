//! The `sandstream` binary: parse arguments, run, print the error chain.

fn main() -> std::process::ExitCode {
    sandstream::cli::main()
}
