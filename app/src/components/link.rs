//! Links that carry a page's state in the query string, so every view can be shared and
//! reloaded.

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `path?k=v&…` with the non-empty values of `pairs`, encoded.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", encode(v))).collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_and_empty_ones_left_out() {
        assert_eq!(with_query("/a", &[("q", "Ana B&c"), ("after", "")]), "/a?q=Ana%20B%26c");
        assert_eq!(with_query("/a", &[]), "/a");
        assert_eq!(encode("é"), "%C3%A9");
    }
}
