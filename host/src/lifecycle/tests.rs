//! The lifecycle with fake instances and a fake workshop: no wasm, no
//! threads, stream time under the test's control.

use super::policy::tests::{stall, trap};
use super::*;
use crate::media::{AudioBlock, AudioFormat, Fps, VideoFormat, VideoFrame};
use std::collections::VecDeque;
use std::sync::Mutex;

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;
const FORMAT: AudioFormat = AudioFormat {
    sample_rate: 48_000,
    channels: 1,
};

/// What a fake guest does. `fault(n)` decides call `n` (1-based, per
/// instance) of any kind.
#[derive(Clone)]
struct Script {
    gain: f32,
    fault: fn(u64) -> Option<Fault>,
    has_state: bool,
    snapshot: fn() -> Result<(), Fault>,
    restore: fn() -> Result<(), Fault>,
    leaks: u64,
    big_at_first: bool,
}

fn halves() -> Script {
    Script {
        gain: 0.5,
        fault: |_| None,
        has_state: false,
        snapshot: || Ok(()),
        restore: || Ok(()),
        leaks: 0,
        big_at_first: false,
    }
}

/// A fake instance: multiplies by its gain, counts the blocks it has
/// processed (its state), faults as scripted.
struct Fake {
    id: u32,
    calls: u64,
    blocks: u64,
    script: Script,
}

impl Fake {
    fn call(&mut self) -> Result<(), Fault> {
        self.calls += 1;
        (self.script.fault)(self.calls).map_or(Ok(()), Err)
    }
}

impl Instance for Fake {
    fn process_audio(
        &mut self,
        _call: AudioCall,
        samples: &mut Vec<f32>,
        _budget: Duration,
    ) -> Result<Processed, Fault> {
        self.call()?;
        self.blocks += 1;
        samples.iter_mut().for_each(|s| *s *= self.script.gain);
        Ok(Processed::Kept)
    }

    fn process_video(
        &mut self,
        _call: VideoCall,
        pixels: &mut Vec<u8>,
        _budget: Duration,
    ) -> Result<Processed, Fault> {
        self.call()?;
        pixels.iter_mut().for_each(|p| *p = 255 - *p);
        Ok(Processed::Kept)
    }

    fn last_call_mapped(&self) -> bool {
        true
    }

    fn has_state(&self) -> bool {
        self.script.has_state
    }

    fn snapshot(&mut self, _budget: Duration, _max: usize) -> Result<Vec<u8>, Fault> {
        (self.script.snapshot)()?;
        Ok(self.blocks.to_le_bytes().to_vec())
    }

    fn restore(&mut self, state: &[u8], _budget: Duration) -> Result<(), Fault> {
        (self.script.restore)()?;
        self.blocks = u64::from_le_bytes(state.try_into().unwrap());
        Ok(())
    }

    /// `leaks` megabytes more per call (a model loaded at the first call
    /// when `big_at_first`).
    fn memory_used(&self) -> usize {
        let first = if self.script.big_at_first {
            20 << 20
        } else {
            0
        };
        first + (((self.calls * self.script.leaks) as usize) << 20)
    }
}

#[derive(Clone)]
struct FakeRecipe {
    name: &'static str,
    script: Script,
}

impl Recipe for FakeRecipe {
    fn guest_name(&self) -> &str {
        self.name
    }
}

/// What the fake workshop was asked to do.
#[derive(Default)]
struct Log {
    made: u32,
    ordered: Vec<u64>,
    retired: Vec<u32>,
    handovers: u32,
}

/// Fulfils orders at the next block (as the control thread would a moment
/// later); can be given swaps to deliver.
struct FakeWorkshop {
    log: Arc<Mutex<Log>>,
    orders: VecDeque<(FakeRecipe, u64)>,
    /// Orders taken while deliveries are being collected wait for the
    /// next block.
    collecting: bool,
    deferred: Vec<(FakeRecipe, u64)>,
    swaps: Arc<Mutex<VecDeque<(Fake, FakeRecipe)>>>,
    fail_making: bool,
    lose_handovers: bool,
}

impl FakeWorkshop {
    fn new_fake(&mut self, script: &Script) -> Fake {
        let mut log = self.log.lock().unwrap();
        log.made += 1;
        Fake {
            id: log.made,
            calls: 0,
            blocks: 0,
            script: script.clone(),
        }
    }
}

impl Workshop for FakeWorkshop {
    type Instance = Fake;
    type Recipe = FakeRecipe;

