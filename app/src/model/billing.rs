//! Rides, invoices and payouts: what the week's preview shows and the run charges.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::money::Money;
use super::pricing::Attendance;
use super::week::BillingWeek;

/// One passenger's seat on a ride.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub passenger_id: String,
    pub attendance: Attendance,
}

/// A trip as the carpool app reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ride {
    /// The carpool app's id for the trip; a ride is stored and billed once per id.
    pub ride_id: String,
    pub driver_id: String,
    /// Distance driven, in metres.
    pub distance_m: i64,
    pub started_at: DateTime<Utc>,
    /// The ride belongs to the billing week in which it ended.
    pub ended_at: DateTime<Utc>,
    pub seats: Vec<Seat>,
}

/// One ride on a passenger's invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub ride_id: String,
    pub amount: Money,
    pub attendance: Attendance,
    pub ended_at: DateTime<Utc>,
    /// The ride ended in an earlier week that was already frozen: billed now, marked late.
    pub late: bool,
}

/// What one passenger is charged for a week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub user_id: String,
    pub week: BillingWeek,
    pub lines: Vec<InvoiceLine>,
    /// The sum of the lines.
    pub total: Money,
}

/// One ride on a driver's payout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutLine {
    pub ride_id: String,
    /// What the ride's passengers paid.
    pub gross: Money,
    /// The platform's fee on it.
    pub fee: Money,
    /// `gross - fee`: the driver's part.
    pub net: Money,
    pub late: bool,
}

/// What one driver is paid for a week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    pub driver_id: String,
    pub week: BillingWeek,
    pub lines: Vec<PayoutLine>,
    /// The sum of the lines' `net`.
    pub total: Money,
}

/// The week's totals: `fees + payouts == charged`, `charged` is the sum of the invoices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekTotals {
    pub invoices: u64,
    pub charged: Money,
    pub fees: Money,
    pub payouts: Money,
}
