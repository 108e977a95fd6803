//! The processing stage: one thread enters the guest, so calls never
//! overlap. Streams the guest does not process bypass this stage.

use super::GuestLifecycle;
use super::control::{RunControl, StopOnPanic};
use super::pace::Pace;
use super::queue::{Closed, Handoff};
use super::safety::make_safe;
use crate::clock;
use crate::lifecycle::{AudioCall, Delivery, VideoCall};
use crate::media::{AudioBlock, BufferPool, Item, VideoFrame};
use crate::metrics::{Counters, Stage, StreamCounters};
use crate::rt;
use crossbeam_channel::{Receiver, Select};
use std::sync::atomic::Ordering::Relaxed;

/// Where one stream's processed items go.
pub struct Outlet<I: Item> {
    pub output: Handoff<I>,
    /// Where an item's buffer goes back when the guest drops the item.
    pub pool: BufferPool<I::Sample>,
    pub format: I::Format,
    /// Real time: items that can no longer be played within this much of
    /// their capture are skipped before the guest.
    pub budget_ns: Option<u64>,
}

impl<I: Item> Outlet<I> {
    /// Would an item captured at `captured_ns`, starting now, be played
    /// after the budget? After the guest's usual time, its output adds its
    /// own steady delay.
    fn too_late(
        &self,
        captured_ns: u64,
        now_ns: u64,
        guest_ns: u64,
        counters: &StreamCounters,
    ) -> bool {
        self.budget_ns.is_some_and(|budget| {
            let downstream = guest_ns + counters.output_delay_ns.load(Relaxed);
            now_ns.saturating_sub(captured_ns) + downstream > budget
        })
    }
}

/// One stream's connections to the processing stage.
pub struct Lane<I: Item> {
    pub input: Receiver<I>,
    pub outlet: Outlet<I>,
}

/// The streams the guest processes.
pub struct ProcessLanes {
    pub audio: Option<Lane<AudioBlock>>,
    pub video: Option<Lane<VideoFrame>>,
}

/// In which order the stage takes items from its two lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Whatever arrives first (real time: capture order).
    Arrival,
    /// Earliest timestamp first, waiting for both lanes (offline): an A/V
    /// guest then sees the same interleaving on every run, so its output is
    /// reproducible.
    MediaTime,
}

/// The lifecycle and what the stage does with audio it hands on.
pub struct Guest {
    pub lifecycle: GuestLifecycle,
    /// Clamp audio to full scale (NaN/Inf are always silenced).
    pub limiter: bool,
    /// Real time: record when items reach and leave the guest, and watch
    /// its pace.
    pub timed: bool,
    pub pace: Pace,
}

/// How a kind of item enters the guest.
pub trait GuestCall: Item {
    /// # Errors
    /// Only when the run cannot go on (the lifecycle handles guest faults).
    fn call(
        guest: &mut Guest,
        item: &mut Self,
        format: Self::Format,
        counters: &Counters,
    ) -> anyhow::Result<Delivery>;
}

impl GuestCall for AudioBlock {
    fn call(
        guest: &mut Guest,
        block: &mut Self,
        format: Self::Format,
        counters: &Counters,
    ) -> anyhow::Result<Delivery> {
        let call = AudioCall {
            timestamp_ns: block.timestamp_ns,
            first_frame: block.first_frame,
            format,
        };
        let delivery = guest.lifecycle.audio(block, call)?;
        if delivery == Delivery::Send {
            // The last word on audio before it leaves the host.
            make_safe(&mut block.samples, guest.limiter, counters);
        }
        Ok(delivery)
    }
}

impl GuestCall for VideoFrame {
    fn call(
        guest: &mut Guest,
        frame: &mut Self,
        format: Self::Format,
        _counters: &Counters,
    ) -> anyhow::Result<Delivery> {
        let call = VideoCall {
            timestamp_ns: frame.timestamp_ns,
            index: frame.index,
            format,
        };
        guest.lifecycle.video(frame, call)
    }
}

/// Runs the stage until every lane's input has ended. Swaps prepared by the
/// controller are installed by the lifecycle between two items, so every
/// item is processed by exactly one guest.
pub fn process(mut guest: Guest, lanes: ProcessLanes, run: &RunControl, order: Order) {
    let _stop_on_panic = StopOnPanic(run);
    let result = match order {
        Order::Arrival => process_as_they_come(&mut guest, lanes, run),
        Order::MediaTime => process_in_media_order(&mut guest, lanes, run),
    };
    if let Err(err) = result {
        run.fail(err);
    }
}

