//! Work the simulator spreads over the machine's cores outside its one event thread: the
//! set-up's signing and the checks' pass over the clients. Each splits into contiguous runs
//! whose results are taken in order, so a seed's run is the same whatever the core count.

/// `work` on each of `runs` on its own thread (on this one if there is one run), results in
/// order. A panic in a run is raised again here.
pub(crate) fn on_every_core<C: Send, R: Send>(
    runs: Vec<C>,
    work: impl Fn(C) -> R + Sync,
) -> Vec<R> {
    if runs.len() <= 1 {
        return runs.into_iter().map(work).collect();
    }
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|run| scope.spawn(move || work(run)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// The machine's cores (1 if it cannot tell).
pub(crate) fn count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
