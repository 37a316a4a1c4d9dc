//! The end-to-end scenarios.

use std::time::Duration;

use serde_json::{Value, json};

use crate::env::{ROOT, Result, sh};
use crate::sim::status_fault;
use crate::{Env, TestFn};

macro_rules! case {
    ($f:ident) => {
        (stringify!($f), |env| Box::pin($f(env)))
    };
}

pub const ALL: &[(&str, TestFn)] = &[
    case!(every_operation_succeeds_with_exactly_one_revoking_call),
    case!(api_server_rejects_bad_manifests),
    case!(missing_secret_waits_then_succeeds),
    case!(permanent_errors_fail_at_once_without_retries),
    case!(transient_errors_are_retried_then_succeed),
    case!(suspend_holds_until_unsuspended),
    case!(dry_run_calls_nothing_that_revokes),
    case!(ttl_deletes_finished_revocations),
    case!(host_not_on_allow_list_gets_nothing),
    case!(provider_cannot_read_a_secret_of_another_namespace),
    case!(cluster_provider_serves_only_selected_namespaces),
    case!(operator_rbac_is_least_privilege),
    case!(crash_mid_run_repeats_at_most_once_and_never_after_success),
    case!(leader_election_lets_one_replica_act_and_hands_over),
    case!(a_broken_provider_holds_revocations_until_fixed),
    case!(a_rotated_token_is_never_revoked_in_place_of_the_pinned_one),
    ("an_echoing_provider_learns_nothing_it_can_show", |env| {
        Box::pin(crate::echo::an_echoing_provider_learns_nothing_it_can_show(env))
    }),
    ("gitops_tools_read_every_phase", |env| {
        Box::pin(crate::health::gitops_tools_read_every_phase(env))
    }),
    ("a_namespace_scoped_operator_acts_only_in_its_namespaces", |env| {
        Box::pin(crate::scoped::a_namespace_scoped_operator_acts_only_in_its_namespaces(
            env,
        ))
    }),
    (
        "an_api_server_restart_mid_batch_calls_no_answered_revocation_again",
        |env| Box::pin(crate::faults::an_api_server_restart_mid_batch_calls_no_answered_revocation_again(env)),
    ),
    ("an_etcd_outage_mid_batch_calls_no_answered_revocation_again", |env| {
        Box::pin(crate::faults::an_etcd_outage_mid_batch_calls_no_answered_revocation_again(env))
    }),
    ("a_429_pauses_every_revocation_of_the_provider", |env| {
        Box::pin(crate::faults::a_429_pauses_every_revocation_of_the_provider(env))
    }),
    ("shards_split_the_revocations_and_a_moved_one_runs_once", |env| {
        Box::pin(crate::shards::shards_split_the_revocations_and_a_moved_one_runs_once(
            env,
        ))
    }),
    ("sigkill_during_a_batch_repeats_only_calls_that_were_in_flight", |env| {
        Box::pin(crate::faults::sigkill_during_a_batch_repeats_only_calls_that_were_in_flight(env))
    }),
    ("a_leader_hand_over_during_a_batch_executes_nothing_twice", |env| {
        Box::pin(crate::faults::a_leader_hand_over_during_a_batch_executes_nothing_twice(
            env,
        ))
    }),
    ("provider_faults_at_batch_scale_end_in_documented_retries", |env| {
        Box::pin(crate::faults::provider_faults_at_batch_scale_end_in_documented_retries(
            env,
        ))
    }),
    ("an_identifier_a_rotation_writes_is_the_one_revoked", |env| {
        Box::pin(crate::rotation::an_identifier_a_rotation_writes_is_the_one_revoked(env))
    }),
    ("the_kubectl_plugin_shows_approves_and_retries", |env| {
        Box::pin(crate::plugin::the_kubectl_plugin_shows_approves_and_retries(env))
    }),
    ("break_glass_revoke_needs_no_cluster", |env| {
        Box::pin(crate::breakglass::break_glass_revoke_needs_no_cluster(env))
    }),
    ("the_api_server_records_who_asked", |env| {
        Box::pin(crate::requester::the_api_server_records_who_asked(env))
    }),
    (
        "a_rotation_by_external_secrets_revokes_the_previous_value_only",
        |env| Box::pin(crate::eso::a_rotation_by_external_secrets_revokes_the_previous_value_only(env)),
    ),
    (
        "a_rotation_by_external_secrets_runs_one_revocation_per_replaced_value",
        |env| Box::pin(crate::triggers::a_rotation_by_external_secrets_runs_one_revocation_per_replaced_value(env)),
    ),
    ("a_suspended_trigger_keeps_a_change_and_runs_it_once_approved", |env| {
        Box::pin(crate::triggers::a_suspended_trigger_keeps_a_change_and_runs_it_once_approved(env))
    }),
    ("a_schedule_runs_at_its_times", |env| {
        Box::pin(crate::triggers::a_schedule_runs_at_its_times(env))
    }),
    (
        "the_audit_trail_verifies_and_reaches_the_webhook_once_per_record",
        |env| Box::pin(crate::audit::the_audit_trail_verifies_and_reaches_the_webhook_once_per_record(env)),
    ),
    (
        "a_provider_that_forgets_a_revocation_fails_verification_loudly",
        |env| Box::pin(crate::receipts::a_provider_that_forgets_a_revocation_fails_verification_loudly(env)),
    ),
    ("a_budget_holds_the_next_revocation_until_the_window_frees", |env| {
        Box::pin(crate::budget::a_budget_holds_the_next_revocation_until_the_window_frees(env))
    }),
    ("hostile_manifests_are_rejected_and_call_nothing", |env| {
        Box::pin(crate::hostile::hostile_manifests_are_rejected_and_call_nothing(env))
    }),
];

