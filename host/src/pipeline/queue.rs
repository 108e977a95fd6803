//! A queue between two real-time stages that never waits and never lets
//! delay build up: when the taker is late and the queue is full, its
//! *oldest* item makes room for the new one, as fresh media matters more
//! than stale media. Both ends are crossbeam's lock-free bounded channel;
//! the giver keeps a receiver of its own to take the oldest item out.

use crossbeam_channel::{Receiver, Sender, TrySendError};

pub struct FreshQueue<T> {
    tx: Sender<T>,
    oldest: Receiver<T>,
}

/// What [`FreshQueue::push`] did.
#[derive(Debug)]
pub enum Pushed<T> {
    Queued,
    /// Queued, after the oldest item (returned) was taken out for room.
    Displaced(T),
}

impl<T> FreshQueue<T> {
    pub fn new(tx: Sender<T>, rx: &Receiver<T>) -> Self {
        Self {
            tx,
            oldest: rx.clone(),
        }
    }

    /// Queues `item`, displacing the oldest queued one if full. The giver
    /// holds a receiver, so the channel never reports the taker gone: a
    /// taker only ends early when the run stops (see
    /// [`super::control::StopOnPanic`]), which ends the giver too.
    pub fn push(&self, item: T) -> Pushed<T> {
        let (Err(TrySendError::Full(item)) | Err(TrySendError::Disconnected(item))) =
            self.tx.try_send(item)
        else {
            return Pushed::Queued;
        };
        let displaced = self.oldest.try_recv().ok();
        // There is one giver: the slot just freed (or emptied by the
        // taker) is ours.
        match (self.tx.try_send(item), displaced) {
            (Ok(()), None) => Pushed::Queued,
            (Ok(()), Some(old)) => Pushed::Displaced(old),
            (Err(err), _) => Pushed::Displaced(err.into_inner()),
        }
    }
}

/// How a stage hands items to the next: offline it waits (nothing is
/// lost); in real time it never waits, and the oldest queued item gives way.
pub enum Handoff<T> {
    Wait(Sender<T>),
    Fresh(FreshQueue<T>),
}

/// The next stage has ended.
#[derive(Debug)]
pub struct Closed;

impl<T> Handoff<T> {
    pub fn new(tx: Sender<T>, rx: &Receiver<T>, real_time: bool) -> Self {
        if real_time {
            Self::Fresh(FreshQueue::new(tx, rx))
        } else {
            Self::Wait(tx)
        }
    }

    /// Hands `item` on; returns the item it displaced, if any.
    ///
    /// # Errors
    /// Offline, when the next stage has ended.
    pub fn hand(&self, item: T) -> Result<Option<T>, Closed> {
        match self {
            Self::Wait(tx) => tx.send(item).map(|()| None).map_err(|_| Closed),
            Self::Fresh(queue) => Ok(match queue.push(item) {
                Pushed::Queued => None,
                Pushed::Displaced(old) => Some(old),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_gives_up_its_oldest_item() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let queue = FreshQueue::new(tx, &rx);
        assert!(matches!(queue.push(1), Pushed::Queued));
        assert!(matches!(queue.push(2), Pushed::Queued));
        assert!(matches!(queue.push(3), Pushed::Displaced(1)));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![2, 3]);
    }
}
