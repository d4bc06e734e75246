//! A week's (or a range's) report, as JSON, CSV or XLSX.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;

use super::{ApiError, Caller, ErrorBody};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportQuery {
    /// `json` (the default), `csv` or `xlsx`.
    #[param(pattern = "^(json|csv|xlsx)$")]
    format: Option<String>,
    /// The last week of a range starting with the path's week.
    to: Option<String>,
}

/// The week's (or the range week..to's) report from the ledger as JSON, or its invoices as CSV (RFC 4180, streamed) or XLSX (summary and detail sheets); finance and admin; audited
#[utoipa::path(get, path = "/api/v1/reports/{week}", tag = "reports",
    params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$"),
        ReportQuery),
    responses((status = 200, description = "{from, to, currency, figures: {invoices, invoiced, charges, charged, outstanding, uncollectible_count, uncollectible, refunds, refunded, net, platform_fees, transfers, driver_payouts, payable, provider_clearing, provider_fees, disputes, disputed, dispute_fees, disputes_won_count, disputes_won, disputes_lost_count, disputes_lost, disputes_by_status: [[status, count]]}, previous_from, previous_to, previous, refunds_by_reason, history}; or text/csv; or an XLSX file"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 422, description = "A refused week, range or format, naming the field", body = ErrorBody)))]
pub(super) async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ReportQuery>,
) -> Result<Response, ApiError> {
    use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
    let principal = caller.may(Action::ExportReports)?;
    let to = query.to.clone().unwrap_or_else(|| week.clone());
    let weeks = crate::reports::range(&week, &to)?;
    let (from, to) = (weeks[0].to_string(), weeks.last().expect("one week").to_string());
    let format = query.format.as_deref().unwrap_or("json");
    if !["json", "csv", "xlsx"].contains(&format) {
        return Err(AppError::invalid("format", format!("{format:?}: use json, csv or xlsx")).into());
    }
    let mut entry = crate::db::audit::NewAuditEntry::new(
        &Actor::staff(principal),
        "report.export",
        "report",
        format!("{from}..{to}"),
    );
    entry.detail = Some(format.to_owned());
    state.db.audit(&entry).await.map_err(|e| crate::http::state::internal_error("auditing an export", e))?;
    let name = if from == to {
        format!("carpool-billing-{from}")
    } else {
        format!("carpool-billing-{from}-to-{to}")
    };
    match format {
        "csv" => {
            let stream = crate::reports::csv_stream(state.db.clone(), from, to, crate::reports::EXPORT_PAGE)
                .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
            Ok((
                [
                    (CONTENT_TYPE, "text/csv; charset=utf-8; header=present".to_owned()),
                    (CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
                ],
                axum::body::Body::from_stream(stream),
            )
                .into_response())
        }
        "xlsx" => {
            let report = crate::reports::report(&state.db, state.config.currency, &from, &to).await?;
            let file = tempfile::NamedTempFile::new()
                .map_err(|e| crate::http::state::internal_error("writing XLSX", e))?;
            crate::reports::write_xlsx(&state.db, &report, crate::reports::EXPORT_PAGE, file.path()).await?;
            // The open file outlives its name: the stream reads it after the name is removed.
            let std_file = std::fs::File::open(file.path())
                .map_err(|e| crate::http::state::internal_error("reading XLSX", e))?;
            drop(file);
            let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(std_file));
            Ok((
                [
                    (
                        CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
                    ),
                    (CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.xlsx\"")),
                ],
                axum::body::Body::from_stream(stream),
            )
                .into_response())
        }
        _ => {
            Ok(Json(crate::reports::report(&state.db, state.config.currency, &from, &to).await?)
                .into_response())
        }
    }
}
