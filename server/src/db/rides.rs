//! Users and rides: each ride id stored once, a resend recognised by its content hash, a
//! different ride under a known id refused, unknown users named.

use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};

use super::writes::Writes;
use super::Db;
use crate::billing::plan::{validate_ride, RideError};
use crate::with_pool;
use app::model::billing::{Ride, Seat};
use app::model::pricing::Attendance;

/// A passenger or driver as the carpool app knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `en` or `es` so far.
    pub language: String,
    /// The provider's objects the carpool app made for this user, each `None` when not sent
    /// (left as stored) and `Some(None)` when sent as null (removed).
    pub provider: ProviderRefs,
}

/// A user's objects at the payment provider, as the carpool app reports them: the rider's
/// customer and saved card, the driver's connected account. Each field: `None` not sent (left as
/// stored), `Some(None)` sent as null (removed), `Some(Some(id))` set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderRefs {
    pub customer_id: Option<Option<String>>,
    pub payment_method_id: Option<Option<String>>,
    pub account_id: Option<Option<String>>,
}

impl ProviderRefs {
    /// Whether any field was sent.
    pub fn any(&self) -> bool {
        self.customer_id.is_some() || self.payment_method_id.is_some() || self.account_id.is_some()
    }
}

/// The provider's objects stored for a user.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct StoredRefs {
    pub provider_customer_id: Option<String>,
    pub provider_payment_method_id: Option<String>,
    pub provider_account_id: Option<String>,
}

impl StoredRefs {
    /// These references with what `refs` sends applied.
    fn with(&self, refs: &ProviderRefs) -> StoredRefs {
        let pick = |sent: &Option<Option<String>>, kept: &Option<String>| match sent {
            Some(value) => value.clone(),
            None => kept.clone(),
        };
        StoredRefs {
            provider_customer_id: pick(&refs.customer_id, &self.provider_customer_id),
            provider_payment_method_id: pick(&refs.payment_method_id, &self.provider_payment_method_id),
            provider_account_id: pick(&refs.account_id, &self.provider_account_id),
        }
    }
}

/// A user's stored provider references, as [`StoredRefs`].
const STORED_REFS: &str =
    "SELECT customer_id AS provider_customer_id, payment_method AS provider_payment_method_id, \
     account_id AS provider_account_id FROM provider_accounts WHERE user_id = $1";

/// What syncing a batch of users did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// Users not known before.
    pub created: u64,
    /// Users whose provider references changed (each change audited).
    pub updated: u64,
}

/// What storing a ride did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The ride is new and is now stored.
    Created,
    /// The same ride was stored before; nothing changed.
    AlreadyStored,
}

