//! Pricing (finance, admin): the fee policy versions, a proposal, the second person's approval or
//! a withdrawal, and a what-if of a proposal on a stored week.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::pricing::{NewPolicyVersion, PolicyVersion, PolicyVersions, WhatIf};

/// Every version, the one in force this week and the current week.
#[server(prefix = "/api/fn", endpoint = "pricing/versions")]
pub async fn pricing_versions() -> Result<PolicyVersions, AppError> {
    super::respond(
        async {
            super::backend()?
                .pricing_versions(&super::staff_caller(<PricingVersions as ServerFn>::PATH)?)
                .await
        }
        .await,
    )
}

/// Proposes a version; another finance or admin member approves it.
#[server(prefix = "/api/fn", endpoint = "pricing/propose")]
pub async fn propose_pricing(version: NewPolicyVersion) -> Result<PolicyVersion, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<ProposePricing as ServerFn>::PATH)?;
            super::backend()?.propose_pricing(&caller, version).await
        }
        .await,
    )
}

/// Approves (`decision` = "approve") another member's proposal, or withdraws one ("withdraw").
#[server(prefix = "/api/fn", endpoint = "pricing/decide")]
pub async fn decide_pricing(version_id: i64, decision: String) -> Result<PolicyVersion, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<DecidePricing as ServerFn>::PATH)?;
            let approve = match decision.as_str() {
                "approve" => true,
                "withdraw" => false,
                other => {
                    return Err(AppError::invalid(
                        "decision",
                        format!("{other:?} is not approve or withdraw"),
                    ))
                }
            };
            super::backend()?.decide_pricing(&caller, version_id, approve).await
        }
        .await,
    )
}

/// A stored week priced with its version and with version `version_id`, storing nothing.
#[server(prefix = "/api/fn", endpoint = "pricing/what-if")]
pub async fn pricing_what_if(version_id: i64, week: String) -> Result<WhatIf, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<PricingWhatIf as ServerFn>::PATH)?;
            let week = crate::model::week::BillingWeek::parse(week.trim())
                .map_err(|m| AppError::invalid("week", m))?;
            super::backend()?.pricing_what_if(&caller, version_id, week).await
        }
        .await,
    )
}
