//! The planner behind [`super::plan::plan_week`], for a week of any size: rides are priced one
//! at a time as they are read, and the week is kept compactly. Each passenger's and driver's
//! id is stored once, end to end in one buffer, as its 16 bytes if it is a UUID ([`Arena`]);
//! each ride's id as what it adds to the id of the ride read before it, or as its 16 bytes if
//! it is a UUID ([`RideIds`]); a line is a few integers naming them. A ride is 20 bytes besides
//! its id (when it ended, to the microsecond, as rides are stored, and how long it lasted; the
//! driver; what the passengers paid, the platform's fee being a function of it), a line 12
//! (amounts in four bytes, any wider kept aside: [`Narrow`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::marker::PhantomData;
use std::ops::Range;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use hashbrown::hash_table::{Entry, HashTable};
use hashbrown::DefaultHashBuilder;

use super::plan::{invoice_hash_of, payout_hash_of, validate_ride, Digest, PlanError, WeekHasher};
use super::pricing::price_trip;
use super::split::fee_minor;
use super::waived::{Waived, WaivedKey};
use app::model::billing::{Invoice, InvoiceLine, Payout, PayoutLine, Ride, WeekTotals};
use app::model::money::{BillingCurrency, Money};
use app::model::pricing::{Attendance, FeePolicy};
use app::model::week::BillingWeek;

/// Strings stored end to end in one buffer, each named by its index: one that is a UUID written
/// as [`uuid_bytes`] wants it as [`UUID_TAG`] and its 16 bytes (17 bytes, not 36), any other as
/// its UTF-8 bytes (which never hold the tag).
#[derive(Clone, Debug, Default)]
struct Arena {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

/// How [`Arena`] stores `s`, written in `buffer` if `s` is a UUID.
fn arena_key<'a>(s: &'a str, buffer: &'a mut [u8; 17]) -> &'a [u8] {
    match uuid_bytes(s) {
        Some(uuid) => {
            buffer[0] = UUID_TAG;
            buffer[1..].copy_from_slice(&uuid);
            buffer
        }
        None => s.as_bytes(),
    }
}

impl Arena {
    /// Stores `key`, made by [`arena_key`].
    fn push(&mut self, key: &[u8]) -> Result<u32, PlanError> {
        let index = fits(self.ends.len())?;
        let end = fits(self.bytes.len() + key.len())?;
        self.bytes.extend_from_slice(key);
        self.ends.push(end);
        Ok(index)
    }

    /// The string at `index` as stored (its [`arena_key`]).
    fn key(&self, index: u32) -> &[u8] {
        let i = index as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    /// The string at `index`, written in `buffer` when stored as a UUID's bytes.
    fn get<'a>(&'a self, index: u32, buffer: &'a mut [u8; 36]) -> &'a str {
        match self.key(index) {
            [UUID_TAG, uuid @ ..] => uuid_text(uuid.try_into().expect("a tag and 16 bytes"), buffer),
            text => std::str::from_utf8(text).expect("stored from a string"),
        }
    }

    /// The string at `index`, borrowed unless stored as a UUID's bytes.
    fn cow(&self, index: u32) -> Cow<'_, str> {
        match self.key(index) {
            [UUID_TAG, ..] => Cow::Owned(self.get(index, &mut [0; 36]).to_owned()),
            text => Cow::Borrowed(std::str::from_utf8(text).expect("stored from a string")),
        }
    }