/// Why a ride was not stored. Nothing already stored is changed by any of these.
#[derive(Debug, thiserror::Error)]
pub enum StoreRideError {
    #[error(transparent)]
    Invalid(#[from] RideError),
    #[error("ride_id: another ride was already stored under this id")]
    Conflict { stored: Box<Ride> },
    #[error("{field}: no user {id}")]
    UnknownUser { field: String, id: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub(crate) fn attendance_str(a: Attendance) -> &'static str {
    match a {
        Attendance::Completed => "completed",
        Attendance::Cancelled => "cancelled",
        Attendance::NoShow => "no_show",
    }
}

pub(crate) fn attendance_from(s: &str) -> Result<Attendance, sqlx::Error> {
    match s {
        "completed" => Ok(Attendance::Completed),
        "cancelled" => Ok(Attendance::Cancelled),
        "no_show" => Ok(Attendance::NoShow),
        other => Err(sqlx::Error::Decode(format!("unknown attendance {other:?}").into())),
    }
}

/// The ride as stored: timestamps to the microsecond, seats in passenger-id order.
fn canonical(ride: &Ride) -> Ride {
    let mut ride = ride.clone();
    ride.started_at = ride.started_at.trunc_subsecs(6);
    ride.ended_at = ride.ended_at.trunc_subsecs(6);
    ride.seats.sort_by(|a, b| a.passenger_id.cmp(&b.passenger_id));
    ride
}

/// What name search compares a prefix with: the name in Unicode lowercase.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// What email search compares a prefix with: the email in lowercase.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// What phone search compares a prefix with: the phone's digits.
pub fn phone_key(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// SHA-256 of the canonical ride's JSON: equal for a resend, different for any change.
pub fn content_hash(ride: &Ride) -> String {
    let json = serde_json::to_vec(&canonical(ride)).expect("a ride serialises");
    format!("{:x}", Sha256::digest(json))
}

pub use app::model::customer::UserHit;

/// The users `ride` names: its driver, then its passengers.
fn user_ids(ride: &Ride) -> impl Iterator<Item = &str> {
    std::iter::once(ride.driver_id.as_str()).chain(ride.seats.iter().map(|s| s.passenger_id.as_str()))
}

/// The first user `ride` names that is not in `known`, refused as [`Db::store_ride`] refuses it.
fn unknown_user(ride: &Ride, known: &std::collections::HashSet<String>) -> Option<StoreRideError> {
    user_ids(ride).enumerate().find(|(_, id)| !known.contains(*id)).map(|(i, id)| {
        StoreRideError::UnknownUser {
            field: if i == 0 { "driver_id".to_owned() } else { format!("seats[{}].passenger_id", i - 1) },
            id: id.to_owned(),
        }
    })
}

/// Rides per multi-row INSERT in [`Db::store_rides`] (7 parameters each; SQLite allows 32,766).
const RIDE_CHUNK: usize = 1_000;

impl Db {
    /// Users whose id, name, email or phone starts with `q` (ignoring case; a phone by its
    /// digits), at most `limit`, in id order: an indexed range per key, merged, so a search
    /// costs the same at a million users as at ten.
    pub async fn search_users(&self, q: &str, limit: i64) -> Result<Vec<UserHit>, sqlx::Error> {
        let q = q.trim();
        let id_column = match self {
            Db::Sqlite(_) => "id",
            Db::Postgres(_) => "(id COLLATE \"C\")",
        };
        let mut keys: Vec<(String, String)> = vec![
            (id_column.to_owned(), q.to_owned()),
            ("name_key".to_owned(), name_key(q)),
            ("email_key".to_owned(), email_key(q)),
        ];
        let digits = phone_key(q);
        if digits.len() >= 3 {
            keys.push(("phone_key".to_owned(), digits));
        }
        // One statement: a range of each key's index, at most `limit` from each, one after
        // another (`UNION ALL`), so that a search is one round trip to the database, not four.
        keys.retain(|(_, prefix)| !prefix.is_empty());
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let last = 2 * keys.len() + 1;
        let parts: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, (column, _))| {
                let (from, to) = (2 * i + 1, 2 * i + 2);
                format!(
                    "SELECT * FROM (SELECT id, name, email, phone FROM users \
                     WHERE {column} >= ${from} AND {column} < ${to} ORDER BY {column} LIMIT ${last}) k{i}"
                )
            })
            .collect();
        let sql = parts.join(" UNION ALL ");
        let found: Vec<(String, String, Option<String>, Option<String>)> = with_pool!(self, pool => {
            let mut query = sqlx::query_as(&sql);
            for (_, prefix) in &keys {
                query = query.bind(prefix.as_str()).bind(format!("{prefix}{}", char::MAX));
            }
            query.bind(limit).fetch_all(pool).await?
        });
        let mut hits: Vec<UserHit> =
            found.into_iter().map(|(id, name, email, phone)| UserHit { id, name, email, phone }).collect();
        hits.sort_by(|a, b| a.id.cmp(&b.id));
        hits.dedup_by(|a, b| a.id == b.id);
        hits.truncate(limit.max(0) as usize);
        Ok(hits)
    }

    /// Adds users that are not known yet (by id); returns how many were added.
    pub async fn add_users(&self, users: &[NewUser]) -> Result<u64, sqlx::Error> {
        let actor = super::audit::Actor::cli();
        Ok(self.sync_users(users, &actor).await?.created)
    }

    /// Adds the users not known yet and applies the provider references each one carries (new
    /// or known), in one transaction. Every change of a user's references is an audit entry
    /// `user.provider_refs` by `actor`, with the references before and after.
    pub async fn sync_users(
        &self,
        users: &[NewUser],
        actor: &super::audit::Actor,
    ) -> Result<Synced, sqlx::Error> {
        let now = super::now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let mut synced = Synced::default();
            for user in users {
                synced.created += sqlx::query(
                    "INSERT INTO users (id, name, name_key, email, phone, language, created_at, email_key, phone_key) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&user.id)
                .bind(&user.name)
                .bind(name_key(&user.name))
                .bind(&user.email)
                .bind(&user.phone)
                .bind(&user.language)
                .bind(now)
                .bind(user.email.as_deref().map(email_key).unwrap_or_default())
                .bind(user.phone.as_deref().map(phone_key).unwrap_or_default())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if !user.provider.any() {
                    continue;
                }
                let before: StoredRefs = sqlx::query_as(
                    STORED_REFS,
                )
                .bind(&user.id)
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or_default();
                let after = before.with(&user.provider);
                if after == before {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO provider_accounts (user_id, customer_id, payment_method, account_id) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id) DO UPDATE SET customer_id = excluded.customer_id, \
                     payment_method = excluded.payment_method, account_id = excluded.account_id",
                )
                .bind(&user.id)
                .bind(&after.provider_customer_id)
                .bind(&after.provider_payment_method_id)
                .bind(&after.provider_account_id)
                .execute(&mut *tx)
                .await?;
                let mut entry = super::audit::NewAuditEntry::new(actor, "user.provider_refs", "user", &user.id);
                entry.before = Some(serde_json::to_value(&before).expect("plain strings"));
                entry.after = Some(serde_json::to_value(&after).expect("plain strings"));
                tx.audit(&entry).await?;
                if after.provider_account_id.is_some() && after.provider_account_id != before.provider_account_id {
                    // The driver's payouts that wait for an account are tried at once.
                    sqlx::query(
                        "UPDATE transfers SET next_at = $1 WHERE driver_id = $2 AND state = 'pending' AND waiting_for = 'account'",
                    )
                    .bind(now)
                    .bind(&user.id)
                    .execute(&mut *tx)
                    .await?;
                }
                synced.updated += 1;
            }
            tx.commit().await?;
            Ok(synced)
        })
    }

    /// The provider's objects stored for a user (all `None` when nothing is stored).
    pub async fn provider_refs(&self, user_id: &str) -> Result<StoredRefs, sqlx::Error> {
        with_pool!(self, pool => {
            let found: Option<StoredRefs> = sqlx::query_as(
                STORED_REFS,
            )
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
            Ok(found.unwrap_or_default())
        })
    }

    /// Stores a ride once. A resend of the same ride is [`Stored::AlreadyStored`]; a different
    /// ride under a stored id is a [`StoreRideError::Conflict`] carrying the stored one. The
    /// primary key decides, so concurrent senders cannot store a ride twice.
    pub async fn store_ride(&self, ride: &Ride) -> Result<Stored, StoreRideError> {
        validate_ride(ride)?;
        let ride = canonical(ride);
        let hash = content_hash(&ride);
        let now = super::now();
        let inserted: Result<bool, sqlx::Error> = with_pool!(self, pool => {
            async {
                // SQLite's write lock is taken as the transaction begins; on PostgreSQL the
                // shared freeze lock orders this ride with any approval of its week.
                let mut tx = pool.begin_with(super::begin_writing(self)).await?;
                tx.share_freeze_lock().await?;
                let created: Option<String> = sqlx::query_scalar(
                    "INSERT INTO rides (ride_id, driver_id, distance_m, started_at, ended_at, content_hash, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ride_id) DO NOTHING RETURNING ride_id",
                )
                .bind(&ride.ride_id)
                .bind(&ride.driver_id)
                .bind(ride.distance_m)
                .bind(ride.started_at)
                .bind(ride.ended_at)
                .bind(&hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if created.is_none() {
                    return Ok(false);
                }
                for seat in &ride.seats {
                    sqlx::query(
                        "INSERT INTO ride_seats (ended_at, ride_id, passenger_id, attendance) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(ride.ended_at)
                    .bind(&ride.ride_id)
                    .bind(&seat.passenger_id)
                    .bind(attendance_str(seat.attendance))
                    .execute(&mut *tx)
                    .await?;
                }
                // A ride whose week is already approved waits for the next approval, as a late
                // line. The approval holds the freeze lock (see `super::weeks`), so this check
                // and the approval cannot miss each other.
                sqlx::query(
                    "INSERT INTO late_rides (ride_id, ended_at, queued_at) SELECT $1, $2, $3 \
                     WHERE EXISTS (SELECT 1 FROM weeks WHERE status = 'approved' AND starts_at <= $2 AND ends_at > $2)",
                )
                .bind(&ride.ride_id)
                .bind(ride.ended_at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.count_new_rides(&[ride.ended_at]).await?;
                tx.commit().await?;
                Ok(true)
            }
            .await
        });
        match inserted {
            Ok(true) => Ok(Stored::Created),
            Ok(false) => {
                let stored = self.ride(&ride.ride_id).await?.ok_or(sqlx::Error::RowNotFound)?;
                if content_hash(&stored) == hash {
                    Ok(Stored::AlreadyStored)
                } else {
                    Err(StoreRideError::Conflict { stored: Box::new(stored) })
                }
            }
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                Err(self.missing_user(&ride).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores many rides as [`Db::store_ride`] stores each (validated, canonical, hashed, queued
    /// as late when their week is approved, counted in their week), with the outcome of each in
    /// the order given, but in one transaction of multi-row statements: how a batch of
    /// `POST /api/v1/rides` and `billing demo-data` store thousands of rides a second.
    ///
    /// Refusals are found before the transaction (an invalid ride, a user that does not exist)
    /// or after it (a different ride already stored under the id); a ride id sent twice in the
    /// batch is stored by its first occurrence and the later ones answered as [`Db::store_ride`]
    /// answers a resend. Should the transaction fail on a foreign key all the same (a user
    /// removed meanwhile), each ride is stored on its own instead.
    pub async fn store_rides(
        &self,
        rides: &[Ride],
    ) -> Result<Vec<Result<Stored, StoreRideError>>, sqlx::Error> {
        let mut outcomes: Vec<Option<Result<Stored, StoreRideError>>> = Vec::with_capacity(rides.len());
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut candidates: Vec<(usize, Ride, String)> = Vec::with_capacity(rides.len());
        let mut again: Vec<usize> = Vec::new();
        for (index, ride) in rides.iter().enumerate() {
            if let Err(e) = validate_ride(ride) {
                outcomes.push(Some(Err(e.into())));
                continue;
            }
            outcomes.push(None);
            if !seen.insert(ride.ride_id.as_str()) {
                again.push(index);
                continue;
            }
            let ride = canonical(ride);
            let hash = content_hash(&ride);
            candidates.push((index, ride, hash));
        }
        // Rides naming a user who does not exist are refused as `store_ride` refuses them.
        let known = self.known_users(candidates.iter().flat_map(|(_, ride, _)| user_ids(ride))).await?;
        candidates.retain(|(index, ride, _)| match unknown_user(ride, &known) {
            Some(refused) => {
                outcomes[*index] = Some(Err(refused));
                false
            }
            None => true,
        });
        let created = match self.insert_rides(&candidates).await {
            Ok(created) => created,
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                for (index, ride, _) in &candidates {
                    outcomes[*index] = Some(self.store_ride(ride).await);
                }
                candidates.clear();
                Default::default()
            }
            Err(e) => return Err(e),
        };
        // The rides not created were there already: the same ride, or another under its id.
        let there: Vec<&str> = candidates
            .iter()
            .filter(|(_, ride, _)| !created.contains(ride.ride_id.as_str()))
            .map(|(_, ride, _)| ride.ride_id.as_str())
            .collect();
        let stored_hashes = self.ride_hashes(&there).await?;
        for (index, ride, hash) in &candidates {
            outcomes[*index] = Some(if created.contains(ride.ride_id.as_str()) {
                Ok(Stored::Created)
            } else if stored_hashes.get(ride.ride_id.as_str()) == Some(hash) {
                Ok(Stored::AlreadyStored)
            } else {
                // Compared again from the stored ride itself, as `store_ride` does.
                self.store_ride(ride).await
            });
        }
        for index in again {
            outcomes[index] = Some(self.store_ride(&rides[index]).await);
        }
        Ok(outcomes.into_iter().map(|o| o.expect("every ride has an outcome")).collect())
    }

    /// Inserts `rides` (canonical, with their hashes) in one transaction, each once by its id,
    /// with their seats, late queue entries and week counts. Returns the ids it created.
    async fn insert_rides(
        &self,
        rides: &[(usize, Ride, String)],
    ) -> Result<std::collections::HashSet<String>, sqlx::Error> {
        if rides.is_empty() {
            return Ok(Default::default());
        }
        let now = super::now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            tx.share_freeze_lock().await?;
            let mut created: std::collections::HashSet<String> = std::collections::HashSet::with_capacity(rides.len());
            let mut ended = Vec::with_capacity(rides.len());
            for chunk in rides.chunks(RIDE_CHUNK) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO rides (ride_id, driver_id, distance_m, started_at, ended_at, content_hash, received_at) ",
                );
                insert.push_values(chunk, |mut row, (_, ride, hash)| {
                    row.push_bind(&ride.ride_id)
                        .push_bind(&ride.driver_id)
                        .push_bind(ride.distance_m)
                        .push_bind(ride.started_at)
                        .push_bind(ride.ended_at)
                        .push_bind(hash)
                        .push_bind(now);
                });
                insert.push(" ON CONFLICT (ride_id) DO NOTHING RETURNING ride_id");
                let ids: Vec<String> = insert.build_query_scalar().fetch_all(&mut *tx).await?;
                let new: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
                let new_rides: Vec<&Ride> =
                    chunk.iter().map(|(_, ride, _)| ride).filter(|ride| new.contains(ride.ride_id.as_str())).collect();
                let seats: Vec<(&Ride, &Seat)> =
                    new_rides.iter().flat_map(|ride| ride.seats.iter().map(move |s| (*ride, s))).collect();
                for seats in seats.chunks(RIDE_CHUNK) {
                    let mut insert =
                        sqlx::QueryBuilder::new("INSERT INTO ride_seats (ended_at, ride_id, passenger_id, attendance) ");
                    insert.push_values(seats, |mut row, (ride, seat)| {
                        row.push_bind(ride.ended_at)
                            .push_bind(&ride.ride_id)
                            .push_bind(&seat.passenger_id)
                            .push_bind(attendance_str(seat.attendance));
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                if !ids.is_empty() {
                    let mut late = sqlx::QueryBuilder::new("INSERT INTO late_rides (ride_id, ended_at, queued_at) SELECT r.ride_id, r.ended_at, ");
                    late.push_bind(now).push(" FROM rides r WHERE r.ride_id IN (");
                    super::push_in_list(&mut late, ids.iter());
                    late.push(" AND EXISTS (SELECT 1 FROM weeks w WHERE w.status = 'approved' AND w.starts_at <= r.ended_at AND w.ends_at > r.ended_at)");
                    late.build().execute(&mut *tx).await?;
                }
                ended.extend(new_rides.iter().map(|ride| ride.ended_at));
                created.extend(ids);
            }
            tx.count_new_rides(&ended).await?;
            tx.commit().await?;
            Ok(created)
        })
    }

    /// Which of `ids` are users.
    async fn known_users<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<std::collections::HashSet<String>, sqlx::Error> {
        let ids: std::collections::BTreeSet<&str> = ids.collect();
        let ids: Vec<&str> = ids.into_iter().collect();
        let mut known = std::collections::HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(RIDE_CHUNK) {
            let found: Vec<String> = with_pool!(self, pool => {
                let mut select = sqlx::QueryBuilder::new("SELECT id FROM users WHERE id IN (");
                super::push_in_list(&mut select, chunk.iter());
                select.build_query_scalar().fetch_all(pool).await?
            });
            known.extend(found);
        }
        Ok(known)
    }

    /// The stored content hash of each of `ids` that is a ride.
    async fn ride_hashes(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::HashMap<String, String>, sqlx::Error> {
        let mut hashes = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(RIDE_CHUNK) {
            let found: Vec<(String, String)> = with_pool!(self, pool => {
                let mut select = sqlx::QueryBuilder::new("SELECT ride_id, content_hash FROM rides WHERE ride_id IN (");
                super::push_in_list(&mut select, chunk.iter());
                select.build_query_as().fetch_all(pool).await?
            });
            hashes.extend(found);
        }
        Ok(hashes)
    }

    /// Names the first user of `ride` that does not exist.
    async fn missing_user(&self, ride: &Ride) -> Result<StoreRideError, sqlx::Error> {
        let known = self.known_users(user_ids(ride)).await?;
        unknown_user(ride, &known)
            .ok_or_else(|| sqlx::Error::Protocol("a foreign key failed but every user exists".into()))
    }

    /// The stored ride with this id.
    pub async fn ride(&self, ride_id: &str) -> Result<Option<Ride>, sqlx::Error> {
        type Row = (String, String, i64, DateTime<Utc>, DateTime<Utc>);
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as("SELECT ride_id, driver_id, distance_m, started_at, ended_at FROM rides WHERE ride_id = $1")
                .bind(ride_id)
                .fetch_optional(pool)
                .await?
        });
        let Some((ride_id, driver_id, distance_m, started_at, ended_at)) = row else { return Ok(None) };
        let seats: Vec<(String, String)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT passenger_id, attendance FROM ride_seats WHERE ride_id = $1 ORDER BY passenger_id")
                .bind(&ride_id)
                .fetch_all(pool)
                .await?
        });
        let seats = seats
            .into_iter()
            .map(|(passenger_id, a)| Ok(Seat { passenger_id, attendance: attendance_from(&a)? }))
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Some(Ride { ride_id, driver_id, distance_m, started_at, ended_at, seats }))
    }

    /// How many rides are stored.
    pub async fn ride_count(&self) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM rides").fetch_one(pool).await)
    }
}