pub(crate) const WAIT: Duration = Duration::from_secs(60);
pub(crate) const JWKS_PATH: &str =
    "/api/atlas/v2/federationSettings/55fa922fb343282757d9554e/identityProviders/32b6e34b3d91647abb20e7b8/jwks";
pub(crate) const X509_PATH: &str = "/api/atlas/v2/groups/32b6e34b3d91647abb20e7b9/userSecurity/customerX509";
const AZURE_PATH: &str = "/api/v1/auth/azure-auth/identities/8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a";
const TOKEN_REVOKE_PATH: &str = "/api/v1/auth/token/revoke";
const CLIENT_SECRET_PATH: &str = "/api/v1/auth/universal-auth/identities/8d5f6a1e-1c2b-4d3e-8f9a-0b1c2d3e4f5a/client-secrets/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/revoke";
const OZ_USER_PATH: &str = "/api/v3/onezone/users/9a8b7c6d5e4f30211203f4e5d6c7b8a9/tokens/temporary";
pub(crate) const OZ_SELF_PATH: &str = "/api/v3/onezone/user/tokens/temporary";
const OZ_NAMED_PATH: &str = "/api/v3/onezone/tokens/named/2b5d0dd5aa6443a69277b5ce0544fec2";

pub(crate) fn ensure(cond: bool, msg: impl Into<String>) -> Result<()> {
    if cond { Ok(()) } else { Err(msg.into()) }
}

pub(crate) fn example(name: &str) -> Result<String> {
    std::fs::read_to_string(format!("{ROOT}/examples/{name}")).map_err(|e| format!("examples/{name}: {e}"))
}

/// examples/providers.yaml pointed at this run's simulator.
pub(crate) fn providers(env: &Env) -> Result<String> {
    Ok(example("providers.yaml")?.replace("127.0.0.1:18080", &format!("127.0.0.1:{}", env.sim.port)))
}

/// A namespace with the example providers and Secrets.
pub(crate) fn namespace_with_providers(env: &Env, name: &str) -> Result<String> {
    let ns = env.namespace(name)?;
    env.apply(&ns, &providers(env)?)?;
    Ok(ns)
}

pub(crate) fn jwks(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: revoker.dev/v1alpha1\nkind: JwksRevocation\nmetadata:\n  name: {name}\nspec:\n  providerRef:\n    name: atlas\n  atlas:\n    federationSettingsId: 55fa922fb343282757d9554e\n    identityProviderId: 32b6e34b3d91647abb20e7b8\n{extra_spec}"
    )
}

pub(crate) fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

