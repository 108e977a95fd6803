//! The services the live-video tests need, started by `cargo xtask test`
//! (and so by `.ci/run`) under the target dir and stopped by PID when the
//! tests end: a session bus, PipeWire with WirePlumber, and an Xvfb display.
//! Also builds the test-only V4L2 preload shim (tests/support/v4l2-shim.c).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// PipeWire's V4L2 emulation (package pipewire-v4l2).
const PW_V4L2: &str = "/usr/lib/x86_64-linux-gnu/pipewire-0.3/v4l2/libpw-v4l2.so";

pub struct VideoServices {
    /// Started in order; stopped in reverse.
    children: Vec<(&'static str, Child)>,
    dir: PathBuf,
    display: u32,
    shim: PathBuf,
}

impl VideoServices {
    pub fn start(target: &Path, root: &Path) -> Result<Self, String> {
        let dir = target.join("video-server");
        let _ = std::fs::remove_dir_all(&dir);
        let runtime = dir.join("runtime");
        std::fs::create_dir_all(&runtime)
            .map_err(|e| format!("creating {}: {e}", runtime.display()))?;
        let mut services = Self {
            children: Vec::new(),
            display: free_display()?,
            shim: dir.join("v4l2-shim.so"),
            dir,
        };
        services.build_shim(root)?;
        let bus = format!("unix:path={}", services.dir.join("bus").display());
        services.spawn(
            "dbus-daemon",
            Command::new("dbus-daemon")
                .args(["--session", "--nofork", "--nopidfile"])
                .arg(format!("--address={bus}")),
        )?;
        services.wait_for("the session bus", || services.dir.join("bus").exists())?;
        services.spawn("pipewire", &mut Command::new("pipewire"))?;
        services.wait_for("pipewire", || services.pw_cli(&["info", "0"]).is_some())?;
        services.spawn("wireplumber", &mut Command::new("wireplumber"))?;
        services.wait_for("wireplumber", || {
            services
                .pw_cli(&["ls", "Client"])
                .is_some_and(|out| out.contains("WirePlumber"))
        })?;
        let display = format!(":{}", services.display);
        services.spawn(
            "Xvfb",
            Command::new("Xvfb").args([
                display.as_str(),
                "-screen",
                "0",
                "1280x720x24",
                "-br",
                "-nolisten",
                "tcp",
            ]),
        )?;
        let lock = PathBuf::from(format!("/tmp/.X11-unix/X{}", services.display));
        services.wait_for("Xvfb", || lock.exists())?;
        Ok(services)
    }

    fn build_shim(&self, root: &Path) -> Result<(), String> {
        let source = root.join("tests/support/v4l2-shim.c");
        let status = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&self.shim)
            .arg(&source)
            .arg("-ldl")
            .status()
            .map_err(|e| format!("building the V4L2 shim: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("building {} failed", source.display()))
        }
    }

    fn spawn(&mut self, name: &'static str, command: &mut Command) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))
            .map_err(|e| format!("creating the {name} log: {e}"))?;
        let child = command
            .envs(self.environment())
            .env("XDG_RUNTIME_DIR", self.dir.join("runtime"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        self.children.push((name, child));
        Ok(())
    }

    fn pw_cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("pw-cli")
            .args(args)
            .envs(self.environment())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_for(&self, what: &str, ready: impl Fn() -> bool) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ready() {
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .children
                    .iter()
                    .map(|(name, _)| {
                        let log = std::fs::read_to_string(self.dir.join(format!("{name}.log")));
                        format!("--- {name}:\n{}", log.unwrap_or_default())
                    })
                    .collect();
                return Err(format!(
                    "{what} was not ready within 15 s\n{}",
                    logs.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// What a client needs to reach these services.
    pub fn environment(&self) -> Vec<(String, String)> {
        vec![
            (
                "PIPEWIRE_RUNTIME_DIR".into(),
                self.dir.join("runtime").display().to_string(),
            ),
            (
                "DBUS_SESSION_BUS_ADDRESS".into(),
                format!("unix:path={}", self.dir.join("bus").display()),
            ),
            ("DISPLAY".into(), format!(":{}", self.display)),
            (
                "SANDSTREAM_V4L2_PRELOAD".into(),
                format!("{PW_V4L2}:{}", self.shim.display()),
            ),
            ("SANDSTREAM_LIVE_VIDEO".into(), "1".into()),
        ]
    }
}

/// An X display number nobody uses.
fn free_display() -> Result<u32, String> {
    (87..120)
        .find(|n| {
            !Path::new(&format!("/tmp/.X{n}-lock")).exists()
                && !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
        })
        .ok_or_else(|| "no free X display number in :87-:119".to_string())
}

impl Drop for VideoServices {
    fn drop(&mut self) {
        while let Some((_, mut child)) = self.children.pop() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A killed Xvfb leaves its lock and socket behind.
        let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.display));
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.display));
    }
}
