//! Exact money: an integer number of the currency's minor units, with the currency beside it.
//! Never a float. Arithmetic is checked (an overflow is an error, not a wrap), and mixing
//! currencies is an error.

use std::fmt;
use std::str::FromStr;

use iso_currency::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Why an amount or a currency was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    #[error("{0} has no minor unit, so it cannot be billed")]
    NoMinorUnit(&'static str),
    #[error("{value:?} is not an amount in {currency} (at most {exponent} decimals, like {example})")]
    BadAmount { value: String, currency: &'static str, exponent: u32, example: String },
    #[error("the amount is too large")]
    Overflow,
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(&'static str, &'static str),
}

/// A currency that has a minor unit (USD: cents, exponent 2; JPY: exponent 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BillingCurrency {
    currency: Currency,
    exponent: u32,
}

impl BillingCurrency {
    /// Accepts an ISO 4217 code of a currency with a minor unit.
    pub fn from_code(code: &str) -> Result<BillingCurrency, MoneyError> {
        let currency =
            Currency::from_code(code.trim()).ok_or_else(|| MoneyError::UnknownCurrency(code.into()))?;
        let exponent = currency.exponent().ok_or(MoneyError::NoMinorUnit(currency.code()))?;
        Ok(BillingCurrency { currency, exponent: u32::from(exponent) })
    }

    /// The ISO 4217 code.
    pub fn code(self) -> &'static str {
        self.currency.code()
    }

    /// Decimals of the major unit: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u32 {
        self.exponent
    }
}

impl fmt::Display for BillingCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for BillingCurrency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for BillingCurrency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        BillingCurrency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: `minor` units of `currency` (1230 USD minor = 12.30 USD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: BillingCurrency,
}

