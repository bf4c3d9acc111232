//! The Mirrorset server: JSON API, auth, storage, background jobs and the statistics core.
pub mod cli;
pub mod stats;
