//! The week's preview: the stored rides of a week planned with the fee policy, exactly as the
//! run will charge and pay them, stored so that staff can page through it, and frozen by an
//! approval.

use std::collections::HashMap;

use crate::error::Error;
use app::model::billing::Ride;
use app::model::money::{BillingCurrency, Money, MoneyError};
use app::model::preview::{AnomalyThresholds, WeekStatus};
use app::model::pricing::{FeePolicy, PolicyVersion, BUILT_IN_VERSION};
use app::model::week::BillingWeek;
use chrono::{SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::billing::anomalies;
use crate::billing::plan::{PlanError, WeekPlan};
use crate::billing::planner::{LeanPlan, Planner};
use crate::billing::waived::Waived;
use crate::config::Config;
use crate::db::audit::Actor;
use crate::db::weeks::{inputs_hash, ApproveError, Approved, StoredWeek};
use crate::db::Db;

/// The fee policy until staff set one: 2.00 per trip, 0.35 per km, 15 % platform fee, 3.00 per
/// no-show, each rounded to the currency's minor unit.
pub fn default_policy(currency: BillingCurrency) -> Result<FeePolicy, MoneyError> {
    let money = |cents: i64| Money::from_decimal_rounded(Decimal::new(cents, 2), currency);
    Ok(FeePolicy { base: money(200)?, per_km: money(35)?, platform_fee_bps: 1500, no_show_fee: money(300)? })
}

/// Why a preview could not be made or approved.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// About the week (the field `week`).
    #[error("{0} has not started yet")]
    Future(BillingWeek),
    /// About the week (the field `week`).
    #[error("{0} has not ended yet; approve it once it has")]
    NotEnded(BillingWeek),
    #[error(transparent)]
    Approve(#[from] ApproveError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Reading the fee policy version in force.
    #[error(transparent)]
    Policy(Error),
    /// Reading the week's waivers.
    #[error(transparent)]
    Waivers(Error),
    /// The draft is still being computed by this process, for a request that stopped waiting.
    #[error(
        "{0}'s draft is being computed from its rides (for {1} s so far); open the week again in a minute"
    )]
    Computing(BillingWeek, u64),
}

/// For every caller: a week not started or not ended is an invalid `week` (422); an approval
/// the state refuses is a conflict about the week or the content hash (409).
impl From<PreviewError> for Error {
    fn from(e: PreviewError) -> Error {
        match e {
            e @ (PreviewError::Future(_) | PreviewError::NotEnded(_)) => {
                Error::invalid("week", e.to_string())
            }
            e @ PreviewError::Computing(..) => Error::conflict("week", e.to_string()),
            PreviewError::Approve(ApproveError::Database(e)) | PreviewError::Database(e) => {
                Error::internal("previewing a week", e)
            }
            PreviewError::Approve(e) => Error::conflict(e.field(), e.to_string()),
            PreviewError::Policy(e) | PreviewError::Waivers(e) => e,
            other => Error::internal("previewing a week", other),
        }
    }
}

/// The anomaly thresholds in force (the fee policy is a week's: see [`week_settings`]).
pub async fn thresholds(db: &Db) -> Result<AnomalyThresholds, PreviewError> {
    Ok(db.setting_or_default(AnomalyThresholds::KEY).await?)
}

/// What prices `week`: the fee policy version in force for it and the anomaly thresholds, and the
/// key of the two that a draft's inputs hash includes (a new version or new thresholds
/// recompute the draft).
async fn week_settings(
    db: &Db,
    config: &Config,
    week: BillingWeek,
) -> Result<(PolicyVersion, AnomalyThresholds, String), PreviewError> {
    let thresholds = thresholds(db).await?;
    let version = crate::fee_policies::for_week(db, config, week).await.map_err(PreviewError::Policy)?;
    let key =
        json!({ "policy": version.policy, "version": version.id, "thresholds": thresholds }).to_string();
    Ok((version, thresholds, key))
}