    fn order(&mut self, recipe: &FakeRecipe, generation: u64) -> bool {
        self.log.lock().unwrap().ordered.push(generation);
        let order = (recipe.clone(), generation);
        match self.collecting {
            true => self.deferred.push(order),
            false => self.orders.push_back(order),
        }
        true
    }

    fn make(&mut self, recipe: &FakeRecipe) -> Result<Fake, SetupError> {
        if self.fail_making {
            return Err(SetupError {
                call: CallKind::Configure,
                fault: trap(),
            });
        }
        Ok(self.new_fake(&recipe.script))
    }

    fn collect(&mut self) -> Option<Ready<Fake, FakeRecipe>> {
        self.collecting = true;
        if let Some((instance, recipe)) = self.swaps.lock().unwrap().pop_front() {
            return Some(Ready::Swapped {
                instance,
                recipe,
                what: "swapped".into(),
            });
        }
        let Some((recipe, generation)) = self.orders.pop_front() else {
            self.collecting = false;
            self.orders.extend(self.deferred.drain(..));
            return None;
        };
        Some(Ready::Restarted {
            generation,
            instance: self.make(&recipe),
        })
    }

    fn hand_over(
        &mut self,
        mut old: Fake,
        mut new: Fake,
        budget: Duration,
        names: (&str, &str),
    ) -> Handed<Fake> {
        self.log.lock().unwrap().handovers += 1;
        if self.lose_handovers {
            return Handed {
                old: None,
                new: None,
                handover: Handover::Failed(HandoverFailure::timed_out(budget * 2)),
            };
        }
        let handover = hand_over(&mut old, &mut new, budget, names);
        Handed {
            old: Some(old),
            new: Some(new),
            handover,
        }
    }

    fn retire(&mut self, instance: Fake) {
        self.log.lock().unwrap().retired.push(instance.id);
    }
}

/// A lifecycle over one fake guest, and handles on what it did.
struct Harness {
    lifecycle: Lifecycle<FakeWorkshop>,
    log: Arc<Mutex<Log>>,
    swaps: Arc<Mutex<VecDeque<(Fake, FakeRecipe)>>>,
    counters: Arc<Counters>,
    next_ns: u64,
    frame: u64,
}

fn options(on_fault: FaultPolicy, clocking: Clocking) -> Options {
    let ms = Duration::from_millis;
    Options {
        on_fault,
        deadlines: Deadlines {
            audio: ms(5),
            video: ms(33),
            setup: ms(2000),
            state: ms(5),
        },
        clocking,
        recycle_at: Some(10 << 20),
    }
}

fn harness(script: Script, options: Options) -> Harness {
    let log = Arc::new(Mutex::new(Log::default()));
    let swaps = Arc::new(Mutex::new(VecDeque::new()));
    let mut workshop = FakeWorkshop {
        log: log.clone(),
        orders: VecDeque::new(),
        collecting: false,
        deferred: Vec::new(),
        swaps: swaps.clone(),
        fail_making: false,
        lose_handovers: false,
    };
    let first = workshop.make(&FakeRecipe {
        name: "first.wasm",
        script: script.clone(),
    });
    let counters = Arc::new(Counters::default());
    let recipe = FakeRecipe {
        name: "first.wasm",
        script,
    };
    let lifecycle = Lifecycle::start(workshop, recipe, first, options, counters.clone()).unwrap();
    Harness {
        lifecycle,
        log,
        swaps,
        counters,
        next_ns: 0,
        frame: 0,
    }
}

/// A live lifecycle that bypasses faulted blocks.
fn live(script: Script) -> Harness {
    harness(script, options(FaultPolicy::Bypass, Clocking::RealTime))
}

impl Harness {
    /// One block of 480 frames (10 ms) of ones; returns what came out, per
    /// sample (all equal).
    fn block(&mut self) -> f32 {
        self.block_result().unwrap()
    }

    fn block_result(&mut self) -> anyhow::Result<f32> {
        let mut block = AudioBlock {
            samples: vec![1.0; 480],
            first_frame: self.frame,
            timestamp_ns: self.next_ns,
        };
        let call = AudioCall {
            timestamp_ns: self.next_ns,
            first_frame: self.frame,
            format: FORMAT,
        };
        self.next_ns += 10 * MS;
        self.frame += 480;
        self.lifecycle.audio(&mut block, call)?;
        Ok(block.samples[0])
    }

    /// Blocks until stream time `ns`, returning their outputs.
    fn blocks_until(&mut self, ns: u64) -> Vec<f32> {
        let mut out = Vec::new();
        while self.next_ns < ns {
            out.push(self.block());
        }
        out
    }

