//! The server's own heap, handed back to the OS after large work.

/// Hands the allocator's free memory back to the OS. glibc keeps freed small blocks in its
/// arenas (one per thread that allocated, at most one per core: `main.rs`), and after a
/// million-row import, a freeze or an export those are tens of MiB the server no longer uses
/// but still holds as its own (RssAnon): the next large piece of work then stacks on top of
/// them (docs/bench.md, "Releases at a million" and session 9). Called when such work ends
/// (and before a freeze); it takes milliseconds.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own heaps to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
}
