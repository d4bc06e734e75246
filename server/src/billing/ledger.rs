//! The double-entry ledger's rules: every money movement is one transaction of postings that sum
//! to zero, in one currency. Pure; the run and refunds build transactions here and the database
//! stores them as they are.
//!
//! Accounts (debits positive, credits negative):
//! - `passenger_receivable:<user>`: what a passenger owes. Debited when their invoice is frozen,
//!   credited when it is charged (or written off).
//! - `provider_clearing`: money held at the payment provider. Debited by a charge, credited by a
//!   transfer to a driver or a refund.
//! - `driver_payable:<driver>`: what the platform owes a driver. Credited when the week is frozen,
//!   debited when the transfer is made.
//! - `platform_fees`: the platform's revenue, credited when the week is frozen.
//! - `refunds`: money given back to passengers, debited by a refund.
//! - `bad_debt`: invoices given up as uncollectible, debited when written off.
//! - `unexplained_charges`: money the provider took that no invoice explains (found by
//!   reconciliation): credited when it is recorded, debited when its repair refund is made.
//! - `disputes`: money a card issuer took back while it decides a dispute. Debited when the
//!   provider withdraws it, credited when the dispute is won (the money comes back) or lost.
//! - `dispute_fees`: what the provider charges per dispute, debited with the withdrawal.
//! - `dispute_losses`: disputed money gone for good, debited when a dispute is lost.

use std::fmt;

use app::model::money::{BillingCurrency, Money, MoneyError};

/// A ledger account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Account {
    PassengerReceivable(String),
    ProviderClearing,
    DriverPayable(String),
    PlatformFees,
    Refunds,
    BadDebt,
    UnexplainedCharges,
    Disputes,
    DisputeFees,
    DisputeLosses,
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::PassengerReceivable(user) => write!(f, "passenger_receivable:{user}"),
            Account::ProviderClearing => f.write_str("provider_clearing"),
            Account::DriverPayable(driver) => write!(f, "driver_payable:{driver}"),
            Account::PlatformFees => f.write_str("platform_fees"),
            Account::Refunds => f.write_str("refunds"),
            Account::BadDebt => f.write_str("bad_debt"),
            Account::UnexplainedCharges => f.write_str("unexplained_charges"),
            Account::Disputes => f.write_str("disputes"),
            Account::DisputeFees => f.write_str("dispute_fees"),
            Account::DisputeLosses => f.write_str("dispute_losses"),
        }
    }
}

/// One line of a transaction: `minor` units debited (positive) or credited (negative).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    pub account: Account,
    pub minor: i64,
}

/// A balanced transaction: made only through [`Transaction::new`], which checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// `week.freeze`, `charge`, `transfer`, `refund`, `write_off`.
    pub kind: &'static str,
    /// What caused it (an invoice, a payout, a refund): unique per kind, so that recording the
    /// same movement twice is refused by the database.
    pub reference: String,
    pub currency: BillingCurrency,
    pub postings: Vec<Posting>,
    /// The billing week whose invoices or payouts caused it (`YYYY-Www`), which reports group by.
    pub week: Option<String>,
}

/// Why a transaction is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a transaction needs at least two postings")]
    TooFew,
    #[error("a posting of zero to {0}")]
    Zero(String),
    #[error("the postings sum to {0}, not zero")]
    Unbalanced(i128),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl Transaction {
    /// A transaction of `postings`; refused unless they are at least two, none is zero, and they
    /// sum to zero.
    pub fn new(
        kind: &'static str,
        reference: impl Into<String>,
        currency: BillingCurrency,
        postings: Vec<Posting>,
    ) -> Result<Transaction, LedgerError> {
        if postings.len() < 2 {
            return Err(LedgerError::TooFew);
        }
        if let Some(zero) = postings.iter().find(|p| p.minor == 0) {
            return Err(LedgerError::Zero(zero.account.to_string()));
        }
        let sum: i128 = postings.iter().map(|p| i128::from(p.minor)).sum();
        if sum != 0 {
            return Err(LedgerError::Unbalanced(sum));
        }
        Ok(Transaction { kind, reference: reference.into(), currency, postings, week: None })
    }

    /// The same transaction, attributed to billing week `week`.
    pub fn of_week(mut self, week: impl Into<String>) -> Transaction {
        self.week = Some(week.into());
        self
    }

    /// A movement of `amount` from `from` (credited) to `to` (debited).
    pub fn transfer(
        kind: &'static str,
        reference: impl Into<String>,
        to: Account,
        from: Account,
        amount: Money,
    ) -> Result<Transaction, LedgerError> {
        Transaction::new(
            kind,
            reference,
            amount.currency(),
            vec![
                Posting { account: to, minor: amount.minor() },
                Posting { account: from, minor: -amount.minor() },
            ],
        )
    }
}

