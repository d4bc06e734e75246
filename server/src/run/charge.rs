//! Charging: a batch of claimed invoices checked (content hash, frozen amount, cap), their
//! attempts written before the calls, the calls made each in its turn under the account's limit,
//! the outcomes recorded together; passengers set up in test mode; no card, no call.

use super::*;

/// What setting up a passenger at the provider gave: their customer and card, `None` outside
/// test mode, or why the provider could not make them.
type SetUp = Result<Option<(String, String)>, anyhow::Error>;

/// Makes the provider's customer and card of each of `users` (who have none yet) in test mode:
/// side by side, three calls each within the configured rate, saved in one statement.
async fn make_customers<'u>(shared: &Shared, users: &[&'u str]) -> anyhow::Result<Vec<(&'u str, SetUp)>> {
    if !shared.client.provisions() {
        return Ok(users.iter().map(|u| (*u, Ok(None))).collect());
    }
    let contacts = shared.db.user_contacts(users).await?;
    let made = futures::future::join_all(users.iter().map(|user| {
        let (name, email) = contacts.get(*user).cloned().unwrap_or_else(|| ((*user).to_owned(), None));
        async move {
            let meta: Metadata = [("user_id", (*user).to_owned())].into_iter().collect();
            for _ in 0..3 {
                shared.limiter.until_ready().await;
            }
            let key = format!("customer:{user}");
            let customer = shared.client.create_customer(email.as_deref(), &name, &meta, &key).await?;
            let card = shared.client.attach_provisioned_card(&customer, &format!("card:{user}")).await?;
            Ok::<_, anyhow::Error>((customer, card))
        }
    }))
    .await;
    let saved: Vec<(&str, &str, &str)> = users
        .iter()
        .zip(&made)
        .filter_map(|(user, made)| made.as_ref().ok().map(|(c, p)| (*user, c.as_str(), p.as_str())))
        .collect();
    shared.db.save_provider_customers(&saved).await?;
    Ok(users.iter().copied().zip(made.into_iter().map(|m| m.map(Some))).collect())
}

/// The payment intent for one invoice under `key`, with the contract's metadata.
fn charge_request(shared: &Shared, item: &Claimed, customer: (String, String), key: &str) -> ChargeRequest {
    ChargeRequest {
        amount_minor: item.amount_minor,
        currency: shared.run.currency.clone(),
        customer: customer.0,
        payment_method: customer.1,
        metadata: metadata([
            ("invoice_id", item.id.to_string()),
            ("user_id", item.user_id.clone()),
            ("week", shared.run.week.clone()),
        ]),
        idempotency_key: key.to_owned(),
    }
}

/// The ledger transaction of a charge of `amount_minor` for `item`: the provider holds it, the
/// passenger owes it no more.
fn charge_ledger(shared: &Shared, item: &Claimed, amount_minor: i64) -> anyhow::Result<Transaction> {
    Ok(Transaction::transfer(
        "charge",
        format!("invoice-{}", item.id),
        Account::ProviderClearing,
        Account::PassengerReceivable(item.user_id.clone()),
        Money::from_minor(amount_minor, shared.currency),
    )?
    .of_week(&shared.run.week))
}