pub(crate) fn reason(obj: &Value) -> String {
    condition(obj, "Succeeded")
        .and_then(|c| c["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

async fn every_operation_succeeds_with_exactly_one_revoking_call(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "all-ops")?;
    let cases = [
        (
            "atlas-jwks.yaml",
            "jwksrevocation/atlas-idp-jwks",
            "DELETE",
            JWKS_PATH,
            1,
        ),
        (
            "atlas-x509.yaml",
            "authmethodrevocation/atlas-project-x509",
            "DELETE",
            X509_PATH,
            1,
        ),
        (
            "infisical-auth-method.yaml",
            "authmethodrevocation/infisical-identity-azure-auth",
            "DELETE",
            AZURE_PATH,
            1,
        ),
        (
            "infisical-access-token.yaml",
            "tokenrevocation/infisical-leaked-access-token",
            "POST",
            TOKEN_REVOKE_PATH,
            2,
        ),
        (
            "infisical-token-auth-token.yaml",
            "tokenrevocation/infisical-leaked-token-auth-token",
            "POST",
            TOKEN_REVOKE_PATH,
            2,
        ),
        (
            "infisical-client-secret.yaml",
            "tokenrevocation/infisical-client-secret",
            "POST",
            CLIENT_SECRET_PATH,
            1,
        ),
        (
            "onezone-user-temporary-tokens.yaml",
            "tokenrevocation/onezone-user-temporary-tokens",
            "DELETE",
            OZ_USER_PATH,
            1,
        ),
        (
            "onezone-current-user-temporary-tokens.yaml",
            "tokenrevocation/onezone-own-temporary-tokens",
            "DELETE",
            OZ_SELF_PATH,
            1,
        ),
        (
            "onezone-named-token.yaml",
            "tokenrevocation/onezone-named-token",
            "PATCH",
            OZ_NAMED_PATH,
            1,
        ),
    ];
    for (file, ..) in &cases {
        env.apply(&ns, &example(&format!("revocations/{file}"))?)?;
    }
    for (_, what, method, path, expected_calls) in &cases {
        sh(env
            .kubectl()
            .args(["wait", "--for=condition=Succeeded", "--timeout=90s", "-n", &ns, what]))
        .map_err(|e| {
            format!(
                "kubectl wait {what}: {e}; status: {}",
                env.get_json(&ns, what).map(|o| o["status"].clone()).unwrap_or_default()
            )
        })?;
        let obj = env.get_json(&ns, what)?;
        let s = &obj["status"];
        ensure(s["phase"] == "Succeeded", format!("{what}: phase {}", s["phase"]))?;
        ensure(s["attempts"] == 1, format!("{what}: attempts {}", s["attempts"]))?;
        ensure(reason(&obj) == "Revoked", format!("{what}: reason {}", reason(&obj)))?;
        ensure(
            s["observedGeneration"] == obj["metadata"]["generation"],
            format!("{what}: observedGeneration {}", s["observedGeneration"]),
        )?;
        for field in [
            "startTime",
            "completionTime",
            "lastAttemptTime",
            "target",
            "message",
            "providerType",
        ] {
            ensure(!s[field].is_null(), format!("{what}: status.{field} missing: {s}"))?;
        }
        ensure(
            s["providerResult"]["httpStatus"]
                .as_u64()
                .is_some_and(|c| (200..300).contains(&c)),
            format!("{what}: providerResult {}", s["providerResult"]),
        )?;
        let calls = env.sim.succeeded(method, path).await?;
        ensure(
            calls == *expected_calls,
            format!("{what}: {calls} effective {method} {path} calls, expected {expected_calls}"),
        )?;
        // A receipt for each: read back where the provider's contract allows it.
        let read_back = [
            "atlas-project-x509",
            "infisical-identity-azure-auth",
            "infisical-client-secret",
            "onezone-named-token",
        ];
        let (result, verified) = if read_back.iter().any(|n| what.ends_with(n)) {
            ("Verified", "True")
        } else {
            ("NoReadBack", "Unknown")
        };
        let receipt = &s["receipt"];
        ensure(
            receipt["result"] == result
                && receipt["targetFingerprint"]
                    .as_str()
                    .is_some_and(|f| f.starts_with("sha256:"))
                && condition(&obj, "Verified").is_some_and(|c| c["status"] == verified && c["reason"] == result),
            format!("{what}: receipt {receipt}, Verified {:?}", condition(&obj, "Verified")),
        )?;
    }
    let events = sh(env
        .kubectl()
        .args(["get", "events.events.k8s.io", "-n", &ns, "-o", "json"]))?;
    let events: Value = serde_json::from_str(&events).map_err(|e| e.to_string())?;
    let revoked = events["items"]
        .as_array()
        .map(|a| a.iter().filter(|e| e["reason"] == "Revoked").count())
        .unwrap_or(0);
    ensure(
        revoked == cases.len(),
        format!("{revoked} Revoked events, expected {}", cases.len()),
    )?;
    let secret_target = env.get_json(&ns, "tokenrevocation/infisical-leaked-access-token")?;
    ensure(
        !secret_target.to_string().contains("sim-token-to-revoke"),
        "the token to revoke leaked into the object",
    )?;
    ensure(
        !events.to_string().contains("sim-token-to-revoke"),
        "the token to revoke leaked into an Event",
    )?;
    let listed = sh(env.kubectl().args(["get", "revocations", "-n", &ns]))?;
    ensure(
        listed.lines().filter(|l| l.contains("Succeeded")).count() == cases.len(),
        format!("`kubectl get revocations` lists every kind:\n{listed}"),
    )?;
    ensure(
        listed.contains("Succeeded") && listed.contains("PROVIDER") && listed.contains("TARGET"),
        format!("printer columns:\n{listed}"),
    )?;
    let header = listed.lines().next().unwrap_or_default();
    ensure(
        header.contains("REASON") && header.contains("ATTEMPTS") && listed.contains("Revoked"),
        format!("reason and attempts columns:\n{listed}"),
    )?;
    let wide = sh(env.kubectl().args(["get", "revocations", "-n", &ns, "-o", "wide"]))?;
    let wide_header = wide.lines().next().unwrap_or_default();
    ensure(
        wide_header.contains("DRYRUN") && wide_header.contains("MESSAGE"),
        format!("-o wide columns:\n{wide}"),
    )?;
    let everything = sh(env.kubectl().args(["get", "revoker", "-n", &ns]))?;
    ensure(
        everything.contains("revocationprovider.revoker.dev/atlas")
            && everything.contains("jwksrevocation.revoker.dev/"),
        format!("`kubectl get revoker` lists revocations and providers:\n{everything}"),
    )?;
    // Nothing more happens afterwards: no second call for any target.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (_, what, method, path, expected_calls) in &cases {
        let calls = env.sim.succeeded(method, path).await?;
        ensure(calls == *expected_calls, format!("{what}: repeated: {calls} calls"))?;
    }
    let metrics = env
        .sim_http_get(&format!("http://127.0.0.1:{}/metrics", env.metrics_port))
        .await?;
    for series in [
        r#"revoker_revocations_total{kind="JwksRevocation",provider="atlas",result="succeeded"}"#,
        r#"revoker_revocations_total{kind="TokenRevocation",provider="onezone",result="succeeded"}"#,
        r#"revoker_provider_request_duration_seconds_count{provider="atlas",operation="revokeJwksFromIdentityProvider",status="204"}"#,
        &format!(
            r#"revoker_revocation_info{{namespace="{ns}",name="atlas-idp-jwks",kind="JwksRevocation",provider="atlas",phase="Succeeded",reason="Revoked",dry_run="false"}} 1"#
        ),
        &format!(
            r#"revoker_provider_ready{{namespace="{ns}",name="atlas",kind="RevocationProvider",provider="atlas"}} 1"#
        ),
    ] {
        let sample: Vec<&str> = metrics.lines().filter(|l| l.contains("atlas")).take(5).collect();
        ensure(
            metrics.contains(series),
            format!("/metrics lacks {series}; atlas lines: {sample:#?}"),
        )?;
    }
    for path in ["healthz", "readyz"] {
        env.sim_http_get(&format!("http://127.0.0.1:{}/{path}", env.metrics_port))
            .await?;
    }
    ensure(!metrics.contains("sim-"), "a credential value leaked into /metrics")?;
    // Every metric the shipped alert rules and dashboard use exists in the live /metrics.
    let live = env.work.join("live-metrics.txt");
    std::fs::write(&live, &metrics).map_err(|e| e.to_string())?;
    sh(std::process::Command::new("python3")
        .arg(format!("{ROOT}/hack/check-metric-names.py"))
        .arg(format!("{ROOT}/deploy/monitoring/revoker-rules.yaml"))
        .arg(format!("{ROOT}/charts/revoker/dashboards/revoker.json"))
        .arg(&live))?;
    let log = env.operator_log();
    for secret in [
        "sim-private-key",
        "mdb_sa_sk_sim",
        "sim-client-secret",
        "sim-onezone-admin-token",
        "sim-token-to-revoke",
    ] {
        ensure(
            !log.contains(secret),
            format!("the operator log contains the secret value {secret}"),
        )?;
    }
    Ok(())
}

async fn api_server_rejects_bad_manifests(env: &mut Env) -> Result<()> {
    let ns = env.namespace("bad-input")?;
    let bad_id = jwks("bad-id", "").replace("32b6e34b3d91647abb20e7b8", "zzzzzzzzzzzzzzzzzzzzzzzz");
    let err = env
        .apply(&ns, &bad_id)
        .err()
        .ok_or("a malformed Atlas id was accepted")?;
    ensure(
        err.contains("identityProviderId") && err.contains("[a-f0-9]{24}"),
        format!("message: {err}"),
    )?;

    let two_blocks = "apiVersion: revoker.dev/v1alpha1\nkind: AuthMethodRevocation\nmetadata:\n  name: two\nspec:\n  providerRef: {name: atlas}\n  atlas: {groupId: 32b6e34b3d91647abb20e7b9}\n  infisical: {identityId: x, authMethod: azure-auth}\n";
    let err = env
        .apply(&ns, two_blocks)
        .err()
        .ok_or("two provider blocks were accepted")?;
    ensure(err.contains("exactly one provider block"), format!("message: {err}"))?;

    let bad_enum = "apiVersion: revoker.dev/v1alpha1\nkind: AuthMethodRevocation\nmetadata:\n  name: enum\nspec:\n  providerRef: {name: infisical}\n  infisical: {identityId: x, authMethod: password-auth}\n";
    let err = env
        .apply(&ns, bad_enum)
        .err()
        .ok_or("an unknown auth method was accepted")?;
    ensure(
        err.contains("Unsupported value") && err.contains("password-auth"),
        format!("message: {err}"),
    )?;

    let bad_scope = "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata:\n  name: scope\nspec:\n  providerRef: {name: onezone}\n  onezone: {scope: NamedToken}\n";
    let err = env
        .apply(&ns, bad_scope)
        .err()
        .ok_or("a NamedToken without tokenId was accepted")?;
    ensure(
        err.contains("scope NamedToken needs tokenId or tokenIdFrom"),
        format!("message: {err}"),
    )?;

    env.apply(&ns, &jwks("immutable", "  suspend: true\n"))?;
    let changed =
        jwks("immutable", "  suspend: true\n").replace("55fa922fb343282757d9554e", "55fa922fb343282757d9554f");
    let err = env
        .apply(&ns, &changed)
        .err()
        .ok_or("a spec change after creation was accepted")?;
    ensure(err.contains("spec is immutable"), format!("message: {err}"))?;
    env.apply(
        &ns,
        &jwks("immutable", "  suspend: false\n  ttlSecondsAfterFinished: 600\n"),
    )
    .map_err(|e| format!("suspend and ttlSecondsAfterFinished must stay mutable: {e}"))?;
    Ok(())
}

async fn missing_secret_waits_then_succeeds(env: &mut Env) -> Result<()> {
    let ns = env.namespace("late-secret")?;
    let without_atlas_secret: String = providers(env)?
        .split("\n---\n")
        .filter(|doc| !doc.contains("name: atlas-credentials\n"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    env.apply(&ns, &without_atlas_secret)?;
    env.apply(&ns, &jwks("late", ""))?;
    let waiting = crate::env::wait_for(WAIT, "reason CredentialsUnavailable", || {
        let obj = env.get_json(&ns, "jwksrevocation/late").ok();
        async move { obj.filter(|o| reason(o) == "CredentialsUnavailable") }
    })
    .await?;
    ensure(
        waiting["status"]["phase"] == "Pending",
        format!("phase {}", waiting["status"]["phase"]),
    )?;
    ensure(waiting["status"]["attempts"] == 0, "waiting must not burn attempts")?;
    ensure(
        waiting["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("atlas-credentials"),
        "the message names the Secret",
    )?;
    ensure(
        env.sim.succeeded("DELETE", JWKS_PATH).await? == 0,
        "called the provider without credentials",
    )?;
    let secret = providers(env)?
        .split("\n---\n")
        .find(|d| d.contains("name: atlas-credentials\n"))
        .unwrap_or_default()
        .to_string();
    env.apply(&ns, &secret)?;
    let done = env.wait_phase(&ns, "jwksrevocation/late", "Succeeded", WAIT).await?;
    ensure(
        done["status"]["attempts"] == 1,
        format!("attempts {}", done["status"]["attempts"]),
    )?;
    Ok(())
}

async fn permanent_errors_fail_at_once_without_retries(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "permanent")?;
    for (status, expected) in [(401, "Unauthorized"), (403, "Forbidden"), (404, "TargetNotFound")] {
        env.sim.clear_calls_and_faults().await?;
        env.sim.fault(status_fault("DELETE", JWKS_PATH, status, None)).await?;
        let name = format!("perm-{status}");
        env.apply(&ns, &jwks(&name, ""))?;
        let obj = env
            .wait_phase(&ns, &format!("jwksrevocation/{name}"), "Failed", WAIT)
            .await?;
        ensure(
            reason(&obj) == expected,
            format!("{status}: reason {} (expected {expected})", reason(&obj)),
        )?;
        ensure(
            condition(&obj, "Failed").is_some_and(|c| c["status"] == "True"),
            "Failed condition",
        )?;
        ensure(
            obj["status"]["attempts"] == 1,
            format!("{status}: attempts {}", obj["status"]["attempts"]),
        )?;
        ensure(
            obj["status"]["providerResult"]["httpStatus"] == status,
            format!("{status}: providerResult {}", obj["status"]["providerResult"]),
        )?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let calls = env.sim.count("DELETE", JWKS_PATH).await?;
        // One call with HTTP Digest: at most the request with the nonce kept from the provider's
        // credential check (refused with the 401), a fresh challenge, and the answer to it. A
        // retry would add at least a challenge and an answer.
        ensure(
            calls <= 3,
            format!("{status}: {calls} calls, a permanent error must not be retried"),
        )?;
    }
    // A real 404 from the simulator: an unknown Onezone user.
    let unknown_user = "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata:\n  name: unknown-user\nspec:\n  providerRef: {name: onezone}\n  onezone: {scope: UserTemporaryTokens, userId: ffffffffffffffffffffffffffffffff}\n";
    env.apply(&ns, unknown_user)?;
    let obj = env
        .wait_phase(&ns, "tokenrevocation/unknown-user", "Failed", WAIT)
        .await?;
    ensure(reason(&obj) == "TargetNotFound", format!("reason {}", reason(&obj)))?;
    ensure(
        obj["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ffffffffffffffffffffffffffffffff"),
        "message names the id",
    )?;
    Ok(())
}

async fn transient_errors_are_retried_then_succeed(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "transient")?;
    env.sim
        .fault(status_fault("DELETE", OZ_USER_PATH, 503, Some(2)))
        .await?;
    env.apply(&ns, &example("revocations/onezone-user-temporary-tokens.yaml")?)?;
    let obj = env
        .wait_phase(
            &ns,
            "tokenrevocation/onezone-user-temporary-tokens",
            "Succeeded",
            Duration::from_secs(90),
        )
        .await?;
    ensure(
        obj["status"]["attempts"] == 3,
        format!("503 twice: attempts {}", obj["status"]["attempts"]),
    )?;
    ensure(
        env.sim.succeeded("DELETE", OZ_USER_PATH).await? == 1,
        "one effective call",
    )?;

    let mut fault = status_fault("DELETE", AZURE_PATH, 429, Some(1));
    fault["retryAfter"] = json!(2);
    env.sim.fault(fault).await?;
    env.apply(&ns, &example("revocations/infisical-auth-method.yaml")?)?;
    let obj = env
        .wait_phase(
            &ns,
            "authmethodrevocation/infisical-identity-azure-auth",
            "Succeeded",
            Duration::from_secs(90),
        )
        .await?;
    ensure(
        obj["status"]["attempts"] == 2,
        format!("429 once: attempts {}", obj["status"]["attempts"]),
    )?;
    let calls = env.sim.calls().await?;
    let times: Vec<String> = calls
        .iter()
        .filter(|c| c["method"] == "DELETE" && c["path"] == AZURE_PATH)
        .filter_map(|c| c["timestamp"].as_str().map(String::from))
        .collect();
    ensure(times.len() == 2, format!("azure-auth calls: {times:?}"))?;
    let parse = |t: &str| t.parse::<k8s_openapi::jiff::Timestamp>().map_err(|e| e.to_string());
    let gap = parse(&times[1])?.duration_since(parse(&times[0])?);
    ensure(
        gap.as_secs_f64() >= 1.9,
        format!("retried after {gap:?}, before the 2 s the provider asked for"),
    )?;
    Ok(())
}

async fn suspend_holds_until_unsuspended(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "suspend")?;
    env.apply(&ns, &jwks("gated", "  suspend: true\n"))?;
    let obj = crate::env::wait_for(WAIT, "reason Suspended", || {
        let obj = env.get_json(&ns, "jwksrevocation/gated").ok();
        async move { obj.filter(|o| reason(o) == "Suspended") }
    })
    .await?;
    ensure(obj["status"]["phase"] == "Pending", "suspended is Pending")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure(
        env.sim.total().await? == 0 || env.sim.succeeded("DELETE", JWKS_PATH).await? == 0,
        "a suspended revocation called the provider",
    )?;
    sh(env.kubectl().args([
        "patch",
        "jwksrevocation/gated",
        "-n",
        &ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]))?;
    env.wait_phase(&ns, "jwksrevocation/gated", "Succeeded", WAIT).await?;
    ensure(
        env.sim.succeeded("DELETE", JWKS_PATH).await? == 1,
        "one call after approval",
    )?;
    Ok(())
}

async fn dry_run_calls_nothing_that_revokes(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "dry-run")?;
    env.apply(&ns, &jwks("dry", "  dryRun: true\n"))?;
    let obj = env.wait_phase(&ns, "jwksrevocation/dry", "Succeeded", WAIT).await?;
    ensure(reason(&obj) == "DryRunSucceeded", format!("reason {}", reason(&obj)))?;
    let message = obj["status"]["message"].as_str().unwrap_or_default();
    ensure(
        message.contains("would"),
        format!("the message says what would be revoked: {message}"),
    )?;
    let calls = env.sim.calls().await?;
    // Logins (the provider's Ready check) are not revoking calls.
    let is_login =
        |c: &&Value| c["path"] == "/api/oauth/token" || c["path"].as_str().is_some_and(|p| p.ends_with("/login"));
    let writes: Vec<&Value> = calls
        .iter()
        .filter(|c| c["method"] != "GET")
        .filter(|c| !is_login(c))
        .collect();
    ensure(writes.is_empty(), format!("a dry run made non-GET calls: {writes:?}"))?;
    ensure(!calls.is_empty(), "a dry run checks the target with a read-only call")?;
    Ok(())
}

