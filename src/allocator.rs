//! The native binaries' memory allocator settings.
//!
//! A training step allocates and frees buffers of tens of megabytes (activations, gradients,
//! shifted copies). glibc's `malloc` gives buffers that large back to the system when freed
//! and maps fresh ones for the next step, so every step pays a page fault for each 4 KB it
//! touches: about 21,000 faults a step at batch 128 (BENCHMARKS.md). Kept instead, the
//! freed memory serves the next step's buffers.

/// Keeps freed memory in the process for later allocations (Linux with glibc; elsewhere
/// nothing). Call once, at the start of a native binary.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes the allocator's thresholds; called before any thread starts.
    unsafe {
        // Serve every size from the heap rather than from maps of its own …
        libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX);
        // … and never give the heap's free top back to the system.
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
