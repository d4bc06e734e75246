//! Stripe's error shape: `{"error":{"type","message","code"?,"param"?,"decline_code"?,…}}`.
//!
//! Clients written against Stripe branch on `type` and `code`, so every refusal the simulator
//! makes, from a missing API key to a declined card, comes out in exactly this shape.

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

/// A refusal, ready to become Stripe's JSON error body.
#[derive(Clone, Debug)]
pub(crate) struct StripeError {
    pub status: StatusCode,
    /// Stripe's `type`: `invalid_request_error`, `card_error`, `idempotency_error`, `api_error`,
    /// `rate_limit_error`.
    pub kind: &'static str,
    pub message: String,
    pub code: Option<&'static str>,
    pub param: Option<String>,
    pub decline_code: Option<&'static str>,
    /// Objects Stripe puts beside a card error: `payment_intent`, `charge`, `payment_method`
    /// (boxed: errors travel in every `Result` and most have none).
    pub extra: Box<Map<String, Value>>,
    /// Whether Stripe would send `Stripe-Should-Retry: true` (faults and keys in use).
    pub should_retry: bool,
}

impl StripeError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            code: None,
            param: None,
            decline_code: None,
            extra: Box::default(),
            should_retry: false,
        }
    }

    /// A 400 about the request as a whole.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// A 400 about one parameter, named in `param` so clients can point at it.
    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(message).with_param(param)
    }

    /// A required parameter is absent.
    pub fn missing(param: &str) -> Self {
        Self::invalid_param(param, format!("Missing required param: {param}.")).with_code("parameter_missing")
    }

    /// A parameter names an object that does not exist: 400, `resource_missing`.
    pub fn no_such(noun: &str, id: &str, param: &str) -> Self {
        Self::invalid_param(param, format!("No such {noun}: '{id}'")).with_code("resource_missing")
    }

    /// The URL names an object that does not exist: 404, `resource_missing`.
    pub fn not_found(noun: &str, id: &str) -> Self {
        let mut error = Self::no_such(noun, id, "id");
        error.status = StatusCode::NOT_FOUND;
        error
    }

    /// No route for this method and path.
    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        let mut error = Self::invalid(format!(
            "Unrecognized request URL ({method}: {path}). This simulator speaks only the part of \
             Stripe's API the billing product uses."
        ));
        error.status = StatusCode::NOT_FOUND;
        error
    }

    /// The API key is missing, malformed or not a test key.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
    }

    /// An `Idempotency-Key` reused for a different request (400) or still in use (409).
    pub fn idempotency(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, "idempotency_error", message)
    }

    /// The injected 500: nothing was done, so a retry is safe.
    pub fn api_error() -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "An error occurred with our connection to Stripe (simulated fault: nothing was done). \
             Retry the request with the same Idempotency-Key.",
        );
        error.should_retry = true;
        error
    }

    /// The injected 429: nothing was done, so a retry (after a pause) is safe.
    pub fn rate_limited() -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your \
             requests (simulated fault: nothing was done).",
        )
        .with_code("rate_limit");
        error.should_retry = true;
        error
    }

    /// The 402 of a declined card; the caller adds the objects Stripe puts beside it.
    pub fn card_declined(decline_code: &'static str, message: &str) -> Self {
        let mut error =
            Self::new(StatusCode::PAYMENT_REQUIRED, "card_error", message).with_code("card_declined");
        error.decline_code = Some(decline_code);
        error
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_extra(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }

    /// The inner object, as Stripe nests it under `error` and under a payment intent's
    /// `last_payment_error`.
    pub fn object(&self) -> Value {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        if let Some(code) = self.code {
            error.insert("code".into(), json!(code));
            let page = code.replace('_', "-");
            error.insert("doc_url".into(), json!(format!("https://stripe.com/docs/error-codes/{page}")));
        }
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        if let Some(decline_code) = self.decline_code {
            error.insert("decline_code".into(), json!(decline_code));
        }
        error.extend(self.extra.as_ref().clone());
        Value::Object(error)
    }

    /// The whole response body.
    pub fn body(&self) -> Value {
        json!({ "error": self.object() })
    }
}