async fn ttl_deletes_finished_revocations(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "ttl")?;
    env.apply(&ns, &jwks("short-lived", "  ttlSecondsAfterFinished: 2\n"))?;
    crate::env::wait_for(WAIT, "deletion after the TTL", || {
        let gone = env.get_json(&ns, "jwksrevocation/short-lived").is_err();
        async move { gone.then_some(()) }
    })
    .await?;
    ensure(
        env.sim.succeeded("DELETE", JWKS_PATH).await? == 1,
        "revoked once before deletion",
    )?;
    // Its per-object series leaves with it (the cache drops it when the watch reports the delete).
    let url = format!("http://127.0.0.1:{}/metrics", env.metrics_port);
    let series = format!(r#"namespace="{ns}",name="short-lived""#);
    crate::env::wait_for(Duration::from_secs(10), "the deleted object's series to go", || {
        let get = env.sim_http_get(&url);
        let series = series.clone();
        async move { get.await.ok().filter(|m| !m.contains(&series)).map(|_| ()) }
    })
    .await?;
    Ok(())
}

async fn host_not_on_allow_list_gets_nothing(env: &mut Env) -> Result<()> {
    let ns = env.namespace("egress")?;
    // localhost resolves to the simulator too, but only 127.0.0.1:<port> is allowed.
    let manifests = providers(env)?.replace("http://127.0.0.1:", "http://localhost:");
    env.apply(&ns, &manifests)?;
    env.apply(&ns, &jwks("egress", ""))?;
    let obj = crate::env::wait_for(WAIT, "reason HostNotAllowed", || {
        let obj = env.get_json(&ns, "jwksrevocation/egress").ok();
        async move { obj.filter(|o| reason(o) == "HostNotAllowed") }
    })
    .await?;
    ensure(obj["status"]["attempts"] == 0, "no attempt is made")?;
    let provider = env.get_json(&ns, "revocationprovider/atlas")?;
    let ready = condition(&provider, "Ready").cloned().unwrap_or_default();
    ensure(
        ready["status"] == "False" && ready["reason"] == "HostNotAllowed",
        format!("provider Ready: {ready}"),
    )?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure(
        env.sim.total().await? == 0,
        format!("the simulator received {:?}", env.sim.calls().await?),
    )?;
    Ok(())
}

