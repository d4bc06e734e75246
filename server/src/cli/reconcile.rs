//! `billing reconcile`: a week's provider records matched one to one with the ledger.

use super::{open_migrated, usage, RunStopped};
use crate::config::Config;

/// The formats of `billing reconcile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ReconcileFormat {
    Table,
    Json,
}

/// A reconciliation as the contract's JSON: the items at the provider the ledger does not
/// explain, those of the ledger the provider does not have, and those whose amounts differ.
fn reconciliation_json(result: &app::model::reconcile::Reconciliation) -> serde_json::Value {
    use app::model::reconcile::MatchClass;
    let of = |class: MatchClass| -> Vec<&app::model::reconcile::ReconItem> {
        result.items.iter().filter(|i| i.class == class).collect()
    };
    serde_json::json!({
        "week": result.week,
        "matched": result.matched,
        "unexplained": of(MatchClass::ProviderOnly),
        "missing": of(MatchClass::LedgerOnly),
        "mismatched": of(MatchClass::AmountMismatch),
    })
}

pub(super) async fn reconcile(config: Config, week: &str, format: ReconcileFormat) -> anyhow::Result<()> {
    let week =
        app::model::week::BillingWeek::parse(week).map_err(|m| usage(format!("--week: {m}")))?.to_string();
    if !matches!(config.provider.require_target()?, crate::config::ProviderTarget::Url(_)) {
        return Err(usage(
            "PSP_URL: reconciliation needs the provider the runs used; this command's own in-process simulator has no records",
        ));
    }
    let db = open_migrated(&config).await?;
    let settings = crate::run::load_settings(&db).await?;
    let timeout = std::time::Duration::from_secs(settings.provider_timeout_seconds);
    let (client, _sim) = crate::run::provider::connect(&config, timeout).await?;
    let by = crate::db::audit::Actor::cli().name;
    let result = crate::reconcile::run(&db, &client, config.currency, &week, &by)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    db.close().await;
    if format == ReconcileFormat::Json {
        println!("{}", reconciliation_json(&result));
    } else {
        print_reconciliation(&result);
    }
    if result.unmatched > 0 {
        return Err(RunStopped(format!(
            "{} item(s) of {week} do not match; review the repair on /reconcile?week={week}",
            result.unmatched
        ))
        .into());
    }
    Ok(())
}

fn print_reconciliation(result: &app::model::reconcile::Reconciliation) {
    println!("{}: {} matched, {} not matched", result.week, result.matched, result.unmatched);
    for item in &result.items {
        let amount =
            |m: Option<app::model::money::Money>| m.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "  {} {} {}: provider {}, ledger {}; user {}, invoice {}, payout {}, attempt {}",
            item.kind,
            item.provider_id,
            item.class.label(),
            amount(item.provider_amount),
            amount(item.ledger_amount),
            item.user_id.as_deref().unwrap_or("-"),
            item.invoice_id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            item.payout_id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            item.attempt_key.as_deref().unwrap_or("-"),
        );
    }
}
