//! Test guest: a WASI command, not an effect. `sandstream check` must say it
//! implements none of the Sandstream worlds and list what it does export.

fn main() {
    println!("hello from a command component");
}
