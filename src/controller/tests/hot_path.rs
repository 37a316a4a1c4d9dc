//! Scenarios of the hot path of a batch: credentials reused across revocations (and read again
//! when the provider rejects them), a provider's pause after a 429, and a result the API server did
//! not take.

use super::*;

/// A second revocation (another object) reconciled with the same context, whose status writes the
/// verifier expects from resourceVersion 100 again.
fn second_revocation(v: &mut Verifier) -> JwksRevocation {
    v.rv = 100;
    let mut second = Rev::jwks();
    second.0["metadata"]["uid"] = json!("rev-uid-2");
    second.build()
}

fn unauthorized() -> Result<Outcome, ProviderError> {
    Err(ProviderError::permanent(Reason::Unauthorized, "Atlas rejected the API key").with_http(401, None, None))
}

/// One revocation runs to Succeeded, reading the provider's credentials Secret.
async fn first_revocation_reads_the_secret(ctx: Arc<Context>, v: Verifier) -> Verifier {
    let (result, v) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        let mut v = v;
        v.get_secret(atlas_secret()).await;
        v.put_status().await;
        v.put_status().await;
        v.event("Normal", "Revoked").await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    v
}

#[tokio::test]
async fn a_batch_of_revocations_reads_the_credentials_secret_once() {
    let fake = FakeProvider::atlas(vec![
        outcome(OutcomeKind::Revoked, "revoked the JWKS"),
        outcome(OutcomeKind::Revoked, "revoked the JWKS"),
    ]);
    let (ctx, v) = setup_watching::<JwksRevocation>(&fake, &[provider("atlas", "atlas", "atlas-creds")]);
    let mut v = first_revocation_reads_the_secret(ctx.clone(), v).await;
    let second = second_revocation(&mut v);
    let (result, _) = reconcile(second, ctx, async move {
        // No GET of the Secret: the credentials read a moment ago are used.
        assert_eq!(v.put_status().await["phase"], "Running");
        assert_eq!(v.put_status().await["phase"], "Succeeded");
        v.event("Normal", "Revoked").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 2);
}

#[tokio::test]
async fn reused_credentials_that_are_rejected_are_read_again_and_the_call_uses_the_rotated_ones() {
    let fake = FakeProvider::atlas(vec![
        outcome(OutcomeKind::Revoked, "revoked the JWKS"),
        unauthorized(),
        outcome(OutcomeKind::Revoked, "revoked the JWKS"),
    ]);
    let (ctx, v) = setup_watching::<JwksRevocation>(&fake, &[provider("atlas", "atlas", "atlas-creds")]);
    let mut v = first_revocation_reads_the_secret(ctx.clone(), v).await;
    let second = second_revocation(&mut v);
    let (result, _) = reconcile(second, ctx, async move {
        let attempt = v.put_status().await;
        // The reused key is rejected: the Secret is read now, and it was rotated meanwhile.
        let mut rotated = atlas_secret();
        rotated["metadata"]["resourceVersion"] = json!("4");
        v.get_secret(rotated).await;
        let done = v.put_status().await;
        assert_eq!(
            (attempt["attempts"].as_i64(), done["attempts"].as_i64()),
            (Some(1), Some(1))
        );
        assert_condition(&done, "Succeeded", "True", "Revoked");
        v.event("Normal", "Revoked").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(
        fake.revokes(),
        3,
        "the rejected call is made again with the new credentials"
    );
}

#[tokio::test]
async fn reused_credentials_that_are_rejected_and_unchanged_fail_after_one_call() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::Revoked, "revoked the JWKS"), unauthorized()]);
    let (ctx, v) = setup_watching::<JwksRevocation>(&fake, &[provider("atlas", "atlas", "atlas-creds")]);
    let mut v = first_revocation_reads_the_secret(ctx.clone(), v).await;
    let second = second_revocation(&mut v);
    let (result, _) = reconcile(second, ctx, async move {
        v.put_status().await;
        v.get_secret(atlas_secret()).await;
        let done = v.put_status().await;
        assert_condition(&done, "Failed", "True", "Unauthorized");
        v.event("Warning", "Unauthorized").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 2, "the same credentials are not tried twice");
}

#[tokio::test]
async fn a_provider_that_asked_to_slow_down_gets_no_attempt_until_the_pause_is_over() {
    let fake = FakeProvider::atlas(vec![]);
    *fake.paused.lock().unwrap() = Some(Duration::from_secs(7));
    let (ctx, v) = setup_watching::<JwksRevocation>(&fake, &[provider("atlas", "atlas", "atlas-creds")]);
    let (result, _) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx, async move {
        let mut v = v;
        v.get_secret(atlas_secret()).await;
        // No attempt written, no Event: the revocation looks again when the pause ends.
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::requeue(Duration::from_secs(7)));
    assert_eq!(fake.revokes(), 0);
}

#[tokio::test]
async fn a_result_the_api_server_did_not_take_is_written_later_without_a_second_call() {
    let fake = FakeProvider::atlas(vec![outcome(OutcomeKind::Revoked, "revoked the JWKS")]);
    let (ctx, v) = setup_watching::<JwksRevocation>(&fake, &[provider("atlas", "atlas", "atlas-creds")]);
    let (result, mut v) = reconcile(Rev::jwks().build::<JwksRevocation>(), ctx.clone(), async move {
        let mut v = v;
        v.get_secret(atlas_secret()).await;
        v.put_status().await;
        // The API server fails the result write (it is restarting).
        v.expect(Method::PUT, &v.status_path.clone()).await;
        v.fail(503, "ServiceUnavailable");
        v.event("Normal", "Revoked").await;
        v
    })
    .await;
    assert!(result.is_err(), "the reconcile reports the failed write");
    assert_eq!(fake.revokes(), 1);
    // The next reconcile starts from the attempt (the cache's version after our attempt write).
    let mut running = Rev::jwks().status(running(1, None));
    running.0["metadata"]["resourceVersion"] = json!(v.rv.to_string());
    let (result, _) = reconcile(running.build::<JwksRevocation>(), ctx, async move {
        let done = v.put_status().await;
        assert_condition(&done, "Succeeded", "True", "Revoked");
        assert_eq!(done["attempts"], 1, "the same attempt");
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 1, "the provider is not called again");
}
