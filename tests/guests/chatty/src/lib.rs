//! Test guest: talks through every channel a guest has (stdout, stderr, the
//! log import) and reports what it can see of the machine, which should be
//! nothing: no environment variables, no files.

use sandstream_guest::prelude::*;

struct Chatty;

impl Effect for Chatty {
    fn setup(_config: &Config, _formats: &Formats) -> Result<Self, String> {
        println!("hello from stdout");
        eprintln!("hello from stderr");
        sandstream_guest::log::warn("hello from the log import");
        let env = std::env::vars().count();
        sandstream_guest::log::info(&format!("environment variables visible: {env}"));
        let file = match std::fs::read("/etc/passwd") {
            Ok(bytes) => format!("read {} bytes", bytes.len()),
            Err(err) => format!("denied ({err})"),
        };
        sandstream_guest::log::info(&format!("reading /etc/passwd: {file}"));
        Ok(Chatty)
    }

    fn process_audio(&mut self, _block: AudioBlock<'_>) -> Result<Output, String> {
        Ok(Output::Keep)
    }
}

sandstream_guest::export!(Chatty);