impl Db {
    /// Each ride that ended in `[start, end)`, with its seats in passenger-id order, given to
    /// `each` as it is read (by end, then id): a million passengers' rides are never held at
    /// once. Returns how many there were. PostgreSQL joins the week's rides and seats (a hash
    /// join); SQLite reads them in chunks, in the order it keeps them (migration 0025).
    pub async fn each_ride_ended_between<E: From<sqlx::Error>>(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        mut each: impl FnMut(Ride) -> Result<(), E>,
    ) -> Result<i64, E> {
        use futures::TryStreamExt;
        let pool = match self {
            Db::Sqlite(pool) => return each_ride_in_chunks(pool, start, end, each).await,
            Db::Postgres(pool) => pool,
        };
        let mut count = 0;
        // The ride being read, and the one before it once the next one starts.
        let mut rides: Vec<Ride> = Vec::with_capacity(2);
        let mut rows = sqlx::query_as::<_, RideRow>(
            "SELECT r.ride_id, r.driver_id, r.distance_m, r.started_at, r.ended_at, s.passenger_id, s.attendance \
             FROM rides r JOIN ride_seats s ON s.ride_id = r.ride_id \
             WHERE r.ended_at >= $1 AND r.ended_at < $2 ORDER BY r.ended_at, r.ride_id, s.passenger_id",
        )
        .bind(start)
        .bind(end)
        .fetch(pool);
        while let Some(row) = rows.try_next().await? {
            push_seat(&mut rides, row)?;
            if rides.len() > 1 {
                count += 1;
                each(rides.remove(0))?;
            }
        }
        for done in rides {
            count += 1;
            each(done)?;
        }
        Ok(count)
    }
}

