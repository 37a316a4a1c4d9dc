//! HTTP plumbing shared by the provider clients: TLS, egress check, rate limit, timing.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{Client, RequestBuilder, Response};
use url::Url;

use crate::api::ProviderType;
use crate::egress::AllowList;
use crate::providers::{ProviderError, Reason};
use crate::telemetry::{METRICS, RequestLabels};

/// Settings common to every provider client.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Hosts that may receive credentials.
    pub allow_list: Arc<AllowList>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Client-side rate limit per provider object, in requests per second.
    pub requests_per_second: NonZeroU32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            allow_list: Arc::new(super::default_allow_list()),
            timeout: Duration::from_secs(30),
            requests_per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// An HTTP client bound to one provider's base URL.
pub struct ProviderHttp {
    client: Client,
    base: Url,
    provider: ProviderType,
    allow_list: Arc<AllowList>,
    limiter: DefaultDirectRateLimiter,
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
        })
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
        self.limiter.until_ready().await;
        let started = Instant::now();
        let result = send(request).await;
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

fn tls_config(ca_bundle: Option<&str>) -> Result<rustls::ClientConfig, ProviderError> {
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
}
