//! Every condition type, condition status and reason Revoker writes, in one typed place.
//!
//! Status, Events, metrics and logs take these types, never string literals, so a reason cannot be
//! misspelled in one place and the README's reason table is checked against [`Reason::ALL`].

use std::fmt;

/// A condition type of a revocation or a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionType {
    /// Revocations: the goal was reached (True), could not be (False), or not yet (Unknown).
    /// `kubectl wait --for=condition=Succeeded` waits on it.
    Succeeded,
    /// Revocations: True once the revocation failed for good.
    Failed,
    /// kstatus: the object reached its goal (a revocation: revoked or dry run passed; a provider:
    /// credentials verified).
    Ready,
    /// kstatus: work is under way or waiting (the reason says on what).
    Reconciling,
    /// kstatus: failed for good; only a change of the object (or a new one) helps.
    Stalled,
    /// Revocations with `spec.dryRun`: True once the read-only check passed, False when it failed.
    DryRun,
    /// Revocations that succeeded: True when a read-back confirmed the effect, False when it
    /// showed the target still active, Unknown when the provider offers no read-back.
    Verified,
}

impl ConditionType {
    /// The `type` field of the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Succeeded => "Succeeded",
            ConditionType::Failed => "Failed",
            ConditionType::Ready => "Ready",
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
            ConditionType::DryRun => "DryRun",
            ConditionType::Verified => "Verified",
        }
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `status` field of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// It does not.
    False,
    /// Not decided yet.
    Unknown,
}

impl ConditionStatus {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }

    /// True or False.
    pub fn from_bool(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

impl fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// A CamelCase condition reason, also the Event reason and the `reason` metric label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[doc = $doc])* $name,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)*];

            /// The reason of a wire form, if it is one.
            pub fn parse(text: &str) -> Option<Reason> {
                Reason::ALL.iter().copied().find(|r| r.as_str() == text)
            }

            /// The CamelCase wire form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)*
                }
            }
        }
    };
}

reasons! {
    // Lifecycle of a revocation.
    /// Held by `spec.suspend`.
    Suspended,
    /// An attempt is recorded and the provider is being called.
    Attempting,
    /// The provider revoked the target.
    Revoked,
    /// The provider reported the target as already revoked; the call changed nothing.
    AlreadyRevoked,
    /// A dry run passed; nothing was revoked.
    DryRunSucceeded,
    // Receipts.
    /// A read-back confirmed the revocation is in effect.
    Verified,
    /// The provider answered success, but a read-back shows the target still active.
    NotApplied,
    /// The provider offers no read-only way to confirm this operation.
    NoReadBack,
    /// The read-back could not be made (the revocation itself succeeded).
    VerificationUnavailable,
    /// Transient errors used up `spec.backoffLimit`.
    BackoffLimitExceeded,
    // Triggered revocations.
    /// Armed: no run yet; the first change of the watched key (or the schedule) starts one.
    AwaitingTrigger,
    /// A run started because the watched key changed (an Event reason).
    OnChange,
    /// A run started because the schedule came due (an Event reason).
    Schedule,
    /// A scheduled time passed without a run (startingDeadlineSeconds, or the operator was down).
    MissedSchedule,
    /// The watched key holds a value a run was already started for: it is not revoked again.
    AlreadyHandled,
    // Providers.
    /// A provider's credentials were accepted by a live check.
    CredentialsVerified,
    // Errors, from the provider's answer or from what the operator found before calling.
    /// 401: the credentials were rejected.
    Unauthorized,
    /// 403: authenticated, but missing a role or permission (or IP access list).
    Forbidden,
    /// 404 for the parent (federation, IdP, project, identity, user): the id is probably wrong.
    TargetNotFound,
    /// 400/422: the provider rejected the request.
    BadRequest,
    /// 409.
    Conflict,
    /// Atlas 406: the API version sent is not supported for this operation.
    UnsupportedApiVersion,
    /// 429.
    RateLimited,
    /// 5xx.
    ProviderUnavailable,
    /// Connect error, reset, TLS failure.
    NetworkError,
    /// The request timed out.
    Timeout,
    /// The answer did not match the provider's contract.
    UnexpectedResponse,
    /// The provider's host is not on the egress allow-list.
    HostNotAllowed,
    /// The credentials Secret or a key in it is missing or unusable.
    CredentialsUnavailable,
    /// The Secret that names the target now holds another value than the one meant (pinned when
    /// the revocation was first seen, or by expectedFingerprint): nothing was revoked.
    TargetChanged,
    /// The revocation's spec holds a value no provider request may be built from.
    InvalidSpec,
    /// The provider's configuration is unusable (bad URL, bad CA bundle).
    InvalidProviderConfig,
    /// The referenced provider object does not exist (yet).
    ProviderNotFound,
    /// The referenced provider's own credential check has not passed (yet).
    ProviderNotReady,
    /// The provider's blast-radius budget is spent: the revocation starts when the window frees.
    Throttled,
    /// A ClusterRevocationProvider's namespaceSelector does not admit the revocation's namespace.
    NamespaceNotAllowed,
    /// The revocation's provider block does not match the provider's type.
    ProviderMismatch,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_unique_camel_case_words() {
        let mut seen = std::collections::HashSet::new();
        for reason in Reason::ALL {
            let text = reason.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(text.chars().next().is_some_and(|c| c.is_ascii_uppercase()), "{text}");
            assert!(text.chars().all(|c| c.is_ascii_alphanumeric()), "{text}");
        }
    }

    /// The README's reason table lists every reason: it is the user's reference.
    #[test]
    fn the_readme_reason_table_lists_every_reason() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let first_cells: Vec<&str> = readme
            .split("Reasons you will see")
            .nth(1)
            .expect("README has the reason table")
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|row| row.split('|').nth(1))
            .collect();
        let listed: std::collections::HashSet<&str> = first_cells
            .iter()
            .flat_map(|cell| cell.split('`').skip(1).step_by(2))
            .collect();
        for reason in Reason::ALL {
            assert!(
                listed.contains(reason.as_str()),
                "README's reason table lacks `{reason}`"
            );
        }
        for word in &listed {
            assert!(
                Reason::ALL.iter().any(|r| r.as_str() == *word),
                "README's reason table lists `{word}`, which is no reason"
            );
        }
    }
}
