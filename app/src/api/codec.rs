//! How a resource's value crosses from the server-rendered page to the browser.

use leptos::prelude::Resource;
use leptos::server::codee::{Decoder, Encoder};
use serde::{de::DeserializeOwned, Serialize};

/// JSON, read in the browser with `serde_json::from_slice`: the same deserializer a server
/// function's answer is read with (server_fn's `Json` encoding). Leptos's default resource codec
/// reads with `from_str`, a second reader type, so the WebAssembly bundle held two copies of the
/// deserializer of every type a page loads (about 250 KB of its code before compression).
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }
}

/// `Resource::new`, with its value carried in [`Json`]: loaded on the server while the page is
/// rendered, written into the page, read back in the browser without asking again; then
/// reloaded whenever `source` changes.
#[track_caller]
pub fn resource<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, Json>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: PartialEq + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AppError;
    use crate::model::money::{BillingCurrency, Money};
    use leptos::server::codee::string::JsonSerdeCodec;

    #[test]
    fn writes_what_leptos_default_codec_writes_and_reads_it_back() {
        let values: Vec<Result<Option<Money>, AppError>> = vec![
            Ok(Some(Money::from_minor(-12_345, BillingCurrency::from_code("EUR").unwrap()))),
            Ok(None),
            Err(AppError::NotFound("invoice 7".into())),
        ];
        for value in values {
            let text = <Json as Encoder<_>>::encode(&value).unwrap();
            assert_eq!(
                text,
                <JsonSerdeCodec as Encoder<_>>::encode(&value).unwrap(),
                "the page's markup is unchanged"
            );
            let back: Result<Option<Money>, AppError> = <Json as Decoder<_>>::decode(&text).unwrap();
            assert_eq!(back, value);
        }
        assert!(<Json as Decoder<Option<Money>>>::decode("{not json").is_err());
    }
}
