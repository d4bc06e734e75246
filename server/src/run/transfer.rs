//! Paying drivers: a batch of claimed payouts, their connected accounts (made in test mode,
//! waited for otherwise), attempts written before the calls, outcomes recorded together; a
//! payout the balance cannot cover waits for funds.

use super::*;

/// The provider's connected account for a driver, made on first use in test mode.
async fn account_of(shared: &Shared, driver_id: &str) -> Result<Option<String>, anyhow::Error> {
    if let Some(found) = shared.db.provider_account(driver_id).await? {
        return Ok(Some(found));
    }
    if !shared.client.provisions() {
        return Ok(None);
    }
    let (_, email) = shared.db.user_contact(driver_id).await?.unwrap_or_else(|| (driver_id.to_owned(), None));
    let meta: Metadata = [("driver_id", driver_id.to_owned())].into_iter().collect();
    shared.limiter.until_ready().await;
    let account =
        shared.client.create_account(email.as_deref(), &meta, &format!("account:{driver_id}")).await?;
    shared.db.save_provider_account(driver_id, &account).await?;
    Ok(shared.db.provider_account(driver_id).await?)
}

/// The ledger transaction of a transfer made for payout `payout_id` of `week`: the driver is owed
/// it no more, the provider holds it no more.
pub fn transfer_ledger(
    payout_id: i64,
    driver_id: &str,
    amount: Money,
    week: &str,
) -> Result<Transaction, crate::billing::ledger::LedgerError> {
    Ok(Transaction::transfer(
        "transfer",
        format!("payout-{payout_id}"),
        Account::DriverPayable(driver_id.to_owned()),
        Account::ProviderClearing,
        amount,
    )?
    .of_week(week))
}

