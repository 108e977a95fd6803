//! Hot swap and live reconfiguration. A controller thread does the slow
//! part off the real-time path — read, validate, compile (through the
//! cache), instantiate, configure — and hands a ready instance to the
//! processing thread, which switches between two blocks. If any step fails
//! the running guest stays and the log says why.

use super::sandbox::{self, SandboxPolicy};
use super::supervisor::{Deadlines, prepare_instance};
use super::{
    AudioCall, CompileCache, GuestFault, GuestInstance, GuestProgram, StreamFormats, VideoCall,
};
use crate::pipeline::Counters;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Rename-saves and chunked writes arrive as bursts of events: wait this
/// long after the last one before loading.
const SETTLE: Duration = Duration::from_millis(5);

/// What the user (or the file watcher) asks of a running stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the guest at this path from the next block on.
    Swap(PathBuf),
    /// The watched file changed: like `Swap`, after the burst of events a
    /// save makes has settled.
    FileChanged(PathBuf),
    /// Change one configuration value (a fresh instance is configured with
    /// it and swapped in).
    Set(String, String),
}

/// A configured instance, ready to take over at the next block.
pub struct Prepared {
    pub program: Arc<GuestProgram>,
    pub instance: GuestInstance,
    pub config: Vec<(String, String)>,
    /// For the log: "swapped to x.wasm", "set gain=2".
    pub what: String,
}

/// Sends commands to a running stream. Cheap to clone.
#[derive(Clone)]
pub struct ControlHandle {
    commands: Sender<Command>,
}

impl ControlHandle {
    /// Asks to swap to the guest at `path`. Returns at once; the swap
    /// happens (or is refused, with a log line) a moment later.
    pub fn swap(&self, path: impl Into<PathBuf>) {
        let _ = self.commands.send(Command::Swap(path.into()));
    }

    /// Asks to change one configuration value.
    pub fn set(&self, key: impl Into<String>, value: impl Into<String>) {
        let _ = self.commands.send(Command::Set(key.into(), value.into()));
    }

    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }
}

/// The controller's view of the running guest, and what it needs to
/// prepare another.
pub struct Controller {
    pub program: Arc<GuestProgram>,
    pub config: Vec<(String, String)>,
    pub formats: StreamFormats,
    pub policy: SandboxPolicy,
    pub deadlines: Deadlines,
    pub cache: Option<CompileCache>,
    pub counters: Arc<Counters>,
}

impl Controller {
    /// A channel for commands and the handle that feeds it.
    pub fn channel() -> (ControlHandle, Receiver<Command>) {
        let (commands, receiver) = crossbeam_channel::unbounded();
        (ControlHandle { commands }, receiver)
    }

    /// Serves commands until every [`ControlHandle`] is gone or the
    /// processing thread has ended.
    pub fn run(mut self, commands: Receiver<Command>, to_processor: Sender<Prepared>) {
        let mut pending = None;
        loop {
            let first = match pending.take() {
                Some(command) => command,
                None => match commands.recv() {
                    Ok(command) => command,
                    Err(_) => return,
                },
            };
            let (command, next) = settle(first, &commands);
            pending = next;
            match self.prepare(&command) {
                Ok(prepared) => {
                    let (program, config) = (prepared.program.clone(), prepared.config.clone());
                    if to_processor.send(prepared).is_err() {
                        return;
                    }
                    self.program = program;
                    self.config = config;
                }
                Err(why) => {
                    tracing::warn!("keeping guest {} running: {why}", self.program.name());
                    self.counters.refuse_swap(why);
                }
            }
        }
    }

