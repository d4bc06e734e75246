//! Stripe's request encoding: `application/x-www-form-urlencoded` with bracket keys
//! (`metadata[invoice_id]=…`, `card[token]=…`), in POST bodies and in GET query strings.
//!
//! Parsing is strict on purpose: an unknown parameter is refused as Stripe refuses it, so a
//! client that misspells `metadata[invoice_id]` finds out here rather than in production.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::error::StripeError;

/// Stripe's limits on `metadata`: keys, key length and value length.
const METADATA_MAX_KEYS: usize = 50;
const METADATA_MAX_KEY_CHARS: usize = 40;
const METADATA_MAX_VALUE_CHARS: usize = 500;

/// Free-form key-value pairs on an object, as Stripe stores them (always strings).
pub(crate) type Metadata = BTreeMap<String, String>;

/// The parameters of one request, in the order they were sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<Param>,
}

#[derive(Clone, Debug)]
struct Param {
    /// The key as sent, for error messages and fingerprints.
    key: String,
    /// `metadata[invoice_id]` as `["metadata", "invoice_id"]`; `a[]` gives an empty segment.
    path: Vec<String>,
    value: String,
}

impl Params {
    /// Decodes a form body or query string; a key with unbalanced brackets is refused.
    pub fn parse(encoded: &[u8]) -> Result<Self, StripeError> {
        let mut pairs = Vec::new();
        for (key, value) in url::form_urlencoded::parse(encoded) {
            let path = split_key(&key).ok_or_else(|| {
                StripeError::invalid_param(key.as_ref(), format!("Invalid parameter name: {key}"))
            })?;
            pairs.push(Param { key: key.into_owned(), path, value: value.into_owned() });
        }
        Ok(Self { pairs })
    }

