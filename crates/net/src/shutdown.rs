//! Shutdown plumbing: the signal that starts a daemon's written shutdown sequence.

/// Resolves on SIGTERM or SIGINT (Ctrl-C). If the handlers cannot be installed (they always
/// can on Unix), resolves only on Ctrl-C.
pub async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
