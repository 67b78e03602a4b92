//! Authentication: session tokens (JWT, HS256), password hashing (argon2id), credential rules.
//!
//! The gateway authenticates; it never authorizes. Roles live with the list owner.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{EdgeError, ErrorCode};
use crate::router::Principal;
use crate::Error;

/// Usernames are 1..=32 characters of `[A-Za-z0-9_.-]`.
pub const USERNAME_CHARS_MAX: usize = 32;
/// Passwords are at least this many bytes.
pub const PASSWORD_BYTES_MIN: usize = 8;
/// Passwords are at most this many bytes (bounds the hashing work an attacker can ask for).
pub const PASSWORD_BYTES_MAX: usize = 256;

/// The token claims. Private: the token format is a contract only with ourselves.
#[derive(Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    name: String,
    iat: u64,
    exp: u64,
}

/// Mints and verifies session tokens (HS256 JWT with the user id as subject).
///
/// Anyone holding the node's secret can mint valid tokens: the load generator uses this to
/// create many identities without registering each (argon2 is slow by design).
pub struct Tokens {
    encoding_key: EncodingKey,
    decoding_key: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        // Tokens are checked by the servers that minted them: no clock skew to forgive, and a
        // token must stop working at the `expires_at` the client was told.
        validation.leeway = 0;
        Self {
            encoding_key: EncodingKey::from_secret(secret),
            decoding_key: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// A token for `principal` and its expiry in milliseconds since the epoch.
    /// A token for `principal` and its expiry (ms since the Unix epoch).
    pub fn mint(&self, principal: &Principal) -> (String, u64) {
        let now_s = unix_now().as_secs();
        let exp = now_s.saturating_add(self.ttl.as_secs().max(1));
        let claims = Claims {
            sub: principal.user_id,
            name: principal.username.clone(),
            iat: now_s,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &self.encoding_key)
            .expect("hs256 encoding of our own claims cannot fail");
        (token, exp.saturating_mul(1000))
    }

    /// The principal of a valid, unexpired token; otherwise `unauthorized`.
    /// The principal of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Result<Principal, EdgeError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding_key, &self.validation) {
            Ok(data) => Ok(Principal {
                user_id: data.claims.sub,
                username: data.claims.name,
            }),
            Err(error) => {
                tracing::debug!(%error, "token refused");
                Err(EdgeError::new(
                    ErrorCode::Unauthorized,
                    "invalid or expired token",
                ))
            }
        }
    }
}

/// Hashes and verifies passwords with the configured argon2id cost, off the async workers.
#[derive(Clone)]
pub(crate) struct Passwords {
    params: Params,
    /// A hash to verify against when the username is unknown, so that both failures take
    /// about the same time.
    decoy_hash: Arc<OnceLock<String>>,
}

impl Passwords {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, Error> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|error| Error::InvalidConfig(format!("argon2 parameters: {error}")))?;
        Ok(Self {
            params,
            decoy_hash: Arc::new(OnceLock::new()),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of a fresh salted hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String, EdgeError> {
        let passwords = self.clone();
        let hashed = tokio::task::spawn_blocking(move || {
            passwords
                .argon2()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "password hashing task failed");
            EdgeError::internal()
        })?;
        hashed.map_err(|error| {
            tracing::error!(%error, "password hashing failed");
            EdgeError::internal()
        })
    }

    /// Whether `password` matches `phc_hash`; with `None` (unknown user) it does the same work
    /// against a decoy and answers false.
    pub async fn verify(&self, password: String, phc_hash: Option<String>) -> bool {
        let passwords = self.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let argon2 = passwords.argon2();
            match phc_hash {
                Some(phc_hash) => argon2
                    .verify_password(password.as_bytes(), phc_hash.as_str())
                    .is_ok(),
                None => {
                    let decoy = passwords.decoy_hash.get_or_init(|| {
                        argon2
                            .hash_password(b"decoy password")
                            .map(|hash| hash.to_string())
                            .unwrap_or_default()
                    });
                    let _ = argon2.verify_password(password.as_bytes(), decoy.as_str());
                    false
                }
            }
        })
        .await;
        verified.unwrap_or(false)
    }
}

/// Checks the username rule; the message names the field.
pub(crate) fn check_username(username: &str) -> Result<(), EdgeError> {
    let length = username.chars().count();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if length == 0 || length > USERNAME_CHARS_MAX || !username.chars().all(allowed) {
        return Err(EdgeError::invalid(
            "username must be 1 to 32 characters of a-z, A-Z, 0-9, _, . or -",
        ));
    }
    Ok(())
}

/// Checks the password rule; the message names the field.
pub(crate) fn check_password(password: &str) -> Result<(), EdgeError> {
    if password.len() < PASSWORD_BYTES_MIN || password.len() > PASSWORD_BYTES_MAX {
        return Err(EdgeError::invalid("password must be 8 to 256 bytes"));
    }
    Ok(())
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Formats milliseconds since the epoch as an RFC 3339 UTC timestamp (`2026-11-21T10:00:00Z`).
pub(crate) fn rfc3339_from_ms(unix_ms: u64) -> String {
    let seconds = unix_ms / 1000;
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX / 2);
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a minted token verifies to the same principal; a tampered or foreign one does not.
    #[test]
    fn tokens_round_trip_and_refuse_forgeries() {
        let tokens = Tokens::new(&[7; 32], Duration::from_secs(60));
        let principal = Principal {
            user_id: Uuid::now_v7(),
            username: "bob".into(),
        };
        let (token, expires_at_ms) = tokens.mint(&principal);
        assert_eq!(tokens.verify(&token), Ok(principal));
        assert!(expires_at_ms > unix_now().as_millis() as u64);
        let foreign = Tokens::new(&[8; 32], Duration::from_secs(60));
        assert_eq!(
            foreign.verify(&token).map_err(|e| e.code),
            Err(ErrorCode::Unauthorized)
        );
        assert_eq!(
            tokens.verify("not.a.token").map_err(|e| e.code),
            Err(ErrorCode::Unauthorized)
        );
    }

    // Goal: the credential rules accept the edges of their ranges and refuse just past them.
    #[test]
    fn credential_rules() {
        assert!(check_username("a").is_ok());
        assert!(check_username("Bob_the.builder-2").is_ok());
        assert!(check_username(&"x".repeat(32)).is_ok());
        assert!(check_username(&"x".repeat(33)).is_err());
        assert!(check_username("").is_err());
        assert!(check_username("bob smith").is_err());
        assert!(check_username("bøb").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password("1234567").is_err());
        assert!(check_password(&"p".repeat(257)).is_err());
    }

    // Goal: the date formatting matches known instants, including a leap day.
    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_from_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_ms(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_from_ms(1_795_230_000_123), "2026-11-21T03:00:00Z");
    }

    // Goal: hashing and verifying agree, and an unknown user never verifies.
    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let passwords = Passwords::new(8, 1).unwrap();
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(
            passwords
                .verify("correct horse".into(), Some(hash.clone()))
                .await
        );
        assert!(!passwords.verify("wrong horse".into(), Some(hash)).await);
        assert!(!passwords.verify("correct horse".into(), None).await);
    }
}
