//! The week's preview: the stored rides of a week planned with the fee policy, exactly as the
//! run will charge and pay them.

use app::model::money::{BillingCurrency, Money, MoneyError};
use app::model::pricing::FeePolicy;
use app::model::week::BillingWeek;
use chrono::Utc;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::billing::plan::{plan_week, PlanError, WeekPlan};
use crate::config::Config;
use crate::db::Db;

/// The fee policy until staff set one: 2.00 per trip, 0.35 per km, 15 % platform fee, 3.00 per
/// no-show, each rounded to the currency's minor unit.
pub fn default_policy(currency: BillingCurrency) -> Result<FeePolicy, MoneyError> {
    let money = |cents: i64| Money::from_decimal_rounded(Decimal::new(cents, 2), currency);
    Ok(FeePolicy { base: money(200)?, per_km: money(35)?, platform_fee_bps: 1500, no_show_fee: money(300)? })
}

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("--week: {0} has not started yet")]
    Future(BillingWeek),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Plans `week` from its stored rides.
pub async fn preview(db: &Db, config: &Config, week: BillingWeek) -> Result<WeekPlan, PreviewError> {
    let tz = config.time_zone;
    if week.start(tz) > Utc::now() {
        return Err(PreviewError::Future(week));
    }
    let rides = db.rides_ended_between(week.start(tz), week.end(tz)).await?;
    let policy = default_policy(config.currency)?;
    Ok(plan_week(&policy, week, tz, &rides)?)
}

/// The contract's JSON shape of a preview.
pub fn to_json(plan: &WeekPlan, currency: BillingCurrency) -> Value {
    let week = plan.week.to_string();
    json!({
        "week": week,
        "currency": currency.code(),
        "status": "open",
        "totals": {
            "invoices": plan.totals.invoices,
            "charged": plan.totals.charged.to_string(),
            "fees": plan.totals.fees.to_string(),
            "payouts": plan.totals.payouts.to_string(),
        },
        "invoices": plan.invoices.iter().map(|i| json!({
            "invoice_id": format!("{week}/{}", i.user_id),
            "user_id": i.user_id,
            "total": i.total.to_string(),
            "lines": i.lines.iter().map(|l| json!({
                "ride_id": l.ride_id,
                "amount": l.amount.to_string(),
                "attendance": l.attendance,
                "ended_at": l.ended_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "late": l.late,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "payouts": plan.payouts.iter().map(|p| json!({
            "payout_id": format!("{week}/{}", p.driver_id),
            "driver_id": p.driver_id,
            "total": p.total.to_string(),
            "rides": p.lines.len(),
            "fees": Money::sum(currency, p.lines.iter().map(|l| l.fee)).map(|m| m.to_string()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
    })
}
