//! The control thread: everything slow about guest instances, off the
//! real-time path. It serves
//!
//! - the user (hot swap and live reconfiguration): read, validate, compile
//!   (through the cache), try on a silent block, configure — and hand a
//!   ready instance to the processing thread, which switches between two
//!   blocks; if any step fails the running guest stays and the log says
//!   why;
//! - the lifecycle on the processing thread, through [`WorkshopHandle`]:
//!   fresh instances after faults, state handoffs on swaps, and dropping
//!   instances it is done with.

use super::sandbox::SandboxPolicy;
use super::{CompileCache, GuestInstance, GuestProgram, StreamFormats};
use crate::lifecycle::{
    self, AudioCall, Deadlines, Fault, Handed, Handover, HandoverFailure, Ready, Recipe,
    SetupError, VideoCall, Workshop,
};
use crate::metrics::Counters;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Rename-saves and chunked writes arrive as bursts of events: wait this
/// long after the last one before loading.
const SETTLE: Duration = Duration::from_millis(5);

/// Requests the processing thread may have queued at once.
const REQUESTS: usize = 16;

/// On top of twice the state deadline: how long the processing thread
/// waits for a handoff to come back (thread wake-ups on a busy machine;
/// the input queue absorbs the wait).
const HANDOFF_SLACK: Duration = Duration::from_millis(100);

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

/// A guest program with its configuration: what it takes to make an
/// instance like the running one.
#[derive(Clone)]
pub struct GuestRecipe {
    pub program: Arc<GuestProgram>,
    pub config: Arc<Vec<(String, String)>>,
}

impl Recipe for GuestRecipe {
    fn guest_name(&self) -> &str {
        self.program.name()
    }
}

/// Makes instances ready to run: instantiated, configured and mapped under
/// the setup deadline, with the run's formats and sandbox.
#[derive(Clone)]
pub struct Maker {
    pub formats: StreamFormats,
    pub policy: SandboxPolicy,
    pub deadlines: Deadlines,
}

impl Maker {
    /// # Errors
    /// Which step failed, and how.
    pub fn make(&self, recipe: &GuestRecipe) -> Result<GuestInstance, SetupError> {
        recipe.program.prepare(
            &self.policy,
            self.deadlines.setup,
            &recipe.config,
            &self.formats,
        )
    }
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

/// What the lifecycle asks of the control thread. Instances travel by
/// value: boxing them would allocate on the real-time thread.
#[allow(clippy::large_enum_variant)]
enum Request {
    Fresh {
        recipe: GuestRecipe,
        generation: u64,
    },
    HandOver(HandoverJob),
    Retire(GuestInstance),
}

/// A state handoff to do, and where the processing thread waits for it.
struct HandoverJob {
    old: GuestInstance,
    new: GuestInstance,
    budget: Duration,
    names: (String, String),
    reply: Sender<Handed<GuestInstance>>,
}

impl HandoverJob {
    fn run(mut self) -> (Handed<GuestInstance>, Sender<Handed<GuestInstance>>) {
        let names = (self.names.0.as_str(), self.names.1.as_str());
        let handover = lifecycle::hand_over(&mut self.old, &mut self.new, self.budget, names);
        let handed = Handed {
            old: Some(self.old),
            new: Some(self.new),
            handover,
        };
        (handed, self.reply)
    }
}

type Delivery = Ready<GuestInstance, GuestRecipe>;

/// The lifecycle's side of the control thread.
pub struct WorkshopHandle {
    maker: Maker,
    requests: Sender<Request>,
    ready: Receiver<Delivery>,
}

impl Workshop for WorkshopHandle {
    type Instance = GuestInstance;
    type Recipe = GuestRecipe;

    fn order(&mut self, recipe: &GuestRecipe, generation: u64) -> bool {
        let request = Request::Fresh {
            recipe: recipe.clone(),
            generation,
        };
        self.requests.try_send(request).is_ok()
    }

    fn make(&mut self, recipe: &GuestRecipe) -> Result<GuestInstance, SetupError> {
        self.maker.make(recipe)
    }

    fn collect(&mut self) -> Option<Delivery> {
        self.ready.try_recv().ok()
    }

    fn hand_over(
        &mut self,
        old: GuestInstance,
        new: GuestInstance,
        budget: Duration,
        names: (&str, &str),
    ) -> Handed<GuestInstance> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let job = HandoverJob {
            old,
            new,
            budget,
            names: (names.0.to_string(), names.1.to_string()),
            reply,
        };
        match self.requests.try_send(Request::HandOver(job)) {
            Ok(()) => {}
            // The control thread is swamped or gone: do it here, it is
            // bounded all the same.
            Err(TrySendError::Full(request) | TrySendError::Disconnected(request)) => {
                let Request::HandOver(job) = request else {
                    unreachable!("sent a handoff")
                };
                return job.run().0;
            }
        }
        let wait = budget.saturating_mul(2).saturating_add(HANDOFF_SLACK);
        answer.recv_timeout(wait).unwrap_or_else(|_| lost(wait))
    }

    fn retire(&mut self, instance: GuestInstance) {
        // Dropped here if the control thread cannot take it.
        let _ = self.requests.try_send(Request::Retire(instance));
    }
}

/// A handoff that did not come back in time.
fn lost(waited: Duration) -> Handed<GuestInstance> {
    Handed {
        old: None,
        new: None,
        handover: Handover::Failed(HandoverFailure::timed_out(waited)),
    }
}

/// The control thread's state: the guest the latest swap prepared, and
/// what it needs to prepare another.
pub struct Controller {
    recipe: GuestRecipe,
    maker: Maker,
    cache: Option<CompileCache>,
    counters: Arc<Counters>,
    commands: Receiver<Command>,
    requests: Receiver<Request>,
    ready: Sender<Delivery>,
}

