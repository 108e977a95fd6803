//! A private PulseAudio server for the live-audio tests: started by
//! `cargo xtask test` (and so by `.ci/run`) in a directory of its own under
//! the target dir, with no devices but the null sinks tests create, and
//! stopped by its PID when the tests end, pass or fail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SoundServer {
    child: Child,
    dir: PathBuf,
}

impl SoundServer {
    /// Starts `pulseaudio` and waits until it answers.
    pub fn start(target: &Path) -> Result<Self, String> {
        let dir = target.join("sound-server");
        let _ = std::fs::remove_dir_all(&dir);
        let runtime = dir.join("runtime");
        let home = dir.join("home");
        for d in [&runtime, &home] {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        let socket = dir.join("native");
        // One null sink as the default device (`device:default` works), so
        // the server never falls back to an absent sound card.
        let script = format!(
            "load-module module-native-protocol-unix auth-anonymous=1 socket={}\n\
             load-module module-null-sink sink_name=sandstream_default \
             sink_properties=device.description=SandstreamDefault \
             rate=48000 channels=2 format=float32le\n\
             set-default-sink sandstream_default\n\
             set-default-source sandstream_default.monitor\n",
            socket.display()
        );
        let script_path = dir.join("server.pa");
        std::fs::write(&script_path, script).map_err(|e| format!("writing server.pa: {e}"))?;
        let log = std::fs::File::create(dir.join("server.log"))
            .map_err(|e| format!("creating the server log: {e}"))?;
        let child = Command::new("pulseaudio")
            .arg("-n")
            .arg(format!("--file={}", script_path.display()))
            .args([
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--system=false",
                "--use-pid-file=no",
            ])
            .envs(Self::environment_for(&dir))
            // Its cookie goes to $HOME/.config/pulse; clients get its path
            // (their own HOME stays: cargo and rustup live there).
            .env("HOME", dir.join("home"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting pulseaudio: {e}"))?;
        let server = Self { child, dir };
        server.wait_until_ready()?;
        Ok(server)
    }

    fn environment_for(dir: &Path) -> Vec<(String, String)> {
        let path = |name: &str| dir.join(name).display().to_string();
        vec![
            ("PULSE_SERVER".into(), format!("unix:{}", path("native"))),
            ("XDG_RUNTIME_DIR".into(), path("runtime")),
            ("PULSE_COOKIE".into(), path("home/.config/pulse/cookie")),
        ]
    }

    /// What a client needs to reach this server.
    pub fn environment(&self) -> Vec<(String, String)> {
        Self::environment_for(&self.dir)
    }

    fn wait_until_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ok = Command::new("pactl")
                .arg("info")
                .envs(self.environment())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                return Err(format!("pulseaudio did not answer within 15 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
