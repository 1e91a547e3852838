//! The process's heap, counted. Every allocation goes through [`HEAP`] (mimalloc,
//! as DataFusion's own CLI uses, with a counter), so work that would take the process past a memory
//! limit can be refused before it allocates, wherever the allocation would come from
//! (see `server::budget`). The counter never refuses an allocation itself: running
//! out of memory inside the allocator can only abort the process.
//!
//! mimalloc rather than the system allocator because it hands freed memory back to
//! the operating system soon after a large query ends; glibc's arenas keep it, so a
//! server's resident size would stay at its largest query's peak.

use cap::Cap;
use mimalloc::MiMalloc;

#[global_allocator]
static HEAP: Cap<MiMalloc> = Cap::new(MiMalloc, usize::MAX);

/// Bytes the process holds on its heap now.
pub fn allocated() -> usize {
    HEAP.allocated()
}

#[cfg(test)]
mod tests {
    #[test]
    fn allocations_are_counted() {
        let before = super::allocated();
        let block = vec![1u8; 256 << 20];
        assert!(super::allocated() >= before + (128 << 20));
        drop(block);
    }
}