    /// The strings at `a` and `b` in byte order: two UUIDs by their bytes, in the order of their
    /// text (lowercase hexadecimal digits sort as the values they write, hyphens stand at the
    /// same places).
    fn cmp(&self, a: u32, b: u32) -> std::cmp::Ordering {
        match (self.key(a), self.key(b)) {
            ([UUID_TAG, x @ ..], [UUID_TAG, y @ ..]) => x.cmp(y),
            _ => self.get(a, &mut [0; 36]).cmp(self.get(b, &mut [0; 36])),
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// `n` as a u32 index or offset, or [`PlanError::TooLarge`].
fn fits(n: usize) -> Result<u32, PlanError> {
    u32::try_from(n).map_err(|_| PlanError::TooLarge)
}

/// Ride ids in the order they were added, each stored as the length of the prefix it shares
/// with the id before it and the bytes that follow (front coding), every [`BLOCK`]th one whole,
/// so that any one is rebuilt from at most [`BLOCK`] entries. Ids read in the order rides ended
/// often share a prefix (the demo's share 17 of their 25 bytes); ids that share nothing cost
/// two bytes more than the id, less than an offset would. An id that is a UUID written as
/// [`uuid_bytes`] wants it (random ones share next to nothing) is stored whole as [`UUID_TAG`]
/// and its 16 bytes: 17 bytes, not 38.
#[derive(Clone, Debug, Default)]
struct RideIds {
    bytes: Vec<u8>,
    blocks: Vec<u32>,
    len: u32,
    last: Vec<u8>,
}

/// How many ride ids a [`RideIds`] block holds.
const BLOCK: u32 = 16;

/// The first byte of a [`RideIds`] entry that is a UUID, its 16 bytes following: never the
/// first byte of a length ([`write_length`]).
const UUID_TAG: u8 = 0xFF;

/// The bytes of `id` if it is a UUID written lowercase and hyphenated, as [`uuid_text`] writes
/// it back byte for byte.
fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    if id.len() != 36 {
        return None;
    }
    let uuid = uuid::Uuid::try_parse_ascii(id.as_bytes()).ok()?;
    (uuid_text(uuid.as_bytes(), &mut [0; 36]) == id).then(|| uuid.into_bytes())
}

/// The UUID of `bytes`, lowercase and hyphenated, written in `buffer`.
fn uuid_text<'b>(bytes: &[u8; 16], buffer: &'b mut [u8; 36]) -> &'b str {
    uuid::Uuid::from_bytes(*bytes).hyphenated().encode_lower(buffer)
}

impl RideIds {
    fn push(&mut self, id: &str) -> Result<u32, PlanError> {
        let index = self.len;
        let whole = index.is_multiple_of(BLOCK);
        if whole {
            self.blocks.push(fits(self.bytes.len())?);
        }
        if let Some(uuid) = uuid_bytes(id) {
            self.bytes.push(UUID_TAG);
            self.bytes.extend_from_slice(&uuid);
        } else {
            let shared = if whole {
                0
            } else {
                self.last.iter().zip(id.as_bytes()).take_while(|(a, b)| a == b).count()
            };
            let rest = &id.as_bytes()[shared..];
            write_length(&mut self.bytes, shared);
            write_length(&mut self.bytes, rest.len());
            self.bytes.extend_from_slice(rest);
        }
        fits(self.bytes.len())?;
        self.last.clear();
        self.last.extend_from_slice(id.as_bytes());
        self.len = index.checked_add(1).ok_or(PlanError::TooLarge)?;
        Ok(index)
    }

    fn get(&self, index: u32) -> String {
        let mut at = self.blocks[(index / BLOCK) as usize] as usize;
        let mut id = Vec::new();
        for _ in 0..=index % BLOCK {
            if self.bytes[at] == UUID_TAG {
                let bytes = self.bytes[at + 1..at + 17].try_into().expect("16 bytes");
                id.clear();
                id.extend_from_slice(uuid_text(bytes, &mut [0; 36]).as_bytes());
                at += 17;
                continue;
            }
            let shared = read_length(&self.bytes, &mut at);
            let rest = read_length(&self.bytes, &mut at);
            id.truncate(shared);
            id.extend_from_slice(&self.bytes[at..at + rest]);
            at += rest;
        }
        String::from_utf8(id).expect("ride ids are stored whole from strings")
    }
}

/// Appends `n` (an id's length in bytes, at most 400) in one byte below 128, else two, the
/// first below 0x82 (so never [`UUID_TAG`]).
fn write_length(bytes: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        bytes.push(n as u8);
    } else {
        debug_assert!(n < usize::from(UUID_TAG & 0x7f) << 8);
        bytes.extend_from_slice(&[0x80 | (n >> 8) as u8, n as u8]);
    }
}

/// Reads a length written by [`write_length`] at `*at`, moving past it.
fn read_length(bytes: &[u8], at: &mut usize) -> usize {
    let first = bytes[*at] as usize;
    *at += 1;
    if first < 0x80 {
        first
    } else {
        *at += 1;
        (first & 0x7f) << 8 | bytes[*at - 1] as usize
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
        let mut buffer = [0; 17];
        let key = arena_key(s, &mut buffer);
        let hash = hasher.hash_one(key);
        match table.entry(hash, |&i| names.key(i) == key, |&i| hasher.hash_one(names.key(i))) {
            Entry::Occupied(found) => Ok(*found.get()),
            Entry::Vacant(slot) => {
                let index = names.push(key)?;
                slot.insert(index);
                Ok(index)
            }
        }
    }
}

/// What the plan keeps of a ride: when it ended (microseconds since 1970) and how long it
/// lasted (microseconds; [`LONG`]: longer than that, its start kept aside), its driver (the top
/// bit, [`LATE`], marks a ride of an earlier week) and what its passengers paid (a [`Narrow`]
/// amount; 0: the ride makes no payout line; the platform's fee is [`fee_minor`] of it, as
/// [`price_trip`] computes it). 20 bytes: packed to four-byte alignment, so `ended_at` takes no
/// padding after it.
#[derive(Clone, Copy, Debug)]
#[repr(C, packed(4))]
struct PlannedRide {
    ended_at: i64,
    gross: Narrow,
    length: u32,
    driver: u32,
}

