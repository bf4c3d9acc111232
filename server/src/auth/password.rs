//! Password hashing (argon2id) and API token secrets.
//!
//! argon2id with the crate's defaults (19 MiB of memory, 2 passes) is deliberately slow and
//! memory-hungry. Each computation runs on a blocking thread, and at most one per core runs
//! at a time (`HashGate`): without that bound, a burst of anonymous sign-in attempts would
//! occupy every core and hundreds of MiB. A request that cannot get a slot within a few
//! seconds is answered 503 with `Retry-After` instead of queueing without end.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};

pub use app::api_types::MIN_PASSWORD_LEN;

/// How long a request waits for a hashing slot before it is answered 503.
pub const HASH_SLOT_WAIT: Duration = Duration::from_secs(5);

/// A bound on concurrent password hashing: `slots` computations at a time, each on a
/// blocking thread; a caller waits at most `wait` for a slot.
pub struct HashGate {
    slots: Arc<tokio::sync::Semaphore>,
    wait: Duration,
}

impl HashGate {
    pub fn new(slots: usize, wait: Duration) -> Self {
        HashGate { slots: Arc::new(tokio::sync::Semaphore::new(slots.max(1))), wait }
    }

    /// The gate every hash of the process goes through: one slot per core.
    pub fn global() -> &'static HashGate {
        static GATE: OnceLock<HashGate> = OnceLock::new();
        GATE.get_or_init(|| {
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            HashGate::new(cores, HASH_SLOT_WAIT)
        })
    }

    /// Runs `work` on a blocking thread once a slot is free. The slot moves into the blocking
    /// task, so it stays taken until the computation ends even if the request is dropped.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
        let permit = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(closed)) => return Err(AppError::Internal(closed.into())),
            Err(_) => {
                return Err(AppError::Unavailable {
                    message: "the server is busy checking passwords; try again in a few seconds".into(),
                    retry_after_secs: self.wait.as_secs().max(1),
                })
            }
        };
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| AppError::Internal(e.into()))
    }
}

/// Hashes through the global `HashGate`: argon2 is deliberately slow.
pub async fn hash_password(password: String) -> AppResult<String> {
    HashGate::global()
        .run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing failed: {e}")))
        })
        .await?
}

pub async fn verify_password(password: String, hash: String) -> AppResult<bool> {
    HashGate::global()
        .run(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else { return false };
            Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
        })
        .await
}

/// A hash of a random password, verified against when the username is unknown so that an
/// unknown name and a wrong password take the same time.
pub fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(random_secret("").as_bytes(), &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

pub fn validate_new_password(password: &str) -> AppResult<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AppError::bad_request(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// A random URL-safe secret with a recognisable prefix.
pub fn random_secret(prefix: &str) -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// API tokens are 256-bit random secrets, so a fast hash is enough to store them safely.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_gate_answers_503_with_retry_after() {
        let gate = Arc::new(HashGate::new(1, Duration::from_millis(100)));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.run(move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                })
                .await
            })
        };
        started_rx.await.unwrap();
        match gate.run(|| ()).await {
            Err(AppError::Unavailable { retry_after_secs, .. }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected Unavailable while the only slot is taken, got {other:?}"),
        }
        release_tx.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(gate.run(|| 7).await.unwrap(), 7, "the slot is free again");
    }
}
