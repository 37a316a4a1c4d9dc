//! Scenarios of an attempt another operator instance recorded: a new leader, or the shard a
//! relabelled revocation moved to, finds it in progress.

use super::*;

const LEASE_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/revoker-system/leases/revoker-leader-a";

/// Attempt 1 in progress, recorded by instance `revoker-a` under Lease revoker-leader-a.
fn attempt_of_another_instance() -> JwksRevocation {
    let mut status = running(1, None);
    status["executor"] = json!({"identity": "revoker-a", "lease": "revoker-system/revoker-leader-a"});
    Rev::jwks().status(status).build()
}

fn lease(holder: &str, renewed: Timestamp) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "revoker-leader-a", "namespace": "revoker-system"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed.to_string()},
    })
}

#[tokio::test]
async fn an_attempt_recorded_by_an_instance_that_still_holds_its_lease_is_not_made_again() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::Revoked, "revoked the JWKS")]);
    let (ctx, mut v) = setup_watching::<JwksRevocation>(&fake, &[provider("atlas", "atlas", "atlas-creds")]);
    let (result, _) = reconcile(attempt_of_another_instance(), ctx, async move {
        v.expect(Method::GET, LEASE_PATH).await;
        v.respond(&lease("revoker-a", Timestamp::now()));
        // Its result is still to come: no attempt, no status write, no Event.
        v.assert_idle().await;
        v
    })
    .await;
    assert_ne!(
        result.expect("reconcile"),
        Action::await_change(),
        "it looks again when the Lease would lapse"
    );
    assert_eq!(fake.revokes(), 0, "the provider is not called a second time");
}

#[tokio::test]
async fn an_attempt_recorded_by_an_instance_that_lost_its_lease_is_repeated_once() {
    for (holder, renewed) in [
        ("revoker-a", Timestamp::now() - SignedDuration::from_secs(60)),
        ("revoker-b", Timestamp::now()),
    ] {
        let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::AlreadyRevoked, "already gone")]);
        let (ctx, mut v) = setup_watching::<JwksRevocation>(&fake, &[provider("atlas", "atlas", "atlas-creds")]);
        let (result, _) = reconcile(attempt_of_another_instance(), ctx, async move {
            v.expect(Method::GET, LEASE_PATH).await;
            v.respond(&lease(holder, renewed));
            v.get_secret(atlas_secret()).await;
            let attempt = v.put_status().await;
            assert_eq!(attempt["attempts"], 2, "the repeat is visible");
            assert_eq!(
                attempt["executor"],
                json!({"identity": "revoker-test", "lease": "revoker-system/revoker-leader"}),
                "the attempt names who makes it"
            );
            v.put_status().await;
            v.event("Normal", "AlreadyRevoked").await;
            v
        })
        .await;
        assert_eq!(result.expect("reconcile"), Action::await_change());
        assert_eq!(fake.revokes(), 1, "Lease held by {holder}, renewed {renewed}");
    }
}

#[tokio::test]
async fn an_attempt_this_instance_recorded_before_a_restart_is_repeated_without_a_lease_lookup() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::Revoked, "revoked the JWKS")]);
    let (ctx, mut v) = setup_watching::<JwksRevocation>(&fake, &[provider("atlas", "atlas", "atlas-creds")]);
    let mut status = running(1, None);
    status["executor"] = json!({"identity": "revoker-test", "lease": "revoker-system/revoker-leader"});
    let obj = Rev::jwks().status(status).build::<JwksRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.get_secret(atlas_secret()).await;
        assert_eq!(v.put_status().await["attempts"], 2);
        v.put_status().await;
        v.event("Normal", "Revoked").await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 1);
}
