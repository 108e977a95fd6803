//! The write stage: hands each item to every sink of its stream.
//!
//! Offline, one thread writes to each sink in turn and nothing is lost. In
//! real time each sink has its own writer thread behind a short queue, so a
//! slow sink (a file on a busy disk) misses items — counted, and said once
//! — instead of stalling the others (a virtual microphone).

use super::control::{RunControl, StopOnPanic};
use super::queue::{FreshQueue, Pushed};
use crate::clock;
use crate::media::{BufferPool, Item};
use crate::metrics::{Stage, StreamCounters};
use crate::rt;
use crate::sink::Sink;
use anyhow::Context as _;
use crossbeam_channel::Receiver;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::JoinHandle;

/// The sinks of one stream, handed back when the stage ends so the
/// coordinator can finish (or discard) them all at once.
pub type Sinks<I> = Vec<Box<dyn Sink<I>>>;

/// `depth`: items a real-time sink may fall behind before it misses some
/// (the latency budget's worth).
pub fn write<I: Item>(
    sinks: Sinks<I>,
    (format, depth): (I::Format, usize),
    pool: BufferPool<I::Sample>,
    rx: Receiver<I>,
    run: &Arc<RunControl>,
    real_time: bool,
) -> Sinks<I> {
    let _stop_on_panic = StopOnPanic(run);
    if real_time {
        write_through_own_threads(sinks, (format, depth), pool, rx, run)
    } else {
        write_in_turn(sinks, format, pool, rx, run)
    }
}

/// Counts an item as written and checks its timestamp follows the last.
struct Tally<'a, I: Item> {
    counters: &'a StreamCounters,
    format: I::Format,
    last_ns: Option<u64>,
}

impl<'a, I: Item> Tally<'a, I> {
    fn new(run: &'a RunControl, format: I::Format) -> Self {
        Self {
            counters: run.counters.stream(I::KIND),
            format,
            last_ns: None,
        }
    }

    fn count(&mut self, item: &I) {
        let ts = item.timestamp_ns();
        if self.last_ns.is_some_and(|last| ts < last) {
            self.counters.timestamp_regressions.fetch_add(1, Relaxed);
        }
        self.last_ns = Some(ts);
        self.counters.items_out.fetch_add(1, Relaxed);
        self.counters
            .units_out
            .fetch_add(item.units(&self.format), Relaxed);
        self.counters
            .last_end_ns
            .store(item.end_ns(&self.format), Relaxed);
    }
}

fn write_in_turn<I: Item>(
    mut sinks: Sinks<I>,
    format: I::Format,
    pool: BufferPool<I::Sample>,
    rx: Receiver<I>,
    run: &RunControl,
) -> Sinks<I> {
    let mut tally = Tally::new(run, format);
    for item in rx {
        if run.failed() {
            break;
        }
        // Offline sinks (files) may allocate as they like; only the
        // bookkeeping is checked.
        for sink in &mut sinks {
            if let Err(err) = sink.write(&item) {
                super::end_for(run, err);
                break;
            }
            sink.report(tally.counters);
        }
        tally.count(&item);
        pool.give(item.into_buffer());
    }
    sinks
}

/// One sink's writer thread and the queue that feeds it.
struct SinkWriter<I: Item> {
    queue: FreshQueue<I>,
    /// Buffers for copies of the stream's items (the last sink gets the
    /// originals, whose buffers go back to the stream's pool).
    pool: BufferPool<I::Sample>,
    name: String,
    missed: u64,
    thread: JoinHandle<Box<dyn Sink<I>>>,
}