/// An amount in minor units in four bytes: itself when it is in `0..WIDE`, else [`WIDE`] and
/// kept aside whole ([`Wide`]). A ride's or a seat's price never nears 42 million units of a
/// currency, so the side table stays empty in practice; it is there so no amount is ever cut.
type Narrow = u32;

/// The [`Narrow`] that says "kept aside".
const WIDE: Narrow = Narrow::MAX;

/// `minor` as a [`Narrow`], or [`WIDE`].
fn narrow(minor: i64) -> Narrow {
    Narrow::try_from(minor).ok().filter(|&n| n != WIDE).unwrap_or(WIDE)
}

/// The amounts that are not [`Narrow`]: rides' by their number, charges' by their passenger and
/// seat.
#[derive(Clone, Debug, Default)]
struct Wide {
    gross: HashMap<u32, i64>,
    amounts: HashMap<(u32, u32), i64>,
}

impl Wide {
    fn gross(&self, ride: u32, rides: &[PlannedRide]) -> i64 {
        match rides[ride as usize].gross {
            WIDE => self.gross[&ride],
            gross => i64::from(gross),
        }
    }

    /// What ride `ride`'s passengers paid, and the platform's fee on it.
    fn gross_and_fee(&self, ride: u32, rides: &[PlannedRide], fee_bps: u32) -> (i64, i64) {
        let gross = self.gross(ride, rides);
        (gross, fee_minor(gross, fee_bps))
    }

    fn amount(&self, charge: &Charge) -> i64 {
        match charge.amount {
            WIDE => self.amounts[&(charge.user, charge.seat)],
            amount => i64::from(amount),
        }
    }
}

/// [`PlannedRide::length`] of a ride of 71 minutes or more, whose start is kept aside.
const LONG: u32 = u32::MAX;

/// The bit of [`PlannedRide::driver`] that marks a late ride; the rest is the driver.
const LATE: u32 = 1 << 31;

impl PlannedRide {
    fn driver(&self) -> u32 {
        self.driver & !LATE
    }

    fn late(&self) -> bool {
        self.driver & LATE != 0
    }
}

/// A time as a ride keeps it.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A time a ride kept.
fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).expect("made by `micros` from a time")
}

/// The bit of [`Charge::seat`] that marks a no-show; the rest is the ride's number.
const NO_SHOW: u32 = 1 << 31;

/// A passenger's line: who, which ride and how they ended it (a cancelled seat makes no line),
/// how much (a [`Narrow`] amount). 12 bytes.
#[derive(Clone, Copy, Debug)]
struct Charge {
    user: u32,
    seat: u32,
    amount: Narrow,
}

impl Charge {
    fn new(
        user: u32,
        ride: u32,
        attendance: Attendance,
        amount: i64,
        wide: &mut Wide,
    ) -> Result<Charge, PlanError> {
        if ride >= NO_SHOW {
            return Err(PlanError::TooLarge);
        }
        let seat = if attendance == Attendance::NoShow { ride | NO_SHOW } else { ride };
        let narrowed = narrow(amount);
        if narrowed == WIDE {
            wide.amounts.insert((user, seat), amount);
        }
        Ok(Charge { user, seat, amount: narrowed })
    }

    fn ride(&self) -> u32 {
        self.seat & !NO_SHOW
    }

    fn attendance(&self) -> Attendance {
        if self.seat & NO_SHOW == 0 {
            Attendance::Completed
        } else {
            Attendance::NoShow
        }
    }
}

/// Prices rides one at a time, in any order, into a [`LeanPlan`].
pub struct Planner<'a> {
    policy: &'a FeePolicy,
    week: BillingWeek,
    tz: Tz,
    waived: Option<&'a Waived>,
    people: Interner,
    ride_ids: RideIds,
    rides: Vec<PlannedRide>,
    long_rides: HashMap<u32, i64>,
    charges: Vec<Charge>,
    wide: Wide,
}