/// Pays a batch of drivers, as [`charge_batch`] charges passengers: attempts written in one
/// transaction before the calls, transfers to their connected accounts side by side, outcomes
/// recorded in one transaction after.
pub(super) async fn transfer_batch(shared: &Shared, worker: &str, items: Vec<Claimed>) -> anyhow::Result<()> {
    let s = &shared.settings;
    let db = &shared.db;
    let drivers: Vec<&str> =
        items.iter().filter(|i| i.amount_minor > 0).map(|i| i.user_id.as_str()).collect();
    let mut accounts: HashMap<String, Result<Option<String>, anyhow::Error>> =
        db.provider_accounts(&drivers).await?.into_iter().map(|(d, a)| (d, Ok(Some(a)))).collect();
    let missing: std::collections::BTreeSet<&str> =
        drivers.iter().copied().filter(|d| !accounts.contains_key(*d)).collect();
    let made = futures::future::join_all(
        missing.into_iter().map(|d| async move { (d, account_of(shared, d).await) }),
    )
    .await;
    accounts.extend(made.into_iter().map(|(d, a)| (d.to_owned(), a)));

    // A driver without a connected account: the payout waits for one, without a call or an
    // attempt (the carpool app's user sync brings it forward when it sends the account).
    let mut to_pay = Vec::with_capacity(items.len());
    let mut no_account = Vec::new();
    let mut set_up_failed = false;
    for item in items {
        match accounts.get(&item.user_id) {
            _ if item.amount_minor == 0 => to_pay.push(item),
            Some(Ok(Some(_))) => to_pay.push(item),
            Some(Ok(None)) => no_account.push(item.id),
            // The provider refused to make the account (one without connected accounts, say): an
            // attempt that failed, counted like any other, not a set-up to try forever.
            Some(Err(e)) if matches!(e.downcast_ref::<ProviderError>(), Some(ProviderError::Refused(_))) => {
                to_pay.push(item)
            }
            _ => {
                // The provider could not be reached to make the account: the payout goes back.
                db.release(Work::Transfer, item.id, worker).await?;
                set_up_failed = true;
            }
        }
    }
    if !no_account.is_empty() {
        let retry_at = seconds_from_now(s.funds_retry_seconds);
        let detail = "the driver has no connected account at the provider yet";
        db.defer_payouts(&no_account, worker, "account", detail, retry_at).await?;
    }
    if set_up_failed {
        tracing::warn!("setting up a connected account failed");
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    let attempts =
        db.begin_attempts(Work::Transfer, &shared.run.week, &to_pay, worker, Some(lease(s))).await?;
    let begun: Vec<(Claimed, Attempt)> =
        to_pay.into_iter().zip(attempts).filter_map(|(item, attempt)| Some((item, attempt?))).collect();

    let mut outcomes = Vec::with_capacity(begun.len());
    let mut calls = Vec::with_capacity(begun.len());
    for (item, attempt) in begun {
        if item.amount_minor == 0 {
            // Nothing to move (the platform kept the whole fare): paid, no call, no ledger.
            let paid = Outcome::Succeeded {
                id: item.id,
                key: attempt.key,
                provider_id: "none".into(),
                ledger: None,
            };
            outcomes.push((item, paid));
            continue;
        }
        let refused = match accounts.get(&item.user_id) {
            Some(Ok(Some(account))) => {
                calls.push((item, attempt, account.clone()));
                continue;
            }
            Some(Err(e)) => format!("the provider refused a connected account for {}: {e}", item.user_id),
            _ => format!("{} has no connected account at the provider", item.user_id),
        };
        let outcome = refusal(shared, &item, attempt.key, "failed", refused, s.decline_retry_seconds);
        outcomes.push((item, outcome));
    }
    let answers =
        futures::future::join_all(calls.into_iter().map(|(item, attempt, destination)| async move {
            shared.limiter.until_ready().await;
            if shared.status.borrow().stopped() {
                return (item, attempt, None);
            }
            // Past the key-reuse window the key is never sent again: the transfer is looked up.
            if lookup::past_window(shared, &attempt) {
                let looked = lookup::transfer(shared, &item, &attempt).await;
                return (item, attempt, Some(Err(looked)));
            }
            let request = TransferRequest {
                amount_minor: item.amount_minor,
                currency: shared.run.currency.clone(),
                destination,
                transfer_group: Some(shared.run.week.clone()),
                metadata: metadata([
                    ("payout_id", item.id.to_string()),
                    ("driver_id", item.user_id.clone()),
                    ("week", shared.run.week.clone()),
                ]),
                idempotency_key: attempt.key.clone(),
            };
            let answer = shared.client.transfer(&request).await;
            (item, attempt, Some(Ok(answer)))
        }))
        .await;
    let mut halts = Vec::new();
    for (item, attempt, answer) in answers {
        let answer = match answer {
            None => {
                db.release(Work::Transfer, item.id, worker).await?;
                continue;
            }
            Some(Ok(answer)) => answer,
            Some(Err(looked)) => match looked {
                lookup::Looked::Made { id, amount_minor, more } => {
                    if amount_minor != item.amount_minor {
                        halts.push(format!(
                            "payout {}: looked up at the provider, {id} moved {amount_minor} minor units for a payout of {}",
                            item.id, item.amount_minor
                        ));
                    }
                    if more > 0 {
                        halts.push(format!(
                            "payout {}: looked up at the provider, it holds {more} more transfer(s) of it",
                            item.id
                        ));
                    }
                    Ok(id)
                }
                lookup::Looked::Refused(detail) => Err(ProviderError::Refused(detail)),
                lookup::Looked::Undecided(detail) => Err(ProviderError::Unknown(detail)),
                lookup::Looked::NotMade(detail) => {
                    outcomes.push((item.clone(), Outcome::NotMade { id: item.id, key: attempt.key, detail }));
                    continue;
                }
                lookup::Looked::Held(detail) => {
                    halts.push(format!("payout {} waits for a person: {detail}", item.id));
                    outcomes.push((item.clone(), Outcome::Held { id: item.id, key: attempt.key, detail }));
                    continue;
                }
            },
        };
        let outcome = match answer {
            Ok(id) => {
                let amount = Money::from_minor(item.amount_minor, shared.currency);
                let ledger = transfer_ledger(item.id, &item.user_id, amount, &shared.run.week)?;
                Outcome::Succeeded { id: item.id, key: attempt.key, provider_id: id, ledger: Some(ledger) }
            }
            Err(ProviderError::Refused(message)) => {
                refusal(shared, &item, attempt.key, "failed", message, s.unknown_retry_seconds)
            }
            // Not a failure: the funds of the week's charges are not available yet.
            Err(ProviderError::Unfunded(message)) => Outcome::Waiting {
                id: item.id,
                key: attempt.key,
                waiting_for: "funds",
                detail: message,
                retry_at: seconds_from_now(s.funds_retry_seconds),
            },
            Err(e) => Outcome::Unknown {
                id: item.id,
                key: attempt.key,
                detail: e.to_string(),
                retry_at: seconds_from_now(s.unknown_retry_seconds),
            },
        };
        outcomes.push((item, outcome));
    }
    let (items, outcomes): (Vec<Claimed>, Vec<Outcome>) = outcomes.into_iter().unzip();
    let recorded = db.record_outcomes(Work::Transfer, &outcomes).await?;
    for ((item, outcome), recorded) in items.iter().zip(&outcomes).zip(recorded) {
        if let (Outcome::Succeeded { provider_id, .. }, Recorded::Succeeded(false)) = (outcome, recorded) {
            halt(shared, &format!("payout {}: a second successful transfer ({provider_id})", item.id))
                .await?;
        }
    }
    if let Some(reason) = halts.first() {
        halt(shared, reason).await?;
    }
    Ok(())
}