fn write_through_own_threads<I: Item>(
    sinks: Sinks<I>,
    (format, depth): (I::Format, usize),
    pool: BufferPool<I::Sample>,
    rx: Receiver<I>,
    run: &Arc<RunControl>,
) -> Sinks<I> {
    let count = sinks.len();
    let mut writers = Vec::with_capacity(count);
    for (i, sink) in sinks.into_iter().enumerate() {
        let own_pool = if i + 1 == count {
            pool.clone()
        } else {
            pool.like(depth + 2)
        };
        match spawn_writer(sink, own_pool, depth, run) {
            Ok(writer) => writers.push(writer),
            Err(err) => {
                run.fail(err);
                break;
            }
        }
    }
    let mut tally = Tally::new(run, format);
    let counters = run.counters.stream(I::KIND);
    for item in rx {
        let _hot = rt::hot();
        counters.latency.record(Stage::Output, item.timestamp_ns());
        tally.count(&item);
        let Some((last, copies)) = writers.split_last_mut() else {
            pool.give(item.into_buffer());
            continue;
        };
        for writer in copies {
            let mut copy = writer.pool.take();
            copy.extend_from_slice(item.buffer());
            let copy = I::new(copy, item.index(), item.timestamp_ns());
            offer(writer, copy, counters);
        }
        offer(last, item, counters);
    }
    writers
        .into_iter()
        .filter_map(|writer| {
            drop(writer.queue);
            writer.thread.join().ok().or_else(|| {
                run.fail(anyhow::anyhow!(
                    "internal error: the writer of {} panicked",
                    writer.name
                ));
                None
            })
        })
        .collect()
}

/// Queues an item for a sink without waiting: a full queue means the sink
/// is behind, and its oldest queued item is its loss.
fn offer<I: Item>(writer: &mut SinkWriter<I>, item: I, counters: &StreamCounters) {
    match writer.queue.push(item) {
        Pushed::Queued => {}
        Pushed::Displaced(item) => {
            counters.output_drops.fetch_add(1, Relaxed);
            if writer.missed == 0 {
                // Once per sink: allowed to allocate.
                rt::outside_hot(|| {
                    tracing::warn!(
                        "{} output {} is slower than the stream: it misses items (counted)",
                        I::KIND.name(),
                        writer.name,
                    );
                });
            }
            writer.missed += 1;
            writer.pool.give(item.into_buffer());
        }
    }
}

fn spawn_writer<I: Item>(
    mut sink: Box<dyn Sink<I>>,
    pool: BufferPool<I::Sample>,
    depth: usize,
    run: &Arc<RunControl>,
) -> anyhow::Result<SinkWriter<I>> {
    let name = sink.describe();
    let (tx, items) = crossbeam_channel::bounded::<I>(depth);
    let queue = FreshQueue::new(tx, &items);
    let (run, thread_pool) = (run.clone(), pool.clone());
    let thread = std::thread::Builder::new()
        .name(format!("sandstream-{}-out", I::KIND.name()))
        .spawn(move || {
            let _stop_on_panic = StopOnPanic(&run);
            let mut broken = false;
            let counters = run.counters.stream(I::KIND);
            // Known before the first write, for the sync stage's plan.
            if let Some(delay) = sink.output_delay() {
                counters.output_delay_ns.store(delay.steady_ns, Relaxed);
            }
            // Not a hot section: this thread exists so that a file sink may
            // block here. Device sinks check their own writes.
            for item in items {
                if broken || run.failed() {
                    thread_pool.give(item.into_buffer());
                    continue;
                }
                let delay = sink.output_delay();
                let handed_ns = clock::now_ns();
                if let Err(err) = sink.write(&item) {
                    broken = true;
                    super::end_for(&run, err);
                } else if let Some(delay) = delay {
                    let played_ns = handed_ns + delay.now_ns;
                    (counters.latency).record_at(Stage::Played, item.timestamp_ns(), played_ns);
                    counters.output_delay_ns.store(delay.steady_ns, Relaxed);
                }
                sink.report(counters);
                thread_pool.give(item.into_buffer());
            }
            sink
        })
        .with_context(|| format!("spawning the writer of {name}"))?;
    Ok(SinkWriter {
        queue,
        pool,
        name,
        missed: 0,
        thread,
    })
}
