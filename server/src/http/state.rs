//! What every request handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use chrono::{SecondsFormat, Utc};
use leptos::config::LeptosOptions;

use crate::auth::throttle::LoginThrottle;
use crate::config::Config;
use crate::db::audit::Actor;
use crate::db::Db;
use app::api::{AppError, Backend};
use app::model::audit::{AuditPage, AuditQuery};
use app::model::staff::{AccessToken, NewAccessToken, Principal, Role, Staff};
use app::model::system::Overview;

/// Shared by every handler, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub leptos: LeptosOptions,
    /// Sign-in attempt counters of this process.
    pub login_throttle: LoginThrottle,
    /// The configured public origin (`PUBLIC_URL`), if any.
    pub public_origin: Option<Arc<str>>,
}

impl AppState {
    /// The state for a server on `db` with `config`.
    pub fn new(db: Db, config: Config, leptos: LeptosOptions) -> AppState {
        AppState {
            db,
            public_origin: config.public_origin().map(Arc::from),
            config: Arc::new(config),
            leptos,
            login_throttle: LoginThrottle::default(),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Logs `error` under a fresh reference and returns an error that shows only the reference, so
/// a person can quote it and nothing internal (SQL, paths) reaches the browser.
pub fn internal_error(context: &str, error: impl std::fmt::Display) -> AppError {
    let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    tracing::error!(%reference, %error, "{context} failed");
    AppError::Internal(format!("{context} failed (reference {reference})"))
}

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
        })
    }

    async fn audit(&self, _caller: &Principal, query: AuditQuery) -> Result<AuditPage, AppError> {
        self.db.audit_page(&query).await
    }

    async fn list_staff(&self, _caller: &Principal) -> Result<Vec<Staff>, AppError> {
        self.db.list_staff().await.map_err(|e| internal_error("listing staff", e))
    }

    async fn add_staff(
        &self,
        caller: &Principal,
        email: String,
        role: Role,
        password: String,
    ) -> Result<Staff, AppError> {
        crate::staff::add(&self.db, &Actor::staff(caller), &email, role, password).await
    }

    async fn disable_staff(&self, caller: &Principal, staff_id: i64) -> Result<Staff, AppError> {
        crate::staff::disable(&self.db, &Actor::staff(caller), staff_id).await
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
