//! Rate limits: ops per user; register and login attempts per client IP; admin calls per
//! client IP (the same quota as register and login, a budget of their own).
//!
//! Both are keyed GCRA limiters (governor). Idle keys are dropped by [`RateLimits::retain_recent`],
//! which `serve` runs periodically, so many distinct callers cannot grow memory without bound.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use uuid::Uuid;

use crate::config::GatewayConfig;
use crate::error::EdgeError;
use crate::metrics as names;

/// The gateway's keyed rate limiters.
pub(crate) struct RateLimits {
    ops_per_user: DefaultKeyedRateLimiter<Uuid>,
    auth_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    admin_per_ip: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl RateLimits {
    /// Limiters with the configured quotas; the config was validated (rates are positive).
    pub fn new(config: &GatewayConfig) -> Self {
        Self {
            ops_per_user: RateLimiter::keyed(quota(
                config.ops_per_second_per_user,
                config.ops_burst_per_user,
            )),
            auth_per_ip: RateLimiter::keyed(quota(
                config.auth_per_second_per_ip,
                config.auth_burst_per_ip,
            )),
            admin_per_ip: RateLimiter::keyed(quota(
                config.auth_per_second_per_ip,
                config.auth_burst_per_ip,
            )),
            clock: DefaultClock::default(),
        }
    }

    /// Admits one op by `user`, or `rate_limited` with the wait until the next would pass.
    pub fn check_op(&self, user: Uuid) -> Result<(), EdgeError> {
        self.ops_per_user
            .check_key(&user)
            .map_err(|not_until| self.refuse("ops", not_until))
    }

    /// Admits one register or login attempt from `ip`.
    pub fn check_auth(&self, ip: IpAddr) -> Result<(), EdgeError> {
        self.auth_per_ip
            .check_key(&ip)
            .map_err(|not_until| self.refuse("auth", not_until))
    }

    /// Admits one admin call from `ip` (checked before the token, so guessing is slow too).
    pub fn check_admin(&self, ip: IpAddr) -> Result<(), EdgeError> {
        self.admin_per_ip
            .check_key(&ip)
            .map_err(|not_until| self.refuse("admin", not_until))
    }

    /// Counts a refusal by its limiter (`reason`) and says when to retry.
    fn refuse(
        &self,
        reason: &'static str,
        not_until: NotUntil<<DefaultClock as Clock>::Instant>,
    ) -> EdgeError {
        metrics::counter!(names::RATE_LIMITED_TOTAL, names::LABEL_REASON => reason).increment(1);
        rate_limited(not_until.wait_time_from(self.clock.now()))
    }

    /// Drops keys whose limiter state is back to full capacity.
    pub fn retain_recent(&self) {
        self.ops_per_user.retain_recent();
        self.auth_per_ip.retain_recent();
        self.admin_per_ip.retain_recent();
    }
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let per_second = NonZeroU32::new(per_second).expect("validated: rate is positive");
    let burst = NonZeroU32::new(burst).expect("validated: burst is positive");
    Quota::per_second(per_second).allow_burst(burst)
}

/// `rate_limited`, rounding the wait up to a whole millisecond (at least one).
fn rate_limited(wait: std::time::Duration) -> EdgeError {
    let wait_ms = wait.as_nanos().div_ceil(1_000_000).max(1);
    EdgeError::rate_limited(u64::try_from(wait_ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    // Goal: a user past the burst is refused with a positive retry hint, and users are independent.
    #[test]
    fn refuses_past_the_burst_per_user() {
        let config = GatewayConfig {
            ops_per_second_per_user: 1,
            ops_burst_per_user: 2,
            ..GatewayConfig::default()
        };
        let limits = RateLimits::new(&config);
        let alice = Uuid::from_u128(1);
        assert!(limits.check_op(alice).is_ok());
        assert!(limits.check_op(alice).is_ok());
        let refused = limits
            .check_op(alice)
            .expect_err("third op exceeds the burst");
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(refused
            .retry_after_ms
            .is_some_and(|ms| (1..=1000).contains(&ms)));
        assert!(limits.check_op(Uuid::from_u128(2)).is_ok());
        limits.retain_recent();
    }
}