    fn prepare(&self, command: &Command) -> Result<Prepared, String> {
        let (program, config, what) = match command {
            Command::Swap(path) | Command::FileChanged(path) => {
                let program = self.load(path)?;
                let what = format!("swapped to {}", path.display());
                (program, self.config.clone(), what)
            }
            Command::Set(key, value) => {
                let mut config = self.config.clone();
                config.retain(|(k, _)| k != key);
                config.push((key.clone(), value.clone()));
                (self.program.clone(), config, format!("set {key}={value}"))
            }
        };
        let failed = |fault: GuestFault| {
            format!(
                "{what} failed: guest {} {fault} while starting",
                program.name()
            )
        };
        // A dry run on a throwaway instance: a guest that traps on its first
        // block is refused here, not after it has replaced a working one.
        let fresh = || {
            prepare_instance(
                &program,
                &self.policy,
                &self.deadlines,
                &config,
                &self.formats,
            )
            .map_err(failed)
        };
        let mut probe = fresh()?;
        self.dry_run(&mut probe).map_err(|fault| {
            format!(
                "{what} failed: guest {} {fault} on a test block",
                program.name()
            )
        })?;
        drop(probe);
        let instance = fresh()?;
        Ok(Prepared {
            program,
            instance,
            config,
            what,
        })
    }

    /// One silent block and one black frame through `instance`, under the
    /// real deadlines, with the output checked as the supervisor would.
    fn dry_run(&self, instance: &mut GuestInstance) -> Result<(), GuestFault> {
        if let Some((format, block)) = self.formats.audio {
            instance.set_deadline_ticks(sandbox::ticks_for(self.deadlines.audio));
            let mut samples = vec![0.0; block as usize * usize::from(format.channels)];
            let call = AudioCall {
                timestamp_ns: 0,
                first_frame: 0,
                format,
            };
            instance.process_audio(call, &mut samples)?;
        }
        if let Some(format) = self.formats.video {
            instance.set_deadline_ticks(sandbox::ticks_for(self.deadlines.video));
            let mut pixels: Vec<u8> =
                [0, 0, 0, 255].repeat(format.width as usize * format.height as usize);
            let call = VideoCall {
                timestamp_ns: 0,
                index: 0,
                format,
            };
            instance.process_video(call, &mut pixels)?;
        }
        Ok(())
    }

    fn load(&self, path: &Path) -> Result<Arc<GuestProgram>, String> {
        let program = GuestProgram::load(self.program.engine(), path, self.cache.as_ref())
            .map_err(|err| format!("cannot swap to {}: {err}", path.display()))?;
        if program.world() != self.program.world() {
            return Err(format!(
                "cannot swap to {}: it implements {}, the running guest {} (restart to change worlds)",
                path.display(),
                program.world(),
                self.program.world()
            ));
        }
        Ok(Arc::new(program))
    }
}

/// Waits for a burst of identical swaps (one file save) to end. Returns
/// the command to act on, and a different command that arrived meanwhile.
fn settle(first: Command, commands: &Receiver<Command>) -> (Command, Option<Command>) {
    if !matches!(first, Command::FileChanged(_)) {
        return (first, None);
    }
    loop {
        match commands.recv_timeout(SETTLE) {
            Ok(next) if next == first => {}
            Ok(next) => return (first, Some(next)),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                return (first, None);
            }
        }
    }
}

/// Watches a guest file and sends a swap whenever it changes. Editors save
/// by rename as often as by writing in place, so the directory is watched
/// and events are matched by file name.
pub struct FileWatcher {
    _watcher: notify::RecommendedWatcher,
}

impl FileWatcher {
    /// # Errors
    /// When the file's directory cannot be watched.
    pub fn start(path: &Path, control: ControlHandle) -> anyhow::Result<Self> {
        use notify::{EventKind, RecursiveMode, Watcher as _};
        let path = std::path::absolute(path)?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let target = path.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if matches!(event.kind, EventKind::Access(_)) || !event.paths.contains(&target) {
                    return;
                }
                control.send(Command::FileChanged(target.clone()));
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        tracing::info!("watching {} for changes", path.display());
        Ok(Self { _watcher: watcher })
    }
}
