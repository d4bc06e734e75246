//! How figures and states are written on every page.

use chrono::{DateTime, FixedOffset};

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

/// A moment the one way every page writes it: `Mon 7 Dec 2026 06:24:27 Europe/Paris (+01:00)`.
/// The server sends it in the business time zone (RFC 3339 with that zone's offset, see
/// `customers::in_zone`) with the zone's name, so the browser needs no time zone database;
/// `Mon 7 Dec 2026 05:24:27 UTC (+00:00)` when no zone is named. What is not a moment is shown as
/// it is.
pub fn when(iso: &str, zone: &str) -> String {
    match DateTime::parse_from_rfc3339(iso) {
        Ok(at) => moment(at, zone),
        Err(_) => iso.to_owned(),
    }
}

/// A moment the server built in the business time zone `zone` (`at.with_timezone(&tz)
/// .fixed_offset()`), written as [`when`] writes it: `Mon 7 Dec 2026 06:24:27 Europe/Paris
/// (+01:00)`; named `UTC` when no zone is.
pub fn moment(at: DateTime<FixedOffset>, zone: &str) -> String {
    let zone = if zone.is_empty() { "UTC" } else { zone };
    format!("{} {zone} ({})", at.format("%a %-d %b %Y %H:%M:%S"), at.format("%:z"))
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
    use chrono::TimeZone;

    #[test]
    fn moments_are_written_in_the_business_zone_with_its_offset() {
        assert_eq!(
            when("2026-12-07T06:24:27+01:00", "Europe/Paris"),
            "Mon 7 Dec 2026 06:24:27 Europe/Paris (+01:00)"
        );
        assert_eq!(when("2026-12-07T05:24:27.844Z", ""), "Mon 7 Dec 2026 05:24:27 UTC (+00:00)");
        assert_eq!(when("not a time", "UTC"), "not a time");
    }

    #[test]
    fn parsed_moments_are_written_as_their_text_is() {
        let paris = DateTime::parse_from_rfc3339("2026-07-07T07:24:27.844+02:00").unwrap();
        assert_eq!(moment(paris, "Europe/Paris"), "Tue 7 Jul 2026 07:24:27 Europe/Paris (+02:00)");
        assert_eq!(moment(paris, "Europe/Paris"), when("2026-07-07T07:24:27.844+02:00", "Europe/Paris"));
        let utc = chrono::Utc.with_ymd_and_hms(2026, 12, 7, 5, 24, 27).unwrap().fixed_offset();
        assert_eq!(moment(utc, ""), "Mon 7 Dec 2026 05:24:27 UTC (+00:00)");
        let tokyo = utc.with_timezone(&chrono_tz::Asia::Tokyo).fixed_offset();
        assert_eq!(moment(tokyo, "Asia/Tokyo"), "Mon 7 Dec 2026 14:24:27 Asia/Tokyo (+09:00)");
    }

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
