//! What every request handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use chrono::{SecondsFormat, Utc};
use leptos::config::LeptosOptions;

use crate::audit_writer::AuditWriter;
use crate::config::Config;
use crate::db::audit::Actor;
use crate::db::Db;
use app::api::{AppError, Backend};
use app::model::alerts::{AlertSettings, AlertView, AlertsPage};
use app::model::audit::{AuditPage, AuditQuery};
use app::model::customer::{ActivityPage, CustomerProfile, Section, UserHit};
use app::model::dispute::{DisputeView, DisputesPage, EvidenceRequest};
use app::model::preview::{InvoiceDetail, InvoicePage, InvoiceQuery, PayoutPage, WeekSummary};
use app::model::pricing::{NewPolicyVersion, PolicyVersion, PolicyVersions, WhatIf};
use app::model::reconcile::{OpenMismatch, Reconciliation};
use app::model::refund::{InvoiceRecord, NewRefund, RefundAnswer, RefundView};
use app::model::report::Report;
use app::model::run::{HaltedRun, RunView};
use app::model::staff::{AccessToken, NewAccessToken, Principal, Role, Staff};
use app::model::system::Overview;
use app::model::waiver::{NewWaiver, WaiverAnswer, WaiverView};
use app::model::week::BillingWeek;

/// Shared by every handler, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub leptos: LeptosOptions,
    /// Sign-in attempt counters of this process.
    /// The configured public origin (`PUBLIC_URL`), if any.
    pub public_origin: Option<Arc<str>>,
    /// The payment provider refunds are sent to at once; without one they wait for a worker.
    pub provider: Option<crate::psp::stripe::StripeClient>,
    /// Writes the audit entries of lookups, many requests' in one commit.
    pub audit: AuditWriter,
    /// The provider's platform account as `GET /v1/account` answered when the process started
    /// (`acct_… (name)`), or why it could not be read; `None` before anyone asked.
    pub provider_account: Option<Arc<str>>,
    /// The week drafts this process is recomputing, shared by the requests that open them.
    pub drafts: crate::preview::Drafts,
    /// The week page's counts of who cannot be charged or paid, reused for [`GAPS_FRESH`].
    pub gaps: crate::preview::GapsCache,
}

/// How long the week page reuses its counts of who cannot be charged or paid.
pub const GAPS_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

impl AppState {
    /// Which provider, which mode and which account this process bills through.
    pub fn provider_info(&self) -> app::model::system::ProviderInfo {
        let provider = &self.config.provider;
        app::model::system::ProviderInfo {
            endpoint: provider.describe(),
            mode: provider.mode.label().to_owned(),
            account: self.provider_account.as_deref().unwrap_or("not asked").to_owned(),
            provisioning: provider.provision,
        }
    }