/// Makes sure `week` has a stored preview made from its current rides, recomputing it if its
/// inputs changed, and returns it. An approved week is returned as frozen, never recomputed.
pub async fn refresh(db: &Db, config: &Config, week: BillingWeek) -> Result<StoredWeek, PreviewError> {
    Ok(refresh_planned(db, config, week).await?.0)
}

/// How long a request opening a week waits for its draft to be recomputed before answering
/// that it is being computed (the computation goes on): within the request timeout.
pub const DRAFT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

/// A draft being recomputed by this process: when it started, and its outcome once known.
type Computation =
    (std::time::Instant, futures::future::Shared<futures::future::BoxFuture<'static, Option<StoredWeek>>>);

/// The drafts this process is recomputing, shared by every request that opens their week: a
/// recomputation runs as a task of its own, once per week however many people open it, and goes
/// on when a request stops waiting for it (a million passengers' week takes minutes, more than
/// a request may last), so that the next opening finds it stored.
#[derive(Clone, Default)]
pub struct Drafts {
    running: std::sync::Arc<std::sync::Mutex<HashMap<BillingWeek, Computation>>>,
}

impl Drafts {
    /// [`refresh`] through the shared computation of `week`, waiting at most `patience` for it:
    /// after that, [`PreviewError::Computing`], the computation going on. A computation that
    /// failed is answered by refreshing again here, which gives the request its own error. A
    /// current draft is answered at once, without a task.
    pub async fn refresh(
        &self,
        db: &Db,
        config: &std::sync::Arc<Config>,
        week: BillingWeek,
        patience: std::time::Duration,
    ) -> Result<StoredWeek, PreviewError> {
        self.refresh_since(db, config, week, patience, None).await
    }

    /// [`Drafts::refresh`] for a caller that has just changed the week's inputs (a waiver) at
    /// `changed`: a computation that started before then is left to finish and a new one is
    /// made, so the draft answered includes the change.
    pub async fn refresh_since(
        &self,
        db: &Db,
        config: &std::sync::Arc<Config>,
        week: BillingWeek,
        patience: std::time::Duration,
        changed: Option<std::time::Instant>,
    ) -> Result<StoredWeek, PreviewError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let running =
                self.running.lock().expect("the drafts' lock is never poisoned").get(&week).cloned();
            let (started, computation) = match running {
                Some(running) => running,
                None => match check(db, config, week).await? {
                    Checked::Current(stored) => return Ok(*stored),
                    Checked::Stale(_) => self.computation(db, config, week),
                },
            };
            match tokio::time::timeout_at(deadline, computation).await {
                Ok(Some(_)) if changed.is_some_and(|changed| started < changed) => continue,
                Ok(Some(stored)) => return Ok(stored),
                Ok(None) => return refresh(db, config, week).await,
                Err(_) => return Err(PreviewError::Computing(week, started.elapsed().as_secs())),
            }
        }
    }

    /// The computation of `week` running in this process, started now if none is.
    fn computation(&self, db: &Db, config: &std::sync::Arc<Config>, week: BillingWeek) -> Computation {
        use futures::FutureExt;
        let mut running = self.running.lock().expect("the drafts' lock is never poisoned");
        running
            .entry(week)
            .or_insert_with(|| {
                let (db, config, drafts) = (db.clone(), config.clone(), self.clone());
                let task = tokio::spawn(async move {
                    let outcome = refresh(&db, &config, week).await;
                    drafts.running.lock().expect("the drafts' lock is never poisoned").remove(&week);
                    outcome.ok()
                });
                let outcome = task.map(|joined| joined.ok().flatten()).boxed().shared();
                (std::time::Instant::now(), outcome)
            })
            .clone()
    }
}

/// What a draft is checked against: the week's pricing settings and applied waivers.
struct Inputs {
    version: PolicyVersion,
    thresholds: AnomalyThresholds,
    key: String,
    waived: Waived,
    waiver_ids: Vec<i64>,
}