impl<'a> Planner<'a> {
    pub fn new(policy: &'a FeePolicy, week: BillingWeek, tz: Tz) -> Planner<'a> {
        Planner {
            policy,
            week,
            tz,
            waived: None,
            people: Interner::default(),
            ride_ids: RideIds::default(),
            rides: Vec::new(),
            long_rides: HashMap::new(),
            charges: Vec::new(),
            wide: Wide::default(),
        }
    }

    /// The same planner, leaving out the seats `waived` covers: a waived seat makes no line,
    /// and its share is not part of what its ride's passengers paid, so neither the driver's
    /// payout nor the platform's fee counts it (see [`super::waived`]).
    pub fn waiving(mut self, waived: &'a Waived) -> Planner<'a> {
        self.waived = Some(waived).filter(|w| !w.is_empty());
        self
    }

    /// Prices `ride` (one that ended in the week, or a late one of an earlier week) and adds its
    /// lines. Seats are priced in passenger-id order, so the leftover minor units of a split
    /// always go to the same passengers; cancelled seats and zero shares make no line. Its times
    /// are kept to the microsecond, as rides are stored. Returns the ride's number in this plan.
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
        debug_assert_eq!(price.fee.minor(), fee_minor(gross.minor(), self.policy.platform_fee_bps));
        let index = self.ride_ids.push(&ride.ride_id)?;
        let mut waived_minor = 0i64;
        for (seat, amount) in seats.iter().zip(&price.shares) {
            if seat.attendance == Attendance::Cancelled || amount.minor() == 0 {
                continue;
            }
            if self.waived.is_some_and(|w| w.covers(&ride.ride_id, &seat.passenger_id, seat.attendance)) {
                waived_minor += amount.minor();
                continue;
            }
            let user = self.people.intern(&seat.passenger_id)?;
            self.charges.push(Charge::new(user, index, seat.attendance, amount.minor(), &mut self.wide)?);
        }
        let (started_at, ended_at) = (micros(ride.started_at), micros(ride.ended_at));
        let length = match u32::try_from(ended_at - started_at) {
            Ok(length) if length != LONG => length,
            _ => {
                self.long_rides.insert(index, started_at);
                LONG
            }
        };
        let driver = self.people.intern(&ride.driver_id)?;
        if driver >= LATE {
            return Err(PlanError::TooLarge);
        }
        let late = if ride_week < self.week { LATE } else { 0 };
        // What the passengers who are charged pay: the fee and the payout are of that.
        let gross = gross.minor() - waived_minor;
        let narrowed = narrow(gross);
        if narrowed == WIDE {
            self.wide.gross.insert(index, gross);
        }
        self.rides.push(PlannedRide { ended_at, gross: narrowed, length, driver: driver | late });
        Ok(index)
    }

    /// The week: one invoice per passenger and one payout per driver, in id order (byte by
    /// byte), each one's lines in the order the rides ended (then by ride id); an invoice or
    /// payout of zero is not made.
    pub fn finish(self) -> Result<LeanPlan, PlanError> {
        let Planner { policy, week, people, ride_ids, rides, long_rides, mut charges, waived, wide, .. } =
            self;
        let currency = policy.base.currency();
        let fee_bps = policy.platform_fee_bps;
        let names = people.names;
        // Each person's place in id order.
        let mut order: Vec<u32> = (0..fits(names.len())?).collect();
        order.sort_unstable_by(|&a, &b| names.cmp(a, b));
        let mut rank = vec![0u32; order.len()];
        for (place, &person) in order.iter().enumerate() {
            rank[person as usize] = place as u32;
        }
        drop(order);
        let by_ride = |a: u32, b: u32| {
            let (x, y) = (rides[a as usize].ended_at, rides[b as usize].ended_at);
            x.cmp(&y).then_with(|| ride_ids.get(a).cmp(&ride_ids.get(b)))
        };

        charges.sort_unstable_by(|a, b| {
            rank[a.user as usize].cmp(&rank[b.user as usize]).then_with(|| by_ride(a.ride(), b.ride()))
        });
        let invoices = groups(&charges, currency, |c| c.user, |c| wide.amount(c))?;

        let mut payout_rides: Vec<u32> =
            (0..fits(rides.len())?).filter(|&r| wide.gross(r, &rides) > 0).collect();
        let driver = |r: u32| rides[r as usize].driver();
        payout_rides.sort_unstable_by(|&a, &b| {
            rank[driver(a) as usize].cmp(&rank[driver(b) as usize]).then_with(|| by_ride(a, b))
        });
        let gross_and_fee = |r: u32| wide.gross_and_fee(r, &rides, fee_bps);
        let payouts = groups(
            &payout_rides,
            currency,
            |&r| driver(r),
            |&r| {
                let (gross, fee) = gross_and_fee(r);
                gross - fee
            },
        )?;

        let money = |minor| Money::from_minor(minor, currency);
        let charged = Money::sum(currency, invoices.iter().map(|i| money(i.total)))?;
        let fees = Money::sum(currency, payout_rides.iter().map(|&r| money(gross_and_fee(r).1)))?;
        let paid_out = Money::sum(currency, payouts.iter().map(|p| money(p.total)))?;
        let totals = WeekTotals { invoices: invoices.len() as u64, charged, fees, payouts: paid_out };
        Ok(LeanPlan {
            week,
            currency,
            fee_bps,
            waivers: waived.map(|w| w.keys().to_vec()).unwrap_or_default(),
            names,
            ride_ids,
            rides,
            long_rides,
            charges,
            wide,
            invoices,
            payout_rides,
            payouts,
            totals,
        })
    }
}

/// An invoice or a payout: whose, which lines (of the plan's charges or payout rides), and
/// their sum in minor units.
#[derive(Clone, Debug)]
struct Group {
    person: u32,
    lines: Range<u32>,
    total: i64,
}

/// `items`, sorted by person, cut into one [`Group`] per person with the sum of its amounts.
fn groups<T>(
    items: &[T],
    currency: BillingCurrency,
    person: impl Fn(&T) -> u32,
    amount: impl Fn(&T) -> i64,
) -> Result<Vec<Group>, PlanError> {
    let mut found = Vec::new();
    for run in items.chunk_by(|a, b| person(a) == person(b)) {
        let start = found.last().map_or(0, |g: &Group| g.lines.end);
        let total = Money::sum(currency, run.iter().map(|item| Money::from_minor(amount(item), currency)))?;
        found.push(Group {
            person: person(&run[0]),
            lines: start..fits(start as usize + run.len())?,
            total: total.minor(),
        });
    }
    Ok(found)
}

/// A planned week, kept compactly: what [`super::plan::WeekPlan`] holds, with each id stored
/// once. Read it through [`LeanPlan::invoices`] and [`LeanPlan::payouts`].
pub struct LeanPlan {
    pub week: BillingWeek,
    pub currency: BillingCurrency,
    fee_bps: u32,
    waivers: Vec<WaivedKey>,
    names: Arena,
    ride_ids: RideIds,
    rides: Vec<PlannedRide>,
    long_rides: HashMap<u32, i64>,
    charges: Vec<Charge>,
    wide: Wide,
    invoices: Vec<Group>,
    payout_rides: Vec<u32>,
    payouts: Vec<Group>,
    pub totals: WeekTotals,
}

/// A ride as a plan's line shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RideRef {
    /// The ride's number in its plan (what [`Planner::add`] returned).
    pub index: u32,
    pub ride_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub late: bool,
}

