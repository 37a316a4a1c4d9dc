//! HTTP plumbing shared by the provider clients: TLS, egress check, rate limit, timing.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Client, RequestBuilder, Response};
use url::Url;

use crate::api::ProviderType;
use crate::egress::AllowList;
use crate::providers::{ProviderError, Reason};
use crate::telemetry::{METRICS, ProviderLabels, RequestLabels};

/// How long a provider is left alone after a 429 that names no `Retry-After`.
const PAUSE_WITHOUT_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The longest pause a provider's `Retry-After` can impose on the other revocations (the one that
/// got the answer still honours the whole `Retry-After` through its retry time).
const MAX_PAUSE: Duration = Duration::from_secs(300);

/// Settings common to every provider client.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Hosts that may receive credentials.
    pub allow_list: Arc<AllowList>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Client-side rate limit per provider object, in requests per second.
    pub requests_per_second: NonZeroU32,
    /// Requests to one provider object under way at once.
    pub max_in_flight: NonZeroU32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            allow_list: Arc::new(super::default_allow_list()),
            timeout: Duration::from_secs(30),
            requests_per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            max_in_flight: NonZeroU32::new(8).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// An HTTP client bound to one provider's base URL. Every revocation of the provider object
/// shares it, so its limits are the provider's: a rate limit, a cap on requests under way, and a
/// pause when the provider answers 429 (or 503 with `Retry-After`) that holds back every request.
pub struct ProviderHttp {
    client: Client,
    base: Url,
    provider: ProviderType,
    allow_list: Arc<AllowList>,
    limiter: DefaultDirectRateLimiter,
    in_flight: tokio::sync::Semaphore,
    paused_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for ProviderHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderHttp")
            .field("base", &self.base.as_str())
            .field("provider", &self.provider)
            .finish()
    }
}

