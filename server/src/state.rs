//! What every request handler can reach.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::auth::throttle::LoginThrottle;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// Images, thumbnails and import spool files live here.
    pub data_dir: Arc<PathBuf>,
    pub leptos_options: LeptosOptions,
    /// A session ends after this long without activity (`--session-idle-minutes`).
    pub session_idle: Duration,
    /// Failed sign-ins per user name and client address (in memory, per instance).
    pub login_throttle: Arc<LoginThrottle>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
