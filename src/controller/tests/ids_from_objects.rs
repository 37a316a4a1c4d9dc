//! Scenarios of identifiers read from Secrets and ConfigMaps (what a rotation pipeline writes)
//! instead of the manifest.

use super::*;

const OLD_TOKEN_ID: &str = "2b5d0dd5aa6443a69277b5ce0544fec2";
const NEW_TOKEN_ID: &str = "7c1e0dd5aa6443a69277b5ce0544fe99";
const CONFIG_MAP_PATH: &str = "/api/v1/namespaces/team-a/configmaps/rotation";

/// A TokenRevocation of the Onezone named token whose id is in ConfigMap `rotation` key `previous`.
fn named_token_from_config_map() -> Rev {
    Rev::new(
        "TokenRevocation",
        json!({
            "providerRef": {"name": "onezone"},
            "backoffLimit": 6,
            "onezone": {"scope": "NamedToken", "tokenIdFrom": {"configMapKeyRef": {"name": "rotation", "key": "previous"}}},
        }),
    )
}

fn config_map(previous: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "rotation", "namespace": NS, "resourceVersion": "9"},
        "data": {"previous": previous},
    })
}

fn onezone_setup() -> (Arc<FakeProvider>, Arc<Context>, Verifier) {
    let fake = FakeProvider::new(
        ProviderType::Onezone,
        vec![outcome(OutcomeKind::Revoked, "revoked the named token")],
    );
    let mut onezone = provider("onezone", "onezone", "onezone-creds");
    onezone["spec"]["onezone"]["baseUrl"] = json!("https://onezone.example.org");
    let (ctx, v) = setup_watching::<TokenRevocation>(&fake, &[onezone]);
    (fake, ctx, v)
}

#[tokio::test]
async fn a_token_id_read_from_a_config_map_is_the_one_revoked() {
    let (fake, ctx, mut v) = onezone_setup();
    let obj = named_token_from_config_map().build::<TokenRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.expect(Method::GET, CONFIG_MAP_PATH).await;
        v.respond(&config_map(&format!("{OLD_TOKEN_ID}\n")));
        v.get_secret(secret("onezone-creds", &[("token", SECRET_VALUE)])).await;
        let attempt = v.put_status().await;
        assert_eq!(attempt["target"], json!(format!("named token {OLD_TOKEN_ID}")));
        v.put_status().await;
        v.event("Normal", "Revoked").await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::await_change());
    assert_eq!(fake.revokes(), 1);
}

#[tokio::test]
async fn a_missing_config_map_waits_without_calling() {
    let (fake, ctx, mut v) = onezone_setup();
    let obj = named_token_from_config_map().build::<TokenRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.expect(Method::GET, CONFIG_MAP_PATH).await;
        v.fail(404, "NotFound");
        let status = v.put_status().await;
        assert_condition(&status, "Succeeded", "Unknown", "CredentialsUnavailable");
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .contains("ConfigMap team-a/rotation was not found"),
            "{status}"
        );
        v.event("Warning", "CredentialsUnavailable").await;
        v.assert_idle().await;
        v
    })
    .await;
    assert_eq!(result.expect("reconcile"), Action::requeue(WAIT_RECHECK));
    assert_eq!(fake.revokes(), 0);
}

#[tokio::test]
async fn a_secret_that_holds_no_identifier_fails_without_showing_it() {
    let (fake, ctx, mut v) = onezone_setup();
    let obj = Rev::new(
        "TokenRevocation",
        json!({
            "providerRef": {"name": "onezone"},
            "backoffLimit": 6,
            "onezone": {"scope": "NamedToken", "tokenIdFrom": {"secretKeyRef": {"name": "rotation", "key": "previous"}}},
        }),
    )
    .build::<TokenRevocation>();
    let (result, v) = reconcile(obj, ctx, async move {
        // A path separator smuggled into the id: refused before any request to the provider.
        v.get_secret(secret("rotation", &[("previous", "SUPER-SECRET-VALUE-123/../x")]))
            .await;
        let status = v.put_status().await;
        assert_condition(&status, "Failed", "True", "InvalidSpec");
        let message = status["message"].as_str().unwrap();
        assert!(
            message.contains("Secret team-a/rotation key previous") && message.contains("nothing was sent"),
            "{message}"
        );
        v.event("Warning", "InvalidSpec").await;
        v.assert_idle().await;
        v
    })
    .await;
    result.expect("reconcile");
    assert_eq!(fake.revokes(), 0);
    v.assert_no_secret_leaked();
}

#[tokio::test]
async fn an_identifier_rotated_after_first_sight_is_not_revoked() {
    let (fake, ctx, mut v) = onezone_setup();
    let obj = named_token_from_config_map()
        .spec("suspend", json!(false))
        .status(json!({"phase": "Pending", "attempts": 0, "target": format!("named token {OLD_TOKEN_ID}")}))
        .build::<TokenRevocation>();
    let (result, _) = reconcile(obj, ctx, async move {
        v.expect(Method::GET, CONFIG_MAP_PATH).await;
        v.respond(&config_map(NEW_TOKEN_ID));
        let status = v.put_status().await;
        assert_condition(&status, "Failed", "True", "TargetChanged");
        let message = status["message"].as_str().unwrap();
        assert!(
            message.contains(NEW_TOKEN_ID) && message.contains(OLD_TOKEN_ID) && message.contains("nothing was revoked"),
            "{message}"
        );
        v.event("Warning", "TargetChanged").await;
        v.assert_idle().await;
        v
    })
    .await;
    result.expect("reconcile");
    assert_eq!(fake.revokes(), 0, "neither the old nor the new token was revoked");
}
