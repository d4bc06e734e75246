//! The planner behind [`super::plan::plan_week`], for a week of any size: rides are priced one
//! at a time as they are read, and the week is kept compactly. Each id (ride, passenger,
//! driver) is stored once, end to end in one string; a line is a few integers naming them.
//! At a million passengers (4.2 million rides) the preview's process peaks at about 650 MiB,
//! where invoices and payouts of owned strings took about 3 GB.

use std::hash::BuildHasher;
use std::ops::Range;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;

use super::plan::{invoice_hash_of, payout_hash_of, validate_ride, week_hash_of, Digest, PlanError};
use super::pricing::price_trip;
use app::model::billing::{Invoice, InvoiceLine, Payout, PayoutLine, Ride, WeekTotals};
use app::model::money::{BillingCurrency, Money};
use app::model::pricing::{Attendance, FeePolicy};
use app::model::week::BillingWeek;

/// Strings stored end to end in one buffer, each named by its index.
#[derive(Clone, Debug, Default)]
struct Arena {
    text: String,
    ends: Vec<usize>,
}

impl Arena {
    fn push(&mut self, s: &str) -> Result<u32, PlanError> {
        let index = u32::try_from(self.ends.len()).map_err(|_| PlanError::TooLarge)?;
        self.text.push_str(s);
        self.ends.push(self.text.len());
        Ok(index)
    }