    fn swap_in(&mut self, name: &'static str, script: Script) {
        let instance = self.lifecycle.workshop.new_fake(&script);
        let recipe = FakeRecipe { name, script };
        self.swaps.lock().unwrap().push_back((instance, recipe));
    }

    fn report(&self) -> crate::metrics::Report {
        self.counters.report()
    }
}

fn trap_on_3rd(call: u64) -> Option<Fault> {
    (call == 3).then(trap)
}

#[test]
fn a_fault_costs_its_block_and_a_fresh_instance_takes_over_after_the_backoff() {
    let script = Script {
        fault: trap_on_3rd,
        ..halves()
    };
    let mut h = live(script);
    let out: Vec<f32> = (0..6).map(|_| h.block()).collect();
    // Block 3 trapped (bypassed: 1.0), the restart was ordered at once and
    // installed at the first block 10 ms later; the fresh instance traps
    // again on its own 3rd call.
    assert_eq!(out, [0.5, 0.5, 1.0, 0.5, 0.5, 1.0]);
    let log = h.log.lock().unwrap();
    assert_eq!(log.ordered, [0, 0], "one fresh instance per fault");
    assert_eq!(
        log.retired,
        [1, 2],
        "the trapped instances left this thread"
    );
    let report = h.report();
    assert_eq!((report.fault_traps, report.restarts), (2, 1));
    assert_eq!(report.audio.mapped, 6, "every call, the trapped ones too");
}

#[test]
fn offline_restarts_are_made_in_place_at_the_first_block_past_the_backoff() {
    let script = Script {
        fault: |call| (call == 1).then(trap),
        ..halves()
    };
    let mut h = harness(script, options(FaultPolicy::Bypass, Clocking::Offline));
    h.lifecycle.workshop.log.lock().unwrap().made = 10;
    let out = h.blocks_until(40 * MS);
    // Faults at 0, 10, 20 ms... each fresh instance traps on its first
    // call; backoffs of 10, 20, 40 ms keep the stream bypassed between.
    assert_eq!(out, [1.0; 4]);
    let log = h.log.lock().unwrap();
    assert!(log.ordered.is_empty(), "nothing ordered offline");
    assert_eq!(log.made, 12, "made in place at 10 ms and 30 ms");
}

#[test]
fn five_quick_faults_quarantine_and_the_stream_goes_on_unprocessed() {
    let script = Script {
        fault: |_| Some(trap()),
        ..halves()
    };
    let mut h = live(script);
    let out = h.blocks_until(2 * SECOND);
    assert!(out.iter().all(|&s| s == 1.0));
    assert!(h.lifecycle.is_quarantined());
    let report = h.report();
    assert_eq!((report.fault_traps, report.quarantines), (5, 1));
    let log = h.log.lock().unwrap();
    assert_eq!(
        log.retired.len(),
        5,
        "every instance retired off this thread"
    );
}

#[test]
fn stalls_seconds_apart_quarantine_the_guest() {
    // Blocks are 10 ms: call 300 is 3 s in; every instance stalls on its
    // 300th call.
    let script = Script {
        fault: |call| (call % 300 == 0).then(stall),
        ..halves()
    };
    let mut h = live(script);
    h.blocks_until(20 * SECOND);
    assert!(h.lifecycle.is_quarantined());
    assert_eq!(h.report().fault_blocked, 3, "quarantined at the 3rd stall");
}

#[test]
fn mute_silences_and_hold_repeats_the_last_good_frame() {
    let script = Script {
        fault: trap_on_3rd,
        ..halves()
    };
    let mut h = harness(
        script.clone(),
        options(FaultPolicy::Mute, Clocking::RealTime),
    );
    let out: Vec<f32> = (0..3).map(|_| h.block()).collect();
    assert_eq!(out, [0.5, 0.5, 0.0]);

    let mut h = harness(script, options(FaultPolicy::Hold, Clocking::RealTime));
    let format = VideoFormat {
        width: 1,
        height: 1,
        fps: Fps { num: 30, den: 1 },
    };
    let frames: Vec<Vec<u8>> = (0..3u8)
        .map(|i| {
            let mut frame = VideoFrame {
                pixels: vec![i * 10; 4],
                index: u64::from(i),
                timestamp_ns: u64::from(i) * 33 * MS,
            };
            let call = VideoCall {
                timestamp_ns: frame.timestamp_ns,
                index: frame.index,
                format,
            };
            h.lifecycle.video(&mut frame, call).unwrap();
            frame.pixels
        })
        .collect();
    assert_eq!(frames[1], [245; 4]);
    assert_eq!(frames[2], frames[1], "held");
}

