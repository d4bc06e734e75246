//! How figures and states are written on every page.

use crate::model::money::Money;

/// `7,200.36 USD`.
pub fn money(m: Money) -> String {
    format!("{} {}", grouped(m), m.currency().code())
}

/// The amount with its thousands grouped by commas: `7,200.36`, `-1,000`, `12.30`.
pub fn grouped(m: Money) -> String {
    let text = m.to_string();
    let (sign, unsigned) = text.strip_prefix('-').map_or(("", text.as_str()), |rest| ("-", rest));
    let (whole, decimals) = unsigned.split_once('.').map_or((unsigned, None), |(w, d)| (w, Some(d)));
    let mut out = String::with_capacity(text.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    match decimals {
        Some(d) => format!("{sign}{out}.{d}"),
        None => format!("{sign}{out}"),
    }
}

/// The badge class of a charge, transfer or refund state.
pub fn state_class(state: &str) -> &'static str {
    match state {
        "charged" | "paid" | "succeeded" => "badge badge-success",
        "declined" | "awaiting_approval" | "unknown" => "badge badge-warning",
        "uncollectible" | "failed" => "badge badge-danger",
        "pending" | "started" => "badge badge-info",
        _ => "badge",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::money::BillingCurrency;

    #[test]
    fn amounts_group_their_thousands() {
        let usd = BillingCurrency::from_code("USD").unwrap();
        let jpy = BillingCurrency::from_code("JPY").unwrap();
        let cases = [
            (720_036, usd, "7,200.36 USD"),
            (1230, usd, "12.30 USD"),
            (-100_000_000, usd, "-1,000,000.00 USD"),
            (0, usd, "0.00 USD"),
            (123_456, jpy, "123,456 JPY"),
            (-999, jpy, "-999 JPY"),
        ];
        for (minor, currency, text) in cases {
            assert_eq!(money(Money::from_minor(minor, currency)), text);
        }
    }
}