    /// Refuses any parameter whose top-level name is not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), StripeError> {
        match self.pairs.iter().find(|p| !known.contains(&p.path[0].as_str())) {
            Some(p) => {
                Err(StripeError::invalid_param(&p.key, format!("Received unknown parameter: {}", p.key)))
            }
            None => Ok(()),
        }
    }

    /// A plain `name=value` parameter (the last one when repeated).
    pub fn text(&self, name: &str) -> Result<Option<&str>, StripeError> {
        let mut found = None;
        for p in self.pairs.iter().filter(|p| p.path[0] == name) {
            if p.path.len() > 1 {
                return Err(StripeError::invalid_param(
                    name,
                    format!("Invalid string: {name} must be a string, not a hash"),
                ));
            }
            found = Some(p.value.as_str());
        }
        Ok(found)
    }

    /// A plain parameter that must be present and non-empty.
    pub fn required(&self, name: &str) -> Result<&str, StripeError> {
        match self.text(name)? {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(StripeError::missing(name)),
        }
    }

    /// A plain parameter given as a non-empty string, or nothing.
    pub fn optional(&self, name: &str) -> Result<Option<String>, StripeError> {
        Ok(self.text(name)?.filter(|v| !v.is_empty()).map(str::to_owned))
    }

    /// An integer parameter, such as an amount in minor units.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, StripeError> {
        match self.text(name)? {
            None => Ok(None),
            Some(raw) => raw
                .parse::<i64>()
                .map(Some)
                .map_err(|_| StripeError::invalid_param(name, format!("Invalid integer: {raw}"))),
        }
    }

    /// A boolean parameter: Stripe accepts exactly `true` and `false`.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, StripeError> {
        match self.text(name)? {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(raw) => Err(StripeError::invalid_param(name, format!("Invalid boolean: {raw}"))),
        }
    }

    /// The parameters below `name`, as (path below it, value): `card[token]=x` under `card` is
    /// `(["token"], "x")`. A bare `name=` (empty) is Stripe's way to send an empty hash.
    pub fn under<'a>(&'a self, name: &'a str) -> Result<Vec<(&'a [String], &'a str)>, StripeError> {
        let mut found = Vec::new();
        for p in self.pairs.iter().filter(|p| p.path[0] == name) {
            if p.path.len() == 1 {
                if !p.value.is_empty() {
                    return Err(StripeError::invalid_param(
                        name,
                        format!("Invalid hash: {name} must be a hash"),
                    ));
                }
                continue;
            }
            found.push((&p.path[1..], p.value.as_str()));
        }
        Ok(found)
    }

    /// `metadata[key]=value` pairs, within Stripe's limits.
    pub fn metadata(&self) -> Result<Metadata, StripeError> {
        let mut metadata = Metadata::new();
        for (path, value) in self.under("metadata")? {
            let [key] = path else {
                return Err(StripeError::invalid_param(
                    "metadata",
                    "Invalid hash: metadata values must be strings",
                ));
            };
            let param = format!("metadata[{key}]");
            if key.is_empty() || key.chars().count() > METADATA_MAX_KEY_CHARS {
                return Err(StripeError::invalid_param(
                    param,
                    format!("Metadata keys must be 1 to {METADATA_MAX_KEY_CHARS} characters"),
                ));
            }
            if value.chars().count() > METADATA_MAX_VALUE_CHARS {
                return Err(StripeError::invalid_param(
                    param,
                    format!("Metadata values can have up to {METADATA_MAX_VALUE_CHARS} characters"),
                ));
            }
            metadata.insert(key.clone(), value.to_owned());
        }
        if metadata.len() > METADATA_MAX_KEYS {
            return Err(StripeError::invalid_param(
                "metadata",
                format!("Metadata can have up to {METADATA_MAX_KEYS} keys"),
            ));
        }
        Ok(metadata)
    }

    /// A digest of the parameters that ignores their order, so that a retry that encodes the
    /// same parameters differently still counts as the same request.
    pub fn fingerprint(&self) -> String {
        let mut pairs: Vec<(&str, &str)> =
            self.pairs.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
        pairs.sort_unstable();
        let mut hash = Sha256::new();
        for (key, value) in pairs {
            // Lengths first, so that no two different lists hash the same bytes.
            hash.update((key.len() as u64).to_be_bytes());
            hash.update(key.as_bytes());
            hash.update((value.len() as u64).to_be_bytes());
            hash.update(value.as_bytes());
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `a[b][c]` as `["a", "b", "c"]`; `None` when the brackets do not balance.
fn split_key(key: &str) -> Option<Vec<String>> {
    let (head, mut rest) = match key.find('[') {
        Some(at) => key.split_at(at),
        None => (key, ""),
    };
    if head.is_empty() || head.contains(']') {
        return None;
    }
    let mut path = vec![head.to_owned()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        let segment = &inner[..close];
        if segment.contains('[') {
            return None;
        }
        path.push(segment.to_owned());
        rest = &inner[close + 1..];
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_keys_become_paths() {
        assert_eq!(split_key("amount"), Some(vec!["amount".to_owned()]));
        assert_eq!(split_key("metadata[week]"), Some(vec!["metadata".to_owned(), "week".to_owned()]));
        assert_eq!(
            split_key("capabilities[transfers][requested]"),
            Some(vec!["capabilities".into(), "transfers".into(), "requested".into()])
        );
        assert_eq!(split_key("expand[]"), Some(vec!["expand".into(), String::new()]));
        for bad in ["", "[a]", "a[b", "a]b", "a[b]c", "a[[b]]"] {
            assert_eq!(split_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn metadata_and_scalars_are_read_from_a_form_body() {
        let params =
            Params::parse(b"amount=1230&metadata%5Binvoice_id%5D=2026-W48%2Fu1&metadata[week]=2026-W48")
                .expect("valid form");
        assert_eq!(params.integer("amount").expect("integer"), Some(1230));
        let metadata = params.metadata().expect("metadata");
        assert_eq!(metadata["invoice_id"], "2026-W48/u1");
        assert_eq!(metadata["week"], "2026-W48");
        assert!(params.only(&["amount"]).is_err(), "metadata was not allowed");
        assert!(params.only(&["amount", "metadata"]).is_ok());
    }

    #[test]
    fn bad_values_name_their_parameter() {
        let params = Params::parse(b"amount=12.30&confirm=yes").expect("valid form");
        assert_eq!(params.integer("amount").unwrap_err().param.as_deref(), Some("amount"));
        assert_eq!(params.boolean("confirm").unwrap_err().param.as_deref(), Some("confirm"));
        assert_eq!(params.required("currency").unwrap_err().param.as_deref(), Some("currency"));
    }

    #[test]
    fn the_fingerprint_ignores_order_but_not_values() {
        let a = Params::parse(b"amount=100&currency=usd").expect("valid");
        let b = Params::parse(b"currency=usd&amount=100").expect("valid");
        let c = Params::parse(b"currency=usd&amount=101").expect("valid");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}