impl ProviderHttp {
    /// Build a client for `base_url`. Fails with `HostNotAllowed` when the host is not on the
    /// allow-list, before anything is sent.
    pub fn new(
        provider: ProviderType,
        base_url: &str,
        ca_bundle: Option<&str>,
        settings: &HttpSettings,
    ) -> Result<Self, ProviderError> {
        let base = crate::egress::parse_base_url(base_url)?;
        settings.allow_list.check(&base)?;
        let client = Client::builder()
            .tls_backend_preconfigured(tls_config(ca_bundle)?)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("revoker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::permanent(Reason::InvalidProviderConfig, format!("HTTP client: {e}")))?;
        Ok(ProviderHttp {
            client,
            base,
            provider,
            allow_list: settings.allow_list.clone(),
            limiter: RateLimiter::direct(Quota::per_second(settings.requests_per_second)),
            in_flight: tokio::sync::Semaphore::new(settings.max_in_flight.get() as usize),
            paused_until: Mutex::new(None),
        })
    }

    /// Time left in a pause the provider asked for; `None` when requests may go.
    pub fn paused_for(&self) -> Option<Duration> {
        let until = (*self.pause_lock())?;
        until
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    }

    /// After a 429 (or a 503 with `Retry-After`), hold back every request until the provider's
    /// `Retry-After` (at most `MAX_PAUSE`) has passed.
    fn note_slow_down(&self, response: &Response) {
        let status = response.status().as_u16();
        let retry_after = retry_after_header(response.headers());
        let pause = match (status, retry_after) {
            (429, wait) => wait.unwrap_or(PAUSE_WITHOUT_RETRY_AFTER),
            (503, Some(wait)) => wait,
            _ => return,
        };
        let until = Instant::now() + pause.min(MAX_PAUSE);
        let mut paused = self.pause_lock();
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
        drop(paused);
        METRICS
            .provider_pauses
            .get_or_create(&ProviderLabels {
                provider: self.provider.to_string(),
            })
            .inc();
    }

    fn pause_lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.paused_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The underlying client, to build requests.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `base URL + path`. `path` starts with `/` and holds ids already validated by the schema;
    /// segments are percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Send a request built by `build`, after the egress check and the rate limiter, recording its
    /// duration. `send` performs the request (plain `send()`, or a digest-auth flow).
    pub async fn execute<F, Fut>(
        &self,
        operation: &str,
        request: RequestBuilder,
        send: F,
    ) -> Result<Response, ProviderError>
    where
        F: FnOnce(RequestBuilder) -> Fut,
        Fut: std::future::Future<Output = Result<Response, String>>,
    {
        if let Some(url) = request
            .try_clone()
            .and_then(|r| r.build().ok())
            .map(|r| r.url().clone())
        {
            self.allow_list.check(&url)?;
        }
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self.in_flight.acquire().await.ok();
        while let Some(left) = self.paused_for() {
            tokio::time::sleep(left).await;
        }
        self.limiter.until_ready().await;
        let started = Instant::now();
        let result = send(request).await;
        if let Ok(response) = &result {
            self.note_slow_down(response);
        }
        let status = match &result {
            Ok(resp) => resp.status().as_u16().to_string(),
            Err(_) => "error".to_string(),
        };
        METRICS
            .request_duration
            .get_or_create(&RequestLabels {
                provider: self.provider.to_string(),
                operation: operation.to_string(),
                status,
            })
            .observe(started.elapsed().as_secs_f64());
        result.map_err(|detail| transport_error(operation, detail))
    }

    /// Plain send.
    pub async fn send(&self, operation: &str, request: RequestBuilder) -> Result<Response, ProviderError> {
        self.execute(operation, request, |r| async move { r.send().await.map_err(describe) })
            .await
    }
}

/// Describe a reqwest error (URL and cause chain; never headers or bodies).
pub fn describe(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else {
        "request"
    };
    let mut text = format!("{kind} error: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// A Retry-After header, in either of its RFC 9110 forms: delay-seconds (the form Atlas uses) or
/// an HTTP date (the wait until then; a date in the past means no wait).
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn transport_error(operation: &str, detail: String) -> ProviderError {
    let reason = if detail.starts_with("timeout") {
        Reason::Timeout
    } else {
        Reason::NetworkError
    };
    ProviderError::transient(
        reason,
        format!("{operation}: no answer from the provider ({detail})"),
        None,
    )
}

pub(crate) fn tls_config(ca_bundle: Option<&str>) -> Result<rustls::ClientConfig, ProviderError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = ca_bundle {
        let invalid = |why: String| ProviderError::permanent(Reason::InvalidProviderConfig, format!("caBundle: {why}"));
        let mut reader = std::io::BufReader::new(pem.as_bytes());
        let certs = rustls_pemfile::certs(&mut reader)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("no PEM certificate found".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| invalid(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProviderError::permanent(Reason::InvalidProviderConfig, format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "55".parse().unwrap());
        assert_eq!(retry_after_header(&headers), Some(Duration::from_secs(55)));
        let in_two_minutes = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        headers.insert(reqwest::header::RETRY_AFTER, in_two_minutes.parse().unwrap());
        let wait = retry_after_header(&headers).expect("a date is a wait");
        assert!(
            wait > Duration::from_secs(110) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after_header(&headers),
            Some(Duration::ZERO),
            "a past date: no wait"
        );
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after_header(&headers), None);
    }

    async fn answered(status: u16, retry_after: Option<&str>) -> ProviderHttp {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers::any};
        let server = MockServer::start().await;
        let mut answer = ResponseTemplate::new(status);
        if let Some(value) = retry_after {
            answer = answer.insert_header("retry-after", value);
        }
        Mock::given(any()).respond_with(answer).mount(&server).await;
        let settings = crate::providers::test_support::settings();
        let http = ProviderHttp::new(ProviderType::Onezone, &server.uri(), None, &settings).unwrap();
        assert_eq!(http.paused_for(), None, "no pause before any answer");
        let request = http.client().get(http.url(&["x"]));
        http.send("op", request).await.unwrap();
        http
    }

    #[tokio::test]
    async fn a_429_pauses_every_request_of_the_provider_for_its_retry_after() {
        let http = answered(429, Some("30")).await;
        let left = http.paused_for().expect("paused");
        assert!(
            left > Duration::from_secs(25) && left <= Duration::from_secs(30),
            "{left:?}"
        );
        let without = answered(429, None).await.paused_for().expect("paused");
        assert!(without <= PAUSE_WITHOUT_RETRY_AFTER, "{without:?}");
        let capped = answered(429, Some("86400")).await.paused_for().expect("paused");
        assert!(capped <= MAX_PAUSE, "{capped:?}");
    }

    #[tokio::test]
    async fn a_503_pauses_only_with_retry_after_and_other_answers_never() {
        assert!(answered(503, Some("10")).await.paused_for().is_some());
        assert_eq!(answered(503, None).await.paused_for(), None);
        assert_eq!(answered(200, Some("10")).await.paused_for(), None);
        assert_eq!(answered(500, None).await.paused_for(), None);
    }
}