impl Controller {
    /// The control thread (not started yet: [`Controller::run`] it on a
    /// thread of its own), the handle users command it with, and the
    /// lifecycle's handle.
    pub fn new(
        recipe: GuestRecipe,
        maker: Maker,
        cache: Option<CompileCache>,
        counters: Arc<Counters>,
    ) -> (Self, ControlHandle, WorkshopHandle) {
        let (commands_tx, commands) = crossbeam_channel::unbounded();
        let (requests_tx, requests) = crossbeam_channel::bounded(REQUESTS);
        let (ready, ready_rx) = crossbeam_channel::bounded(4);
        let workshop = WorkshopHandle {
            maker: maker.clone(),
            requests: requests_tx,
            ready: ready_rx,
        };
        let controller = Self {
            recipe,
            maker,
            cache,
            counters,
            commands,
            requests,
            ready,
        };
        let control = ControlHandle {
            commands: commands_tx,
        };
        (controller, control, workshop)
    }

    /// Serves the user and the lifecycle until the processing thread ends.
    pub fn run(mut self) {
        let never = crossbeam_channel::never();
        let mut commands_open = true;
        let mut pending = None;
        loop {
            if let Some(command) = pending.take() {
                pending = self.serve_command(command);
                continue;
            }
            let commands = if commands_open {
                &self.commands
            } else {
                &never
            };
            crossbeam_channel::select! {
                recv(commands) -> command => match command {
                    Ok(command) => pending = self.serve_command(command),
                    Err(_) => commands_open = false,
                },
                recv(self.requests) -> request => match request {
                    Ok(request) => {
                        if self.serve_request(request).is_err() {
                            return;
                        }
                    }
                    // The processing thread has ended.
                    Err(_) => return,
                },
            }
        }
    }

    /// # Errors
    /// When the processing thread is gone.
    fn serve_request(&mut self, request: Request) -> Result<(), ()> {
        match request {
            Request::Fresh { recipe, generation } => {
                let instance = self.maker.make(&recipe);
                let delivery = Ready::Restarted {
                    generation,
                    instance,
                };
                self.ready.send(delivery).map_err(drop)
            }
            Request::Retire(instance) => {
                drop(instance);
                Ok(())
            }
            Request::HandOver(job) => {
                let (handed, reply) = job.run();
                // If nobody waits any more, the instances are dropped here.
                let _ = reply.send(handed);
                Ok(())
            }
        }
    }

    /// Prepares what `command` asks for and hands it over; returns a
    /// command that arrived while a burst of file events settled.
    fn serve_command(&mut self, first: Command) -> Option<Command> {
        let (command, next) = settle(first, &self.commands);
        match self.prepare(&command) {
            Ok((instance, recipe, what)) => {
                let delivery = Ready::Swapped {
                    instance,
                    recipe: recipe.clone(),
                    what,
                };
                if self.ready.send(delivery).is_ok() {
                    self.recipe = recipe;
                }
            }
            Err(why) => {
                tracing::warn!("keeping guest {} running: {why}", self.recipe.guest_name());
                self.counters.refuse_swap(why);
            }
        }
        next
    }

    fn prepare(&self, command: &Command) -> Result<(GuestInstance, GuestRecipe, String), String> {
        let (recipe, what) = match command {
            Command::Swap(path) | Command::FileChanged(path) => {
                let recipe = GuestRecipe {
                    program: self.load(path)?,
                    config: self.recipe.config.clone(),
                };
                (recipe, format!("swapped to {}", path.display()))
            }
            Command::Set(key, value) => {
                let mut config = (*self.recipe.config).clone();
                config.retain(|(k, _)| k != key);
                config.push((key.clone(), value.clone()));
                let recipe = GuestRecipe {
                    program: self.recipe.program.clone(),
                    config: Arc::new(config),
                };
                (recipe, format!("set {key}={value}"))
            }
        };
        let name = recipe.guest_name().to_string();
        let failed =
            |error: SetupError| format!("{what} failed: guest {name} {error} while starting");
        // A dry run on a throwaway instance: a guest that traps on its first
        // block is refused here, not after it has replaced a working one.
        let mut probe = self.maker.make(&recipe).map_err(failed)?;
        self.dry_run(&mut probe)
            .map_err(|fault| format!("{what} failed: guest {name} {fault} on a test block"))?;
        drop(probe);
        let instance = self.maker.make(&recipe).map_err(failed)?;
        Ok((instance, recipe, what))
    }

    /// One silent block and one black frame through `instance`, under the
    /// real deadlines, with the output checked as the lifecycle would.
    fn dry_run(&self, instance: &mut GuestInstance) -> Result<(), Fault> {
        let deadlines = &self.maker.deadlines;
        if let Some((format, block)) = self.maker.formats.audio {
            instance.set_budget(deadlines.audio);
            let mut samples = vec![0.0; block as usize * usize::from(format.channels)];
            let call = AudioCall {
                timestamp_ns: 0,
                first_frame: 0,
                format,
            };
            instance.process_audio(call, &mut samples)?;
        }
        if let Some(format) = self.maker.formats.video {
            instance.set_budget(deadlines.video);
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
        let running = &self.recipe.program;
        let program = GuestProgram::load_within(
            running.engine(),
            path,
            self.cache.as_ref(),
            self.maker.policy.load,
        )
        .map_err(|err| format!("cannot swap to {}: {err}", path.display()))?;
        if program.world() != running.world() {
            return Err(format!(
                "cannot swap to {}: it implements {}, the running guest {} (restart to change worlds)",
                path.display(),
                program.world(),
                running.world()
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