/// A week's stored draft if it is made from the week's current inputs (or approved), else the
/// inputs to compute it from.
enum Checked {
    Current(Box<StoredWeek>),
    Stale(Box<Inputs>),
}

/// Whether `week`'s stored draft is current: an approved week always is (its page does not count
/// the week's rides, millions of index entries at a million passengers); a draft when its
/// inputs hash names the week's kept ride count, late rides, settings and waivers.
async fn check(db: &Db, config: &Config, week: BillingWeek) -> Result<Checked, PreviewError> {
    let tz = config.time_zone;
    let (start, end) = (week.start(tz), week.end(tz));
    if start > Utc::now() {
        return Err(PreviewError::Future(week));
    }
    let (version, thresholds, key) = week_settings(db, config, week).await?;
    let stored = match db.stored_week(week).await? {
        Some(approved) if approved.status == WeekStatus::Approved => {
            return Ok(Checked::Current(Box::new(approved)))
        }
        draft => draft,
    };
    // The applied waivers: part of the draft's inputs, and what the planner leaves out.
    let waived = Waived::new(db.applied_waivers(&week.to_string()).await?);
    let waiver_ids: Vec<i64> = waived.keys().iter().map(|w| w.id).collect();
    if let Some(stored) = stored {
        let (count, late_ids) = db.week_fingerprint(start, end).await?;
        if stored.inputs_hash == inputs_hash(&key, count, &late_ids, &waiver_ids) {
            return Ok(Checked::Current(Box::new(stored)));
        }
    }
    Ok(Checked::Stale(Box::new(Inputs { version, thresholds, key, waived, waiver_ids })))
}

/// [`refresh`], with the plan when this call made the stored week from it (`None` when the
/// stored one was current, or someone else's was stored or approved meanwhile).
async fn refresh_planned(
    db: &Db,
    config: &Config,
    week: BillingWeek,
) -> Result<(StoredWeek, Option<LeanPlan>), PreviewError> {
    let Inputs { version, thresholds, key, waived, waiver_ids } = match check(db, config, week).await? {
        Checked::Current(stored) => return Ok((*stored, None)),
        Checked::Stale(inputs) => *inputs,
    };
    let policy = version.policy;
    let tz = config.time_zone;
    let (start, end) = (week.start(tz), week.end(tz));
    // The fingerprint is taken from the rides actually planned, so it names exactly them. The
    // rides are priced as they are read and the week kept compactly (see `billing::planner`);
    // each ride is checked for plausibility on the way.
    let mut planner = Planner::new(&policy, week, tz).waiving(&waived);
    let mut implausible: HashMap<u32, String> = HashMap::new();
    let mut add = |ride: Ride| -> Result<(), PreviewError> {
        let index = planner.add(&ride)?;
        if let Some(why) = anomalies::implausible(&ride, &thresholds) {
            implausible.insert(index, why);
        }
        Ok(())
    };
    let late_rides = db.late_rides_before(start).await?;
    let mut late: Vec<String> = late_rides.iter().map(|r| r.ride_id.clone()).collect();
    late.sort();
    for ride in late_rides {
        add(ride)?;
    }
    let own = db.each_ride_ended_between(start, end, &mut add).await?;
    let inputs = inputs_hash(&key, own, &late, &waiver_ids);
    let plan = planner.finish()?;
    let history = db.history(week, thresholds.lookback_weeks).await?;
    let found = anomalies::find(&plan, &implausible, &history, &thresholds);
    drop(history);
    let version_id = Some(version.id).filter(|id| *id != BUILT_IN_VERSION);
    let stored_hash = db.store_preview(&plan, start, end, &inputs, &found, version_id).await?;
    db.refresh_statistics(&["invoices", "invoice_lines", "payouts", "payout_lines"]).await?;
    // Stored, or approved by someone meanwhile: either way the stored week is the answer, and
    // the plan only when it is the one stored.
    let stored = db.stored_week(week).await?.ok_or(sqlx::Error::RowNotFound)?;
    let planned = stored_hash.filter(|hash| *hash == stored.content_hash).map(|_| plan);
    Ok((stored, planned))
}

