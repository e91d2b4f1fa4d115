//! Work the simulator spreads over the machine's cores besides a millisecond's local events
//! (`local.rs`): the set-up's signing and the checks' pass over the clients. Each splits into
//! contiguous runs whose results are taken in order, so a seed's run is the same whatever the
//! core count.

use rayon::iter::{IntoParallelIterator, ParallelIterator};

/// `work` on each of `runs` on rayon's threads (the simulator's pool inside a run, rayon's
/// global one at set-up), results in order. A panic in a run is raised again here.
pub(crate) fn on_every_core<C: Send, R: Send>(
    runs: Vec<C>,
    work: impl Fn(C) -> R + Sync + Send,
) -> Vec<R> {
    if runs.len() <= 1 {
        return runs.into_iter().map(work).collect();
    }
    runs.into_par_iter().map(work).collect()
}

/// The machine's cores (1 if it cannot tell), asked once: the standard library reads the
/// cgroup's files each time, and the fault sweep's checks, run after every event, asked it
/// about a million times a seed (three quarters of the sweep's time went to the kernel).
pub(crate) fn count() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES
        .get_or_init(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}