    fn get(&self, index: u32) -> &str {
        let i = index as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// An [`Arena`] of distinct strings, the index of one already stored found by its hash.
#[derive(Default)]
struct Interner {
    names: Arena,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl Interner {
    fn intern(&mut self, s: &str) -> Result<u32, PlanError> {
        let Interner { names, table, hasher } = self;
        let hash = hasher.hash_one(s);
        match table.entry(hash, |&i| names.get(i) == s, |&i| hasher.hash_one(names.get(i))) {
            Entry::Occupied(found) => Ok(*found.get()),
            Entry::Vacant(slot) => {
                let index = names.push(s)?;
                slot.insert(index);
                Ok(index)
            }
        }
    }
}

/// What the plan keeps of a ride: its times, its driver and what the driver's line comes to
/// (`gross` 0: the ride makes no payout line).
#[derive(Clone, Copy, Debug)]
struct PlannedRide {
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    driver: u32,
    late: bool,
    gross: i64,
    fee: i64,
}

/// A passenger's line: who, which ride, how much.
#[derive(Clone, Copy, Debug)]
struct Charge {
    user: u32,
    ride: u32,
    amount: i64,
    attendance: Attendance,
}

/// Prices rides one at a time, in any order, into a [`LeanPlan`].
pub struct Planner<'a> {
    policy: &'a FeePolicy,
    week: BillingWeek,
    tz: Tz,
    people: Interner,
    ride_ids: Arena,
    rides: Vec<PlannedRide>,
    charges: Vec<Charge>,
}

impl<'a> Planner<'a> {
    pub fn new(policy: &'a FeePolicy, week: BillingWeek, tz: Tz) -> Planner<'a> {
        Planner {
            policy,
            week,
            tz,
            people: Interner::default(),
            ride_ids: Arena::default(),
            rides: Vec::new(),
            charges: Vec::new(),
        }
    }

    /// Prices `ride` (one that ended in the week, or a late one of an earlier week) and adds its
    /// lines. Seats are priced in passenger-id order, so the leftover minor units of a split
    /// always go to the same passengers; cancelled seats and zero shares make no line. Returns
    /// the ride's number in this plan.
    pub fn add(&mut self, ride: &Ride) -> Result<u32, PlanError> {
        validate_ride(ride).map_err(|e| PlanError::Ride(ride.ride_id.clone(), e))?;
        let ride_week = BillingWeek::containing(ride.ended_at, self.tz);
        if ride_week > self.week {
            return Err(PlanError::FromTheFuture(ride.ride_id.clone(), ride_week));
        }
        let mut seats: Vec<_> = ride.seats.iter().collect();
        seats.sort_by(|a, b| a.passenger_id.cmp(&b.passenger_id));
        let attendance: Vec<Attendance> = seats.iter().map(|s| s.attendance).collect();
        let price = price_trip(self.policy, ride.distance_m, &attendance)
            .map_err(|e| PlanError::Pricing(ride.ride_id.clone(), e))?;
        let gross = price.total()?;
        let index = self.ride_ids.push(&ride.ride_id)?;
        for (seat, amount) in seats.iter().zip(&price.shares) {
            if seat.attendance == Attendance::Cancelled || amount.minor() == 0 {
                continue;
            }
            let user = self.people.intern(&seat.passenger_id)?;
            self.charges.push(Charge {
                user,
                ride: index,
                amount: amount.minor(),
                attendance: seat.attendance,
            });
        }
        self.rides.push(PlannedRide {
            started_at: ride.started_at,
            ended_at: ride.ended_at,
            driver: self.people.intern(&ride.driver_id)?,
            late: ride_week < self.week,
            gross: gross.minor(),
            fee: price.fee.minor(),
        });
        Ok(index)
    }

    /// The week: one invoice per passenger and one payout per driver, in id order (byte by
    /// byte), each one's lines in the order the rides ended (then by ride id); an invoice or
    /// payout of zero is not made.
    pub fn finish(self) -> Result<LeanPlan, PlanError> {
        let Planner { policy, week, people, ride_ids, rides, mut charges, .. } = self;
        let currency = policy.base.currency();
        let names = people.names;
        // Each person's place in id order.
        let mut order: Vec<u32> = (0..names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| names.get(a).cmp(names.get(b)));
        let mut rank = vec![0u32; order.len()];
        for (place, &person) in order.iter().enumerate() {
            rank[person as usize] = place as u32;
        }
        drop(order);
        let by_ride = |a: u32, b: u32| {
            let (x, y) = (&rides[a as usize], &rides[b as usize]);
            x.ended_at.cmp(&y.ended_at).then_with(|| ride_ids.get(a).cmp(ride_ids.get(b)))
        };

        charges.sort_unstable_by(|a, b| {
            rank[a.user as usize].cmp(&rank[b.user as usize]).then_with(|| by_ride(a.ride, b.ride))
        });
        let mut invoices = Vec::new();
        let mut start = 0;
        while start < charges.len() {
            let user = charges[start].user;
            let end = start + charges[start..].iter().take_while(|c| c.user == user).count();
            let total = Money::sum(
                currency,
                charges[start..end].iter().map(|c| Money::from_minor(c.amount, currency)),
            )?;
            invoices.push(Group { person: user, lines: start..end, total: total.minor() });
            start = end;
        }

        let mut payout_rides: Vec<u32> =
            (0..rides.len() as u32).filter(|&r| rides[r as usize].gross > 0).collect();
        payout_rides.sort_unstable_by(|&a, &b| {
            rank[rides[a as usize].driver as usize]
                .cmp(&rank[rides[b as usize].driver as usize])
                .then_with(|| by_ride(a, b))
        });
        let mut payouts = Vec::new();
        let mut start = 0;
        while start < payout_rides.len() {
            let driver = rides[payout_rides[start] as usize].driver;
            let end = start
                + payout_rides[start..].iter().take_while(|&&r| rides[r as usize].driver == driver).count();
            let total = Money::sum(
                currency,
                payout_rides[start..end].iter().map(|&r| {
                    let ride = &rides[r as usize];
                    Money::from_minor(ride.gross - ride.fee, currency)
                }),
            )?;
            payouts.push(Group { person: driver, lines: start..end, total: total.minor() });
            start = end;
        }

        let money = |minor| Money::from_minor(minor, currency);
        let charged = Money::sum(currency, invoices.iter().map(|i| money(i.total)))?;
        let fees = Money::sum(currency, payout_rides.iter().map(|&r| money(rides[r as usize].fee)))?;
        let paid_out = Money::sum(currency, payouts.iter().map(|p| money(p.total)))?;
        let totals = WeekTotals { invoices: invoices.len() as u64, charged, fees, payouts: paid_out };
        Ok(LeanPlan {
            week,
            currency,
            names,
            ride_ids,
            rides,
            charges,
            invoices,
            payout_rides,
            payouts,
            totals,
        })
    }
}

/// An invoice or a payout: whose, which lines, and their sum in minor units.
#[derive(Clone, Debug)]
struct Group {
    person: u32,
    lines: Range<usize>,
    total: i64,
}

/// A planned week, kept compactly: what [`super::plan::WeekPlan`] holds, with each id stored
/// once. Read it through [`LeanPlan::invoices`] and [`LeanPlan::payouts`].
pub struct LeanPlan {
    pub week: BillingWeek,
    pub currency: BillingCurrency,
    names: Arena,
    ride_ids: Arena,
    rides: Vec<PlannedRide>,
    charges: Vec<Charge>,
    invoices: Vec<Group>,
    payout_rides: Vec<u32>,
    payouts: Vec<Group>,
    pub totals: WeekTotals,
}

/// A ride as a plan's line shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RideRef<'p> {
    /// The ride's number in its plan (what [`Planner::add`] returned).
    pub index: u32,
    pub ride_id: &'p str,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub late: bool,
}

/// A line of a [`LeanInvoice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeanLine<'p> {
    pub ride: RideRef<'p>,
    pub amount: Money,
    pub attendance: Attendance,
}

/// One passenger's invoice in a [`LeanPlan`].
#[derive(Clone, Copy)]
pub struct LeanInvoice<'p> {
    plan: &'p LeanPlan,
    group: &'p Group,
}

/// A line of a [`LeanPayout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeanPayoutLine<'p> {
    pub ride: RideRef<'p>,
    pub gross: Money,
    pub fee: Money,
    pub net: Money,
}

/// One driver's payout in a [`LeanPlan`].
#[derive(Clone, Copy)]
pub struct LeanPayout<'p> {
    plan: &'p LeanPlan,
    group: &'p Group,
}