/// A line of a [`LeanInvoice`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeanLine {
    pub ride: RideRef,
    pub amount: Money,
    pub attendance: Attendance,
}

/// A line of a [`LeanPayout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeanPayoutLine {
    pub ride: RideRef,
    pub gross: Money,
    pub fee: Money,
    pub net: Money,
}

/// One person's invoice or payout in a [`LeanPlan`] (`Side` says which).
pub struct LeanGroup<'p, Side> {
    plan: &'p LeanPlan,
    group: &'p Group,
    side: PhantomData<Side>,
}

impl<Side> Clone for LeanGroup<'_, Side> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Side> Copy for LeanGroup<'_, Side> {}

/// The side of a [`LeanGroup`] that is an invoice.
pub enum Invoices {}

/// The side of a [`LeanGroup`] that is a payout.
pub enum Payouts {}

/// One passenger's invoice in a [`LeanPlan`].
pub type LeanInvoice<'p> = LeanGroup<'p, Invoices>;

/// One driver's payout in a [`LeanPlan`].
pub type LeanPayout<'p> = LeanGroup<'p, Payouts>;

impl LeanPlan {
    fn money(&self, minor: i64) -> Money {
        Money::from_minor(minor, self.currency)
    }

    /// What ride `r`'s passengers paid, and the platform's fee on it.
    fn gross_and_fee(&self, r: u32) -> (i64, i64) {
        self.wide.gross_and_fee(r, &self.rides, self.fee_bps)
    }

    fn ride(&self, index: u32) -> RideRef {
        let ride = &self.rides[index as usize];
        let started_at = match ride.length {
            LONG => self.long_rides[&index],
            length => ride.ended_at - i64::from(length),
        };
        RideRef {
            index,
            ride_id: self.ride_ids.get(index),
            started_at: time(started_at),
            ended_at: time(ride.ended_at),
            late: ride.late(),
        }
    }

    /// The invoices, in user-id order.
    pub fn invoices(&self) -> impl ExactSizeIterator<Item = LeanInvoice<'_>> + '_ {
        self.invoices.iter().map(move |group| LeanGroup { plan: self, group, side: PhantomData })
    }

    /// The payouts, in driver-id order.
    pub fn payouts(&self) -> impl ExactSizeIterator<Item = LeanPayout<'_>> + '_ {
        self.payouts.iter().map(move |group| LeanGroup { plan: self, group, side: PhantomData })
    }

    /// How many invoice lines bill rides of earlier weeks.
    pub fn late_lines(&self) -> usize {
        self.charges.iter().filter(|c| self.bills_late(c)).count()
    }

    /// Whether `charge` bills a ride of an earlier week.
    fn bills_late(&self, charge: &Charge) -> bool {
        self.rides[charge.ride() as usize].late()
    }

