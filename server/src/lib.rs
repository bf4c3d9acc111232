//! The Mirrorset server: JSON API, auth, storage, background jobs and the statistics core.
//!
//! Layout: `api` (thin HTTP handlers) → domain modules (`projects`, `import`, `export`,
//! `stats`) → `store` (all SQL). `auth` says who is calling; `error` is the one error type.
pub mod agreement;
pub mod api;
pub mod audit;
pub mod backup;
pub mod auth;
pub mod cli;
pub mod demo;
pub mod devsets;
pub mod error;
pub mod export;
pub mod heap;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod import;
pub mod jobs;
pub mod label_studio;
pub mod prelabels;
pub mod releases;
pub mod projects;
pub mod review;
pub mod state;
pub mod stats;
pub mod store;
pub mod stream;
pub mod web;
