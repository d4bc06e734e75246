//! The provider a process talks to: `PSP_URL`, or the simulator started inside this process when
//! `PSP_URL=sim` says so (the demo: each process then has its own simulator, so several processes
//! sharing one run need a shared `PSP_URL`, such as `billing psp-sim`). Without `PSP_URL`,
//! nothing that calls the provider starts.

use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::sync::oneshot;

use crate::config::{Config, ProviderTarget};
use crate::psp::stripe::StripeClient;

/// Keeps the in-process simulator running; dropping it stops the simulator.
pub struct InProcessSim {
    _stop: oneshot::Sender<()>,
    pub url: String,
}

/// A client of the configured provider, and the in-process simulator when it is the one. An
/// error naming `PSP_URL` (a [`crate::config::ConfigError`]) when none is configured.
pub async fn connect(
    config: &Config,
    timeout: Duration,
) -> anyhow::Result<(StripeClient, Option<InProcessSim>)> {
    let key = secrecy::SecretString::from(config.provider.api_key.expose_secret().to_owned());
    let prepare = |client: StripeClient| {
        client.with_test_cards(config.provider.test_cards).with_provisioning(config.provider.provision)
    };
    match config.provider.require_target()? {
        ProviderTarget::Url(url) => Ok((prepare(StripeClient::new(url.as_str(), key, timeout)?), None)),
        #[cfg(feature = "simulator")]
        ProviderTarget::InProcessSim => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let (stop, stopped) = oneshot::channel::<()>();
            let sim = psp_sim::SimConfig { latency_ms: config.provider.sim_latency_ms, ..Default::default() };
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = psp_sim::serve(listener, sim, shutdown).await {
                    tracing::error!(error = %e, "the in-process simulator stopped");
                }
            });
            let client = prepare(StripeClient::new(&url, key, timeout)?);
            Ok((client, Some(InProcessSim { _stop: stop, url })))
        }
    }
}
