//! Work the simulator spreads over the machine's cores besides a millisecond's local events
//! (`local.rs`): the set-up's signing and the checks' pass over the clients. Each splits into contiguous runs
//! whose results are taken in order, so a seed's run is the same whatever the core count.

/// `work` on each of `runs`, the first on this thread and each other on its own, results in
/// order. A panic in a run is raised again here.
pub(crate) fn on_every_core<C: Send, R: Send>(
    runs: Vec<C>,
    work: impl Fn(C) -> R + Sync,
) -> Vec<R> {
    if runs.len() <= 1 {
        return runs.into_iter().map(work).collect();
    }
    let work = &work;
    let mut runs = runs.into_iter();
    let here = runs.next();
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs.map(|run| scope.spawn(move || work(run))).collect();
        let mut results: Vec<R> = here.into_iter().map(work).collect();
        for handle in handles {
            let result = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            results.push(result);
        }
        results
    })
}

/// The machine's cores (1 if it cannot tell), asked once: the standard library reads the
/// cgroup's files each time, and the fault sweep's checks, run after every event, asked it
/// about a million times a seed (three quarters of the sweep's time went to the kernel).
pub(crate) fn count() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}
