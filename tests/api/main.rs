//! API integration tests: each scenario runs against the real `mirrorset` binary, once on
//! SQLite and once on PostgreSQL (`NAME::sqlite`, `NAME::postgres`). See tests/common/mod.rs.
//!
//!     cargo test -p server --test api                 # all (PostgreSQL needs MIRRORSET_TEST_PG_URL)
//!     cargo test -p server --test api sqlite          # SQLite only
//!     cargo test -p server --test api round_trip      # one file's scenarios
#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod access;
mod accounts;
mod assignment;
mod durability;
mod import_errors;
mod import_limits;
mod import_load;
mod import_shutdown;
mod round_trip;
mod security;
mod static_files;
mod export_annotations;
mod audit;
mod ops;
mod review;
mod devsets;
mod agreement;
mod export_paging;
mod authz_matrix;
mod memory;
mod backup;
mod settings;
mod assignment_order;
mod gold;
mod releases;
mod faults;
mod prelabel_rules;
mod prelabels;
mod releases_label_studio;
mod prelabels_auto;
mod storage_faults;
mod builtin_model;