async fn provider_cannot_read_a_secret_of_another_namespace(env: &mut Env) -> Result<()> {
    let secrets_ns = namespace_with_providers(env, "has-secret")?;
    let ns = env.namespace("no-secret")?;
    let provider_only: String = providers(env)?
        .split("\n---\n")
        .filter(|doc| doc.contains("kind: RevocationProvider"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    env.apply(&ns, &provider_only)?;
    // A namespace field in the Secret reference does not exist in the schema: rejected, not ignored.
    let cross = format!(
        "apiVersion: revoker.dev/v1alpha1\nkind: RevocationProvider\nmetadata:\n  name: cross\nspec:\n  atlas:\n    baseUrl: {}\n    credentialsSecretRef: {{name: atlas-credentials, namespace: {secrets_ns}}}\n",
        env.sim.base_url()
    );
    let err = env
        .apply(&ns, &cross)
        .err()
        .ok_or("a Secret reference with a namespace was accepted")?;
    ensure(err.contains("namespace"), format!("message: {err}"))?;
    env.apply(&ns, &jwks("cross", ""))?;
    let obj = crate::env::wait_for(WAIT, "reason CredentialsUnavailable", || {
        let obj = env.get_json(&ns, "jwksrevocation/cross").ok();
        async move { obj.filter(|o| reason(o) == "CredentialsUnavailable") }
    })
    .await?;
    let message = obj["status"]["message"].as_str().unwrap_or_default();
    ensure(
        message.contains(&format!("Secret {ns}/atlas-credentials")),
        format!("reads only its own namespace: {message}"),
    )?;
    ensure(
        env.sim.succeeded("DELETE", JWKS_PATH).await? == 0,
        "no call without credentials",
    )?;
    Ok(())
}

async fn operator_rbac_is_least_privilege(env: &mut Env) -> Result<()> {
    let can = |verb: &str, resource: &str, ns: Option<&str>| -> Result<bool> {
        let mut cmd = std::process::Command::new(env.cp.bin_dir.join("kubectl"));
        cmd.arg("--kubeconfig")
            .arg(&env.operator_kubeconfig)
            .args(["auth", "can-i", verb]);
        match resource.split_once('/') {
            Some((resource, sub)) => cmd.arg(resource).arg(format!("--subresource={sub}")),
            None => cmd.arg(resource),
        };
        match ns {
            Some(ns) => cmd.args(["-n", ns]),
            None => cmd.arg("--all-namespaces"),
        };
        let out = cmd.output().map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out.stdout).trim() == "yes")
    };
    for (verb, resource) in [
        ("get", "secrets"),
        ("get", "configmaps"),
        ("update", "jwksrevocations/status"),
        ("delete", "tokenrevocations"),
        ("create", "tokenrevocations"),
        ("create", "events.events.k8s.io"),
    ] {
        ensure(
            can(verb, resource, Some("default"))?,
            format!("the operator needs to {verb} {resource}"),
        )?;
    }
    for (verb, resource) in [
        ("list", "secrets"),
        ("watch", "secrets"),
        ("create", "secrets"),
        ("update", "secrets"),
        ("list", "configmaps"),
        ("watch", "configmaps"),
        ("delete", "pods"),
        ("update", "clusterroles"),
        ("escalate", "clusterroles"),
        ("create", "rolebindings"),
        ("update", "jwksrevocations"),
        ("update", "revocationproviders"),
    ] {
        ensure(
            !can(verb, resource, None)?,
            format!("the operator must not {verb} {resource}"),
        )?;
    }
    Ok(())
}