fn process_one<I: GuestCall>(
    guest: &mut Guest,
    outlet: &Outlet<I>,
    mut item: I,
    run: &RunControl,
) -> anyhow::Result<()> {
    let _hot = rt::hot();
    let counters = run.counters.stream(I::KIND);
    let captured_ns = item.timestamp_ns();
    // Timed in real time only: offline, stamps are media time.
    let start_ns = if guest.timed { clock::now_ns() } else { 0 };
    let usual_ns = guest.pace.typical_call_ns(I::KIND);
    if outlet.too_late(captured_ns, start_ns, usual_ns, counters) {
        counters.late_drops.fetch_add(1, Relaxed);
        outlet.pool.give(item.into_buffer());
        return Ok(());
    }
    let delivery = I::call(guest, &mut item, outlet.format, &run.counters)?;
    if guest.timed {
        let end_ns = clock::now_ns();
        let latency = &counters.latency;
        latency.record_at(Stage::GuestStart, captured_ns, start_ns);
        latency.record_at(Stage::GuestEnd, captured_ns, end_ns);
        latency.guest_call.record_ns(end_ns - start_ns);
        let media_ns = item.end_ns(&outlet.format) - captured_ns;
        let budget_ns = outlet.budget_ns.unwrap_or(0);
        (guest.pace).observe(I::KIND, end_ns - start_ns, media_ns, budget_ns);
    }
    match delivery {
        Delivery::Send => match outlet.output.hand(item) {
            Ok(None) => Ok(()),
            Ok(Some(oldest)) => {
                counters.overruns.fetch_add(1, Relaxed);
                outlet.pool.give(oldest.into_buffer());
                Ok(())
            }
            Err(Closed) => Err(anyhow::anyhow!("output stage closed early")),
        },
        Delivery::DroppedByGuest => {
            counters.dropped_by_guest.fetch_add(1, Relaxed);
            outlet.pool.give(item.into_buffer());
            Ok(())
        }
    }
}

/// A lane with the item it will process next. Its outlet is dropped when
/// its input ends, which closes the stream downstream.
struct Waiting<I: Item> {
    input: Receiver<I>,
    outlet: Option<Outlet<I>>,
    next: Option<I>,
}

impl<I: GuestCall> Waiting<I> {
    fn new(lane: Lane<I>) -> Self {
        Self {
            input: lane.input,
            outlet: Some(lane.outlet),
            next: None,
        }
    }

    /// Waits for the lane's next item unless it has one or has ended.
    fn refill(&mut self) {
        if self.outlet.is_some() && self.next.is_none() {
            self.next = self.input.recv().ok();
            if self.next.is_none() {
                self.outlet = None;
            }
        }
    }

    fn next_timestamp(&self) -> Option<u64> {
        self.next.as_ref().map(Item::timestamp_ns)
    }

    fn process_next(&mut self, guest: &mut Guest, run: &RunControl) -> anyhow::Result<()> {
        match (self.next.take(), &self.outlet) {
            (Some(item), Some(outlet)) => process_one(guest, outlet, item, run),
            _ => Ok(()),
        }
    }
}

fn process_in_media_order(
    guest: &mut Guest,
    lanes: ProcessLanes,
    run: &RunControl,
) -> anyhow::Result<()> {
    let mut audio = lanes.audio.map(Waiting::new);
    let mut video = lanes.video.map(Waiting::new);
    loop {
        audio.as_mut().map(Waiting::refill);
        video.as_mut().map(Waiting::refill);
        let audio_ts = audio.as_ref().and_then(Waiting::next_timestamp);
        let video_ts = video.as_ref().and_then(Waiting::next_timestamp);
        match (audio_ts, video_ts, &mut audio, &mut video) {
            (None, None, ..) => return Ok(()),
            (Some(a), Some(v), Some(lane), _) if a <= v => lane.process_next(guest, run)?,
            (Some(_), None, Some(lane), _) => lane.process_next(guest, run)?,
            (_, Some(_), _, Some(lane)) => lane.process_next(guest, run)?,
            _ => unreachable!("a pending item always has its lane"),
        }
    }
}

/// Takes the item `select` found ready; `false` when the lane's input has
/// ended (its outlet is then dropped).
fn take_ready<I: GuestCall>(
    op: crossbeam_channel::SelectedOperation<'_>,
    input: &Receiver<I>,
    outlet: &mut Option<Outlet<I>>,
    guest: &mut Guest,
    run: &RunControl,
) -> anyhow::Result<bool> {
    match (op.recv(input), &*outlet) {
        (Ok(item), Some(out)) => process_one(guest, out, item, run).map(|()| true),
        _ => {
            *outlet = None;
            Ok(false)
        }
    }
}

fn process_as_they_come(
    guest: &mut Guest,
    lanes: ProcessLanes,
    run: &RunControl,
) -> anyhow::Result<()> {
    let (audio_in, mut audio_out) = split(lanes.audio);
    let (video_in, mut video_out) = split(lanes.video);
    // `SelectedOperation::recv` must get the very receiver registered here.
    let mut select = Select::new();
    let audio_index = audio_in.as_ref().map(|rx| select.recv(rx));
    let video_index = video_in.as_ref().map(|rx| select.recv(rx));
    while audio_out.is_some() || video_out.is_some() {
        let op = select.select();
        let index = op.index();
        let open = match (&audio_in, &video_in) {
            (Some(rx), _) if audio_index == Some(index) => {
                take_ready(op, rx, &mut audio_out, guest, run)?
            }
            (_, Some(rx)) if video_index == Some(index) => {
                take_ready(op, rx, &mut video_out, guest, run)?
            }
            _ => unreachable!("select returned an operation that was not registered"),
        };
        if !open {
            select.remove(index);
        }
    }
    Ok(())
}

/// A lane taken apart, so its outlet can be dropped while its input stays
/// registered with the select.
fn split<I: Item>(lane: Option<Lane<I>>) -> (Option<Receiver<I>>, Option<Outlet<I>>) {
    match lane {
        Some(Lane { input, outlet }) => (Some(input), Some(outlet)),
        None => (None, None),
    }
}
