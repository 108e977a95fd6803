//! Writing to the host's log, the one capability a guest always has.

use crate::bindings::sandstream::av::log::{Level, log};

pub fn trace(message: &str) {
    log(Level::Trace, message);
}

pub fn debug(message: &str) {
    log(Level::Debug, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Sends a guest panic's message to the host log before the trap.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|panic| {
        log(Level::Error, &format!("guest panicked: {panic}"));
    }));
}
