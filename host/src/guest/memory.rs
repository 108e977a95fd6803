//! Guest linear memories allocated by the host, so the host knows where each
//! one lives and can move frames in and out of it without the canonical ABI.
//!
//! Every linear memory is one anonymous mapping that reserves its whole
//! possible size up front (plus wasmtime's guard region) and only makes the
//! first `size` bytes accessible. Growing flips more pages to read/write;
//! the base never moves, so an address taken once stays valid for the life
//! of the memory. The mapping is shared (`Arc`) between wasmtime, which
//! owns the memory, and the host's [`GuestMemory`] handle, so it is unmapped
//! only when both are gone.
//!
//! Which memory belongs to which instance: a memory is created during
//! `instantiate`, on the instantiating thread. [`collect_during`] installs a
//! thread-local list for the length of one instantiation; the creator pushes
//! every memory it makes into it. Nothing else instantiates on that thread
//! in between, so what was collected belongs to that instance.

use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// Reservation used when wasmtime does not ask for one: a wasm32 memory's
/// largest size, so growth never needs to move it.
const FALLBACK_RESERVATION: usize = 4 << 30;

/// Guest memory mappings alive in this process (tests prove swaps and
/// restarts unmap what they mapped: an address-space leak would not show in
/// the resident size).
static LIVE_MAPPINGS: AtomicUsize = AtomicUsize::new(0);

/// How many guest linear memories are mapped right now, in the whole
/// process.
pub fn live_memories() -> usize {
    LIVE_MAPPINGS.load(Ordering::Relaxed)
}

/// One reserved mapping: `accessible` bytes from `base` are read/write, the
/// rest up to `reserved + guard` is inaccessible.
struct Mapping {
    base: NonNull<u8>,
    reserved: usize,
    guard: usize,
    accessible: AtomicUsize,
}

