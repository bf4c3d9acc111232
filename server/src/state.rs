//! What every request handler can reach.
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// Images, thumbnails and import spool files live here.
    pub data_dir: Arc<PathBuf>,
    pub leptos_options: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