/// Charges a batch of claimed invoices. The checks of all of them (content hash, the cap, the
/// passenger's card) take a few queries; every attempt, with its idempotency key, is written in
/// one transaction before any call; the calls go out side by side, each after one more look at
/// the control; every outcome is recorded in one transaction after.
pub(super) async fn charge_batch(shared: &Shared, worker: &str, items: Vec<Claimed>) -> anyhow::Result<()> {
    let s = &shared.settings;
    let db = &shared.db;
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    let users: Vec<&str> = items.iter().map(|i| i.user_id.as_str()).collect();
    let matches = db.invoices_match_hashes(&ids).await?;
    // The cap is checked before the call: what the passenger was charged in this run plus this
    // invoice (plus any other of theirs in this batch). One invoice per passenger and week, so
    // only a duplicate or a huge invoice trips it.
    let mut charged = db.users_charged_in_run(shared.run.id, &users).await?;
    let mut problem = None;
    for item in &items {
        let total = charged.entry(item.user_id.clone()).or_default();
        *total += item.amount_minor;
        problem = match matches.get(&item.id).copied().flatten() {
            None => Some(format!("invoice {} no longer matches the content approved", item.id)),
            // The amount the call would send is the charge row's: it must be the frozen total
            // the content hash pins (the hash covers the lines, not the charge row).
            Some(frozen) if frozen != item.amount_minor => Some(format!(
                "invoice {}: the charge would send {} minor units, the approved invoice is {frozen}",
                item.id, item.amount_minor
            )),
            Some(_) if *total > s.user_cap_minor => Some(format!(
                "{} would be charged {} minor units in this run, above the cap {}",
                item.user_id, total, s.user_cap_minor
            )),
            Some(_) => None,
        };
        if problem.is_some() {
            break;
        }
    }
    if let Some(reason) = problem {
        release_all(shared, Work::Charge, worker, &items).await?;
        return halt(shared, &reason).await;
    }

    let mut customers = db.provider_customers(&users).await?;
    let missing: std::collections::BTreeSet<&str> =
        users.iter().copied().filter(|u| !customers.contains_key(*u)).collect();
    let made = make_customers(shared, &missing.into_iter().collect::<Vec<_>>()).await?;
    let mut no_card = Vec::new();
    let mut set_up_failed = false;
    for (user, made) in made {
        match made {
            Ok(Some(customer)) => {
                customers.insert(user.to_owned(), customer);
            }
            Ok(None) => no_card.push(user.to_owned()),
            Err(e) => {
                tracing::warn!(error = %e, user, "setting up the provider customer failed");
                set_up_failed = true;
            }
        }
    }
    let mut ready = Vec::with_capacity(items.len());
    let mut write_offs = Vec::new();
    for item in items {
        match customers.get(&item.user_id).cloned() {
            Some(customer) => ready.push((item, customer)),
            // No card, and nobody makes one: the invoice is uncollectible at once, without a
            // call, and the passenger is asked to add a card (flagged in the preview before).
            None if no_card.contains(&item.user_id) => write_offs.push((item.id, write_off(shared, &item)?)),
            // The provider could not be reached to set the customer up: the invoice goes back,
            // to be tried again soon.
            None => db.release(Work::Charge, item.id, worker).await?,
        }
    }
    if set_up_failed {
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    // An invoice with an attempt still open keeps its claim until the lease ends (its answer
    // must be known before it can be given up).
    db.give_up_without_card(&write_offs, worker).await?;

    let claimed: Vec<Claimed> = ready.iter().map(|(item, _)| item.clone()).collect();
    let attempts =
        db.begin_attempts(Work::Charge, &shared.run.week, &claimed, worker, Some(lease(s))).await?;
    // An item whose lease could not be renewed was taken over by another worker meanwhile.
    let calls = ready.into_iter().zip(attempts).filter_map(|(ready, attempt)| Some((ready, attempt?)));
    let answers = futures::future::join_all(calls.map(|((item, customer), attempt)| async move {
        // Each call in its turn under the account's limit (calls go out as they are granted, not
        // in bursts of a batch), and never after a stop.
        shared.limiter.until_ready().await;
        if shared.status.borrow().stopped() {
            return (item, attempt, None);
        }
        // An attempt past the key-reuse window is never sent again: the provider may have
        // forgotten its key, and would charge a second time. What it made is looked up.
        if lookup::past_window(shared, &attempt) {
            let looked = lookup::charge(shared, &item, &customer.0, &attempt).await;
            return (item, attempt, Some(Answer::Looked(looked)));
        }
        let request = charge_request(shared, &item, customer, &attempt.key);
        let answer = shared.client.charge(&request).await;
        (item, attempt, Some(Answer::Called(answer)))
    }))
    .await;

    let mut outcomes = Vec::with_capacity(answers.len());
    let mut about = Vec::with_capacity(answers.len());
    let mut rate_limited = false;
    let mut duplicates = Vec::new();
    for (item, attempt, answer) in answers {
        let answer = match answer.map(|a| a.into_call(&item, &attempt)) {
            Some(Err(outcome)) => {
                about.push((item, None));
                outcomes.push(*outcome);
                continue;
            }
            Some(Ok((answer, more))) => {
                if more > 0 {
                    duplicates.push((item.id, more));
                }
                Some(answer)
            }
            None => None,
        };
        let outcome = match answer {
            // Stopped before its call: the item goes back; its attempt stays open, so the next
            // try uses the same key.
            None => {
                db.release(Work::Charge, item.id, worker).await?;
                continue;
            }
            Some(Ok(ChargeOutcome::Succeeded { intent, amount_minor, .. })) => {
                // The ledger records what the provider says it took; a difference halts the run.
                let ledger = charge_ledger(shared, &item, amount_minor)?;
                let outcome = Outcome::Succeeded {
                    id: item.id,
                    key: attempt.key,
                    provider_id: intent.clone(),
                    ledger: Some(ledger),
                };
                about.push((item, Some((intent, amount_minor))));
                outcomes.push(outcome);
                continue;
            }
            Some(Ok(ChargeOutcome::Declined { code, decline_code, message })) => {
                let detail = format!("{code} {} {message}", decline_code.unwrap_or_default());
                let detail = detail.trim().to_owned();
                refusal(shared, &item, attempt.key, "declined", detail, s.decline_retry_seconds)
            }
            Some(Err(ProviderError::Refused(message))) => {
                refusal(shared, &item, attempt.key, "failed", message, s.decline_retry_seconds)
            }
            Some(Err(e)) => {
                rate_limited |= matches!(e, ProviderError::RateLimited(_));
                Outcome::Unknown {
                    id: item.id,
                    key: attempt.key,
                    detail: e.to_string(),
                    retry_at: seconds_from_now(s.unknown_retry_seconds),
                }
            }
        };
        about.push((item, None));
        outcomes.push(outcome);
    }
    let recorded = db.record_outcomes(Work::Charge, &outcomes).await?;
    // A lookup that could not be made holds its invoice for a person, and stops the run with
    // an alert: the provider's lists failing is the provider failing.
    if let Some(Outcome::Held { id, detail, .. }) =
        outcomes.iter().find(|o| matches!(o, Outcome::Held { .. }))
    {
        halt(shared, &format!("invoice {id} waits for a person: {detail}")).await?;
    }
    if let Some((invoice, more)) = duplicates.first() {
        let reason = format!(
            "invoice {invoice}: looked up at the provider, it holds {more} more successful payment(s) of it"
        );
        halt(shared, &reason).await?;
    }
    for ((item, charged), recorded) in about.into_iter().zip(recorded) {
        match (recorded, charged) {
            (Recorded::Succeeded(false), Some((intent, _))) => {
                halt(shared, &format!("invoice {}: a second successful charge ({intent})", item.id)).await?;
            }
            (Recorded::Succeeded(true), Some((intent, amount_minor)))
                if amount_minor != item.amount_minor =>
            {
                let reason = format!(
                    "invoice {}: the provider took {amount_minor} minor units for an invoice of {} ({intent})",
                    item.id, item.amount_minor
                );
                halt(shared, &reason).await?;
            }
            (Recorded::Refused(state), _) if state == "uncollectible" => {
                db.record_ledger(&write_off(shared, &item)?).await?;
            }
            _ => {}
        }
    }
    if rate_limited {
        tokio::time::sleep(StdDuration::from_secs(1)).await;
    }
    Ok(())
}

/// What became of a charge attempt: the answer of its call, or what a lookup found.
enum Answer {
    Called(Result<ChargeOutcome, ProviderError>),
    Looked(lookup::Looked),
}

impl Answer {
    /// The answer as a call's (with the count of further payments a lookup found), or the
    /// outcome to record when a lookup found nothing or could not be made.
    fn into_call(
        self,
        item: &Claimed,
        attempt: &Attempt,
    ) -> Result<(Result<ChargeOutcome, ProviderError>, usize), Box<Outcome>> {
        use lookup::Looked;
        let key = attempt.key.clone();
        Ok(match self {
            Answer::Called(answer) => (answer, 0),
            Answer::Looked(Looked::Made { id, amount_minor, more }) => {
                (Ok(ChargeOutcome::Succeeded { intent: id, charge: String::new(), amount_minor }), more)
            }
            Answer::Looked(Looked::Refused(message)) => {
                let declined =
                    ChargeOutcome::Declined { code: "declined".into(), decline_code: None, message };
                (Ok(declined), 0)
            }
            Answer::Looked(Looked::Undecided(detail)) => (Err(ProviderError::Unknown(detail)), 0),
            Answer::Looked(Looked::NotMade(detail)) => {
                return Err(Box::new(Outcome::NotMade { id: item.id, key, detail }))
            }
            Answer::Looked(Looked::Held(detail)) => {
                return Err(Box::new(Outcome::Held { id: item.id, key, detail }))
            }
        })
    }
}

/// The ledger transaction of an invoice given up: the passenger's debt becomes bad debt.
fn write_off(shared: &Shared, item: &Claimed) -> anyhow::Result<Transaction> {
    let amount = Money::from_minor(item.amount_minor, shared.currency);
    Ok(Transaction::transfer(
        "write_off",
        format!("invoice-{}", item.id),
        Account::BadDebt,
        Account::PassengerReceivable(item.user_id.clone()),
        amount,
    )?
    .of_week(&shared.run.week))
}
