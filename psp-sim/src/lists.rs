//! Reading the simulated provider's objects back: one by id, or a page of a list with Stripe's
//! cursor pagination (`limit`, `starting_after`, `ending_before`; newest first) and its filter
//! on creation time (`created=T`, or `created[gt|gte|lt|lte]=T`).

use std::collections::HashMap;

use serde_json::{json, Value};

use super::error::StripeError;
use super::form::Params;
use super::objects::Object;
use super::store::{json_of, Store, Table};

/// Stripe's page size when none is asked for, and the largest it allows.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;

/// The kinds of object that can be read back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Customer,
    PaymentMethod,
    Account,
    PaymentIntent,
    Charge,
    Refund,
    Transfer,
    Dispute,
}

impl Store {
    /// One object by the id in the URL; 404 `resource_missing` when there is none.
    pub fn retrieve(&self, kind: Kind, id: &str, params: &Params) -> Result<Value, StripeError> {
        params.only(&[])?;
        fn one<T: Object>(table: &Table<T>, id: &str) -> Result<Value, StripeError> {
            table.get(id).map(json_of).ok_or_else(|| StripeError::not_found(T::NOUN, id))
        }
        match kind {
            Kind::Customer => one(&self.customers, id),
            Kind::PaymentMethod => one(&self.payment_methods, id),
            Kind::Account => one(&self.accounts, id),
            Kind::PaymentIntent => one(&self.payment_intents, id),
            Kind::Charge => one(&self.charges, id),
            Kind::Refund => one(&self.refunds, id),
            Kind::Transfer => one(&self.transfers, id),
            Kind::Dispute => one(&self.disputes, id),
        }
    }

    /// A page of a list, with the filters Stripe offers on it.
    pub fn list(&self, kind: Kind, params: &Params) -> Result<Value, StripeError> {
        match kind {
            Kind::Customer => {
                let q = ListQuery::parse(params, &["email"])?;
                page(&self.customers, &q, "/v1/customers", |c| q.matches("email", c.email.as_deref()))
            }
            Kind::PaymentIntent => {
                let q = ListQuery::parse(params, &["customer"])?;
                page(&self.payment_intents, &q, "/v1/payment_intents", |pi| {
                    q.matches("customer", pi.customer.as_deref())
                })
            }
            Kind::Charge => {
                let q = ListQuery::parse(params, &["customer", "payment_intent"])?;
                page(&self.charges, &q, "/v1/charges", |c| {
                    q.matches("customer", c.customer.as_deref())
                        && q.matches("payment_intent", Some(&c.payment_intent))
                })
            }
            Kind::Refund => {
                let q = ListQuery::parse(params, &["charge", "payment_intent"])?;
                page(&self.refunds, &q, "/v1/refunds", |r| {
                    q.matches("charge", Some(&r.charge))
                        && q.matches("payment_intent", Some(&r.payment_intent))
                })
            }
            Kind::Transfer => {
                let q = ListQuery::parse(params, &["destination", "transfer_group"])?;
                page(&self.transfers, &q, "/v1/transfers", |t| {
                    q.matches("destination", Some(&t.destination))
                        && q.matches("transfer_group", t.transfer_group.as_deref())
                })
            }
            Kind::Dispute => {
                let q = ListQuery::parse(params, &["charge", "payment_intent"])?;
                page(&self.disputes, &q, "/v1/disputes", |d| {
                    q.matches("charge", Some(&d.charge))
                        && q.matches("payment_intent", Some(&d.payment_intent))
                })
            }
            Kind::PaymentMethod | Kind::Account => Err(StripeError::invalid(
                "This simulator does not list payment methods or accounts; retrieve them by id.",
            )),
        }
    }
}

/// A list request: page size, cursor and filters.
struct ListQuery {
    limit: usize,
    cursor: Option<Cursor>,
    filters: HashMap<String, String>,
    /// Objects created in `from..=to` (seconds since 1970).
    created: (i64, i64),
}

enum Cursor {
    /// The page of objects older than this one.
    StartingAfter(String),
    /// The page of objects newer than this one.
    EndingBefore(String),
}