#[test]
fn stop_ends_the_run_with_the_verdict() {
    let script = Script {
        fault: |_| {
            Some(Fault::Timeout {
                budget: Duration::from_micros(5_300),
            })
        },
        ..halves()
    };
    let mut h = harness(script, options(FaultPolicy::Stop, Clocking::RealTime));
    let err = h.block_result().unwrap_err().to_string();
    assert_eq!(
        err,
        "guest first.wasm ran past its 5.3 ms deadline in process-audio (block at frame 0)"
    );
}

#[test]
fn a_refused_configuration_stops_and_a_broken_setup_quarantines() {
    let counters = Arc::new(Counters::default());
    let workshop = || FakeWorkshop {
        log: Arc::default(),
        orders: VecDeque::new(),
        collecting: false,
        deferred: Vec::new(),
        swaps: Arc::default(),
        fail_making: false,
        lose_handovers: false,
    };
    let recipe = FakeRecipe {
        name: "g.wasm",
        script: halves(),
    };
    let refused = SetupError {
        call: CallKind::Configure,
        fault: Fault::Reported {
            message: crate::text::GuestText::new("gain: not a number", 100),
        },
    };
    let opts = options(FaultPolicy::Bypass, Clocking::RealTime);
    let err = Lifecycle::start(
        workshop(),
        recipe.clone(),
        Err(refused),
        opts,
        counters.clone(),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "guest g.wasm returned an error: \"gain: not a number\" in setup.configure"
    );

    let hung = SetupError {
        call: CallKind::Instantiate,
        fault: Fault::Timeout {
            budget: Duration::from_secs(2),
        },
    };
    let lifecycle = Lifecycle::start(
        workshop(),
        recipe.clone(),
        Err(hung.clone()),
        opts,
        counters.clone(),
    )
    .unwrap();
    assert!(lifecycle.is_quarantined());
    let stop = options(FaultPolicy::Stop, Clocking::RealTime);
    let err = Lifecycle::start(workshop(), recipe, Err(hung), stop, counters)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("ran past its 2000 ms deadline in instantiation (start functions)"),
        "{err}"
    );
}

#[test]
fn a_swap_carries_state_and_lifts_quarantine() {
    let stateful = Script {
        has_state: true,
        ..halves()
    };
    let mut h = live(stateful.clone());
    h.blocks_until(50 * MS);
    h.swap_in(
        "second.wasm",
        Script {
            gain: 2.0,
            ..stateful
        },
    );
    assert_eq!(h.block(), 2.0, "switched between two blocks");
    let Slot::Running(running) = &h.lifecycle.slot else {
        panic!("running")
    };
    assert_eq!(running.blocks, 6, "the count went on from 5");
    assert_eq!(h.report().states_carried, 1);
    assert_eq!(h.lifecycle.name(), "second.wasm");
}

#[test]
fn a_failed_handoff_starts_the_new_guest_fresh() {
    let stateful = Script {
        has_state: true,
        ..halves()
    };
    // Restore traps: the new instance is replaced by a fresh one.
    let mut h = live(stateful.clone());
    h.block();
    h.swap_in(
        "second.wasm",
        Script {
            restore: || Err(trap()),
            gain: 2.0,
            ..stateful.clone()
        },
    );
    assert_eq!(h.block(), 1.0, "bypassed while the fresh instance is made");
    assert_eq!(h.block(), 2.0);
    let report = h.report();
    assert_eq!((report.states_lost, report.fault_traps), (1, 1));

    // Snapshot refused with an error: the new guest starts fresh at once.
    let mut h = live(Script {
        snapshot: || Err(Fault::TooLarge { cap: 1 << 20 }),
        ..stateful.clone()
    });
    h.block();
    h.swap_in("second.wasm", stateful.clone());
    assert_eq!(h.block(), 0.5);
    assert_eq!(h.report().fault_too_large, 1);

    // The handoff never came back: both instances are lost to it, and a
    // fresh instance of the new guest is ordered.
    let mut h = live(stateful.clone());
    h.lifecycle.workshop.lose_handovers = true;
    h.block();
    h.swap_in(
        "second.wasm",
        Script {
            gain: 2.0,
            ..stateful
        },
    );
    assert_eq!(h.block(), 1.0);
    assert_eq!(h.block(), 2.0);
    assert_eq!(h.report().states_lost, 1);
}

