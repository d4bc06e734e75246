//! One's own personal access tokens for the staff JSON API.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::staff::{AccessToken, NewAccessToken};

/// The caller's tokens, newest first.
#[server(prefix = "/api/fn", endpoint = "tokens/list")]
pub async fn list_my_tokens() -> Result<Vec<AccessToken>, AppError> {
    super::respond(
        async { super::backend()?.my_tokens(&super::staff_caller(<ListMyTokens as ServerFn>::PATH)?).await }
            .await,
    )
}

/// A new token for the caller; the answer carries the secret, once.
#[server(prefix = "/api/fn", endpoint = "tokens/create")]
pub async fn create_my_token(name: String, days: u16) -> Result<NewAccessToken, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<CreateMyToken as ServerFn>::PATH)?;
            super::backend()?.create_my_token(&caller, name, days).await
        }
        .await,
    )
}

/// Revokes one of the caller's tokens.
#[server(prefix = "/api/fn", endpoint = "tokens/revoke")]
pub async fn revoke_my_token(token_id: i64) -> Result<AccessToken, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<RevokeMyToken as ServerFn>::PATH)?;
            super::backend()?.revoke_my_token(&caller, token_id).await
        }
        .await,
    )
}