    /// The content hash of the whole week: what [`super::plan::plan_hash`] gives for the same
    /// week, computed without holding every invoice's hash as a string; with applied waivers,
    /// naming them too ([`WeekHasher::finish_with`]).
    pub fn hash(&self) -> String {
        let mut hasher = WeekHasher::new(self.week, self.currency);
        for invoice in self.invoices() {
            hasher.invoice(&invoice.user_id(), &invoice.digest());
        }
        for payout in self.payouts() {
            hasher.payout(&payout.driver_id(), &payout.digest());
        }
        hasher.finish_with(&self.waivers)
    }

    /// The applied waivers it was planned with, in id order.
    pub fn waivers(&self) -> &[WaivedKey] {
        &self.waivers
    }

    /// The week with owned strings, for the contract's JSON and for tests (a large week is
    /// large this way).
    pub fn to_week_plan(&self) -> super::plan::WeekPlan {
        let invoices = self.invoices().map(|i| i.to_invoice()).collect();
        let payouts = self.payouts().map(|p| p.to_payout()).collect();
        super::plan::WeekPlan { week: self.week, invoices, payouts, totals: self.totals.clone() }
    }
}

impl<'p, Side> LeanGroup<'p, Side> {
    /// Whose it is: the passenger's or the driver's id.
    fn person(&self) -> Cow<'p, str> {
        self.plan.names.cow(self.group.person)
    }

    /// The passenger's or the driver's number in the plan: the same for each of their lines.
    pub fn person_number(&self) -> u32 {
        self.group.person
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

    fn range(&self) -> Range<usize> {
        self.group.lines.start as usize..self.group.lines.end as usize
    }
}

