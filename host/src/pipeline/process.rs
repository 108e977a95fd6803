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
    /// The latest the guest can start on an item captured at
    /// `captured_ns` for it to be played within the budget: after the
    /// guest's usual time, its output adds its own steady delay. `None`
    /// offline (no budget).
    fn latest_start_ns(
        &self,
        captured_ns: u64,
        guest_ns: u64,
        counters: &StreamCounters,
    ) -> Option<u64> {
        let downstream = guest_ns + counters.output_delay_ns.load(Relaxed);
        let budget = self.budget_ns?;
        Some((captured_ns + budget).saturating_sub(downstream))
    }

    /// Would the item, started at `now_ns`, be played after the budget?
    fn too_late(
        &self,
        captured_ns: u64,
        now_ns: u64,
        guest_ns: u64,
        counters: &StreamCounters,
    ) -> bool {
        self.latest_start_ns(captured_ns, guest_ns, counters)
            .is_some_and(|latest| now_ns > latest)
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
    /// Real time: the item that must start soonest to make the budget,
    /// unless that call would make the other stream's item miss it and
    /// the other, taken first, would not (see [`audio_goes_first`]). A
    /// guest too slow for one stream then costs that stream's items, not
    /// the other's: a 45 ms video call never starves the audio.
    Deadline,
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
        Order::Deadline => process_by_deadline(&mut guest, lanes, run),
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

/// When to start each of two ready items, and how long the guest usually
/// takes on it (real time).
#[derive(Debug, Clone, Copy)]
pub struct Urgency {
    pub latest_start_ns: u64,
    pub call_ns: u64,
}

/// Whether the audio item goes before the video item: the one that must
/// start sooner goes first, unless running it would make the other miss
/// its latest start while the other, run first, would leave it time (a
/// guest's calls cannot be interrupted, so a long video call must not
/// start when a short audio call is about to be too late).
pub fn audio_goes_first(now_ns: u64, audio: Urgency, video: Urgency) -> bool {
    let fits = |first: Urgency, then: Urgency| now_ns + first.call_ns <= then.latest_start_ns;
    if audio.latest_start_ns <= video.latest_start_ns {
        fits(audio, video) || !fits(video, audio)
    } else {
        !fits(video, audio) && fits(audio, video)
    }
}

impl<I: GuestCall> Waiting<I> {
    /// Takes the lane's next item if one is there; never waits.
    fn try_refill(&mut self) {
        if self.outlet.is_some() && self.next.is_none() {
            match self.input.try_recv() {
                Ok(item) => self.next = Some(item),
                Err(crossbeam_channel::TryRecvError::Empty) => {}
                Err(crossbeam_channel::TryRecvError::Disconnected) => self.outlet = None,
            }
        }
    }

    /// Completes the operation `select` found ready on `rx` (the receiver
    /// registered there); `false` when the input has ended.
    fn take(&mut self, op: crossbeam_channel::SelectedOperation<'_>, rx: &Receiver<I>) -> bool {
        match op.recv(rx) {
            Ok(item) => {
                self.next = Some(item);
                true
            }
            Err(_) => {
                self.outlet = None;
                false
            }
        }
    }

    fn is_open(&self) -> bool {
        self.outlet.is_some() || self.next.is_some()
    }

    fn urgency(&self, guest: &Guest, run: &RunControl) -> Option<Urgency> {
        let (item, outlet) = (self.next.as_ref()?, self.outlet.as_ref()?);
        let call_ns = guest.pace.typical_call_ns(I::KIND);
        let counters = run.counters.stream(I::KIND);
        let latest_start_ns = outlet.latest_start_ns(item.timestamp_ns(), call_ns, counters)?;
        Some(Urgency {
            latest_start_ns,
            call_ns,
        })
    }
}

fn process_by_deadline(
    guest: &mut Guest,
    lanes: ProcessLanes,
    run: &RunControl,
) -> anyhow::Result<()> {
    let mut audio = lanes.audio.map(Waiting::new);
    let mut video = lanes.video.map(Waiting::new);
    // Waits on both inputs at once when neither lane has an item; the
    // receivers are registered once (no allocation per wait).
    let audio_input = audio.as_ref().map(|lane| lane.input.clone());
    let video_input = video.as_ref().map(|lane| lane.input.clone());
    let mut select = Select::new();
    let audio_index = audio_input.as_ref().map(|rx| select.recv(rx));
    let video_index = video_input.as_ref().map(|rx| select.recv(rx));
    loop {
        audio.as_mut().map(Waiting::try_refill);
        video.as_mut().map(Waiting::try_refill);
        let audio_ready = audio.as_ref().is_some_and(|l| l.next.is_some());
        let video_ready = video.as_ref().is_some_and(|l| l.next.is_some());
        match (&mut audio, &mut video) {
            (Some(a), Some(v)) if audio_ready && video_ready => {
                let first = match (a.urgency(guest, run), v.urgency(guest, run)) {
                    (Some(au), Some(vu)) => audio_goes_first(clock::now_ns(), au, vu),
                    _ => a.next_timestamp() <= v.next_timestamp(),
                };
                if first {
                    a.process_next(guest, run)?;
                } else {
                    v.process_next(guest, run)?;
                }
            }
            (Some(a), _) if audio_ready => a.process_next(guest, run)?,
            (_, Some(v)) if video_ready => v.process_next(guest, run)?,
            _ => {
                let open = audio.as_ref().is_some_and(Waiting::is_open)
                    || video.as_ref().is_some_and(Waiting::is_open);
                if !open {
                    return Ok(());
                }
                let audio_side = (audio_index, audio_input.as_ref(), &mut audio);
                let video_side = (video_index, video_input.as_ref(), &mut video);
                wait_for_either(&mut select, audio_side, video_side);
            }
        }
    }
}

/// One lane as the wait sees it: its index in the select, the receiver
/// registered there, the lane.
type WaitSide<'a, 'r, I> = (
    Option<usize>,
    Option<&'r Receiver<I>>,
    &'a mut Option<Waiting<I>>,
);

/// Blocks until either lane's input has an item (taken into the lane) or
/// ends (its outlet dropped, its input no longer waited on).
fn wait_for_either(
    select: &mut Select<'_>,
    (audio_index, audio_rx, audio): WaitSide<'_, '_, AudioBlock>,
    (video_index, video_rx, video): WaitSide<'_, '_, VideoFrame>,
) {
    let op = select.select();
    let index = op.index();
    let open = match (audio_rx, audio.as_mut(), video_rx, video.as_mut()) {
        (Some(rx), Some(lane), ..) if audio_index == Some(index) => lane.take(op, rx),
        (.., Some(rx), Some(lane)) if video_index == Some(index) => lane.take(op, rx),
        _ => unreachable!("select returned an operation that was not registered"),
    };
    if !open {
        select.remove(index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn urgency(latest_start_ms: u64, call_ms: u64) -> Urgency {
        Urgency {
            latest_start_ns: latest_start_ms * MS,
            call_ns: call_ms * MS,
        }
    }

    #[test]
    fn the_item_that_must_start_sooner_goes_first() {
        assert!(audio_goes_first(0, urgency(10, 1), urgency(50, 1)));
        assert!(!audio_goes_first(0, urgency(50, 1), urgency(10, 1)));
    }

    #[test]
    fn a_long_call_waits_when_it_would_sink_a_short_one_that_leaves_it_time() {
        // Video must start by 5 ms, audio by 10 ms; a 45 ms video call
        // would make the audio block miss, a 0.1 ms audio call would not
        // make the frame miss: audio first.
        assert!(audio_goes_first(0, urgency(10, 0), urgency(5, 45)));
        // If the audio call would make the frame miss too, the sooner one
        // (video) goes.
        assert!(!audio_goes_first(0, urgency(10, 8), urgency(5, 45)));
    }

    #[test]
    fn when_one_must_miss_the_sooner_goes() {
        // Audio by 1 ms (a 2 ms call), video by 2 ms (a 2 ms call): both
        // cannot make it; the one due sooner goes.
        assert!(audio_goes_first(0, urgency(1, 2), urgency(2, 2)));
        assert!(!audio_goes_first(0, urgency(2, 2), urgency(1, 2)));
    }
}