/// How many rides SQLite reads into one row of a week's read.
const WEEK_READ_CHUNK: i64 = 2_000;

/// A ride as SQLite's chunked read writes it: id, driver, distance, start, end (as stored), and
/// its seats as (passenger, attendance).
type ChunkedRide = (String, String, i64, String, String, Vec<(String, String)>);

/// [`Db::each_ride_ended_between`] on SQLite: the rides are read `WEEK_READ_CHUNK` at a time,
/// each chunk one row of JSON that SQLite writes from the rides' covering index and the seats
/// beside them. A row of sqlx's SQLite driver is handed from its worker thread to the reader
/// one at a time, with a thread wake-up each (most of a week's read, measured: half the CPU in
/// futex wake-ups and context switches); a chunk is one hand-over for thousands of seats.
async fn each_ride_in_chunks<E: From<sqlx::Error>>(
    pool: &sqlx::SqlitePool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    mut each: impl FnMut(Ride) -> Result<(), E>,
) -> Result<i64, E> {
    let time = |text: &str| -> Result<DateTime<Utc>, sqlx::Error> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.to_utc())
            .map_err(|e| super::weeks::decode_msg(format!("a ride's time {text:?}: {e}")))
    };
    let mut count = 0;
    // The last ride read, as stored: the next chunk starts after it; the first chunk, at the
    // week's start, written as sqlx writes a time (every ride id has a character). The key
    // (end, id) is what SQLite seeks to in the rides' index, each chunk where the last ended.
    let mut after_end = start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
    let mut after_id = String::new();
    loop {
        let chunk: String = sqlx::query_scalar(
            "SELECT json_group_array(json_array(r.ride_id, r.driver_id, r.distance_m, r.started_at, r.ended_at, \
               json((SELECT json_group_array(json_array(s.passenger_id, s.attendance) ORDER BY s.passenger_id) \
                     FROM ride_seats s WHERE s.ended_at = r.ended_at AND s.ride_id = r.ride_id))) \
               ORDER BY r.ended_at, r.ride_id) \
             FROM (SELECT ride_id, driver_id, distance_m, started_at, ended_at FROM rides \
                   WHERE (ended_at, ride_id) > ($1, $2) AND ended_at < $3 \
                   ORDER BY ended_at, ride_id LIMIT $4) r",
        )
        .bind(&after_end)
        .bind(&after_id)
        .bind(end)
        .bind(WEEK_READ_CHUNK)
        .fetch_one(pool)
        .await?;
        let rides: Vec<ChunkedRide> = serde_json::from_str(&chunk)
            .map_err(|e| super::weeks::decode_msg(format!("a week's rides: {e}")))?;
        let Some(last) = rides.last() else { return Ok(count) };
        (after_end, after_id) = (last.4.clone(), last.0.clone());
        let whole = rides.len() as i64 == WEEK_READ_CHUNK;
        for (ride_id, driver_id, distance_m, started_at, ended_at, seats) in rides {
            // As the join of the other database: a ride without seats is not read.
            if seats.is_empty() {
                continue;
            }
            let seats = seats
                .into_iter()
                .map(|(passenger_id, attendance)| {
                    Ok(Seat { passenger_id, attendance: attendance_from(&attendance)? })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let (started_at, ended_at) = (time(&started_at)?, time(&ended_at)?);
            count += 1;
            each(Ride { ride_id, driver_id, distance_m, started_at, ended_at, seats })?;
        }
        if !whole {
            return Ok(count);
        }
    }
}

/// A ride joined with one of its seats.
pub(crate) type RideRow = (String, String, i64, DateTime<Utc>, DateTime<Utc>, String, String);

/// Rides from rows of a ride joined with its seats, ordered by ride.
pub(crate) fn group_rides(rows: Vec<RideRow>) -> Result<Vec<Ride>, sqlx::Error> {
    let mut rides: Vec<Ride> = Vec::new();
    for row in rows {
        push_seat(&mut rides, row)?;
    }
    Ok(rides)
}

/// Adds one row of a ride joined with a seat: a seat of the last ride, or a new ride.
fn push_seat(rides: &mut Vec<Ride>, row: RideRow) -> Result<(), sqlx::Error> {
    let (ride_id, driver_id, distance_m, started_at, ended_at, passenger_id, attendance) = row;
    let seat = Seat { passenger_id, attendance: attendance_from(&attendance)? };
    match rides.last_mut() {
        Some(last) if last.ride_id == ride_id => last.seats.push(seat),
        _ => rides.push(Ride { ride_id, driver_id, distance_m, started_at, ended_at, seats: vec![seat] }),
    }
    Ok(())
}
