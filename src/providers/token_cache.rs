//! The one cache of login tokens (Atlas OAuth access token, Infisical universal-auth token).
//!
//! Refresh rule, the same for every provider: a token is used until `min(60 s, 10 % of its
//! lifetime)` before it expires. When the provider states no lifetime (no `expires_in`, or 0 for
//! "no expiry"), the token is assumed to live [`ASSUMED_LIFETIME`] (300 s), so it is refreshed
//! after 270 s; a 401 on a cached token drops it earlier anyway.
//!
//! Every token the cache obtains is registered with the client's [`Redactor`], so an answer that
//! echoes it is scrubbed.

use std::future::Future;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

use crate::outcome::{ProviderError, Redactor};

/// Lifetime assumed for a token whose answer states none.
pub const ASSUMED_LIFETIME: Duration = Duration::from_secs(300);
/// The longest margin before expiry at which a token is refreshed.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A token issued by a login, with the lifetime the provider stated (if any).
pub struct Issued {
    /// The bearer token.
    pub token: SecretString,
    /// `expires_in`; `None` or zero when the provider did not say.
    pub lifetime: Option<Duration>,
}

/// A token to send, and whether it came from the cache (and so may be stale).
pub struct Bearer {
    /// The bearer token.
    pub token: SecretString,
    /// True when the token was cached before this call.
    pub from_cache: bool,
}

struct Cached {
    token: SecretString,
    refresh_at: Instant,
}

/// A single cached token. The lock is held while a token is fetched, so concurrent callers wait
/// for one login instead of sending their own.
pub struct TokenCache {
    slot: Mutex<Option<Cached>>,
    redactor: Redactor,
}

/// How long a token with `lifetime` is used before it is refreshed (see the module docs).
pub fn refresh_after(lifetime: Option<Duration>) -> Duration {
    let lifetime = lifetime.filter(|l| !l.is_zero()).unwrap_or(ASSUMED_LIFETIME);
    lifetime - MAX_REFRESH_MARGIN.min(lifetime / 10)
}

impl TokenCache {
    /// An empty cache whose tokens are registered with `redactor`.
    pub fn new(redactor: Redactor) -> Self {
        TokenCache {
            slot: Mutex::new(None),
            redactor,
        }
    }

    /// The cached token while it is fresh, else a new one from `fetch`.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Bearer, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Issued, ProviderError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot.as_ref()
            && Instant::now() < cached.refresh_at
        {
            return Ok(Bearer {
                token: cached.token.clone(),
                from_cache: true,
            });
        }
        *slot = None;
        self.fill(&mut slot, fetch).await
    }

    /// Always fetch a new token (a live credential check), and keep it.
    pub async fn refresh<F, Fut>(&self, fetch: F) -> Result<Bearer, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Issued, ProviderError>>,
    {
        let mut slot = self.slot.lock().await;
        self.fill(&mut slot, fetch).await
    }

    /// Drop the cached token if it is still `used` (another caller may have replaced it already).
    pub async fn forget(&self, used: &SecretString) {
        let mut slot = self.slot.lock().await;
        if slot
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == used.expose_secret())
        {
            *slot = None;
        }
    }

    async fn fill<F, Fut>(&self, slot: &mut Option<Cached>, fetch: F) -> Result<Bearer, ProviderError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Issued, ProviderError>>,
    {
        let requested = Instant::now();
        let issued = fetch().await?;
        self.redactor.register(&issued.token);
        *slot = Some(Cached {
            token: issued.token.clone(),
            refresh_at: requested + refresh_after(issued.lifetime),
        });
        Ok(Bearer {
            token: issued.token,
            from_cache: false,
        })
    }

    /// Make the cached token due for refresh (tests of the expiry path).
    #[cfg(test)]
    pub async fn age_past_refresh(&self) {
        if let Some(cached) = self.slot.lock().await.as_mut() {
            cached.refresh_at = Instant::now() - Duration::from_secs(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn tokens_are_refreshed_60s_or_10_percent_before_expiry() {
        let after = |secs| refresh_after(Some(Duration::from_secs(secs)));
        assert_eq!(after(3600), Duration::from_secs(3540));
        assert_eq!(after(7200), Duration::from_secs(7140));
        assert_eq!(after(600), Duration::from_secs(540));
        assert_eq!(after(300), Duration::from_secs(270));
        assert_eq!(after(100), Duration::from_secs(90));
    }

    #[test]
    fn a_token_without_a_stated_lifetime_is_assumed_to_live_300s() {
        assert_eq!(refresh_after(None), Duration::from_secs(270));
        assert_eq!(refresh_after(Some(Duration::ZERO)), Duration::from_secs(270));
    }

    fn issue(token: &str, count: &AtomicUsize) -> impl Future<Output = Result<Issued, ProviderError>> {
        count.fetch_add(1, Ordering::SeqCst);
        let token = SecretString::from(token.to_string());
        async move {
            Ok(Issued {
                token,
                lifetime: Some(Duration::from_secs(3600)),
            })
        }
    }

    #[tokio::test]
    async fn a_fresh_token_is_reused_and_a_forgotten_or_aged_one_fetched_again() {
        let cache = TokenCache::new(Redactor::new());
        let fetches = AtomicUsize::new(0);
        let first = cache.get(|| issue("tok-one-123", &fetches)).await.unwrap();
        assert!(!first.from_cache);
        let again = cache.get(|| issue("tok-two-123", &fetches)).await.unwrap();
        assert!(again.from_cache);
        assert_eq!(again.token.expose_secret(), "tok-one-123");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        // Forgetting a token that was already replaced keeps the newer one.
        cache.forget(&SecretString::from("other".to_string())).await;
        assert!(cache.get(|| issue("x", &fetches)).await.unwrap().from_cache);
        cache.forget(&first.token).await;
        let second = cache.get(|| issue("tok-two-123", &fetches)).await.unwrap();
        assert_eq!(second.token.expose_secret(), "tok-two-123");
        cache.age_past_refresh().await;
        let third = cache.get(|| issue("tok-three-123", &fetches)).await.unwrap();
        assert_eq!(third.token.expose_secret(), "tok-three-123");
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
        let forced = cache.refresh(|| issue("tok-four-123", &fetches)).await.unwrap();
        assert!(!forced.from_cache);
    }

    #[tokio::test]
    async fn an_issued_token_is_known_to_the_redactor() {
        let redactor = Redactor::new();
        let cache = TokenCache::new(redactor.clone());
        let fetches = AtomicUsize::new(0);
        cache.get(|| issue("issued-SECRET-token", &fetches)).await.unwrap();
        let out = redactor.redact("echo issued-SECRET-token", 100);
        assert!(!out.as_str().contains("issued-SECRET-token"), "{out}");
    }
}