impl ListQuery {
    fn parse(params: &Params, filters: &[&str]) -> Result<Self, StripeError> {
        let mut known = vec!["limit", "starting_after", "ending_before", "created"];
        known.extend_from_slice(filters);
        params.only(&known)?;
        let limit = match params.integer("limit")? {
            None => DEFAULT_LIMIT,
            Some(n) => usize::try_from(n).ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                StripeError::invalid_param(
                    "limit",
                    format!("Invalid limit: must be between 1 and {MAX_LIMIT}"),
                )
            })?,
        };
        let cursor = match (params.optional("starting_after")?, params.optional("ending_before")?) {
            (Some(_), Some(_)) => {
                return Err(StripeError::invalid(
                    "You may only specify one of these parameters: ending_before, starting_after.",
                ))
            }
            (Some(id), None) => Some(Cursor::StartingAfter(id)),
            (None, Some(id)) => Some(Cursor::EndingBefore(id)),
            (None, None) => None,
        };
        let mut found = HashMap::new();
        for name in filters {
            if let Some(value) = params.optional(name)? {
                found.insert((*name).to_owned(), value);
            }
        }
        Ok(Self { limit, cursor, filters: found, created: created_range(params)? })
    }

    /// Whether an object made at `created` passes the `created` filter.
    fn created_in(&self, created: i64) -> bool {
        (self.created.0..=self.created.1).contains(&created)
    }

    /// Whether an object's field passes the filter of that name (absent filters pass all).
    fn matches(&self, filter: &str, value: Option<&str>) -> bool {
        self.filters.get(filter).is_none_or(|wanted| value == Some(wanted.as_str()))
    }
}

/// The `created` filter as an inclusive range: `created=T` is exactly `T`; `created[gt]`,
/// `[gte]`, `[lt]` and `[lte]` bound it (together, all must hold).
fn created_range(params: &Params) -> Result<(i64, i64), StripeError> {
    let mut range = (i64::MIN, i64::MAX);
    let invalid = |name: &str, raw: &str| StripeError::invalid_param(name, format!("Invalid integer: {raw}"));
    // A plain `created=T` reads as text; the hash form does not.
    if let Ok(plain) = params.text("created") {
        return match plain {
            Some(raw) => raw.parse().map(|at| (at, at)).map_err(|_| invalid("created", raw)),
            None => Ok(range),
        };
    }
    for (path, raw) in params.under("created")? {
        let name = format!("created[{}]", path.join("]["));
        let at: i64 = raw.parse().map_err(|_| invalid(&name, raw))?;
        match path {
            [op] if op == "gt" => range.0 = range.0.max(at.saturating_add(1)),
            [op] if op == "gte" => range.0 = range.0.max(at),
            [op] if op == "lt" => range.1 = range.1.min(at.saturating_sub(1)),
            [op] if op == "lte" => range.1 = range.1.min(at),
            _ => {
                return Err(StripeError::invalid_param(&name, format!("Received unknown parameter: {name}")))
            }
        }
    }
    Ok(range)
}

/// Stripe's list object: newest first, `has_more` when the next page is not empty.
fn page<T: Object>(
    table: &Table<T>,
    q: &ListQuery,
    url: &str,
    keep: impl Fn(&T) -> bool,
) -> Result<Value, StripeError> {
    let keep = |r: &T| q.created_in(r.created()) && keep(r);
    let rows = table.rows();
    let position =
        |id: &str, param: &str| table.position(id).ok_or_else(|| StripeError::no_such(T::NOUN, id, param));
    let (data, has_more): (Vec<&T>, bool) = match &q.cursor {
        None => take(rows.iter().rev().filter(|r| keep(r)), q.limit),
        Some(Cursor::StartingAfter(id)) => {
            let at = position(id, "starting_after")?;
            take(rows[..at].iter().rev().filter(|r| keep(r)), q.limit)
        }
        Some(Cursor::EndingBefore(id)) => {
            // The newer objects closest to the cursor, still answered newest first.
            let at = position(id, "ending_before")?;
            let (mut data, has_more) = take(rows[at + 1..].iter().filter(|r| keep(r)), q.limit);
            data.reverse();
            (data, has_more)
        }
    };
    Ok(json!({
        "object": "list",
        "data": data.into_iter().map(json_of).collect::<Vec<_>>(),
        "has_more": has_more,
        "url": url,
    }))
}

/// The first `limit` items, and whether there were more.
fn take<'a, T: 'a>(items: impl Iterator<Item = &'a T>, limit: usize) -> (Vec<&'a T>, bool) {
    let mut data: Vec<&T> = items.take(limit + 1).collect();
    let has_more = data.len() > limit;
    data.truncate(limit);
    (data, has_more)
}