impl Money {
    /// `minor` minor units of `currency`.
    pub fn from_minor(minor: i64, currency: BillingCurrency) -> Money {
        Money { minor, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: BillingCurrency) -> Money {
        Money::from_minor(0, currency)
    }

    /// Parses a major-unit amount written with at most the currency's decimals: `"12.3"` and
    /// `"12.30"` are 1230 USD minor units; `"12.305"` USD and `"1.5"` JPY are refused.
    pub fn parse(value: &str, currency: BillingCurrency) -> Result<Money, MoneyError> {
        let bad = || MoneyError::BadAmount {
            value: value.to_owned(),
            currency: currency.code(),
            exponent: currency.exponent,
            example: Money::from_minor(1230 * 10i64.pow(currency.exponent) / 100, currency).to_string(),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.contains(['e', 'E', '_', ' ']) || trimmed.starts_with('+') {
            return Err(bad());
        }
        let decimal = Decimal::from_str(trimmed).map_err(|_| bad())?;
        if decimal.scale() > currency.exponent && decimal.normalize().scale() > currency.exponent {
            return Err(bad());
        }
        let scaled =
            decimal.checked_mul(Decimal::from(10i64.pow(currency.exponent))).ok_or(MoneyError::Overflow)?;
        let minor: i64 = scaled.trunc().try_into().map_err(|_| MoneyError::Overflow)?;
        Ok(Money::from_minor(minor, currency))
    }

    /// `amount` (major units) rounded half to even to the currency's minor unit: for defaults
    /// written once for every currency (0.35 is 0.35 USD, 0 JPY, 0.350 KWD).
    pub fn from_decimal_rounded(amount: Decimal, currency: BillingCurrency) -> Result<Money, MoneyError> {
        let rounded = amount
            .round_dp_with_strategy(currency.exponent, rust_decimal::RoundingStrategy::MidpointNearestEven);
        let scaled =
            rounded.checked_mul(Decimal::from(10i64.pow(currency.exponent))).ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(scaled.trunc().try_into().map_err(|_| MoneyError::Overflow)?, currency))
    }

    /// The amount in minor units.
    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> BillingCurrency {
        self.currency
    }

    /// The amount in major units as an exact decimal (12.30).
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent)
    }

    /// `self + other`; an error for different currencies or an overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.minor
            .checked_add(other.minor)
            .map(|m| Money::from_minor(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`; an error for different currencies or an overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|m| Money::from_minor(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// The sum of `amounts`, all in `currency`.
    pub fn sum(
        currency: BillingCurrency,
        amounts: impl IntoIterator<Item = Money>,
    ) -> Result<Money, MoneyError> {
        amounts.into_iter().try_fold(Money::zero(currency), Money::checked_add)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency.code(), other.currency.code()))
        }
    }
}

impl fmt::Display for Money {
    /// Major units with exactly the currency's decimals: `12.30`, `-0.05`, `1230` (JPY).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.*}", self.currency.exponent as usize, self.to_decimal())
    }
}

/// JSON: `{"amount": "12.30", "currency": "USD"}` (the contract's shape).
#[derive(Serialize, Deserialize)]
struct MoneyJson {
    amount: String,
    currency: BillingCurrency,
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        MoneyJson { amount: self.to_string(), currency: self.currency }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = MoneyJson::deserialize(d)?;
        Money::parse(&json.amount, json.currency).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> BillingCurrency {
        BillingCurrency::from_code("USD").unwrap()
    }

    #[test]
    fn exponents_come_from_iso_4217() {
        assert_eq!(usd().exponent(), 2);
        assert_eq!(BillingCurrency::from_code("JPY").unwrap().exponent(), 0);
        assert_eq!(BillingCurrency::from_code("KWD").unwrap().exponent(), 3);
        assert_eq!(BillingCurrency::from_code("XAU"), Err(MoneyError::NoMinorUnit("XAU")));
        assert!(matches!(BillingCurrency::from_code("DOLLARS"), Err(MoneyError::UnknownCurrency(_))));
    }

    #[test]
    fn parsing_is_exact_and_strict() {
        let jpy = BillingCurrency::from_code("JPY").unwrap();
        assert_eq!(Money::parse("12.3", usd()).unwrap().minor(), 1230);
        assert_eq!(Money::parse("12.30", usd()).unwrap().minor(), 1230);
        assert_eq!(Money::parse("-0.05", usd()).unwrap().minor(), -5);
        assert_eq!(Money::parse("12.300", usd()).unwrap().minor(), 1230, "trailing zeros are exact");
        assert_eq!(Money::parse("1230", jpy).unwrap().minor(), 1230);
        for bad in ["12.305", "", "abc", "1e3", "+1", "1_000", "1 000", "NaN", "99999999999999999999"] {
            assert!(Money::parse(bad, usd()).is_err(), "{bad}");
        }
        assert!(Money::parse("1.5", jpy).is_err());
        let message = Money::parse("12.305", usd()).unwrap_err().to_string();
        assert!(message.contains("at most 2 decimals") && message.contains("12.30"), "{message}");
    }

    #[test]
    fn display_and_json_use_the_currency_decimals() {
        assert_eq!(Money::from_minor(1230, usd()).to_string(), "12.30");
        assert_eq!(Money::from_minor(-5, usd()).to_string(), "-0.05");
        assert_eq!(Money::from_minor(1230, BillingCurrency::from_code("JPY").unwrap()).to_string(), "1230");
        let json = serde_json::to_string(&Money::from_minor(1230, usd())).unwrap();
        assert_eq!(json, r#"{"amount":"12.30","currency":"USD"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), Money::from_minor(1230, usd()));
        assert!(serde_json::from_str::<Money>(r#"{"amount":"1.001","currency":"USD"}"#).is_err());
    }

    #[test]
    fn arithmetic_is_checked() {
        let eur = BillingCurrency::from_code("EUR").unwrap();
        let a = Money::from_minor(100, usd());
        assert_eq!(a.checked_add(Money::from_minor(1, eur)), Err(MoneyError::CurrencyMismatch("USD", "EUR")));
        assert_eq!(Money::from_minor(i64::MAX, usd()).checked_add(a), Err(MoneyError::Overflow));
        assert_eq!(Money::sum(usd(), [a, a, a]).unwrap().minor(), 300);
    }

    proptest! {
        #[test]
        fn display_then_parse_is_the_identity(minor in -1_000_000_000_000i64..1_000_000_000_000, code in prop::sample::select(vec!["USD", "JPY", "KWD", "EUR", "CLF"])) {
            let currency = BillingCurrency::from_code(code).unwrap();
            let money = Money::from_minor(minor, currency);
            prop_assert_eq!(Money::parse(&money.to_string(), currency).unwrap(), money);
        }
    }
}
