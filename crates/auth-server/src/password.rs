//! Password hashing with argon2id.
//!
//! Parameters: at least OWASP's current minimum for argon2id (Password Storage Cheat Sheet:
//! 19 MiB of memory, 2 iterations, parallelism 1). An operator may raise them in the config,
//! never lower them. Hashes are PHC strings, so each records its own parameters and raising
//! them later does not break existing accounts.
//!
//! An unknown user is checked against a dummy hash made with the same parameters, so that a
//! login for a name that does not exist costs the same time as a wrong password (no username
//! oracle).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;

/// OWASP's minimum memory cost for argon2id, in KiB (19 MiB).
pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
/// OWASP's minimum iteration count for argon2id at that memory.
pub const MIN_ITERATIONS: u32 = 2;
/// OWASP's parallelism for argon2id.
pub const MIN_PARALLELISM: u32 = 1;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory per hash, in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: MIN_MEMORY_KIB,
            iterations: MIN_ITERATIONS,
            parallelism: MIN_PARALLELISM,
        }
    }
}

/// Hashing failed (parameters refused by argon2, or a stored hash unreadable).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Parameters below the minimum or refused by argon2.
    #[error("argon2 parameters: {0}")]
    Params(String),
    /// Hashing failed.
    #[error("argon2: {0}")]
    Hash(String),
}

/// Hashes and verifies passwords.
#[derive(Debug)]
pub struct Hasher {
    argon2: Argon2<'static>,
    dummy: String,
}

impl Hasher {
    /// A hasher with `params`, which must be at least OWASP's minimum.
    pub fn new(params: HashParams) -> Result<Self, HashError> {
        if params.memory_kib < MIN_MEMORY_KIB
            || params.iterations < MIN_ITERATIONS
            || params.parallelism < MIN_PARALLELISM
        {
            return Err(HashError::Params(format!(
                "below OWASP's minimum (memory {MIN_MEMORY_KIB} KiB, {MIN_ITERATIONS} \
                 iterations, parallelism {MIN_PARALLELISM})"
            )));
        }
        let argon2_params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| HashError::Params(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params);
        let mut hasher = Self {
            argon2,
            dummy: String::new(),
        };
        hasher.dummy = hasher.hash("switchboard dummy password for unknown users")?;
        Ok(hasher)
    }

    /// A PHC string for `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| HashError::Hash(e.to_string()))
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown user), checks against
    /// the dummy hash and answers `false`, taking the same time.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let target = stored.unwrap_or(&self.dummy);
        let matches = PasswordHash::new(target)
            .map(|hash| {
                self.argon2
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false);
        matches && stored.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hasher = Hasher::new(HashParams::default()).unwrap();
        let hash = hasher.hash("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify("correct horse", Some(&hash)));
        assert!(!hasher.verify("battery staple", Some(&hash)));
        assert!(!hasher.verify("correct horse", None));
        assert!(!hasher.verify("x", Some("not a phc string")));
    }

    #[test]
    fn parameters_below_the_owasp_minimum_are_refused() {
        assert!(Hasher::new(HashParams {
            memory_kib: 1024,
            ..HashParams::default()
        })
        .is_err());
    }
}