/// The week's preview with every invoice and payout: as just planned when this call stored it
/// (reading a million invoices' lines back was most of a preview's time and memory), else as
/// stored.
pub async fn preview(
    db: &Db,
    config: &Config,
    week: BillingWeek,
) -> Result<(StoredWeek, WeekPlan), PreviewError> {
    let (stored, planned) = refresh_planned(db, config, week).await?;
    let plan = match planned {
        Some(plan) => plan.to_week_plan(),
        None => db.stored_plan(&stored).await?,
    };
    Ok((stored, plan))
}

/// Approves (freezes) the week's preview whose content hash is `content_hash`: the one the
/// approver looked at. Approving the same content again changes nothing.
pub async fn approve(
    db: &Db,
    config: &Config,
    actor: &Actor,
    week: BillingWeek,
    content_hash: &str,
) -> Result<Approved, PreviewError> {
    let tz = config.time_zone;
    if week.end(tz) > Utc::now() {
        return Err(PreviewError::NotEnded(week));
    }
    let (_, _, key) = week_settings(db, config, week).await?;
    Ok(db.approve_week(actor, week, week.start(tz), week.end(tz), &key, content_hash).await?)
}

/// [`approve`] in a task of its own, awaited: an approval that outlasts the request that asked
/// for it (a million passengers' week takes 5 to 13 s on the benchmark machine, more on a slow
/// disk) still commits rather than being cancelled midway by the request's timeout, and the
/// week's page then shows it approved.
pub async fn approve_detached(
    db: &Db,
    config: &std::sync::Arc<Config>,
    actor: Actor,
    week: BillingWeek,
    content_hash: String,
) -> Result<Approved, PreviewError> {
    let (db, config) = (db.clone(), config.clone());
    tokio::spawn(async move { approve(&db, &config, &actor, week, &content_hash).await }).await.map_err(
        |e| PreviewError::Database(sqlx::Error::Protocol(format!("the approval's task failed: {e}"))),
    )?
}

/// The contract's JSON of `week`'s preview, with who cannot be charged or paid and the week's
/// waivers (every state; the applied ones are what its invoices leave out), built whole in
/// memory: what `billing preview --format json` prints and `GET /api/v1/weeks/:week/preview`
/// sends, which [`write_json`] writes a page at a time (this is what it is tested against).
pub async fn preview_json(db: &Db, config: &Config, week: BillingWeek) -> Result<Value, PreviewError> {
    let (stored, plan) = preview(db, config, week).await?;
    let ids = db.document_ids(week).await?;
    let mut body = to_json(&stored, &plan, &ids);
    body["payment_gaps"] = gaps_json(db, config, week).await?;
    let waivers = crate::waivers::list(db, config, week, None).await.map_err(PreviewError::Waivers)?;
    body["waivers"] = serde_json::to_value(waivers).expect("waivers serialise");
    Ok(body)
}

/// Invoices (or payouts) read and written per page of the streamed JSON.
pub const JSON_PAGE: i64 = 2_000;