#[test]
fn a_restart_ordered_before_a_swap_is_retired_not_installed() {
    let script = Script {
        fault: |call| (call == 1).then(trap),
        ..halves()
    };
    let mut h = live(script);
    h.block();
    // The swap arrives before the ordered restart is collected.
    h.swap_in(
        "second.wasm",
        Script {
            gain: 2.0,
            ..halves()
        },
    );
    assert_eq!(h.block(), 2.0);
    assert_eq!(h.block(), 2.0);
    let log = h.log.lock().unwrap();
    assert_eq!(log.ordered, [0]);
    assert!(
        log.retired.contains(&3),
        "the stale restart: {:?}",
        log.retired
    );
}

#[test]
fn failed_restarts_count_as_setup_faults_and_end_in_quarantine() {
    let script = Script {
        fault: |_| Some(trap()),
        ..halves()
    };
    let mut h = live(script);
    h.lifecycle.workshop.fail_making = true;
    h.blocks_until(3 * SECOND);
    assert!(h.lifecycle.is_quarantined());
    let report = h.report();
    assert_eq!(report.fault_traps + report.setup_faults, 5);
    assert!(report.setup_faults >= 3, "{report:?}");
}

#[test]
fn a_crossfade_mixes_the_old_guest_out() {
    let mut h = live(halves());
    h.lifecycle.set_crossfade_frames(960);
    h.block();
    h.swap_in(
        "second.wasm",
        Script {
            gain: 2.0,
            ..halves()
        },
    );
    let first = h.block();
    let second = h.block();
    let after = h.block();
    // Over two blocks the weight of the old guest (0.5) falls from 1 to 0.
    assert!(
        (0.5..2.0).contains(&first) && first < second,
        "{first} {second}"
    );
    assert!(second < 2.0);
    assert_eq!(after, 2.0);
    assert_eq!(
        h.log.lock().unwrap().retired,
        [1],
        "the old one retired after the fade"
    );
}

/// A stateful guest that leaks a megabyte a call, recycled at 10 MiB.
fn leaky() -> Script {
    Script {
        has_state: true,
        leaks: 1,
        ..halves()
    }
}

#[test]
fn a_leaking_instance_is_recycled_live_with_its_state_and_no_lost_block() {
    let mut h = live(leaky());
    // Calls 1..=9 stay under 10 MiB; the 10th reaches it and orders a
    // fresh instance, which takes over at the next block.
    let out = h.blocks_until(250 * MS);
    assert!(out.iter().all(|&s| s == 0.5), "no block lost: {out:?}");
    let report = h.report();
    assert_eq!(report.recycles, 2, "after calls 10 and 20");
    assert_eq!(report.faults(), 0);
    assert_eq!(report.swaps, 0, "recycles are not swaps");
    assert_eq!(report.states_carried, 2);
    let Slot::Running(running) = &h.lifecycle.slot else {
        panic!("running")
    };
    assert_eq!(running.blocks, 25, "the state went on across instances");
    assert_eq!(running.id, 3, "the third instance runs");
    assert_eq!(h.log.lock().unwrap().retired, vec![1, 2]);
}

#[test]
fn offline_a_leaking_instance_is_recycled_in_place() {
    let mut h = harness(leaky(), options(FaultPolicy::Bypass, Clocking::Offline));
    let out = h.blocks_until(300 * MS);
    assert!(out.iter().all(|&s| s == 0.5), "{out:?}");
    assert_eq!(h.report().recycles, 3, "after calls 10, 20 and 30");
    assert!(h.log.lock().unwrap().ordered.is_empty(), "made in place");
}

#[test]
fn an_instance_that_does_not_grow_is_never_recycled() {
    let mut h = live(halves());
    h.blocks_until(SECOND);
    assert_eq!(h.report().recycles, 0);
    assert_eq!(h.log.lock().unwrap().made, 1);
}

#[test]
fn an_instance_that_needs_its_memory_from_the_start_is_never_recycled() {
    // 20 MiB from the first call on (a model, say): past 10 MiB at once.
    let mut h = live(Script {
        big_at_first: true,
        ..halves()
    });
    let out = h.blocks_until(SECOND);
    assert!(out.iter().all(|&s| s == 0.5));
    assert_eq!(h.report().recycles, 0);
    assert_eq!(h.log.lock().unwrap().made, 1, "no fresh instance, ever");
}

#[test]
fn when_no_fresh_instance_can_be_made_the_leaking_one_runs_on_and_is_not_asked_again() {
    let mut h = harness(leaky(), options(FaultPolicy::Bypass, Clocking::Offline));
    h.lifecycle.workshop.fail_making = true;
    let out = h.blocks_until(300 * MS);
    assert!(out.iter().all(|&s| s == 0.5), "{out:?}");
    assert_eq!(h.report().recycles, 0);
    assert_eq!(h.report().faults(), 0);
    assert!(h.lifecycle.not_recyclable, "one attempt, not one per call");
}
