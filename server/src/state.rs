//! What every request handler can reach (`AppState`).
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::auth::throttle::LoginThrottle;
use crate::import::spool::SpoolConfig;
use crate::import::{ImportCtx, ImportGate};
use crate::store::Db;

/// What every request handler can reach. axum clones the state for every handler and
/// extractor of every request: one reference count here, where cloning the parts took ~20
/// (the database's pools, the Leptos options' strings…), atomics that both cores' requests
/// bounced between them (~5 % of the server's CPU under labeling load: docs/bench.md,
/// session 27).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// `AppState`'s parts.
pub struct Shared {
    pub db: Db,
    /// Images and thumbnails live here (shared by every instance).
    pub data_dir: Arc<PathBuf>,
    pub leptos_options: LeptosOptions,
    /// A session ends after this long without activity (`--session-idle-minutes`).
    pub session_idle: Duration,
    /// Failed sign-ins per user name and client address (in memory, per instance).
    pub login_throttle: Arc<LoginThrottle>,
    /// This instance's upload spool: its directory, the disk reserve, the body idle timeout.
    pub spool: Arc<SpoolConfig>,
    /// At most a few imports at once on this server.
    pub import_gate: ImportGate,
    /// Cancelled on shutdown: running imports and streaming exports stop cleanly.
    pub shutdown: CancellationToken,
    /// Request counts and latencies, labels submitted, active labelers (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The last few projects' dev-set pool indexes (`devsets::index`).
    pub devset_pools: Arc<crate::devsets::index::PoolCache>,
    /// Whom the tokens and sessions in use belong to, reused for a second (`auth::account_cache`).
    pub accounts: Arc<crate::auth::account_cache::AccountCache>,
}

impl AppState {
    pub fn import_ctx(&self) -> ImportCtx {
        ImportCtx {
            db: self.db.clone(),
            data_dir: self.data_dir.clone(),
            spool_dir: Arc::new(self.spool.dir.clone()),
            shutdown: self.shutdown.clone(),
            gate: self.import_gate.clone(),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
