//! A small typed client of Stripe's HTTP API over reqwest: form-encoded requests with Stripe's
//! bracket keys, the API version header, an `Idempotency-Key` on every mutating call, Stripe's
//! error shapes mapped to [`ProviderError`] and [`ChargeOutcome`], and a timeout that makes an
//! unanswered call an unknown outcome (resolved by asking again with the same key).

use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{ChargeOutcome, ChargeRequest, Metadata, ProviderError, RefundRequest, TransferRequest};

/// The API version the client is written against.
pub const STRIPE_VERSION: &str = "2024-06-20";

/// A test card: one of Stripe's test tokens (`tok_visa`; what Stripe and `billing psp-sim`
/// take), or a test card number (what localstripe takes; Stripe refuses raw numbers unless the
/// account may send them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestCard<'a> {
    Token(&'a str),
    Number(&'a str),
}

/// A Stripe (or Stripe-shaped) endpoint and its secret key.
#[derive(Clone, Debug)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: SecretString,
    /// How cards are made for riders provisioned in test mode.
    test_cards: TestCards,
    /// Whether the run makes customers, cards and accounts for users who have none
    /// (`PSP_PROVISION=test`).
    provision: bool,
}

/// How the product makes test cards for riders it provisions in test mode: Stripe's test
/// tokens (Stripe, `billing psp-sim`), or test card numbers (emulators such as localstripe,
/// which take nothing else).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TestCards {
    #[default]
    Tokens,
    Numbers,
}

fn with_metadata(mut form: Vec<(String, String)>, metadata: &Metadata) -> Vec<(String, String)> {
    form.extend(metadata.iter().map(|(k, v)| (format!("metadata[{k}]"), v.clone())));
    form
}

/// What the answer to a POST says happened. `Ok` when the body is to be read: a success, or the
/// provider's own JSON error of a 402 (a decline). Only a clear answer closes an attempt: the provider's
/// JSON error saying the request was invalid and nothing was made (400, 401, 403, 404 with an
/// `invalid_request_error`), or a 404 from a server without the endpoint (nothing to run).
/// Everything else leaves the outcome unknown, to be asked again with the same key: timeouts
/// and resets (before this), 408, 409 (the key in use), 424, 429, 5xx, an `idempotency_error`
/// (the key was first used for another request, which may have run), and any body that is not
/// the provider's JSON (a proxy's page). Too little funds for a transfer is its own answer.
fn classify_post(path: &str, status: StatusCode, body: Option<&Value>) -> Result<(), ProviderError> {
    let error = body.map(|b| &b["error"]).filter(|e| e.is_object());
    let kind = error.and_then(|e| e["type"].as_str());
    let message = || match error {
        Some(e) => format!(
            "POST {path}: {status} {} {}",
            e["type"].as_str().unwrap_or("-"),
            e["message"].as_str().unwrap_or("")
        ),
        None => format!("POST {path}: {status}, not the provider's JSON"),
    };
    match status.as_u16() {
        200..=299 if body.is_some() => Ok(()),
        // A decline: the request failed and said so (Stripe's `card_error`; localstripe labels it
        // `invalid_request_error`).
        402 if error.is_some() => Ok(()),
        429 => Err(ProviderError::RateLimited(message())),
        400 if error.is_some_and(|e| e["code"] == "balance_insufficient") => {
            Err(ProviderError::Unfunded(message()))
        }
        400 | 401 | 403 | 404 if kind == Some("invalid_request_error") => {
            Err(ProviderError::Refused(message()))
        }
        404 if body.is_none() => Err(ProviderError::Refused(message())),
        409 | 500..=599 => Err(ProviderError::Server(message())),
        _ => Err(ProviderError::Unknown(message())),
    }
}

/// The `id` of an object, or of an expanded object (Stripe answers `latest_charge` either way).
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(id) => Some(id.clone()),
        Value::Object(object) => object.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

