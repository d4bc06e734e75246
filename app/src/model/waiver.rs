//! Waivers: a line of a draft week's invoice (a ride share, or a no-show fee) or a whole invoice
//! taken off before the week is approved, with why, by whom, and where the waiver stands.

use serde::{Deserialize, Serialize};

use super::money::Money;
use super::preview::InvoiceLineView;
use super::pricing::Attendance;

/// What a waiver takes off a passenger's invoice of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaiverPart {
    /// The passenger's share of a ride they rode.
    RideShare,
    /// The no-show fee of a ride they booked and did not come to.
    NoShowFee,
    /// Every line of the passenger's invoice of the week.
    Invoice,
}

impl WaiverPart {
    pub const ALL: [WaiverPart; 3] = [WaiverPart::RideShare, WaiverPart::NoShowFee, WaiverPart::Invoice];

    pub fn as_str(self) -> &'static str {
        match self {
            WaiverPart::RideShare => "ride_share",
            WaiverPart::NoShowFee => "no_show_fee",
            WaiverPart::Invoice => "invoice",
        }
    }

    /// Parses a part; the error lists the ones that exist.
    pub fn parse(value: &str) -> Result<WaiverPart, String> {
        WaiverPart::ALL
            .into_iter()
            .find(|p| p.as_str() == value.trim())
            .ok_or_else(|| format!("{value:?} is not a part: use ride_share, no_show_fee or invoice"))
    }

    /// The part that waives a seat that ended as `attendance` (`None`: a cancelled seat, which
    /// costs nothing).
    pub fn of_seat(attendance: Attendance) -> Option<WaiverPart> {
        match attendance {
            Attendance::Completed => Some(WaiverPart::RideShare),
            Attendance::NoShow => Some(WaiverPart::NoShowFee),
            Attendance::Cancelled => None,
        }
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            WaiverPart::RideShare => "ride share",
            WaiverPart::NoShowFee => "no-show fee",
            WaiverPart::Invoice => "whole invoice",
        }
    }
}

/// Why a line or an invoice is waived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaiverReason {
    /// The driver never came.
    DriverNoShow,
    ServiceIssue,
    /// The same trip was recorded twice.
    DuplicateRide,
    Goodwill,
    /// Anything else; the note says what.
    Other,
}

impl WaiverReason {
    pub const ALL: [WaiverReason; 5] = [
        WaiverReason::DriverNoShow,
        WaiverReason::ServiceIssue,
        WaiverReason::DuplicateRide,
        WaiverReason::Goodwill,
        WaiverReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WaiverReason::DriverNoShow => "driver_no_show",
            WaiverReason::ServiceIssue => "service_issue",
            WaiverReason::DuplicateRide => "duplicate_ride",
            WaiverReason::Goodwill => "goodwill",
            WaiverReason::Other => "other",
        }
    }

    /// Parses a reason; the error lists the ones that exist.
    pub fn parse(value: &str) -> Result<WaiverReason, String> {
        WaiverReason::ALL.into_iter().find(|r| r.as_str() == value.trim()).ok_or_else(|| {
            format!(
                "{value:?} is not a reason: use one of driver_no_show, service_issue, duplicate_ride, goodwill, other"
            )
        })
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            WaiverReason::DriverNoShow => "The driver did not come",
            WaiverReason::ServiceIssue => "Service issue",
            WaiverReason::DuplicateRide => "Ride recorded twice",
            WaiverReason::Goodwill => "Goodwill",
            WaiverReason::Other => "Other (say what in the note)",
        }
    }
}

/// Where a waiver stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaiverState {
    /// Support's waiver above the limit: waits for a finance or admin member other than the
    /// requester. Changes nothing until approved.
    AwaitingApproval,
    /// Taken off the draft: the line (or invoice) is not charged.
    Applied,
    /// Turned down by an approver; nothing was taken off.
    Rejected,
    /// Taken back before the week was approved; the line is charged again.
    Withdrawn,
}

impl WaiverState {
    pub fn as_str(self) -> &'static str {
        match self {
            WaiverState::AwaitingApproval => "awaiting_approval",
            WaiverState::Applied => "applied",
            WaiverState::Rejected => "rejected",
            WaiverState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(value: &str) -> Option<WaiverState> {
        [WaiverState::AwaitingApproval, WaiverState::Applied, WaiverState::Rejected, WaiverState::Withdrawn]
            .into_iter()
            .find(|s| s.as_str() == value)
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            WaiverState::AwaitingApproval => "awaiting approval",
            WaiverState::Applied => "waived",
            WaiverState::Rejected => "rejected",
            WaiverState::Withdrawn => "withdrawn",
        }
    }

    /// Applied or waiting: what holds its line (one such waiver per line or invoice).
    pub fn open(self) -> bool {
        matches!(self, WaiverState::AwaitingApproval | WaiverState::Applied)
    }
}

/// A waiver as the pages and the API show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiverView {
    pub id: i64,
    pub request_id: String,
    pub week: String,
    pub user_id: String,
    /// The ride of the line waived; `None` for a whole invoice.
    pub ride_id: Option<String>,
    pub part: WaiverPart,
    /// What it took off when it was asked for (the line, or the invoice's total then).
    pub amount: Money,
    pub reason: WaiverReason,
    pub note: String,
    pub state: WaiverState,
    pub requested_by: String,
    /// RFC 3339.
    pub requested_at: String,
    /// Who approved, rejected or withdrew it, and when.
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_note: Option<String>,
    /// The line waived, with its ride (driver, times, distance) and `amount`: what the pages
    /// strike through. `None` for a whole invoice.
    #[serde(default)]
    pub line: Option<InvoiceLineView>,
}

/// A waiver request from the invoice panel or the API. `part` and `reason` are checked by the
/// server, which names the field it refuses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWaiver {
    pub user_id: String,
    /// The line's ride; `None` (or empty) with `part` = `invoice`.
    #[serde(default)]
    pub ride_id: Option<String>,
    /// `ride_share`, `no_show_fee` or `invoice`.
    pub part: String,
    pub reason: String,
    #[serde(default)]
    pub note: Option<String>,
    /// Made when the form opens; the same id twice is one waiver.
    pub request_id: String,
}

/// What a waiver request came to: applied now (201), waiting for approval (202), or the waiver
/// this request id made before (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiverAnswer {
    /// `applied`, `awaiting_approval` or `existing`.
    pub outcome: String,
    pub waiver: WaiverView,
}

impl WaiverAnswer {
    /// The HTTP status the outcome is answered with.
    pub fn status(&self) -> u16 {
        match self.outcome.as_str() {
            "applied" => 201,
            "awaiting_approval" => 202,
            _ => 200,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refusals_list_the_choices() {
        for part in WaiverPart::ALL {
            assert_eq!(WaiverPart::parse(part.as_str()), Ok(part));
        }
        for reason in WaiverReason::ALL {
            assert_eq!(WaiverReason::parse(reason.as_str()), Ok(reason));
        }
        assert!(WaiverReason::parse("because").unwrap_err().contains("driver_no_show"));
        assert!(WaiverPart::parse("seat").unwrap_err().contains("no_show_fee"));
        assert_eq!(WaiverPart::of_seat(Attendance::NoShow), Some(WaiverPart::NoShowFee));
        assert_eq!(WaiverPart::of_seat(Attendance::Cancelled), None);
        assert!(WaiverState::Applied.open() && !WaiverState::Rejected.open());
    }
}
