//! `POST /login` and `POST /logout`: plain form posts answered with redirects, so signing in
//! works before (and without) the WebAssembly.

use axum::extract::{FromRequest, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::AppState;
use crate::auth::session::{LOGIN_AT, SEEN_AT, STAFF_ID};
use crate::auth::throttle::Throttled;
use crate::db::audit::{Actor, NewAuditEntry};
use app::model::staff::{parse_email, Principal};

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: `next` resolved against this site's own origin, and followed
/// only when it is a plain path here (not the sign-in page again). Anything else goes to `/`:
/// `//host` and `/\host` (which browsers read as another host), control characters (browsers
/// drop a tab or a newline, so `/\t/host` becomes `//host`), backslashes, encoded forms that do
/// not start with `/`, schemes (`https:x`, `javascript:`).
fn safe_next(next: &str) -> String {
    const HOME: &str = "/";
    let plain = next.starts_with('/')
        && !next.starts_with("//")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if !plain {
        return HOME.into();
    }
    let base = url::Url::parse("https://billing.invalid/").expect("a valid base");
    match base.join(next) {
        // Resolved, the path must still be a plain one: dot segments can make `//host` of it.
        Ok(url)
            if url.origin() == base.origin()
                && !url.path().starts_with("//")
                && !url.path().starts_with("/login") =>
        {
            let mut path = url.path().to_owned();
            if let Some(query) = url.query() {
                path.push('?');
                path.push_str(query);
            }
            path
        }
        _ => HOME.into(),
    }
}

fn back_to_login(error: &str, email: &str, next: &str) -> Response {
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    Redirect::to(&format!("/login?error={error}&email={}&next={}", encode(email), encode(next)))
        .into_response()
}

/// Signs a staff member in: throttled per account and per address, the password checked in
/// constant work whether or not the account exists, the session id renewed, the outcome audited.
pub async fn login(State(state): State<AppState>, session: Session, request: Request) -> Response {
    let address = super::authenticate::client_ip(&request, &state.config.trusted_proxies);
    let source = address.map(|a| a.to_string()).unwrap_or_else(|| "unknown".into());
    let Form(form) = match Form::<LoginForm>::from_request(request, &state).await {
        Ok(form) => form,
        Err(rejection) => {
            let message = format!("the sign-in form could not be read: {}", rejection.body_text());
            return super::authenticate::json_error(&app::api::AppError::invalid("form", &message), &message);
        }
    };
    let next = safe_next(form.next.trim());
    let Ok(email) = parse_email(&form.email) else {
        return back_to_login(
            if form.email.trim().is_empty() { "missing" } else { "invalid" },
            form.email.trim(),
            &next,
        );
    };
    if form.password.is_empty() {
        return back_to_login("missing", &email, &next);
    }
    let anonymous = Actor { kind: "anonymous", name: email.clone(), staff_id: None, source: source.clone() };

    let allowed = match state.db.login_allowed(&email, address).await {
        Ok(allowed) => allowed,
        Err(e) => {
            crate::http::state::internal_error("checking sign-in attempts", e);
            return back_to_login("unavailable", &email, &next);
        }
    };
    if let Err(throttled) = allowed {
        let mut entry = NewAuditEntry::new(&anonymous, "auth.login_throttled", "staff_email", &email);
        entry.detail = Some(format!("{throttled:?}").to_lowercase());
        audit_quietly(&state, &entry).await;
        let code = match throttled {
            Throttled::Account => "throttled_account",
            Throttled::Address => "throttled_address",
        };
        return back_to_login(code, &email, &next);
    }

    let credentials = match state.db.staff_credentials(&email).await {
        Ok(c) => c,
        Err(e) => {
            crate::http::state::internal_error("signing in", e);
            return back_to_login("unavailable", &email, &next);
        }
    };
    let matches =
        crate::auth::password::verify(form.password, credentials.as_ref().map(|c| c.password_hash.clone()))
            .await;
    let staff = credentials.map(|c| c.staff).filter(|s| matches && s.disabled_at.is_none());
    let Some(staff) = staff else {
        let entry = NewAuditEntry::new(&anonymous, "auth.login_failed", "staff_email", &email);
        audit_quietly(&state, &entry).await;
        if let Err(e) = state.db.login_failed(&email).await {
            crate::http::state::internal_error("counting a failed sign-in", e);
        }
        return back_to_login("invalid", &email, &next);
    };
    if let Err(e) = state.db.login_succeeded(&email).await {
        crate::http::state::internal_error("clearing failed sign-ins", e);
    }

    let now = Utc::now().timestamp();
    let stored = async {
        session.cycle_id().await?;
        session.insert(STAFF_ID, staff.id).await?;
        session.insert(LOGIN_AT, now).await?;
        session.insert(SEEN_AT, now).await
    };
    if let Err(e) = stored.await {
        crate::http::state::internal_error("starting a session", e);
        return back_to_login("unavailable", &email, &next);
    }
    let actor = Actor { kind: "staff", name: staff.email.clone(), staff_id: Some(staff.id), source };
    let mut entry = NewAuditEntry::new(&actor, "auth.login", "staff", staff.id);
    entry.after = Some(json!({ "role": staff.role }));
    audit_quietly(&state, &entry).await;
    Redirect::to(&next).into_response()
}

/// Signs out: the session is deleted from the database (a copy of the cookie is worthless
/// afterwards) and the cookie cleared.
pub async fn logout(State(state): State<AppState>, session: Session, request: Request) -> Response {
    if let Some(principal) = request.extensions().get::<Principal>() {
        let entry = NewAuditEntry::new(&Actor::staff(principal), "auth.logout", "staff", principal.staff.id);
        audit_quietly(&state, &entry).await;
    }
    if let Err(e) = session.flush().await {
        crate::http::state::internal_error("ending a session", e);
    }
    Redirect::to("/login").into_response()
}

/// Writes an audit entry about an event that changes nothing else; a failure is logged.
async fn audit_quietly(state: &AppState, entry: &NewAuditEntry) {
    if let Err(e) = state.db.audit(entry).await {
        tracing::error!(error = %e, action = entry.action, "could not write an audit entry");
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_a_plain_path_of_this_site_is_followed() {
        for (next, to) in [
            ("/users/p12", "/users/p12"),
            ("/weeks/2026-W48?tab=preview", "/weeks/2026-W48?tab=preview"),
            ("/runs/../audit", "/audit"),
            ("/", "/"),
        ] {
            assert_eq!(safe_next(next), to, "{next:?}");
        }
        for bypass in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r//evil.example",
            "\\\\evil.example",
            "%2F%2Fevil.example",
            "/%2F%2Fevil.example/../..//evil.example",
            "https:evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            " //evil.example",
            "/login?next=//evil.example",
            "",
            "users",
        ] {
            let to = safe_next(bypass);
            assert!(to == "/" || (to.starts_with('/') && !to.starts_with("//")), "{bypass:?} -> {to:?}");
            assert!(!to.contains("evil.example") || to.starts_with("/%2F"), "{bypass:?} -> {to:?}");
        }
        assert_eq!(safe_next("//evil.example"), "/");
        assert_eq!(safe_next("/\t/evil.example"), "/");
        assert_eq!(safe_next("javascript:alert(1)"), "/");
    }
}
