//! Live devices: typed errors, and the lock-free rings between a device's
//! own callback thread and the pipeline.

mod error;

pub use error::{DeviceError, Direction, is_disconnect};