/// The money of a dispute, one transaction per step, each referenced by the provider's dispute id
/// (so the same step is recorded once however often its events arrive).
pub mod dispute {
    use super::*;

    /// The issuer took `amount` back and the provider charged `fee` for the dispute.
    pub fn withdrawal(dispute: &str, amount: Money, fee: Money) -> Result<Transaction, LedgerError> {
        let mut postings = vec![Posting { account: Account::Disputes, minor: amount.minor() }];
        if fee.minor() != 0 {
            postings.push(Posting { account: Account::DisputeFees, minor: fee.minor() });
        }
        postings.push(Posting { account: Account::ProviderClearing, minor: -(amount.minor() + fee.minor()) });
        Transaction::new("dispute.withdrawal", dispute, amount.currency(), postings)
    }

    /// The dispute was won: the provider gives the money back.
    pub fn won(dispute: &str, amount: Money) -> Result<Transaction, LedgerError> {
        Transaction::transfer("dispute.won", dispute, Account::ProviderClearing, Account::Disputes, amount)
    }

    /// The dispute was lost: the money is gone.
    pub fn lost(dispute: &str, amount: Money) -> Result<Transaction, LedgerError> {
        Transaction::transfer("dispute.lost", dispute, Account::DisputeLosses, Account::Disputes, amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::fixtures::usd;
    use proptest::prelude::*;

    /// What `transactions` leave in `account`.
    fn balance(transactions: &[Transaction], account: &Account) -> i64 {
        transactions.iter().flat_map(|t| &t.postings).filter(|p| &p.account == account).map(|p| p.minor).sum()
    }

    #[test]
    fn a_won_dispute_costs_its_fee_and_a_lost_one_its_amount_too() {
        let (amount, fee) = (usd(4_250), usd(1_500));
        let withdrawn = dispute::withdrawal("dp_1", amount, fee).unwrap();
        assert_eq!(balance(std::slice::from_ref(&withdrawn), &Account::ProviderClearing), -5_750);
        let won = [withdrawn.clone(), dispute::won("dp_1", amount).unwrap()];
        assert_eq!(balance(&won, &Account::Disputes), 0, "nothing held once decided");
        assert_eq!(balance(&won, &Account::ProviderClearing), -1_500, "only the fee is gone");
        let lost = [withdrawn, dispute::lost("dp_1", amount).unwrap()];
        assert_eq!(balance(&lost, &Account::Disputes), 0);
        assert_eq!(balance(&lost, &Account::DisputeLosses), 4_250);
        assert_eq!(balance(&lost, &Account::ProviderClearing), -5_750);
        // Without a fee there is no zero posting.
        assert_eq!(dispute::withdrawal("dp_2", amount, usd(0)).unwrap().postings.len(), 2);
    }

    #[test]
    fn unbalanced_and_degenerate_transactions_are_refused() {
        let usd_currency = usd(0).currency();
        let p = |account: Account, minor| Posting { account, minor };
        assert_eq!(
            Transaction::new("charge", "i1", usd_currency, vec![p(Account::ProviderClearing, 100)]),
            Err(LedgerError::TooFew)
        );
        assert_eq!(
            Transaction::new(
                "charge",
                "i1",
                usd_currency,
                vec![p(Account::ProviderClearing, 100), p(Account::PassengerReceivable("ana".into()), -99)]
            ),
            Err(LedgerError::Unbalanced(1))
        );
        assert!(matches!(
            Transaction::new(
                "charge",
                "i1",
                usd_currency,
                vec![p(Account::ProviderClearing, 0), p(Account::PlatformFees, 0)]
            ),
            Err(LedgerError::Zero(_))
        ));
        let t = Transaction::transfer(
            "charge",
            "i1",
            Account::ProviderClearing,
            Account::PassengerReceivable("ana".into()),
            usd(1230),
        )
        .unwrap();
        assert_eq!(t.postings.iter().map(|p| p.minor).sum::<i64>(), 0);
        assert_eq!(t.postings[1].account.to_string(), "passenger_receivable:ana");
    }

    proptest! {
        #[test]
        fn any_accepted_transaction_sums_to_zero(amounts in prop::collection::vec(-1_000_000i64..1_000_000, 1..8)) {
            let mut postings: Vec<Posting> = amounts
                .iter()
                .enumerate()
                .map(|(i, &minor)| Posting { account: Account::DriverPayable(format!("d{i}")), minor })
                .collect();
            let rest: i64 = -amounts.iter().sum::<i64>();
            postings.push(Posting { account: Account::ProviderClearing, minor: rest });
            match Transaction::new("transfer", "x", usd(0).currency(), postings.clone()) {
                Ok(t) => prop_assert_eq!(t.postings.iter().map(|p| i128::from(p.minor)).sum::<i128>(), 0),
                Err(LedgerError::Zero(_)) => prop_assert!(postings.iter().any(|p| p.minor == 0)),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
