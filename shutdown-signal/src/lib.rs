//! The shutdown signal every server stops on: `billing serve`, `billing psp-sim` and the
//! `psp-sim` binary.

/// Resolves on SIGTERM (what service managers send) or Ctrl-C. The SIGTERM handler is installed
/// when this is called, not when the future is first polled, so a signal that arrives while the
/// server is still starting is not lost (the default action would kill the process).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let terminate = async move {
            match terminate {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
        tracing::info!("shutdown requested: finishing requests in flight");
    }
}
