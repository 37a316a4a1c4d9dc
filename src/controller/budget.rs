//! Blast-radius budgets: a provider's `spec.budget` caps how many revocations may start through
//! it within a sliding window. The ledger is the provider's `status.budgetSpent`, read fresh and
//! written with its resourceVersion as precondition, so replicas, shards and restarts share one
//! count and two instances can never both take the last slot.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};

use super::Error;
use super::provider_status::ProviderObject;
use crate::api::{Budget, BudgetEntry, ClusterRevocationProvider, ProviderRef, ProviderRefKind, RevocationProvider};

/// Conflicting writes of the ledger tried before giving up for this reconcile.
const CLAIM_TRIES: usize = 5;

/// What the budget says about one revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// It may start (it is counted now, or was counted before).
    Granted,
    /// The budget is spent: it may start once the oldest counted revocation leaves the window.
    Throttled {
        /// When a slot frees.
        until: Timestamp,
        /// Revocations counted in the window.
        spent: usize,
    },
}

/// Who is asking, for the ledger.
pub struct Claimant<'a> {
    /// `Kind namespace/name`.
    pub revocation: String,
    /// Its uid.
    pub uid: &'a str,
}

/// Count `who` against the budget of the provider `provider_ref` (for a revocation in
/// `namespace`), or say until when it must wait.
pub async fn claim(
    client: &Client,
    provider_ref: &ProviderRef,
    namespace: &str,
    budget: &Budget,
    who: Claimant<'_>,
    now: Timestamp,
) -> Result<Claim, Error> {
    match provider_ref.kind {
        ProviderRefKind::RevocationProvider => {
            let api: Api<RevocationProvider> = Api::namespaced(client.clone(), namespace);
            claim_on(&api, &provider_ref.name, budget, who, now).await
        }
        ProviderRefKind::ClusterRevocationProvider => {
            let api: Api<ClusterRevocationProvider> = Api::all(client.clone());
            claim_on(&api, &provider_ref.name, budget, who, now).await
        }
    }
}

async fn claim_on<P: ProviderObject>(
    api: &Api<P>,
    name: &str,
    budget: &Budget,
    who: Claimant<'_>,
    now: Timestamp,
) -> Result<Claim, Error> {
    for _ in 0..CLAIM_TRIES {
        let mut provider = api.get_status(name).await?;
        let mut status = provider.provider_status().cloned().unwrap_or_default();
        let (claim, ledger) = decide(&status.budget_spent, budget, &who, now);
        if ledger == status.budget_spent {
            return Ok(claim);
        }
        status.budget_spent = ledger;
        provider.set_provider_status(status);
        match api
            .replace_status(&provider.name_any(), &PostParams::default(), &provider)
            .await
        {
            Ok(_) => return Ok(claim),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Everyone else kept winning: look again shortly.
    Ok(Claim::Throttled {
        until: now.saturating_add(SignedDuration::from_secs(1)).unwrap_or(now),
        spent: 0,
    })
}

/// The pure rule: drop entries older than the window; an entry of `who` means it was counted
/// before (granted, as after a restart between counting and calling); a free slot counts it now.
pub fn decide(spent: &[BudgetEntry], budget: &Budget, who: &Claimant<'_>, now: Timestamp) -> (Claim, Vec<BudgetEntry>) {
    let window = budget.window().unwrap_or(Duration::from_secs(3600));
    let window = SignedDuration::try_from(window).unwrap_or(SignedDuration::from_hours(1));
    let mut ledger: Vec<BudgetEntry> = spent
        .iter()
        .filter(|e| now.duration_since(e.at.0) < window)
        .cloned()
        .collect();
    if ledger.iter().any(|e| e.uid == who.uid) {
        return (Claim::Granted, ledger);
    }
    let max = budget.max_revocations.max(1) as usize;
    if ledger.len() >= max {
        let oldest = ledger.iter().map(|e| e.at.0).min().unwrap_or(now);
        let until = oldest.saturating_add(window).unwrap_or(now);
        let spent = ledger.len();
        return (Claim::Throttled { until, spent }, ledger);
    }
    ledger.push(BudgetEntry {
        revocation: who.revocation.clone(),
        uid: who.uid.to_string(),
        at: Time(now),
    });
    (Claim::Granted, ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max: i32, window: &str) -> Budget {
        Budget {
            max_revocations: max,
            window: window.into(),
        }
    }

    fn who(uid: &str) -> Claimant<'_> {
        Claimant {
            revocation: format!("JwksRevocation ns/{uid}"),
            uid,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a time")
    }

    #[test]
    fn the_budget_stops_the_next_revocation_and_frees_it_after_the_window_on_an_injected_clock() {
        let b = budget(2, "10m");
        let (first, ledger) = decide(&[], &b, &who("a"), at(0));
        let (second, ledger) = decide(&ledger, &b, &who("b"), at(60));
        assert_eq!((first, second), (Claim::Granted, Claim::Granted));
        let (third, ledger) = decide(&ledger, &b, &who("c"), at(120));
        assert_eq!(
            third,
            Claim::Throttled {
                until: at(600),
                spent: 2
            },
            "the 3rd waits until the 1st leaves the window"
        );
        assert_eq!(ledger.len(), 2, "a throttled revocation is not counted");
        let (later, ledger) = decide(&ledger, &b, &who("c"), at(600));
        assert_eq!(later, Claim::Granted);
        assert_eq!(ledger.iter().map(|e| e.uid.as_str()).collect::<Vec<_>>(), ["b", "c"]);
    }

    #[test]
    fn a_revocation_counted_before_is_not_counted_again() {
        let b = budget(1, "1h");
        let (_, ledger) = decide(&[], &b, &who("a"), at(0));
        let (again, same) = decide(&ledger, &b, &who("a"), at(5));
        assert_eq!(again, Claim::Granted, "after a restart between counting and calling");
        assert_eq!(same, ledger);
    }

    #[test]
    fn windows_parse_as_the_schema_allows() {
        assert_eq!(budget(1, "1h30m").window(), Some(Duration::from_secs(5400)));
        assert_eq!(budget(1, "90s").window(), Some(Duration::from_secs(90)));
        assert_eq!(budget(1, "0s").window(), None);
        assert_eq!(budget(1, "1d").window(), None);
    }
}
