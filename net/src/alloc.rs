//! Allocator tuning for processes that move request-sized buffers (the broker, the bench).
//!
//! glibc serves an allocation above its mmap threshold (128 KiB at first, raised dynamically
//! only after such a block is freed) with a fresh mapping, and gives a heap's free top back to
//! the kernel (`madvise`) once it exceeds the trim threshold. A request frame is up to 1 MiB
//! and every produced batch is copied into a buffer of its size, so both happened for nearly
//! every request: in a profile of the broker under produce+fetch, page faults, the kernel's
//! page zeroing, unmapping and TLB shootdowns of those buffers were ≈ 12 % of the shards' CPU.
//! Above these sizes freed buffers stay in the heap and are reused. The memory kept is bounded
//! by what the broker's own limits let be in flight at once (`socket.request.max.bytes` per
//! connection, bounded queues); idle RSS is measured in `perf-reports/`.

/// Allocations up to this size come from the heap, never from their own mapping.
pub const MMAP_THRESHOLD_BYTES: i32 = 64 << 20;
/// A heap keeps up to this much free memory at its top instead of returning it to the kernel.
pub const TRIM_THRESHOLD_BYTES: i32 = 256 << 20;

/// Sets the thresholds above. Call first thing in `main`, before any other thread exists.
pub fn keep_large_allocations_in_the_heap() {
    // SAFETY: mallopt only changes allocator tunables, and no other thread is allocating yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
}