impl StripeClient {
    /// A client of `base` (`https://api.stripe.com` or a simulator) with `key`; a call with no
    /// answer after `timeout` is an unknown outcome.
    pub fn new(base: &str, key: SecretString, timeout: Duration) -> Result<StripeClient, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(StripeClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            test_cards: TestCards::Tokens,
            provision: false,
        })
    }

    /// The same client, making test cards as `cards` says.
    pub fn with_test_cards(mut self, cards: TestCards) -> StripeClient {
        self.test_cards = cards;
        self
    }

    /// Creates a working test card for a rider provisioned in test mode and attaches it.
    pub async fn attach_provisioned_card(
        &self,
        customer: &str,
        idempotency_key: &str,
    ) -> Result<String, ProviderError> {
        let card = match self.test_cards {
            TestCards::Tokens => TestCard::Token("tok_visa"),
            TestCards::Numbers => TestCard::Number("4242424242424242"),
        };
        self.attach_card(customer, card, idempotency_key).await
    }

    /// The same client, provisioning users who have no provider objects when `provision` says
    /// so and the key is a test key (a live key never provisions, whatever the caller asks).
    pub fn with_provisioning(mut self, provision: bool) -> StripeClient {
        self.provision = provision && self.test_mode();
        self
    }

    /// Whether the key is a test-mode key (`sk_test_…`).
    pub fn test_mode(&self) -> bool {
        self.key.expose_secret().starts_with("sk_test_")
    }

    /// Whether the run makes a customer, a test card and a connected account for a user the
    /// carpool app sent none for: only when asked (`PSP_PROVISION=test`), only in test mode.
    pub fn provisions(&self) -> bool {
        self.provision
    }

    /// POSTs `form` to `path` with `key`; the answer's JSON, or the error it stands for. A 402
    /// is returned as `Ok` with its status so the caller can read the decline.
    async fn post(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<(StatusCode, Value), ProviderError> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.key.expose_secret())
            .header("Stripe-Version", STRIPE_VERSION)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await
            .map_err(|e| ProviderError::Unknown(format!("POST {path}: {e}")))?;
        let status = response.status();
        let body: Option<Value> = response.json().await.ok();
        classify_post(path, status, body.as_ref())?;
        Ok((status, body.unwrap_or(Value::Null)))
    }

    /// GETs `path` (with its query); the JSON, or the error it stands for.
    async fn get(&self, path: &str) -> Result<Value, ProviderError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.key.expose_secret())
            .header("Stripe-Version", STRIPE_VERSION)
            .send()
            .await
            .map_err(|e| ProviderError::Unknown(format!("GET {path}: {e}")))?;
        let status = response.status();
        let body: Value = match response.json().await {
            Ok(body) => body,
            Err(e) if status.is_client_error() && status.as_u16() != 429 => {
                return Err(ProviderError::Refused(format!("GET {path}: {status}: {e}")))
            }
            Err(e) => {
                return Err(ProviderError::Unknown(format!("GET {path}: unreadable answer ({status}): {e}")))
            }
        };
        match status {
            s if s.is_success() => Ok(body),
            StatusCode::TOO_MANY_REQUESTS => Err(ProviderError::RateLimited(format!("GET {path}"))),
            s if s.is_server_error() => Err(ProviderError::Server(format!("GET {path}: {s}"))),
            s => Err(ProviderError::Refused(format!("GET {path}: {s} {}", body["error"]["message"]))),
        }
    }

    /// A payment intent as the provider has it.
    pub async fn payment_intent(&self, id: &str) -> Result<Value, ProviderError> {
        self.get(&format!("/v1/payment_intents/{id}")).await
    }

    /// The platform account the key belongs to, as people should read it: `acct_… (name)`.
    pub async fn account(&self) -> Result<String, ProviderError> {
        let account = self.get("/v1/account").await?;
        let id = account["id"].as_str().unwrap_or("an account without an id").to_owned();
        let name = account["settings"]["dashboard"]["display_name"]
            .as_str()
            .or_else(|| account["business_profile"]["name"].as_str());
        Ok(match name {
            Some(name) => format!("{id} ({name})"),
            None => id,
        })
    }

    /// A payment method (a card: `card.last4`) as the provider has it.
    pub async fn payment_method(&self, id: &str) -> Result<Value, ProviderError> {
        self.get(&format!("/v1/payment_methods/{id}")).await
    }

    /// Every object of a list endpoint (`/v1/charges?customer=…`), newest first, following the
    /// list's pages of 100, each request within `limiter` when given.
    pub async fn list_all(
        &self,
        path: &str,
        limiter: Option<&super::pace::Pace>,
    ) -> Result<Vec<Value>, ProviderError> {
        let mut objects = Vec::new();
        self.list_each(path, limiter, |page| objects.extend(page)).await?;
        Ok(objects)
    }

    /// Hands `each` every page of a list endpoint in turn, newest first, each request within
    /// `limiter` when given: a listing of millions holds one page of objects at a time, and the
    /// caller keeps what it needs of each.
    pub async fn list_each(
        &self,
        path: &str,
        limiter: Option<&super::pace::Pace>,
        mut each: impl FnMut(Vec<Value>),
    ) -> Result<(), ProviderError> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut after: Option<String> = None;
        loop {
            let mut page_path = format!("{path}{separator}limit=100");
            if let Some(after) = &after {
                page_path.push_str(&format!("&starting_after={after}"));
            }
            if let Some(limiter) = limiter {
                limiter.until_ready().await;
            }
            let mut page = self.get(&page_path).await?;
            let data = match page.get_mut("data").map(Value::take) {
                Some(Value::Array(data)) => data,
                _ => Vec::new(),
            };
            after = data.last().and_then(|o| o["id"].as_str()).map(str::to_owned);
            each(data);
            if !page["has_more"].as_bool().unwrap_or(false) || after.is_none() {
                return Ok(());
            }
        }
    }

    /// One page of a list endpoint, as the provider answers it.
    pub async fn list_page(&self, path: &str) -> Result<Value, ProviderError> {
        self.get(path).await
    }

    /// Every charge of a customer, newest first, each request within `limiter` when given.
    pub async fn charges_of(
        &self,
        customer: &str,
        limiter: Option<&super::pace::Pace>,
    ) -> Result<Vec<Value>, ProviderError> {
        self.list_all(&format!("/v1/charges?customer={customer}"), limiter).await
    }

    /// The `id` of the created object.
    fn created_id(path: &str, body: &Value) -> Result<String, ProviderError> {
        body.get("id")
            .and_then(id_of)
            .ok_or_else(|| ProviderError::Unknown(format!("POST {path}: no id in {body}")))
    }

    /// Creates a customer.
    pub async fn create_customer(
        &self,
        email: Option<&str>,
        name: &str,
        metadata: &Metadata,
        idempotency_key: &str,
    ) -> Result<String, ProviderError> {
        let mut form = vec![("name".to_owned(), name.to_owned())];
        if let Some(email) = email {
            form.push(("email".into(), email.into()));
        }
        let (_, body) = self.post("/v1/customers", &with_metadata(form, metadata), idempotency_key).await?;
        Self::created_id("/v1/customers", &body)
    }

    /// Creates a card payment method from a test token and attaches it to `customer`.
    pub async fn attach_test_card(
        &self,
        customer: &str,
        token: &str,
        idempotency_key: &str,
    ) -> Result<String, ProviderError> {
        self.attach_card(customer, TestCard::Token(token), idempotency_key).await
    }

    /// Creates a card payment method from test card details and attaches it to `customer`.
    pub async fn attach_card(
        &self,
        customer: &str,
        card: TestCard<'_>,
        idempotency_key: &str,
    ) -> Result<String, ProviderError> {
        let mut form = vec![("type".to_owned(), "card".to_owned())];
        match card {
            TestCard::Token(token) => form.push(("card[token]".to_owned(), token.to_owned())),
            TestCard::Number(number) => form.extend([
                ("card[number]".to_owned(), number.to_owned()),
                ("card[exp_month]".to_owned(), "12".to_owned()),
                ("card[exp_year]".to_owned(), "2034".to_owned()),
                ("card[cvc]".to_owned(), "123".to_owned()),
            ]),
        }
        let (_, body) = self.post("/v1/payment_methods", &form, &format!("{idempotency_key}-pm")).await?;
        let pm = Self::created_id("/v1/payment_methods", &body)?;
        let path = format!("/v1/payment_methods/{pm}/attach");
        self.post(
            &path,
            &[("customer".to_owned(), customer.to_owned())],
            &format!("{idempotency_key}-attach"),
        )
        .await?;
        Ok(pm)
    }

    /// Creates a connected account (a driver's, to receive transfers).
    pub async fn create_account(
        &self,
        email: Option<&str>,
        metadata: &Metadata,
        idempotency_key: &str,
    ) -> Result<String, ProviderError> {
        let mut form = vec![("type".to_owned(), "express".to_owned())];
        if let Some(email) = email {
            form.push(("email".into(), email.into()));
        }
        let (_, body) = self.post("/v1/accounts", &with_metadata(form, metadata), idempotency_key).await?;
        Self::created_id("/v1/accounts", &body)
    }

    /// Creates and confirms a payment intent off-session.
    pub async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        let form = vec![
            ("amount".to_owned(), request.amount_minor.to_string()),
            ("currency".to_owned(), request.currency.to_lowercase()),
            ("customer".to_owned(), request.customer.clone()),
            ("payment_method".to_owned(), request.payment_method.clone()),
            ("confirm".to_owned(), "true".to_owned()),
            ("off_session".to_owned(), "true".to_owned()),
        ];
        let path = "/v1/payment_intents";
        let (status, body) =
            self.post(path, &with_metadata(form, &request.metadata), &request.idempotency_key).await?;
        if status == StatusCode::PAYMENT_REQUIRED {
            let error = &body["error"];
            return Ok(ChargeOutcome::Declined {
                code: error["code"].as_str().unwrap_or("card_declined").to_owned(),
                decline_code: error["decline_code"].as_str().map(str::to_owned),
                message: error["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        let intent = Self::created_id(path, &body)?;
        match body["status"].as_str() {
            Some("succeeded") => {
                let charge = body.get("latest_charge").and_then(id_of).ok_or_else(|| {
                    ProviderError::Unknown(format!("POST {path}: succeeded without latest_charge"))
                })?;
                let amount_minor =
                    body["amount_received"].as_i64().or_else(|| body["amount"].as_i64()).ok_or_else(
                        || ProviderError::Unknown(format!("POST {path}: succeeded without an amount")),
                    )?;
                Ok(ChargeOutcome::Succeeded { intent, charge, amount_minor })
            }
            other => {
                Err(ProviderError::Unknown(format!("POST {path}: payment intent {intent} is {other:?}")))
            }
        }
    }

    /// Transfers to a connected account.
    pub async fn transfer(&self, request: &TransferRequest) -> Result<String, ProviderError> {
        let mut form = vec![
            ("amount".to_owned(), request.amount_minor.to_string()),
            ("currency".to_owned(), request.currency.to_lowercase()),
            ("destination".to_owned(), request.destination.clone()),
        ];
        if let Some(group) = &request.transfer_group {
            form.push(("transfer_group".to_owned(), group.clone()));
        }
        let path = "/v1/transfers";
        let (_, body) =
            self.post(path, &with_metadata(form, &request.metadata), &request.idempotency_key).await?;
        Self::created_id(path, &body)
    }

    /// Refunds part or all of a payment intent's charge; the refund's id once the provider says
    /// it succeeded. A refund the provider still has pending is an unknown outcome for now (asked
    /// again later with the same key); one it failed or cancelled is refused.
    pub async fn refund(&self, request: &RefundRequest) -> Result<String, ProviderError> {
        let mut form = vec![
            ("payment_intent".to_owned(), request.payment_intent.clone()),
            ("amount".to_owned(), request.amount_minor.to_string()),
        ];
        if let Some(reason) = request.reason {
            form.push(("reason".to_owned(), reason.to_owned()));
        }
        let path = "/v1/refunds";
        let (_, body) =
            self.post(path, &with_metadata(form, &request.metadata), &request.idempotency_key).await?;
        let id = Self::created_id(path, &body)?;
        match body["status"].as_str() {
            Some("succeeded") => Ok(id),
            Some(status @ ("failed" | "canceled")) => {
                Err(ProviderError::Refused(format!("POST {path}: refund {id} is {status}")))
            }
            other => Err(ProviderError::Unknown(format!("POST {path}: refund {id} is {other:?}"))),
        }
    }

    /// Sends `evidence` (Stripe's `evidence[<field>]` text fields) for dispute `dispute` and
    /// submits it to the issuer (`submit=true`): the dispute as the provider has it now.
    pub async fn submit_dispute_evidence(
        &self,
        dispute: &str,
        evidence: &[(&'static str, String)],
        idempotency_key: &str,
    ) -> Result<Value, ProviderError> {
        let mut form: Vec<(String, String)> =
            evidence.iter().map(|(field, text)| (format!("evidence[{field}]"), text.clone())).collect();
        form.push(("submit".to_owned(), "true".to_owned()));
        let path = format!("/v1/disputes/{dispute}");
        let (_, body) = self.post(&path, &form, idempotency_key).await?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, body: Option<Value>) -> Result<(), ProviderError> {
        classify_post("/v1/payment_intents", StatusCode::from_u16(status).unwrap(), body.as_ref())
    }

    fn error(kind: &str, code: &str) -> Option<Value> {
        Some(json!({ "error": { "type": kind, "code": code, "message": "m" } }))
    }

    /// Only a clear answer closes an attempt: each answer and what the run makes of it.
    #[test]
    fn only_a_clear_answer_closes_an_attempt() {
        let ok = Some(json!({ "id": "pi_1", "status": "succeeded" }));
        assert!(answer(200, ok).is_ok());
        assert!(answer(402, error("card_error", "card_declined")).is_ok(), "a decline is read");
        assert!(
            answer(402, error("invalid_request_error", "card_declined")).is_ok(),
            "localstripe's decline too"
        );
        let refused = [
            answer(400, error("invalid_request_error", "parameter_missing")),
            answer(401, error("invalid_request_error", "")),
            answer(404, error("invalid_request_error", "resource_missing")),
            answer(404, None),
        ];
        for r in refused {
            assert!(matches!(r, Err(ProviderError::Refused(_))), "{r:?}");
        }
        assert!(matches!(
            answer(400, error("invalid_request_error", "balance_insufficient")),
            Err(ProviderError::Unfunded(_))
        ));
        let asked_again = [
            answer(200, None),
            answer(402, None),
            answer(408, None),
            answer(408, error("invalid_request_error", "")),
            answer(409, error("idempotency_error", "idempotency_key_in_use")),
            answer(400, error("idempotency_error", "")),
            answer(424, error("api_error", "")),
            answer(429, error("rate_limit_error", "")),
            answer(500, error("api_error", "")),
            answer(502, None),
            answer(403, None),
        ];
        for r in asked_again {
            assert!(r.as_ref().is_err_and(ProviderError::retryable), "{r:?}");
        }
    }
}