impl<'p> LeanInvoice<'p> {
    pub fn user_id(&self) -> Cow<'p, str> {
        self.person()
    }

    /// The lines, in the order their rides ended.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = LeanLine> + 'p {
        let plan = self.plan;
        plan.charges[self.range()].iter().map(move |c| LeanLine {
            ride: plan.ride(c.ride()),
            amount: plan.money(plan.wide.amount(c)),
            attendance: c.attendance(),
        })
    }

    /// How many of its lines bill rides of earlier weeks (their ids not rebuilt).
    pub fn late_lines(&self) -> usize {
        let plan = self.plan;
        plan.charges[self.range()].iter().filter(|c| plan.bills_late(c)).count()
    }

    /// Its content hash, as [`super::plan::invoice_hash`] gives it.
    pub fn digest(&self) -> Digest {
        let lines: Vec<LeanLine> = self.lines().collect();
        invoice_hash_of(
            self.plan.week,
            &self.user_id(),
            self.total(),
            lines
                .iter()
                .map(|l| (l.ride.ride_id.as_str(), l.amount.minor(), l.attendance, l.ride.late))
                .collect(),
        )
    }

    pub fn to_invoice(&self) -> Invoice {
        Invoice {
            user_id: self.user_id().into_owned(),
            week: self.plan.week,
            lines: self
                .lines()
                .map(|l| InvoiceLine {
                    ride_id: l.ride.ride_id,
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
    pub fn driver_id(&self) -> Cow<'p, str> {
        self.person()
    }

    /// The lines, in the order their rides ended.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = LeanPayoutLine> + 'p {
        let plan = self.plan;
        plan.payout_rides[self.range()].iter().map(move |&r| {
            let (gross, fee) = plan.gross_and_fee(r);
            LeanPayoutLine {
                ride: plan.ride(r),
                gross: plan.money(gross),
                fee: plan.money(fee),
                net: plan.money(gross - fee),
            }
        })
    }

    /// What its rides' passengers paid, and the platform's fees on it (their ids not rebuilt).
    pub fn gross_and_fees(&self) -> (Money, Money) {
        let plan = self.plan;
        let (gross, fees) = plan.payout_rides[self.range()].iter().fold((0, 0), |(gross, fees), &r| {
            let (ride_gross, fee) = plan.gross_and_fee(r);
            (gross + ride_gross, fees + fee)
        });
        (plan.money(gross), plan.money(fees))
    }

    /// Its content hash, as [`super::plan::payout_hash`] gives it.
    pub fn digest(&self) -> Digest {
        let lines: Vec<LeanPayoutLine> = self.lines().collect();
        payout_hash_of(
            self.plan.week,
            &self.driver_id(),
            self.total(),
            lines
                .iter()
                .map(|l| {
                    (l.ride.ride_id.as_str(), l.gross.minor(), l.fee.minor(), l.net.minor(), l.ride.late)
                })
                .collect(),
        )
    }

    pub fn to_payout(&self) -> Payout {
        Payout {
            driver_id: self.driver_id().into_owned(),
            week: self.plan.week,
            lines: self
                .lines()
                .map(|l| PayoutLine {
                    ride_id: l.ride.ride_id,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::fixtures::policy;
    use app::model::billing::Seat;
    use chrono::Duration;
    use proptest::prelude::*;

    proptest! {
        /// Every id comes back as it went in, whatever it shares with the ids before it (ids
        /// drawn from a few prefixes and short tails share a lot; some are long or not ASCII);
        /// so do UUIDs among them, whether stored in 16 bytes (written lowercase and hyphenated)
        /// or as text (any other way, or ids like them that are not UUIDs).
        #[test]
        fn ride_ids_come_back_whole(
            ids in prop_oneof![
                proptest::collection::vec("(ride-|ride-2026-|é|ż{0,130})[a-c0-2]{0,3}", 0..100),
                mixed_ids(),
            ]
        ) {
            let mut stored = RideIds::default();
            for (i, id) in ids.iter().enumerate() {
                prop_assert_eq!(stored.push(id).unwrap(), i as u32);
            }
            for (i, id) in ids.iter().enumerate() {
                prop_assert_eq!(&stored.get(i as u32), id);
            }
        }

        /// The interner gives each distinct id one index and the id back from it.
        #[test]
        fn interned_ids_come_back_whole(ids in mixed_ids()) {
            let mut people = Interner::default();
            let mut seen: HashMap<&str, u32> = HashMap::new();
            for id in &ids {
                let index = people.intern(id).unwrap();
                prop_assert_eq!(*seen.entry(id).or_insert(index), index);
                prop_assert_eq!(people.intern(id).unwrap(), index);
            }
            prop_assert_eq!(people.names.len(), seen.len());
            for (id, &index) in &seen {
                prop_assert_eq!(&*people.names.cow(index), *id);
            }
        }
    }

    proptest! {
        /// The interned ids sort as their text does, byte by byte, UUIDs stored as bytes or not.
        #[test]
        fn interned_ids_sort_as_their_text(ids in mixed_ids()) {
            let mut people = Interner::default();
            let indexes: Vec<u32> = ids.iter().map(|id| people.intern(id).unwrap()).collect();
            for (a, x) in indexes.iter().zip(&ids) {
                for (b, y) in indexes.iter().zip(&ids) {
                    prop_assert_eq!(people.names.cmp(*a, *b), x.as_str().cmp(y.as_str()), "{} against {}", x, y);
                }
            }
        }
    }

    #[test]
    fn a_uuid_user_id_takes_17_bytes() {
        let mut people = Interner::default();
        let ids: Vec<String> = (0..40u8).map(|i| uuid::Uuid::from_bytes([i; 16]).to_string()).collect();
        for id in ids.iter().chain(&ids) {
            people.intern(id).unwrap();
        }
        assert_eq!(people.names.bytes.len(), 40 * 17);
        assert!(ids.iter().enumerate().all(|(i, id)| people.names.cow(i as u32) == *id));
    }

    /// Ids drawn from a few UUIDs, written lowercase and hyphenated, in capitals, in braces,
    /// without hyphens, with the hyphens moved, a character off (36 characters, not a UUID), or
    /// followed by more; and ids with nothing of a UUID.
    fn mixed_ids() -> impl Strategy<Value = Vec<String>> {
        let other = "(ride-|é|ż{0,130})[a-c0-2]{0,3}";
        let picks = proptest::collection::vec((0..10u8, any::<prop::sample::Index>(), other), 0..100);
        (proptest::collection::vec(any::<[u8; 16]>(), 1..4), picks).prop_map(|(uuids, picks)| {
            picks
                .into_iter()
                .map(|(shape, i, other)| {
                    let uuid = uuid::Uuid::from_bytes(uuids[i.index(uuids.len())]).hyphenated().to_string();
                    match shape {
                        0..3 => uuid,
                        3 => uuid.to_uppercase(),
                        4 => format!("{{{uuid}}}"),
                        5 => uuid.replace('-', ""),
                        6 => format!("{}----", uuid.replace('-', "")),
                        7 => format!("{}g", &uuid[..35]),
                        8 => format!("{uuid}{other}"),
                        _ => other,
                    }
                })
                .collect()
        })
    }

    #[test]
    fn a_uuid_ride_id_takes_17_bytes() {
        let mut stored = RideIds::default();
        let ids: Vec<String> = (0..40u8).map(|i| uuid::Uuid::from_bytes([i; 16]).to_string()).collect();
        for id in &ids {
            stored.push(id).unwrap();
        }
        assert_eq!(stored.bytes.len(), 40 * 17);
        assert!(ids.iter().enumerate().all(|(i, id)| &stored.get(i as u32) == id));
    }

    #[test]
    fn only_a_lowercase_hyphenated_uuid_is_stored_as_bytes() {
        let id = "0f8e2c1a-5b7d-4e9f-8a3b-6c2d1e0f9a8b";
        assert_eq!(uuid_bytes(id).map(|b| uuid::Uuid::from_bytes(b).to_string()).as_deref(), Some(id));
        let upper = id.to_uppercase();
        let braced = format!("{{{id}}}");
        let urn = format!("urn:uuid:{id}");
        let simple = id.replace('-', "");
        let moved = format!("{simple}----");
        for other in [&upper, &braced, &urn, &simple, &moved, "0f8e2c1a-5b7d-4e9f-8a3b-6c2d1e0f9a8g"] {
            assert_eq!(uuid_bytes(other), None, "{other}");
        }
    }

    #[test]
    fn a_planned_ride_takes_20_bytes_and_a_charge_12() {
        assert_eq!((size_of::<PlannedRide>(), size_of::<Charge>()), (20, 12));
    }

    /// Amounts that do not fit four bytes (a ride's and a seat's over 42 million units, which
    /// no real week holds) come back whole, beside ordinary ones.
    #[test]
    fn amounts_too_wide_for_four_bytes_come_back_whole() {
        let week = BillingWeek::parse("2026-W48").unwrap();
        let ended = week.start(Tz::UTC) + Duration::hours(30);
        let ordinary = policy();
        let huge = FeePolicy { base: crate::billing::fixtures::usd(10_000_000_000), ..policy() };
        for policy in [&ordinary, &huge] {
            let mut planner = Planner::new(policy, week, Tz::UTC);
            let seats =
                [("ana", Attendance::Completed), ("bo", Attendance::NoShow), ("cy", Attendance::Completed)];
            let ride = Ride {
                ride_id: "r1".into(),
                driver_id: "dana".into(),
                distance_m: 12_345,
                started_at: ended - Duration::minutes(20),
                ended_at: ended,
                seats: seats
                    .iter()
                    .map(|(p, a)| Seat { passenger_id: (*p).into(), attendance: *a })
                    .collect(),
            };
            planner.add(&ride).unwrap();
            let plan = planner.finish().unwrap();
            let attendance: Vec<Attendance> = seats.iter().map(|s| s.1).collect();
            let price = price_trip(policy, ride.distance_m, &attendance).unwrap();
            let billed: Vec<(String, i64)> = plan
                .invoices()
                .map(|i| (i.user_id().into_owned(), i.lines().next().unwrap().amount.minor()))
                .collect();
            let priced: Vec<(String, i64)> =
                seats.iter().zip(&price.shares).map(|(s, m)| (s.0.to_owned(), m.minor())).collect();
            assert_eq!(billed, priced);
            let gross = price.total().unwrap().minor();
            let line = plan.payouts().next().unwrap().lines().next().unwrap();
            assert_eq!((line.gross.minor(), line.fee.minor()), (gross, price.fee.minor()));
            assert_eq!(plan.totals.charged.minor(), gross);
            let wide = gross > i64::from(u32::MAX);
            assert_eq!(wide, std::ptr::eq(policy, &huge), "the huge policy's amounts are wide: {gross}");
            assert_eq!(!plan.wide.amounts.is_empty(), wide);
        }
    }

    #[test]
    fn a_ride_keeps_its_times_to_the_microsecond_however_long_it_lasted() {
        let week = BillingWeek::parse("2026-W48").unwrap();
        let ended = week.start(Tz::UTC) + Duration::hours(30) + Duration::microseconds(123_457);
        let policy = policy();
        let mut planner = Planner::new(&policy, week, Tz::UTC);
        // None, just under and just over what a ride's length holds (u32::MAX µs, about 71.6
        // minutes), a week; one of the week before, which is late.
        let lengths = [0, 4_294_967_294, 4_294_967_295, 4_294_967_296, 7 * 86_400_000_000];
        let mut rides = Vec::new();
        for (i, &micros) in lengths.iter().enumerate() {
            let ended_at = if i == 0 { ended - Duration::days(7) } else { ended };
            rides.push(Ride {
                ride_id: format!("r{i}"),
                driver_id: "dana".into(),
                distance_m: 5_000,
                started_at: ended_at - Duration::microseconds(micros),
                ended_at,
                seats: vec![Seat { passenger_id: format!("p{i}"), attendance: Attendance::Completed }],
            });
            planner.add(&rides[i]).unwrap();
        }
        let plan = planner.finish().unwrap();
        for (i, ride) in rides.iter().enumerate() {
            let shown = plan.ride(i as u32);
            assert_eq!(
                (shown.ride_id.as_str(), shown.started_at, shown.ended_at, shown.late),
                (ride.ride_id.as_str(), ride.started_at, ride.ended_at, i == 0),
            );
        }
        assert_eq!(plan.late_lines(), 1);
    }
}
