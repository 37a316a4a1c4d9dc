//! What the provider tests share: HTTP settings that admit the local mock server, and attempts.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::egress::AllowList;
use crate::outcome::AttemptContext;
use crate::providers::http::HttpSettings;

/// Settings that allow plain HTTP to 127.0.0.1 (wiremock) and do not rate-limit.
pub fn settings() -> HttpSettings {
    HttpSettings {
        allow_list: Arc::new(AllowList::parse(["http://127.0.0.1"]).unwrap()),
        timeout: Duration::from_secs(10),
        requests_per_second: NonZeroU32::new(10_000).unwrap(),
        max_in_flight: NonZeroU32::new(64).unwrap(),
    }
}

/// A first attempt: nothing was sent before.
pub const FIRST: AttemptContext = AttemptContext { earlier_attempt: false };
/// A later attempt: an earlier one may have reached the provider.
pub const RETRY: AttemptContext = AttemptContext { earlier_attempt: true };