// SAFETY: the mapping is plain memory; who may touch which bytes when is
// governed by wasmtime (during calls) and by `GuestMemory`'s `&mut self`
// methods on the thread that owns the store (between calls).
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    fn reserve(reserved: usize, guard: usize, initial: usize) -> Result<Self, String> {
        let total = reserved
            .checked_add(guard)
            .ok_or("memory reservation overflows")?;
        // SAFETY: a fresh anonymous mapping at an address of the kernel's
        // choosing; it aliases nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "cannot reserve {total} bytes of address space for a guest memory: {}",
                std::io::Error::last_os_error()
            ));
        }
        let base = NonNull::new(base.cast()).ok_or("mmap returned null")?;
        // Counted from here: `Drop` unmaps and uncounts.
        LIVE_MAPPINGS.fetch_add(1, Ordering::Relaxed);
        let mapping = Mapping {
            base,
            reserved,
            guard,
            accessible: AtomicUsize::new(0),
        };
        mapping.make_accessible(initial)?;
        Ok(mapping)
    }

    /// Opens `[accessible, new_size)` for reading and writing.
    fn make_accessible(&self, new_size: usize) -> Result<(), String> {
        let old = self.accessible.load(Ordering::Acquire);
        if new_size > self.reserved {
            return Err(format!(
                "a guest memory cannot grow to {new_size} bytes: {} are reserved",
                self.reserved
            ));
        }
        if new_size > old {
            // Wasm sizes are whole 64 KiB pages, so `old` is page-aligned.
            // SAFETY: the range lies inside our own reservation.
            let status = unsafe {
                libc::mprotect(
                    self.base.as_ptr().add(old).cast(),
                    new_size - old,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if status != 0 {
                return Err(format!(
                    "cannot grow a guest memory to {new_size} bytes: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        self.accessible.store(new_size.max(old), Ordering::Release);
        Ok(())
    }

    fn size(&self) -> usize {
        self.accessible.load(Ordering::Acquire)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `reserve` mapped; both owners (the
        // wasmtime memory and every `GuestMemory`) are gone.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.reserved + self.guard);
        }
        LIVE_MAPPINGS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The `LinearMemory` wasmtime owns.
struct HostLinearMemory(Arc<Mapping>);

// SAFETY: `as_ptr` is the base of a reservation of `byte_capacity()` bytes
// plus the guard size wasmtime asked for, the first `byte_size()` bytes are
// read/write and zero-filled when new, and the base never moves.
unsafe impl LinearMemory for HostLinearMemory {
    fn byte_size(&self) -> usize {
        self.0.size()
    }

    fn byte_capacity(&self) -> usize {
        self.0.reserved
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        self.0
            .make_accessible(new_size)
            .map_err(wasmtime::Error::msg)
    }

    fn as_ptr(&self) -> *mut u8 {
        self.0.base.as_ptr()
    }
}

/// Creates every linear memory of every guest (`Config::with_host_memory`).
pub struct HostMemoryCreator;

// SAFETY: see `HostLinearMemory`.
unsafe impl MemoryCreator for HostMemoryCreator {
    fn new_memory(
        &self,
        ty: MemoryType,
        minimum: usize,
        _maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        if ty.is_shared() || ty.is_64() {
            return Err("guests may only use unshared 32-bit linear memories".to_string());
        }
        let reserved = reserved_size_in_bytes
            .unwrap_or(FALLBACK_RESERVATION)
            .max(minimum);
        let mapping = Arc::new(Mapping::reserve(reserved, guard_size_in_bytes, minimum)?);
        COLLECTED.with(|collected| {
            if let Some(list) = collected.borrow_mut().as_mut() {
                list.push(GuestMemory(mapping.clone()));
            }
        });
        Ok(Box::new(HostLinearMemory(mapping)))
    }
}

thread_local! {
    /// Memories created on this thread during the current `collect_during`.
    static COLLECTED: RefCell<Option<Vec<GuestMemory>>> = const { RefCell::new(None) };
}

/// Runs `instantiate` and returns, with its result, every linear memory it
/// created on this thread.
pub fn collect_during<R>(instantiate: impl FnOnce() -> R) -> (R, Vec<GuestMemory>) {
    struct Reset(Option<Vec<GuestMemory>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            COLLECTED.with(|c| *c.borrow_mut() = self.0.take());
        }
    }
    // Nesting is not expected, but restoring the outer list keeps it sound.
    let outer = COLLECTED.with(|c| c.borrow_mut().replace(Vec::new()));
    let reset = Reset(outer);
    let result = instantiate();
    let memories = COLLECTED
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    drop(reset);
    (result, memories)
}

/// The host's handle on one guest's linear memory. Reads and writes are
/// bounds-checked against the memory's size at the moment of the access.
pub struct GuestMemory(Arc<Mapping>);

/// A byte range that does not lie inside the guest's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfBounds {
    pub offset: usize,
    pub length: usize,
    pub size: usize,
}

impl std::fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bytes {}..{} lie outside its {}-byte linear memory",
            self.offset,
            self.offset as u128 + self.length as u128,
            self.size
        )
    }
}

impl GuestMemory {
    /// The memory's current size in bytes.
    pub fn size(&self) -> usize {
        self.0.size()
    }

    /// Checks that `offset..offset + length` lies inside the memory now.
    ///
    /// # Errors
    /// [`OutOfBounds`], with the memory's size.
    pub fn check(&self, offset: usize, length: usize) -> Result<(), OutOfBounds> {
        let size = self.size();
        match offset.checked_add(length) {
            Some(end) if end <= size => Ok(()),
            _ => Err(OutOfBounds {
                offset,
                length,
                size,
            }),
        }
    }

    /// The bytes at `offset..offset + length`, to fill or read in place.
    ///
    /// The guest must not be running (it cannot be: its store is borrowed by
    /// whoever holds this `&mut`), so nothing else touches these bytes while
    /// the slice lives.
    ///
    /// # Errors
    /// When the range is not inside the memory.
    pub fn slice_mut(&mut self, offset: usize, length: usize) -> Result<&mut [u8], OutOfBounds> {
        self.check(offset, length)?;
        // SAFETY: in bounds of the accessible, never-moving mapping, which
        // our `Arc` keeps alive; exclusive per the note above.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.0.base.as_ptr().add(offset), length) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(size: usize) -> GuestMemory {
        GuestMemory(Arc::new(Mapping::reserve(1 << 20, 64 << 10, size).unwrap()))
    }

    #[test]
    fn accesses_are_checked_against_the_current_size() {
        let mut memory = memory(64 << 10);
        assert!(memory.slice_mut(0, 64 << 10).is_ok());
        let err = memory.slice_mut(60 << 10, 8 << 10).unwrap_err();
        assert_eq!(err.size, 64 << 10);
        assert!(err.to_string().contains("outside its 65536-byte"), "{err}");
        assert!(memory.slice_mut(usize::MAX - 1, 4).is_err(), "overflow");

        memory.0.make_accessible(128 << 10).unwrap();
        let bytes = memory.slice_mut(60 << 10, 8 << 10).unwrap();
        assert!(bytes.iter().all(|&b| b == 0), "new pages are zeroed");
        bytes.fill(7);
        assert_eq!(memory.slice_mut(64 << 10, 1).unwrap(), &[7]);
    }

    #[test]
    fn growth_keeps_the_base_and_stops_at_the_reservation() {
        let memory = memory(0);
        let base = memory.0.base;
        memory.0.make_accessible(512 << 10).unwrap();
        assert_eq!(memory.0.base, base);
        assert!(memory.0.make_accessible(2 << 20).is_err());
        assert_eq!(memory.size(), 512 << 10);
    }

    #[test]
    fn only_memories_made_inside_collect_during_are_collected() {
        let creator = HostMemoryCreator;
        let ty = MemoryType::new(1, None);
        let outside = creator.new_memory(ty.clone(), 1 << 16, None, Some(1 << 20), 0);
        let (inside, collected) =
            collect_during(|| creator.new_memory(ty, 1 << 16, None, Some(1 << 20), 0));
        assert!(outside.is_ok() && inside.is_ok());
        assert_eq!(collected.len(), 1);
        assert_eq!(collected[0].size(), 1 << 16);
        assert!(COLLECTED.with(|c| c.borrow().is_none()), "collection ends");
    }
}