    /// The state for a server on `db` with `config`; starts its audit writer (inside a Tokio
    /// runtime).
    pub fn new(db: Db, config: Config, leptos: LeptosOptions) -> AppState {
        AppState {
            audit: AuditWriter::start(db.clone()),
            db,
            public_origin: config.public_origin().map(Arc::from),
            config: Arc::new(config),
            leptos,
            provider: None,
            provider_account: None,
            drafts: Default::default(),
            gaps: crate::preview::GapsCache::new(GAPS_FRESH),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

pub use super::error::internal as internal_error;

#[async_trait::async_trait]
impl Backend for AppState {
    async fn overview(&self) -> Result<Overview, AppError> {
        let migrations =
            self.db.migration_state().await.map_err(|e| internal_error("reading the migration state", e))?;
        let now = Utc::now().with_timezone(&self.config.time_zone);
        Ok(Overview {
            version: env!("CARGO_PKG_VERSION").to_string(),
            backend: self.db.backend(),
            migrations,
            time_zone: self.config.time_zone.name().to_string(),
            local_time: now.to_rfc3339_opts(SecondsFormat::Millis, false),
            currency: self.config.currency.code().to_string(),
            provider: self.provider_info(),
        })
    }

    async fn audit(&self, _caller: &Principal, query: AuditQuery) -> Result<AuditPage, AppError> {
        let mut page = self.db.audit_page(&query).await?;
        // In the business time zone, as every moment the dashboard shows.
        for entry in &mut page.entries {
            crate::customers::in_zone(&mut entry.at, self.config.time_zone);
        }
        page.time_zone = self.config.time_zone.name().to_owned();
        Ok(page)
    }

    async fn list_staff(&self, _caller: &Principal) -> Result<Vec<Staff>, AppError> {
        Ok(crate::staff::list(&self.db).await?)
    }

    async fn add_staff(
        &self,
        caller: &Principal,
        email: String,
        role: Role,
        password: String,
    ) -> Result<Staff, AppError> {
        crate::staff::add(&self.db, &Actor::staff(caller), &email, role, password).await.map_err(Into::into)
    }

    async fn disable_staff(&self, caller: &Principal, staff_id: i64) -> Result<Staff, AppError> {
        crate::staff::disable(&self.db, &Actor::staff(caller), staff_id).await.map_err(Into::into)
    }

    async fn my_tokens(&self, caller: &Principal) -> Result<Vec<AccessToken>, AppError> {
        let tokens =
            self.db.staff_tokens(caller.staff.id).await.map_err(|e| internal_error("listing tokens", e))?;
        Ok(tokens.into_iter().map(token_view).collect())
    }

    async fn create_my_token(
        &self,
        caller: &Principal,
        name: String,
        days: u16,
    ) -> Result<NewAccessToken, AppError> {
        let name = crate::auth::token::parse_name(&name).map_err(|m| AppError::invalid("name", m))?;
        crate::auth::token::check_days(days).map_err(|m| AppError::invalid("days", m))?;
        let token = crate::auth::token::generate(crate::auth::token::STAFF_TOKEN_PREFIX);
        let expires = Utc::now() + chrono::Duration::days(i64::from(days));
        let id = self
            .db
            .add_staff_token(
                &Actor::staff(caller),
                caller.staff.id,
                &name,
                &token.hash,
                &token.prefix,
                expires,
            )
            .await
            .map_err(|e| internal_error("creating a token", e))?;
        let created = self
            .db
            .staff_tokens(caller.staff.id)
            .await
            .map_err(|e| internal_error("reading the new token", e))?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| AppError::Internal("the new token could not be read back".into()))?;
        Ok(NewAccessToken { token: token_view(created), secret: token.secret })
    }

    async fn revoke_my_token(&self, caller: &Principal, token_id: i64) -> Result<AccessToken, AppError> {
        self.db
            .revoke_staff_token(&Actor::staff(caller), caller.staff.id, token_id)
            .await
            .map_err(|e| internal_error("revoking a token", e))?
            .map(token_view)
            .ok_or_else(|| AppError::NotFound(format!("active token {token_id} of yours")))
    }

    async fn week_summary(&self, _caller: &Principal, week: BillingWeek) -> Result<WeekSummary, AppError> {
        let stored = self
            .drafts
            .refresh(&self.db, &self.config, week, crate::preview::DRAFT_PATIENCE)
            .await
            .map_err(crate::error::Error::from)?;
        self.summary_of(stored).await
    }

    async fn week_invoices(&self, _caller: &Principal, query: InvoiceQuery) -> Result<InvoicePage, AppError> {
        self.db.invoice_page(&query).await.map_err(|e| internal_error("listing invoices", e))
    }

    async fn week_invoice(
        &self,
        _caller: &Principal,
        week: BillingWeek,
        user_id: String,
    ) -> Result<InvoiceDetail, AppError> {
        let not_found = || AppError::NotFound(format!("the invoice of {user_id} for {week}"));
        let id =
            self.db.invoice_id(week, &user_id).await.map_err(|e| internal_error("finding an invoice", e))?;
        let mut invoice = match id {
            Some(id) => self
                .db
                .invoice_detail(id)
                .await
                .map_err(|e| internal_error("reading an invoice", e))?
                .ok_or_else(not_found)?,
            // Waived whole, the passenger has no stored invoice: the panel shows the waivers.
            None => crate::waivers::waived_invoice(&self.db, &self.config, week, &user_id)
                .await?
                .ok_or_else(not_found)?,
        };
        for line in &mut invoice.lines {
            line.ended_local =
                line.ended_at.with_timezone(&self.config.time_zone).format("%a %-d %b %H:%M").to_string();
        }
        invoice.waivers = self.waivers_in_zone(week, Some(&user_id)).await?;
        invoice.waiver_request_id = uuid::Uuid::new_v4().to_string();
        invoice.time_zone = self.config.time_zone.name().to_owned();
        Ok(invoice)
    }

    async fn week_payouts(
        &self,
        _caller: &Principal,
        week: BillingWeek,
        after: String,
    ) -> Result<PayoutPage, AppError> {
        self.db
            .payout_page(week, &after, app::model::preview::DEFAULT_PAGE)
            .await
            .map_err(|e| internal_error("listing payouts", e))
    }

    async fn list_runs(&self, _caller: &Principal) -> Result<Vec<RunView>, AppError> {
        let runs = self.db.recent_runs(20).await.map_err(|e| internal_error("listing runs", e))?;
        let mut views = Vec::with_capacity(runs.len());
        for run in runs {
            views.push(
                crate::run::view::view(&self.db, run, self.config.time_zone)
                    .await
                    .map_err(|e| internal_error("reading a run", e))?,
            );
        }
        Ok(views)
    }

    async fn run(&self, _caller: &Principal, id: i64) -> Result<RunView, AppError> {
        let run = self
            .db
            .run(id)
            .await
            .map_err(|e| internal_error("reading a run", e))?
            .ok_or_else(|| AppError::NotFound(format!("run {id}")))?;
        crate::run::view::view(&self.db, run, self.config.time_zone)
            .await
            .map_err(|e| internal_error("reading a run", e))
    }

    async fn start_run(&self, caller: &Principal, week: BillingWeek) -> Result<RunView, AppError> {
        let settings = crate::run::load_settings(&self.db)
            .await
            .map_err(|e| internal_error("reading the run settings", e))?;
        let run = match self.db.start_run(week, &Actor::staff(caller), settings.canary_size).await {
            Ok(run) => run,
            Err(e @ crate::db::runs::StartError::NotApproved(_)) => {
                return Err(AppError::conflict("week", e.to_string()));
            }
            Err(crate::db::runs::StartError::Database(e)) => return Err(internal_error("starting a run", e)),
        };
        crate::run::view::view(&self.db, run, self.config.time_zone)
            .await
            .map_err(|e| internal_error("reading a run", e))
    }

    async fn control_run(
        &self,
        caller: &Principal,
        id: i64,
        action: String,
        reason: String,
    ) -> Result<RunView, AppError> {
        let run = crate::run::apply_control(&self.db, &Actor::staff(caller), id, &action, &reason).await?;
        crate::run::view::view(&self.db, run, self.config.time_zone)
            .await
            .map_err(|e| internal_error("reading a run", e))
    }

    async fn halted_runs(&self, _caller: &Principal) -> Result<Vec<HaltedRun>, AppError> {
        let runs = self.db.halted_runs().await.map_err(|e| internal_error("listing halted runs", e))?;
        Ok(runs
            .into_iter()
            .map(|r| HaltedRun { id: r.id, week: r.week, reason: r.reason.unwrap_or_default() })
            .collect())
    }

    async fn approve_week(
        &self,
        caller: &Principal,
        week: BillingWeek,
        content_hash: String,
    ) -> Result<WeekSummary, AppError> {
        let approved = crate::preview::approve_detached(
            &self.db,
            &self.config,
            Actor::staff(caller),
            week,
            content_hash,
        )
        .await
        .map_err(crate::error::Error::from)?;
        let (crate::db::weeks::Approved::Now(stored) | crate::db::weeks::Approved::Before(stored)) = approved;
        self.summary_of(stored).await
    }

    async fn search_users(&self, caller: &Principal, q: String) -> Result<Vec<UserHit>, AppError> {
        crate::customers::search(&self.db, &self.audit, caller, &q, 20).await.map_err(Into::into)
    }

    async fn customer_profile(&self, caller: &Principal, id: String) -> Result<CustomerProfile, AppError> {
        crate::customers::profile(&self.db, &self.config, &self.audit, caller, &id).await.map_err(Into::into)
    }

    async fn customer_activity(
        &self,
        caller: &Principal,
        id: String,
        section: Section,
        before: String,
    ) -> Result<ActivityPage, AppError> {
        crate::customers::activity(&self.db, &self.config, &self.audit, caller, &id, section, Some(&before))
            .await
            .map_err(Into::into)
    }

    async fn invoice_record(&self, caller: &Principal, id: i64) -> Result<InvoiceRecord, AppError> {
        crate::customers::invoice(&self.db, &self.config, &self.audit, caller, id).await.map_err(Into::into)
    }

    async fn invoice_refunds(
        &self,
        _caller: &Principal,
        invoice_id: i64,
    ) -> Result<Vec<RefundView>, AppError> {
        let rows =
            self.db.refunds_of_invoice(invoice_id).await.map_err(|e| internal_error("reading refunds", e))?;
        let mut refunds: Vec<RefundView> = rows.iter().map(crate::refunds::view).collect::<Result<_, _>>()?;
        // In the business time zone, as the invoice page's other moments.
        for refund in &mut refunds {
            crate::customers::refund_in_zone(refund, self.config.time_zone);
        }
        Ok(refunds)
    }

    async fn request_refund(
        &self,
        caller: &Principal,
        invoice_id: i64,
        refund: NewRefund,
    ) -> Result<RefundAnswer, AppError> {
        crate::refunds::request(&self.db, &self.config, self.provider(), caller, invoice_id, refund)
            .await
            .map_err(Into::into)
    }

    async fn decide_refund(
        &self,
        caller: &Principal,
        refund_id: i64,
        approve: bool,
        note: String,
    ) -> Result<RefundView, AppError> {
        crate::refunds::decide(&self.db, self.provider(), caller, refund_id, approve, &note)
            .await
            .map_err(Into::into)
    }

    async fn report(&self, _caller: &Principal, from: String, to: String) -> Result<Report, AppError> {
        let from = if from.trim().is_empty() {
            BillingWeek::containing(Utc::now(), self.config.time_zone).previous().to_string()
        } else {
            from
        };
        let to = if to.trim().is_empty() { from.clone() } else { to };
        crate::reports::report(&self.db, self.config.currency, &from, &to).await.map_err(Into::into)
    }

    async fn latest_reconciliation(
        &self,
        _caller: &Principal,
        week: String,
    ) -> Result<(String, Option<Reconciliation>), AppError> {
        let week = self.week_or_last(&week)?;
        Ok((week.clone(), crate::reconcile::latest(&self.db, &week).await?))
    }

    async fn run_reconciliation(&self, caller: &Principal, week: String) -> Result<Reconciliation, AppError> {
        let week = self.week_or_last(&week)?;
        let client = self.required_provider()?;
        crate::reconcile::run(&self.db, client, self.config.currency, &week, &caller.staff.email)
            .await
            .map_err(Into::into)
    }

    async fn approve_repair(
        &self,
        caller: &Principal,
        week: String,
        payment_intents: Vec<String>,
    ) -> Result<Reconciliation, AppError> {
        let week = self.week_or_last(&week)?;
        crate::reconcile::repair(&self.db, self.provider(), &Actor::staff(caller), &week, &payment_intents)
            .await
            .map_err(Into::into)
    }

    async fn acknowledge_reconciliation(
        &self,
        caller: &Principal,
        week: String,
    ) -> Result<Reconciliation, AppError> {
        let week = self.week_or_last(&week)?;
        crate::reconcile::acknowledge(&self.db, caller, &week).await.map_err(Into::into)
    }

    async fn open_mismatches(&self, _caller: &Principal) -> Result<Vec<OpenMismatch>, AppError> {
        let open =
            self.db.open_mismatches().await.map_err(|e| internal_error("reading reconciliations", e))?;
        Ok(open.into_iter().map(|(id, week, unmatched)| OpenMismatch { id, week, unmatched }).collect())
    }

    async fn alerts_page(&self, caller: &Principal, messages: String) -> Result<AlertsPage, AppError> {
        crate::alerts::page(&self.db, &self.config, caller, &messages).await.map_err(Into::into)
    }

    async fn unresolved_alerts(&self, _caller: &Principal) -> Result<Vec<AlertView>, AppError> {
        self.db.alerts(true, 5).await.map_err(|e| internal_error("reading alerts", e))
    }

    async fn settle_alert(&self, caller: &Principal, id: i64, resolve: bool) -> Result<AlertView, AppError> {
        crate::alerts::settle(&self.db, &Actor::staff(caller), id, resolve).await.map_err(Into::into)
    }

    async fn retry_payout(
        &self,
        caller: &Principal,
        run_id: i64,
        payout_id: i64,
    ) -> Result<RunView, AppError> {
        crate::run::payouts::retry(&self.db, &Actor::staff(caller), run_id, payout_id).await?;
        self.run(caller, run_id).await
    }

    async fn look_up_again(
        &self,
        caller: &Principal,
        run_id: i64,
        kind: String,
        id: i64,
    ) -> Result<RunView, AppError> {
        crate::run::held::look_again(&self.db, &Actor::staff(caller), run_id, &kind, id).await?;
        self.run(caller, run_id).await
    }

    async fn mark_not_made(
        &self,
        caller: &Principal,
        run_id: i64,
        kind: String,
        id: i64,
    ) -> Result<RunView, AppError> {
        crate::run::held::mark_not_made(&self.db, &Actor::staff(caller), run_id, &kind, id).await?;
        self.run(caller, run_id).await
    }

    async fn run_settings(&self, _caller: &Principal) -> Result<app::model::run::RunSettings, AppError> {
        crate::run::settings::get(&self.db).await.map_err(Into::into)
    }

    async fn save_run_settings(
        &self,
        caller: &Principal,
        settings: app::model::run::RunSettings,
    ) -> Result<app::model::run::RunSettings, AppError> {
        crate::run::settings::save(&self.db, &Actor::staff(caller), settings).await.map_err(Into::into)
    }

    async fn save_alert_settings(
        &self,
        caller: &Principal,
        settings: AlertSettings,
    ) -> Result<AlertSettings, AppError> {
        crate::alerts::save_settings(&self.db, &Actor::staff(caller), settings).await.map_err(Into::into)
    }

    async fn send_test_alert(&self, caller: &Principal) -> Result<AlertView, AppError> {
        crate::alerts::send_test(&self.db, &Actor::staff(caller)).await.map_err(Into::into)
    }

    async fn refunds_awaiting(&self, _caller: &Principal) -> Result<Vec<RefundView>, AppError> {
        Ok(crate::refunds::awaiting(&self.db).await?)
    }

    async fn pricing_versions(&self, caller: &Principal) -> Result<PolicyVersions, AppError> {
        Ok(crate::fee_policies::list(&self.db, &self.config, caller).await?)
    }

    async fn disputes(&self, caller: &Principal, status: String) -> Result<DisputesPage, AppError> {
        Ok(crate::disputes::page(&self.db, &self.config, caller, &status).await?)
    }

    async fn send_dispute_evidence(
        &self,
        caller: &Principal,
        id: i64,
        request: EvidenceRequest,
    ) -> Result<DisputeView, AppError> {
        Ok(crate::disputes::send_evidence(&self.db, &self.config, self.provider(), caller, id, request)
            .await?)
    }

    async fn propose_pricing(
        &self,
        caller: &Principal,
        version: NewPolicyVersion,
    ) -> Result<PolicyVersion, AppError> {
        Ok(crate::fee_policies::propose(&self.db, &self.config, caller, &version).await?)
    }

    async fn decide_pricing(
        &self,
        caller: &Principal,
        id: i64,
        approve: bool,
    ) -> Result<PolicyVersion, AppError> {
        Ok(crate::fee_policies::decide(&self.db, &self.config, caller, id, approve).await?)
    }

    async fn pricing_what_if(
        &self,
        caller: &Principal,
        id: i64,
        week: BillingWeek,
    ) -> Result<WhatIf, AppError> {
        Ok(crate::fee_policies::what_if(&self.db, &self.config, caller, id, week).await?)
    }

    async fn request_waiver(
        &self,
        caller: &Principal,
        week: BillingWeek,
        waiver: NewWaiver,
    ) -> Result<WaiverAnswer, AppError> {
        Ok(crate::waivers::request(&self.db, (&self.config, &self.drafts), caller, week, waiver).await?)
    }

    async fn decide_waiver(
        &self,
        caller: &Principal,
        waiver_id: i64,
        approve: bool,
        note: String,
    ) -> Result<WaiverView, AppError> {
        Ok(crate::waivers::decide(&self.db, (&self.config, &self.drafts), caller, waiver_id, approve, &note)
            .await?)
    }

    async fn withdraw_waiver(
        &self,
        caller: &Principal,
        waiver_id: i64,
        note: String,
    ) -> Result<WaiverView, AppError> {
        Ok(crate::waivers::withdraw(&self.db, (&self.config, &self.drafts), caller, waiver_id, &note).await?)
    }
}

impl AppState {
    /// The waivers of `week` (one passenger's when given), their moments in the business time
    /// zone as the dashboard writes every moment.
    async fn waivers_in_zone(
        &self,
        week: BillingWeek,
        user_id: Option<&str>,
    ) -> Result<Vec<WaiverView>, AppError> {
        let mut waivers = crate::waivers::list(&self.db, &self.config, week, user_id).await?;
        for waiver in &mut waivers {
            crate::customers::in_zone(&mut waiver.requested_at, self.config.time_zone);
            if let Some(at) = waiver.decided_at.as_mut() {
                crate::customers::in_zone(at, self.config.time_zone);
            }
        }
        Ok(waivers)
    }

    /// `week`, checked, or the last complete week when it is empty.
    fn week_or_last(&self, week: &str) -> Result<String, AppError> {
        if week.trim().is_empty() {
            return Ok(BillingWeek::containing(Utc::now(), self.config.time_zone).previous().to_string());
        }
        Ok(BillingWeek::parse(week.trim()).map_err(|m| AppError::invalid("week", m))?.to_string())
    }

    /// The payment provider, when this process has one (`billing serve` always does).
    fn provider(&self) -> Option<&crate::psp::stripe::StripeClient> {
        self.provider.as_ref()
    }

    /// The payment provider, for what cannot be done without it.
    pub fn required_provider(&self) -> Result<&crate::psp::stripe::StripeClient, AppError> {
        self.provider().ok_or_else(|| AppError::Internal("this process has no payment provider".into()))
    }

    /// The page's head for a stored week: its days in the business time zone, the thresholds.
    async fn summary_of(&self, stored: crate::db::weeks::StoredWeek) -> Result<WeekSummary, AppError> {
        let tz = self.config.time_zone;
        let week = stored.week;
        let thresholds = crate::preview::thresholds(&self.db).await.map_err(crate::error::Error::from)?;
        let now = Utc::now();
        let gaps = self
            .gaps
            .get(&self.db, &self.config, &stored)
            .await
            .map_err(|e| internal_error("finding who cannot be charged or paid", e))?;
        Ok(WeekSummary {
            week,
            currency: stored.currency.code().to_string(),
            status: stored.status,
            first_day: week.monday().format("%a %-d %b %Y").to_string(),
            last_day: (week.monday() + chrono::Duration::days(6)).format("%a %-d %b %Y").to_string(),
            time_zone: tz.name().to_string(),
            ended: week.end(tz) <= now,
            totals: stored.totals,
            payouts: stored.payouts,
            late_lines: stored.late_lines,
            flagged: stored.flagged,
            no_payment_method: gaps.no_payment_method as u64,
            no_payout_account: gaps.no_payout_account as u64,
            unpayable: gaps.passengers,
            unpaid_drivers: gaps.drivers,
            content_hash: stored.content_hash,
            fee_policy_version: stored.fee_policy_version.unwrap_or(app::model::pricing::BUILT_IN_VERSION),
            computed_at: crate::customers::zoned(stored.computed_at, self.config.time_zone),
            approved_at: stored.approved_at.map(|at| crate::customers::zoned(at, self.config.time_zone)),
            approved_by: stored.approved_by,
            anomalies: stored.anomalies,
            thresholds,
            next: Some(week.next()).filter(|next| next.start(tz) <= now),
            run_id: self
                .db
                .run_of_week(&week.to_string())
                .await
                .map_err(|e| internal_error("finding the week's run", e))?
                .map(|run| run.id),
            waivers: self.waivers_in_zone(week, None).await?,
        })
    }
}

fn token_view(t: crate::db::tokens::TokenInfo) -> AccessToken {
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    AccessToken {
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        created_at: time(t.created_at),
        expires_at: t.expires_at.map(time),
        revoked_at: t.revoked_at.map(time),
    }
}
