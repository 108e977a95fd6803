//! Real-time discipline, checked: code on a device callback or in a
//! stage's steady-state loop runs inside a [`hot`] section, and a test
//! installs [`CountingAllocator`] to prove nothing there allocates (as
//! nih-plug's `assert_no_alloc` does). Without that allocator the sections
//! cost a thread-local flag write.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

thread_local! {
    static HOT: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as in a hot section until the guard drops.
pub struct HotSection {
    was_hot: bool,
}

/// Enters a hot section: nothing may allocate until the guard drops.
#[must_use]
pub fn hot() -> HotSection {
    let was_hot = HOT.with(|h| h.replace(true));
    HotSection { was_hot }
}

/// Leaves the hot section for a call that is allowed to allocate (set-up
/// work that happens once, reported separately).
pub fn outside_hot<T>(f: impl FnOnce() -> T) -> T {
    let was_hot = HOT.with(|h| h.replace(false));
    let result = f();
    HOT.with(|h| h.set(was_hot));
    result
}

impl Drop for HotSection {
    fn drop(&mut self) {
        HOT.with(|h| h.set(self.was_hot));
    }
}

static ARMED: AtomicBool = AtomicBool::new(false);
static HOT_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Starts counting allocations in hot sections (after warm-up).
pub fn arm() {
    HOT_ALLOCATIONS.store(0, Relaxed);
    ARMED.store(true, Relaxed);
}

/// Stops counting; returns the allocations made in hot sections since
/// [`arm`].
pub fn disarm() -> u64 {
    ARMED.store(false, Relaxed);
    HOT_ALLOCATIONS.load(Relaxed)
}

/// The system allocator, counting what hot sections allocate. Install it
/// with `#[global_allocator]` in a test binary.
pub struct CountingAllocator;

impl CountingAllocator {
    fn note(&self) {
        // `try_with`: the thread-local may already be gone while a thread
        // exits, and an allocator must not panic.
        if ARMED.load(Relaxed) && HOT.try_with(Cell::get).unwrap_or(false) {
            HOT_ALLOCATIONS.fetch_add(1, Relaxed);
        }
    }
}

// SAFETY: every call goes straight to the system allocator; counting only
// touches atomics and a const-initialised thread-local.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Freeing can take the allocator's locks too.
        self.note();
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}