async fn crash_mid_run_repeats_at_most_once_and_never_after_success(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "crash")?;
    // A finished revocation from before the crash.
    env.apply(&ns, &example("revocations/onezone-named-token.yaml")?)?;
    env.wait_phase(&ns, "tokenrevocation/onezone-named-token", "Succeeded", WAIT)
        .await?;
    // A slow call: the crash happens while the provider is working on it.
    env.sim.fault(json!({"match": {"method": "DELETE", "path": OZ_SELF_PATH, "exact": true}, "kind": "latency", "latencyMs": 4000, "times": 1})).await?;
    env.apply(&ns, &example("revocations/onezone-current-user-temporary-tokens.yaml")?)?;
    crate::env::wait_for(WAIT, "attempt 1 recorded", || {
        let obj = env.get_json(&ns, "tokenrevocation/onezone-own-temporary-tokens").ok();
        async move { obj.filter(|o| o["status"]["attempts"] == 1 && o["status"]["phase"] == "Running") }
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut op = env.operator.take().ok_or("no operator")?;
    op.kill();
    // Leader election: the new process waits for the dead one's lease to expire.
    env.start_operator()?;
    let obj = env
        .wait_phase(
            &ns,
            "tokenrevocation/onezone-own-temporary-tokens",
            "Succeeded",
            Duration::from_secs(90),
        )
        .await?;
    let attempts = obj["status"]["attempts"].as_i64().unwrap_or_default();
    ensure(
        attempts == 2,
        format!("the interrupted attempt shows as one more attempt: {attempts}"),
    )?;
    let calls = env.sim.count("DELETE", OZ_SELF_PATH).await?;
    ensure(calls <= 2, format!("{calls} calls for one revocation"))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure(
        env.sim.count("PATCH", OZ_NAMED_PATH).await? == 1,
        "a revocation that had succeeded was executed again after the restart",
    )?;
    let named = env.get_json(&ns, "tokenrevocation/onezone-named-token")?;
    ensure(named["status"]["attempts"] == 1, "attempts unchanged")?;
    Ok(())
}

async fn leader_election_lets_one_replica_act_and_hands_over(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "leader")?;
    let second = env.spawn_operator("operator-b", crate::env::free_port()?)?;
    let mut second = Some(second);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let admin_kubeconfig = env.cp.admin_kubeconfig.clone();
    let kubectl = env.cp.bin_dir.join("kubectl");
    let lease = move || -> Result<String> {
        let lease = sh(std::process::Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&admin_kubeconfig)
            .args([
                "get",
                "lease",
                "revoker-leader",
                "-n",
                crate::env::OPERATOR_NS,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ]))?;
        Ok(lease.trim().to_string())
    };
    ensure(
        lease()? == "operator",
        format!("the first operator should hold the lease, holder: {}", lease()?),
    )?;
    ensure(
        second
            .as_ref()
            .is_some_and(|p| p.log_text().contains("waiting to become the leader")),
        "the second replica waits",
    )?;
    env.apply(&ns, &jwks("ha-1", ""))?;
    env.wait_phase(&ns, "jwksrevocation/ha-1", "Succeeded", WAIT).await?;
    ensure(
        !second
            .as_ref()
            .is_some_and(|p| p.log_text().contains("revocation attempt")),
        "the standby replica acted",
    )?;
    // Kill the leader: its lease expires at most the lease duration (6 s) after the kill; the
    // standby notices within its retry period (the 2 s grace), and this test polls the Lease through
    // kubectl (up to 2 s more under load). Measured 2.5-6.2 s.
    let killed_at = std::time::Instant::now();
    env.operator.take().ok_or("no operator")?.kill();
    crate::env::wait_for(Duration::from_secs(30), "the standby to take the lease", || {
        let holder = lease().unwrap_or_default();
        async move { (holder == "operator-b").then_some(()) }
    })
    .await?;
    let handover = killed_at.elapsed();
    ensure(
        handover < Duration::from_secs(6 + 2 + 2),
        format!("handover took {handover:?}"),
    )?;
    env.apply(&ns, &jwks("ha-2", ""))?;
    env.wait_phase(&ns, "jwksrevocation/ha-2", "Succeeded", WAIT).await?;
    ensure(
        env.sim.succeeded("DELETE", JWKS_PATH).await? == 2,
        "each revocation executed exactly once",
    )?;
    eprintln!("e2e: leader handover took {:.1}s", handover.as_secs_f64());
    if let Some(mut p) = second.take() {
        p.terminate();
    }
    env.start_operator()?;
    Ok(())
}

