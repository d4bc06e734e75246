//! Waivers of a draft week's lines: asking for one from the week's invoice panel, deciding one
//! that waits for approval, withdrawing one.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::waiver::{WaiverAnswer, WaiverView};

/// What the panel's "what to waive" choice says: `invoice`, or `ride_share:<ride>` /
/// `no_show_fee:<ride>`, as `(part, ride_id)`.
pub fn split_target(target: &str) -> (String, Option<String>) {
    match target.trim().split_once(':') {
        Some((part, ride)) => (part.to_owned(), Some(ride.to_owned())),
        None => (target.trim().to_owned(), None),
    }
}

/// The value of the panel's choice for a line (`ride_share:<ride>`), or the whole invoice.
pub fn target_of(part: crate::model::waiver::WaiverPart, ride_id: Option<&str>) -> String {
    match ride_id {
        Some(ride) => format!("{}:{ride}", part.as_str()),
        None => part.as_str().to_owned(),
    }
}

/// Waives a line of `user_id`'s invoice of `week` (`target` as [`split_target`] reads it) or the
/// whole invoice, with a reason and a note, once per `request_id`.
#[server(prefix = "/api/fn", endpoint = "waivers/create")]
pub async fn create_waiver(
    week: String,
    user_id: String,
    target: String,
    reason: String,
    note: String,
    request_id: String,
) -> Result<WaiverAnswer, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<CreateWaiver as ServerFn>::PATH)?;
            let week =
                crate::model::week::BillingWeek::parse(&week).map_err(|m| AppError::invalid("week", m))?;
            let (part, ride_id) = split_target(&target);
            let new = crate::model::waiver::NewWaiver {
                user_id,
                ride_id,
                part,
                reason,
                note: Some(note),
                request_id,
            };
            super::backend()?.request_waiver(&caller, week, new).await
        }
        .await,
    )
}

/// Approves (`decision` = `approve`) or rejects (`reject`, with a note) a waiver waiting for
/// approval; never one's own.
#[server(prefix = "/api/fn", endpoint = "waivers/decide")]
pub async fn decide_waiver(waiver_id: i64, decision: String, note: String) -> Result<WaiverView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<DecideWaiver as ServerFn>::PATH)?;
            let approve = match decision.as_str() {
                "approve" => true,
                "reject" => false,
                other => {
                    return Err(AppError::invalid("decision", format!("{other:?}: use approve or reject")))
                }
            };
            super::backend()?.decide_waiver(&caller, waiver_id, approve, note).await
        }
        .await,
    )
}

/// Withdraws a waiver of a draft week: its line is charged again.
#[server(prefix = "/api/fn", endpoint = "waivers/withdraw")]
pub async fn withdraw_waiver(waiver_id: i64, note: String) -> Result<WaiverView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<WithdrawWaiver as ServerFn>::PATH)?;
            super::backend()?.withdraw_waiver(&caller, waiver_id, note).await
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::waiver::WaiverPart;

    #[test]
    fn a_target_names_its_part_and_ride() {
        for (part, ride) in [
            (WaiverPart::RideShare, Some("r:1")),
            (WaiverPart::NoShowFee, Some("r2")),
            (WaiverPart::Invoice, None),
        ] {
            let (p, r) = split_target(&target_of(part, ride));
            assert_eq!((p.as_str(), r.as_deref()), (part.as_str(), ride));
        }
        assert_eq!(split_target(""), (String::new(), None));
    }
}
