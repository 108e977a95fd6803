//! The read stage: takes items from a feed and hands them downstream.
//! A feed is where items come from with their capture timestamps: a pulled
//! source (file, synthetic) stamped with media time, or a device that
//! pushes into a ring from its own callback (see [`crate::device`]).

use super::control::{RunControl, StopOnPanic};
use super::queue::{Closed, Handoff};
use crate::clock;
use crate::media::{BufferPool, Item, StreamFormat};
use crate::metrics::Stage;
use crate::rt;
use crate::source::Source;
use std::sync::atomic::Ordering::Relaxed;

/// Where a stream's items come from.
pub trait Feed<I: Item>: Send {
    fn format(&self) -> I::Format;

    /// What the feed is, for messages (`device:MicFeed`).
    fn describe(&self) -> String;

    /// The next item, filled into a buffer from `pool`; `None` at the end
    /// of the stream or when the run is stopped.
    ///
    /// # Errors
    /// Read errors, typed where the pipeline can act on them
    /// ([`crate::device::DeviceError`]).
    fn next(&mut self, pool: &BufferPool<I::Sample>, run: &RunControl)
    -> anyhow::Result<Option<I>>;
}

/// Reads a [`Source`] in items of `chunk` units, stamped with media time —
/// offset by the run's start on the host clock, and paced to it, in real
/// time.
pub struct PulledFeed<I: Item> {
    source: Box<dyn Source<I>>,
    format: I::Format,
    chunk: usize,
    /// Real time: the host clock at media time zero.
    start_ns: Option<u64>,
    /// Units after which the run stops (`--duration`).
    limit_units: Option<u64>,
    /// A slower rate than the source's: units that do not start a new
    /// period of it are skipped (and counted).
    rate_cap: Option<I::Format>,
    next_unit: u64,
    kept: u64,
}

impl<I: Item> PulledFeed<I> {
    pub fn new(source: Box<dyn Source<I>>, chunk: usize) -> Self {
        let format = source.format();
        Self {
            source,
            format,
            chunk: chunk.max(1),
            start_ns: None,
            limit_units: None,
            rate_cap: None,
            next_unit: 0,
            kept: 0,
        }
    }

    /// Paces reads to the host clock from `start_ns` on.
    pub fn paced_from(mut self, start_ns: Option<u64>) -> Self {
        self.start_ns = start_ns;
        self
    }

    pub fn limited_to(mut self, duration_ns: Option<u64>) -> Self {
        self.limit_units = duration_ns.map(|ns| self.format.units_in(ns));
        self
    }

    pub fn rate_capped(mut self, output: I::Format) -> Self {
        self.rate_cap = Some(output);
        self
    }
}

impl<I: Item> Feed<I> for PulledFeed<I> {
    fn format(&self) -> I::Format {
        self.format
    }

    fn describe(&self) -> String {
        self.source.describe()
    }

    fn next(
        &mut self,
        pool: &BufferPool<I::Sample>,
        run: &RunControl,
    ) -> anyhow::Result<Option<I>> {
        let counters = run.counters.stream(I::KIND);
        loop {
            if run.stop_requested() {
                return Ok(None);
            }
            let wanted = match self.limit_units {
                Some(limit) if self.next_unit >= limit => return Ok(None),
                Some(limit) => self.chunk.min((limit - self.next_unit) as usize),
                None => self.chunk,
            };
            let mut buffer = pool.take();
            let units = self.source.read(&mut buffer, wanted)? as u64;
            if units == 0 {
                return Ok(None);
            }
            let index = self.next_unit;
            let media_ns = self.format.unit_time_ns(index);
            self.next_unit += units;
            if let Some(cap) = &self.rate_cap
                && cap.unit_time_ns(self.kept) > media_ns
            {
                // Read from the input all the same.
                counters.items_in.fetch_add(1, Relaxed);
                counters.units_in.fetch_add(units, Relaxed);
                counters.skipped_by_rate_cap.fetch_add(units, Relaxed);
                pool.give(buffer);
                continue;
            }
            self.kept += 1;
            let timestamp_ns = match self.start_ns {
                Some(start) => {
                    clock::sleep_until_ns(start + media_ns);
                    start + media_ns
                }
                None => media_ns,
            };
            return Ok(Some(I::new(buffer, index, timestamp_ns)));
        }
    }
}

/// Something that sees each item as it is read.
pub type Tap<I> = Box<dyn FnMut(&I) + Send>;

/// A feed whose items are also shown to `tap` as they pass (the preview
/// window's input side).
pub struct TappedFeed<I: Item> {
    pub feed: Box<dyn Feed<I>>,
    pub tap: Tap<I>,
}

impl<I: Item> Feed<I> for TappedFeed<I> {
    fn format(&self) -> I::Format {
        self.feed.format()
    }

    fn describe(&self) -> String {
        self.feed.describe()
    }

    fn next(
        &mut self,
        pool: &BufferPool<I::Sample>,
        run: &RunControl,
    ) -> anyhow::Result<Option<I>> {
        let item = self.feed.next(pool, run)?;
        if let Some(item) = &item {
            (self.tap)(item);
        }
        Ok(item)
    }
}

/// The read stage. Offline, a full queue waits (nothing is lost); in real
/// time it means the next stage is late, so the oldest queued item is
/// dropped and counted rather than delaying everything after it.
pub fn read<I: Item>(
    mut feed: Box<dyn Feed<I>>,
    (real_time, duration_ns): (bool, Option<u64>),
    pool: BufferPool<I::Sample>,
    out: Handoff<I>,
    run: &RunControl,
) {
    let _stop_on_panic = StopOnPanic(run);
    let counters = run.counters.stream(I::KIND);
    let format = feed.format();
    // Pulled feeds stop at the limit themselves (to the unit); a device
    // stops here, after the item that reaches it.
    let limit_units = duration_ns.map(|ns| format.units_in(ns));
    let mut units = 0;
    while !run.stop_requested() && limit_units.is_none_or(|limit| units < limit) {
        let item = match feed.next(&pool, run) {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(err) => return super::end_for(run, err),
        };
        let _hot = rt::hot();
        if real_time {
            counters.latency.record(Stage::Read, item.timestamp_ns());
        }
        let item_units = item.units(&format);
        units += item_units;
        counters.items_in.fetch_add(1, Relaxed);
        counters.units_in.fetch_add(item_units, Relaxed);
        match out.hand(item) {
            Ok(None) => {}
            Ok(Some(oldest)) => {
                counters.overruns.fetch_add(1, Relaxed);
                pool.give(oldest.into_buffer());
            }
            Err(Closed) => break,
        }
    }
}