impl LeanPlan {
    fn money(&self, minor: i64) -> Money {
        Money::from_minor(minor, self.currency)
    }

    fn ride(&self, index: u32) -> RideRef<'_> {
        let ride = &self.rides[index as usize];
        RideRef {
            index,
            ride_id: self.ride_ids.get(index),
            started_at: ride.started_at,
            ended_at: ride.ended_at,
            late: ride.late,
        }
    }

    /// The invoices, in user-id order.
    pub fn invoices(&self) -> impl ExactSizeIterator<Item = LeanInvoice<'_>> + '_ {
        self.invoices.iter().map(move |group| LeanInvoice { plan: self, group })
    }

    /// The payouts, in driver-id order.
    pub fn payouts(&self) -> impl ExactSizeIterator<Item = LeanPayout<'_>> + '_ {
        self.payouts.iter().map(move |group| LeanPayout { plan: self, group })
    }

    /// The content hash of the whole week: what [`super::plan::plan_hash`] gives for the same
    /// week, computed without holding every invoice's hash as a string.
    pub fn hash(&self) -> String {
        week_hash_of(
            self.week,
            self.currency,
            || self.invoices().map(|i| (i.user_id(), i.digest())),
            || self.payouts().map(|p| (p.driver_id(), p.digest())),
        )
    }

    /// The week with owned strings, for the contract's JSON and for tests (a large week is
    /// large this way).
    pub fn to_week_plan(&self) -> super::plan::WeekPlan {
        let invoices = self.invoices().map(|i| i.to_invoice()).collect();
        let payouts = self.payouts().map(|p| p.to_payout()).collect();
        super::plan::WeekPlan { week: self.week, invoices, payouts, totals: self.totals.clone() }
    }
}

impl<'p> LeanInvoice<'p> {
    pub fn user_id(&self) -> &'p str {
        self.plan.names.get(self.group.person)
    }

    pub fn total(&self) -> Money {
        self.plan.money(self.group.total)
    }

    pub fn len(&self) -> usize {
        self.group.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.group.lines.is_empty()
    }

    /// The lines, in the order their rides ended.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = LeanLine<'p>> + 'p {
        let plan = self.plan;
        plan.charges[self.group.lines.clone()].iter().map(move |c| LeanLine {
            ride: plan.ride(c.ride),
            amount: plan.money(c.amount),
            attendance: c.attendance,
        })
    }

    pub fn late_lines(&self) -> usize {
        self.lines().filter(|l| l.ride.late).count()
    }

    /// Its content hash, as [`super::plan::invoice_hash`] gives it.
    pub fn digest(&self) -> Digest {
        invoice_hash_of(
            self.plan.week,
            self.user_id(),
            self.total(),
            self.lines().map(|l| (l.ride.ride_id, l.amount.minor(), l.attendance, l.ride.late)).collect(),
        )
    }

    pub fn to_invoice(&self) -> Invoice {
        Invoice {
            user_id: self.user_id().to_owned(),
            week: self.plan.week,
            lines: self
                .lines()
                .map(|l| InvoiceLine {
                    ride_id: l.ride.ride_id.to_owned(),
                    amount: l.amount,
                    attendance: l.attendance,
                    ended_at: l.ride.ended_at,
                    late: l.ride.late,
                })
                .collect(),
            total: self.total(),
        }
    }
}

impl<'p> LeanPayout<'p> {
    pub fn driver_id(&self) -> &'p str {
        self.plan.names.get(self.group.person)
    }

    pub fn total(&self) -> Money {
        self.plan.money(self.group.total)
    }

    pub fn len(&self) -> usize {
        self.group.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.group.lines.is_empty()
    }

    /// The lines, in the order their rides ended.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = LeanPayoutLine<'p>> + 'p {
        let plan = self.plan;
        plan.payout_rides[self.group.lines.clone()].iter().map(move |&r| {
            let ride = &plan.rides[r as usize];
            LeanPayoutLine {
                ride: plan.ride(r),
                gross: plan.money(ride.gross),
                fee: plan.money(ride.fee),
                net: plan.money(ride.gross - ride.fee),
            }
        })
    }

    /// Its content hash, as [`super::plan::payout_hash`] gives it.
    pub fn digest(&self) -> Digest {
        payout_hash_of(
            self.plan.week,
            self.driver_id(),
            self.total(),
            self.lines()
                .map(|l| (l.ride.ride_id, l.gross.minor(), l.fee.minor(), l.net.minor(), l.ride.late))
                .collect(),
        )
    }

    pub fn to_payout(&self) -> Payout {
        Payout {
            driver_id: self.driver_id().to_owned(),
            week: self.plan.week,
            lines: self
                .lines()
                .map(|l| PayoutLine {
                    ride_id: l.ride.ride_id.to_owned(),
                    gross: l.gross,
                    fee: l.fee,
                    net: l.net,
                    late: l.ride.late,
                })
                .collect(),
            total: self.total(),
        }
    }
}