async fn cluster_provider_serves_only_selected_namespaces(env: &mut Env) -> Result<()> {
    // The credentials live in the operator's namespace.
    let secret = providers(env)?
        .split("\n---\n")
        .find(|d| d.contains("name: onezone-credentials\n"))
        .unwrap_or_default()
        .replace("name: onezone-credentials", "name: shared-onezone-credentials");
    env.apply(crate::env::OPERATOR_NS, &secret)?;
    let provider = format!(
        "apiVersion: revoker.dev/v1alpha1\nkind: ClusterRevocationProvider\nmetadata:\n  name: shared-onezone\nspec:\n  onezone:\n    baseUrl: {}\n    credentialsSecretRef: {{name: shared-onezone-credentials}}\n  namespaceSelector:\n    matchLabels: {{revoker.dev/onezone: allowed}}\n",
        env.sim.base_url()
    );
    env.apply(crate::env::OPERATOR_NS, &provider)?;
    let revocation = "apiVersion: revoker.dev/v1alpha1\nkind: TokenRevocation\nmetadata:\n  name: shared\nspec:\n  providerRef: {kind: ClusterRevocationProvider, name: shared-onezone}\n  onezone: {scope: UserTemporaryTokens, userId: 9a8b7c6d5e4f30211203f4e5d6c7b8a9}\n";
    let allowed = env.namespace("cluster-allowed")?;
    sh(env
        .kubectl()
        .args(["label", "namespace", &allowed, "revoker.dev/onezone=allowed"]))?;
    env.apply(&allowed, revocation)?;
    env.wait_phase(&allowed, "tokenrevocation/shared", "Succeeded", WAIT)
        .await?;
    let denied = env.namespace("cluster-denied")?;
    env.apply(&denied, revocation)?;
    let obj = crate::env::wait_for(WAIT, "reason NamespaceNotAllowed", || {
        let obj = env.get_json(&denied, "tokenrevocation/shared").ok();
        async move { obj.filter(|o| reason(o) == "NamespaceNotAllowed") }
    })
    .await?;
    ensure(
        obj["status"]["phase"] == "Pending" && obj["status"]["attempts"] == 0,
        format!("a namespace not admitted waits: {}", obj["status"]),
    )?;
    ensure(
        env.sim.succeeded("DELETE", OZ_USER_PATH).await? == 1,
        "only the selected namespace's revocation called the provider",
    )?;
    // Admitting the namespace lets the waiting revocation run, once.
    sh(env
        .kubectl()
        .args(["label", "namespace", &denied, "revoker.dev/onezone=allowed"]))?;
    env.wait_phase(&denied, "tokenrevocation/shared", "Succeeded", WAIT)
        .await?;
    ensure(
        env.sim.succeeded("DELETE", OZ_USER_PATH).await? == 2,
        "the admitted namespace's revocation called the provider once",
    )?;
    let provider = sh(env
        .kubectl()
        .args(["get", "clusterrevocationprovider", "shared-onezone", "-o", "json"]))?;
    let provider: Value = serde_json::from_str(&provider).map_err(|e| e.to_string())?;
    ensure(
        condition(&provider, "Ready").is_some_and(|c| c["status"] == "True"),
        format!("cluster provider Ready: {}", provider["status"]),
    )?;
    Ok(())
}