/// The same JSON as [`preview_json`], written `page` invoices (then payouts) at a time into
/// `out` from the stored week `stored` (bring it up to date with [`refresh`] first, so that
/// refusals come before anything is written): what `billing preview --format json` prints and
/// `GET /api/v1/weeks/:week/preview` sends, in flat memory whatever the week's size. Stops early,
/// without an error, when the receiver is gone (the client left).
pub async fn write_json(
    db: &Db,
    config: &Config,
    stored: &StoredWeek,
    page: i64,
    out: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<(), PreviewError> {
    let week = stored.week;
    let currency = stored.currency;
    let mut text = serde_json::to_vec(&head_json(stored, &stored.totals)).expect("JSON serialises");
    text.pop(); // the closing brace: the lists follow
    text.extend_from_slice(br#","invoices":["#);
    let mut after = String::new();
    let mut first = true;
    loop {
        let invoices = db.invoice_documents(week, &after, page).await?;
        let Some(last) = invoices.last() else { break };
        after = last.user_id.clone();
        for invoice in &invoices {
            if !std::mem::take(&mut first) {
                text.push(b',');
            }
            serde_json::to_writer(&mut text, &invoice_json(invoice, currency)).expect("JSON serialises");
        }
        if out.send(std::mem::take(&mut text)).await.is_err() {
            return Ok(());
        }
    }
    text.extend_from_slice(br#"],"payouts":["#);
    let (mut after, mut first) = (String::new(), true);
    loop {
        let payouts = db.payout_documents(week, &after, page).await?;
        let Some(last) = payouts.last() else { break };
        after = last.1.clone();
        for payout in &payouts {
            if !std::mem::take(&mut first) {
                text.push(b',');
            }
            serde_json::to_writer(&mut text, &payout_json(payout, currency)).expect("JSON serialises");
        }
        if out.send(std::mem::take(&mut text)).await.is_err() {
            return Ok(());
        }
    }
    text.extend_from_slice(br#"],"payment_gaps":"#);
    serde_json::to_writer(&mut text, &gaps_json(db, config, week).await?).expect("JSON serialises");
    let waivers = crate::waivers::list(db, config, week, None).await.map_err(PreviewError::Waivers)?;
    text.extend_from_slice(br#","waivers":"#);
    serde_json::to_writer(&mut text, &waivers).expect("JSON serialises");
    text.push(b'}');
    let _ = out.send(text).await;
    Ok(())
}

/// One invoice of the preview's JSON, as stored.
fn invoice_json(invoice: &crate::db::weeks::InvoiceDocument, currency: BillingCurrency) -> Value {
    let money = |minor: i64| Money::from_minor(minor, currency).to_string();
    let lines: Vec<Value> = invoice
        .lines
        .iter()
        .map(|l| {
            json!({
                "ride_id": l.ride_id,
                "amount": money(l.amount_minor),
                "attendance": l.attendance,
                "ended_at": l.ended_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "late": l.late,
            })
        })
        .collect();
    json!({
        "invoice_id": invoice.id,
        "user_id": invoice.user_id,
        "total": money(invoice.total_minor),
        "lines": lines,
    })
}

/// One payout of the preview's JSON, as stored: (id, driver, total, rides, fees).
fn payout_json(payout: &(i64, String, i64, i64, i64), currency: BillingCurrency) -> Value {
    let (id, driver_id, total, rides, fees) = payout;
    let money = |minor: i64| Money::from_minor(minor, currency).to_string();
    json!({
        "payout_id": id,
        "driver_id": driver_id,
        "total": money(*total),
        "rides": rides,
        "fees": money(*fees),
    })
}

/// The most invoices or payouts one page of the API gives.
pub const MAX_PAGE: i64 = 10_000;

/// Which list a page of the preview is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageOf {
    Invoices,
    Payouts,
}

/// One page of the week's invoices (or payouts) as the preview's JSON writes them, after user
/// (or driver) `after` in id order, at most `limit`: `{week, currency, status, content_hash,
/// invoices|payouts, next_after}`, `next_after` naming where the next page starts (null on the
/// last). The draft is brought up to date first; a client reads a whole week page by page.
pub async fn page_json(
    db: &Db,
    config: &Config,
    week: BillingWeek,
    of: PageOf,
    after: &str,
    limit: i64,
) -> Result<Value, Error> {
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid("limit", format!("from 1 to {MAX_PAGE}")));
    }
    if after.chars().count() > 100 {
        return Err(Error::invalid("after", "at most 100 characters: an id from the page before"));
    }
    let stored = refresh(db, config, week).await?;
    let currency = stored.currency;
    let failed = |e: sqlx::Error| Error::internal("reading a page of the preview", e);
    let (key, items, next): (&str, Vec<Value>, Option<String>) = match of {
        PageOf::Invoices => {
            let page = db.invoice_documents(week, after, limit).await.map_err(failed)?;
            let next = page.last().filter(|_| page.len() as i64 == limit).map(|i| i.user_id.clone());
            ("invoices", page.iter().map(|i| invoice_json(i, currency)).collect(), next)
        }
        PageOf::Payouts => {
            let page = db.payout_documents(week, after, limit).await.map_err(failed)?;
            let next = page.last().filter(|_| page.len() as i64 == limit).map(|p| p.1.clone());
            ("payouts", page.iter().map(|p| payout_json(p, currency)).collect(), next)
        }
    };
    Ok(json!({
        "week": week.to_string(),
        "currency": currency.code(),
        "status": stored.status.as_str(),
        "content_hash": stored.content_hash,
        key: items,
        "next_after": next,
    }))
}

/// The preview JSON's fields that describe the stored week and its `totals`, without its lists.
fn head_json(stored: &StoredWeek, totals: &app::model::billing::WeekTotals) -> Value {
    json!({
        "totals": {
            "invoices": totals.invoices,
            "charged": totals.charged.to_string(),
            "fees": totals.fees.to_string(),
            "payouts": totals.payouts.to_string(),
        },
        "week": stored.week.to_string(),
        "currency": stored.currency.code(),
        "status": stored.status.as_str(),
        "content_hash": stored.content_hash,
        "fee_policy_version": stored.fee_policy_version.unwrap_or(BUILT_IN_VERSION),
        "computed_at": stored.computed_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "approved_at": stored.approved_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
        "approved_by": stored.approved_by,
        "anomalies": stored.anomalies,
    })
}

/// The contract's JSON shape of a preview, with the stored week's status and hash. Invoices
/// and payouts carry their stored ids (`ids`), the ones the provider, the dashboard and the API
/// know them by.
pub fn to_json(stored: &StoredWeek, plan: &WeekPlan, ids: &crate::db::weeks::DocumentIds) -> Value {
    let currency = stored.currency;
    let mut body = head_json(stored, &plan.totals);
    body["invoices"] = plan
        .invoices
        .iter()
        .map(|i| {
            json!({
                "invoice_id": ids.invoices.get(&i.user_id),
                "user_id": i.user_id,
                "total": i.total.to_string(),
                "lines": i.lines.iter().map(|l| json!({
                    "ride_id": l.ride_id,
                    "amount": l.amount.to_string(),
                    "attendance": l.attendance,
                    "ended_at": l.ended_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "late": l.late,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    body["payouts"] = plan
        .payouts
        .iter()
        .map(|p| {
            json!({
                "payout_id": ids.payouts.get(&p.driver_id),
                "driver_id": p.driver_id,
                "total": p.total.to_string(),
                "rides": p.lines.len(),
                "fees": Money::sum(currency, p.lines.iter().map(|l| l.fee)).map(|m| m.to_string()).unwrap_or_default(),
            })
        })
        .collect();
    body
}

/// Who cannot be charged or paid in `week` with the provider objects stored now: none when the
/// run provisions test objects for whoever has none.
pub async fn payment_gaps(
    db: &Db,
    config: &Config,
    week: BillingWeek,
) -> Result<crate::db::provider::PaymentGaps, sqlx::Error> {
    if config.provider.provision {
        return Ok(Default::default());
    }
    db.payment_gaps(&week.to_string()).await
}

/// The week page's counts of who cannot be charged or paid, kept per draft (its week and content
/// hash) for a few seconds and then counted again in the background while the kept counts are
/// still shown: counting them reads every invoice of the week (a quarter of a second at a
/// million passengers), too much for each view of a page people reload. A card added shows
/// within `fresh` plus one count. The preview's JSON and the CLI count every time.
#[derive(Clone)]
pub struct GapsCache {
    fresh: std::time::Duration,
    kept: std::sync::Arc<std::sync::Mutex<HashMap<(BillingWeek, String), KeptGaps>>>,
    /// Held while a draft's first counts are taken, so that the views arriving meanwhile wait
    /// for them instead of each counting.
    first: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Counts of a draft: when they were taken, and whether a new count is under way.
struct KeptGaps {
    counted: std::time::Instant,
    gaps: crate::db::provider::PaymentGaps,
    counting: bool,
}

impl GapsCache {
    /// Counts reused for `fresh` after they were taken.
    pub fn new(fresh: std::time::Duration) -> GapsCache {
        GapsCache { fresh, kept: Default::default(), first: Default::default() }
    }

    /// [`payment_gaps`] of the draft `stored`: as kept when fresh; as kept, a new count started,
    /// when older; counted here when none are kept.
    pub async fn get(
        &self,
        db: &Db,
        config: &std::sync::Arc<Config>,
        stored: &StoredWeek,
    ) -> Result<crate::db::provider::PaymentGaps, sqlx::Error> {
        let key = (stored.week, stored.content_hash.clone());
        if let Some(gaps) = self.kept(db, config, &key) {
            return Ok(gaps);
        }
        let _first = self.first.lock().await;
        if let Some(gaps) = self.kept(db, config, &key) {
            return Ok(gaps);
        }
        let gaps = payment_gaps(db, config, stored.week).await?;
        self.keep(key, Some(gaps.clone()));
        Ok(gaps)
    }

    /// The counts kept for `key`'s draft, a new count started when they are no longer fresh.
    fn kept(
        &self,
        db: &Db,
        config: &std::sync::Arc<Config>,
        key: &(BillingWeek, String),
    ) -> Option<crate::db::provider::PaymentGaps> {
        let mut kept = self.kept.lock().expect("the gaps' lock is never poisoned");
        let entry = kept.get_mut(key)?;
        if entry.counted.elapsed() >= self.fresh && !entry.counting {
            entry.counting = true;
            let (cache, db, config, key) = (self.clone(), db.clone(), config.clone(), key.clone());
            tokio::spawn(async move {
                let counted = payment_gaps(&db, &config, key.0).await;
                if let Err(e) = &counted {
                    tracing::warn!(week = %key.0, error = %e, "counting who cannot be charged or paid");
                }
                cache.keep(key, counted.ok());
            });
        }
        Some(entry.gaps.clone())
    }

    /// Keeps `gaps` (when counted) as the counts of `key`'s draft, forgetting other drafts of its week.
    fn keep(&self, key: (BillingWeek, String), gaps: Option<crate::db::provider::PaymentGaps>) {
        let mut kept = self.kept.lock().expect("the gaps' lock is never poisoned");
        match gaps {
            Some(gaps) => {
                kept.retain(|(week, hash), _| *week != key.0 || *hash == key.1);
                kept.insert(key, KeptGaps { counted: std::time::Instant::now(), gaps, counting: false });
            }
            None => {
                if let Some(entry) = kept.get_mut(&key) {
                    entry.counting = false;
                }
            }
        }
    }
}

/// [`payment_gaps`] as the preview JSON's `payment_gaps`: counts and the first ids.
pub async fn gaps_json(db: &Db, config: &Config, week: BillingWeek) -> Result<Value, sqlx::Error> {
    let gaps = payment_gaps(db, config, week).await?;
    Ok(json!({
        "no_payment_method": gaps.no_payment_method,
        "no_payout_account": gaps.no_payout_account,
        "passengers": gaps.passengers,
        "drivers": gaps.drivers,
    }))
}