/// The provider gate: a provider whose credential check fails holds its revocations (no call at
/// all); fixing its Secret lets each run exactly once, without recreating anything.
async fn a_broken_provider_holds_revocations_until_fixed(env: &mut Env) -> Result<()> {
    let ns = env.namespace("gate")?;
    let broken = providers(env)?.replace("privateKey: sim-private-key", "privateKey: not-the-private-key");
    env.apply(&ns, &broken)?;
    let provider = crate::env::wait_for(WAIT, "provider Ready=False Unauthorized", || {
        let obj = env.get_json(&ns, "revocationprovider/atlas").ok();
        async move { obj.filter(|o| condition(o, "Ready").is_some_and(|c| c["reason"] == "Unauthorized")) }
    })
    .await?;
    ensure(
        condition(&provider, "Stalled").is_some_and(|c| c["status"] == "True"),
        format!("a rejected key is Stalled: {}", provider["status"]),
    )?;
    env.apply(&ns, &jwks("held", ""))?;
    let held = crate::env::wait_for(WAIT, "revocation waiting on the provider", || {
        let obj = env.get_json(&ns, "jwksrevocation/held").ok();
        async move { obj.filter(|o| reason(o) == "Unauthorized") }
    })
    .await?;
    ensure(
        held["status"]["phase"] == "Pending" && held["status"]["attempts"] == 0,
        format!("held, not failed: {}", held["status"]),
    )?;
    ensure(
        condition(&held, "Reconciling").is_some_and(|c| c["status"] == "True"),
        format!("held is Reconciling: {}", held["status"]),
    )?;
    ensure(
        env.sim.count("DELETE", JWKS_PATH).await? == 0,
        "a revocation behind a broken provider called the provider",
    )?;
    env.apply(&ns, &providers(env)?)?;
    let done = env.wait_phase(&ns, "jwksrevocation/held", "Succeeded", WAIT).await?;
    ensure(
        done["status"]["attempts"] == 1,
        format!("attempts {}", done["status"]["attempts"]),
    )?;
    ensure(
        env.sim.succeeded("DELETE", JWKS_PATH).await? == 1,
        "exactly one revoking call after the fix",
    )?;
    Ok(())
}

/// The value revoked is the value meant: a rotation that rewrites the token Secret while the
/// revocation is suspended leaves the new token untouched.
async fn a_rotated_token_is_never_revoked_in_place_of_the_pinned_one(env: &mut Env) -> Result<()> {
    let ns = namespace_with_providers(env, "pinned")?;
    let suspended = example("revocations/infisical-access-token.yaml")?.replace("spec:\n", "spec:\n  suspend: true\n");
    env.apply(&ns, &suspended)?;
    let what = "tokenrevocation/infisical-leaked-access-token";
    let pinned = crate::env::wait_for(WAIT, "the pinned fingerprint", || {
        let obj = env.get_json(&ns, what).ok();
        async move { obj.filter(|o| o["status"]["targetFingerprint"].is_string()) }
    })
    .await?;
    // A rotation writes the new token where the old one was.
    sh(env.kubectl().args([
        "create",
        "secret",
        "generic",
        "leaked-infisical-token",
        "-n",
        &ns,
        "--from-literal=token=the-NEW-token-after-rotation",
        "--dry-run=client",
        "-o",
        "yaml",
    ]))
    .and_then(|yaml| env.apply(&ns, &yaml))?;
    sh(env.kubectl().args([
        "patch",
        what,
        "-n",
        &ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"suspend":false}}"#,
    ]))?;
    let failed = env.wait_phase(&ns, what, "Failed", WAIT).await?;
    ensure(
        reason(&failed) == "TargetChanged" && failed["status"]["attempts"] == 0,
        format!("a changed target fails without an attempt: {}", failed["status"]),
    )?;
    ensure(
        failed["status"]["targetFingerprint"] == pinned["status"]["targetFingerprint"],
        "the pin does not move",
    )?;
    ensure(
        env.sim.count("POST", TOKEN_REVOKE_PATH).await? == 0,
        "the simulator saw a revoking call",
    )?;
    ensure(
        !failed.to_string().contains("the-NEW-token") && !failed.to_string().contains("sim-token-to-revoke"),
        "a token value leaked into the object",
    )?;
    Ok(())
}
