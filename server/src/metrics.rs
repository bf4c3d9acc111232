//! Operational metrics, served at `GET /metrics` in the Prometheus text exposition format
//! (version 0.0.4), written by hand: a few counters, gauges and one histogram family do not
//! need a metrics crate.
//!
//! What is measured, and why it stays bounded:
//! - `mirrorset_http_requests_total` and `mirrorset_http_request_duration_seconds` (a
//!   histogram) per method, route and status class. The route is axum's `MatchedPath` (the
//!   route *pattern*, `/api/projects/{pid}/next`), never the raw path, so the label set is
//!   the route table's size, not the number of projects or items; requests that matched no
//!   route (static files, 404s) share the route label `(unmatched)`.
//! - `mirrorset_labels_submitted_total`: acknowledged submissions (a retry with the same
//!   `client_id` is not counted again). "Labels per minute" is
//!   `rate(mirrorset_labels_submitted_total[1m]) * 60` in Prometheus.
//! - `mirrorset_active_labelers`: distinct users who asked for an item in the last 5 minutes.
//!   Kept in memory per instance (with several instances, sum them: a labeler counts on each
//!   instance they reached), at most `MAX_TRACKED_LABELERS` users.
//! - `mirrorset_db_pool_connections` / `mirrorset_db_pool_idle_connections` per pool
//!   (SQLite: `read` and `write`, the write pool being the single writer; PostgreSQL: `pg`).
//!   A write pool with no idle connection means the writer is busy.
//!
//! - `mirrorset_sqlite_writes_in_flight` (SQLite only): write operations waiting for the single
//!   writer or running on it (`store::SQLITE_WRITES_IN_FLIGHT`, counted by `on_write!`), so the
//!   writer's queue depth is this minus at most one.
//! - `mirrorset_sqlite_writer_queue_depth` (SQLite only): labeling writes (hand-out, submission,
//!   skip) sent to the group-commit writer and not yet taken into a group (`store::writer`).
//! - `mirrorset_sqlite_commit_group_size` (SQLite only): a histogram of how many of those writes
//!   each group transaction committed; `_sum / _count` is the mean group size, 1 when idle.
//! - `mirrorset_sqlite_writer_seconds_total{phase}` (SQLite only): the writer's time per phase
//!   of its groups; `mirrorset_sqlite_writer_job_seconds_total{kind}` and
//!   `mirrorset_sqlite_writer_jobs_total{kind}`: the time in the statements of each kind of
//!   labeling write (`hand_out`, `submission`, `skip`) and how many ran.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::store::Db;

/// Upper bounds (seconds) of the latency histogram's buckets: from the labeling loop's 1 ms
/// target up to the request timeout's order of magnitude.
pub const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A labeler who asked for no item for this long no longer counts as active.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The most users the active-labeler gauge remembers; beyond it, the stalest are forgotten.
pub const MAX_TRACKED_LABELERS: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RouteKey {
    method: String,
    route: String,
    /// "2xx", "4xx", ...
    status: &'static str,
}

#[derive(Debug, Default)]
struct RouteStats {
    count: u64,
    sum_seconds: f64,
    /// Per bucket of `BUCKETS`, not cumulative (made cumulative when written).
    buckets: [u64; BUCKETS.len()],
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// `--metrics-token`: when set, `/metrics` answers only `Authorization: Bearer <it>`.
    token: Option<String>,
    routes: Mutex<HashMap<RouteKey, RouteStats>>,
    labels_submitted: AtomicU64,
    labelers: Mutex<HashMap<i64, Instant>>,
}

impl Metrics {
    pub fn new(token: Option<String>) -> Arc<Metrics> {
        Arc::new(Metrics { token: token.filter(|t| !t.is_empty()), ..Metrics::default() })
    }

    /// Whether a scrape with this `Authorization` header may read the metrics. The comparison
    /// takes the same time wherever the first difference is.
    pub fn may_scrape(&self, authorization: Option<&[u8]>) -> bool {
        let Some(token) = &self.token else { return true };
        let Some(given) = authorization.and_then(|h| h.strip_prefix(b"Bearer ")) else { return false };
        given.len() == token.len() && given.iter().zip(token.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = RouteKey { method: method.to_string(), route: route.to_string(), status: status_class(status) };
        let seconds = elapsed.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let stats = routes.entry(key).or_default();
        stats.count += 1;
        stats.sum_seconds += seconds;
        if let Some(i) = BUCKETS.iter().position(|&le| seconds <= le) {
            stats.buckets[i] += 1;
        }
    }

    /// One acknowledged submission.
    pub fn label_submitted(&self) {
        self.labels_submitted.fetch_add(1, Ordering::Relaxed);
    }

    /// `user` asked for an item now.
    pub fn labeler_seen(&self, user: i64) {
        self.labeler_seen_at(user, Instant::now());
    }

    fn labeler_seen_at(&self, user: i64, now: Instant) {
        let mut seen = self.labelers.lock().unwrap_or_else(|e| e.into_inner());
        seen.insert(user, now);
        if seen.len() > MAX_TRACKED_LABELERS {
            // Over the bound: drop everyone outside the window, and if that is not enough
            // (a flood of distinct users), the stalest until back at the bound.
            seen.retain(|_, t| now.duration_since(*t) <= ACTIVE_WINDOW);
            if seen.len() > MAX_TRACKED_LABELERS {
                let mut times: Vec<Instant> = seen.values().copied().collect();
                times.sort_unstable();
                let cutoff = times[seen.len() - MAX_TRACKED_LABELERS];
                seen.retain(|_, t| *t >= cutoff);
            }
        }
    }

    /// Distinct users who asked for an item within `ACTIVE_WINDOW` before `now`; forgets
    /// the others.
    fn active_labelers_at(&self, now: Instant) -> usize {
        let mut seen = self.labelers.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, t| now.duration_since(*t) <= ACTIVE_WINDOW);
        seen.len()
    }

    /// The whole exposition, with the pool gauges read from `db` (no query: sqlx keeps them).
    pub fn render(&self, db: &Db) -> String {
        let mut out = String::new();
        self.render_requests(&mut out);
        let _ = writeln!(out, "# HELP mirrorset_labels_submitted_total Submissions acknowledged by this instance.");
        let _ = writeln!(out, "# TYPE mirrorset_labels_submitted_total counter");
        let _ = writeln!(out, "mirrorset_labels_submitted_total {}", self.labels_submitted.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP mirrorset_active_labelers Distinct users who asked this instance for an item in the last 5 minutes.");
        let _ = writeln!(out, "# TYPE mirrorset_active_labelers gauge");
        let _ = writeln!(out, "mirrorset_active_labelers {}", self.active_labelers_at(Instant::now()));
        let pools: Vec<(&str, u32, usize, u32)> = match db {
            Db::Sqlite { read, write, .. } => vec![
                ("read", read.size(), read.num_idle(), read.options().get_max_connections()),
                ("write", write.size(), write.num_idle(), write.options().get_max_connections()),
            ],
            Db::Postgres(pg) => vec![("pg", pg.size(), pg.num_idle(), pg.options().get_max_connections())],
        };
        let _ = writeln!(out, "# HELP mirrorset_db_pool_connections Open connections of a database pool (in use or idle).");
        let _ = writeln!(out, "# TYPE mirrorset_db_pool_connections gauge");
        for (name, size, _, _) in &pools {
            let _ = writeln!(out, "mirrorset_db_pool_connections{{pool=\"{name}\"}} {size}");
        }
        let _ = writeln!(out, "# HELP mirrorset_db_pool_idle_connections Idle connections of a database pool.");
        let _ = writeln!(out, "# TYPE mirrorset_db_pool_idle_connections gauge");
        for (name, _, idle, _) in &pools {
            let _ = writeln!(out, "mirrorset_db_pool_idle_connections{{pool=\"{name}\"}} {idle}");
        }
        if let Db::Sqlite { .. } = db {
            let _ = writeln!(out, "# HELP mirrorset_sqlite_writes_in_flight SQLite writes waiting for the single writer connection or running on it.");
            let _ = writeln!(out, "# TYPE mirrorset_sqlite_writes_in_flight gauge");
            let in_flight = crate::store::SQLITE_WRITES_IN_FLIGHT.load(Ordering::Relaxed);
            let _ = writeln!(out, "mirrorset_sqlite_writes_in_flight {in_flight}");
            render_group_commit(&mut out);
        }
        let _ = writeln!(out, "# HELP mirrorset_db_pool_max_connections The most connections a database pool opens.");
        let _ = writeln!(out, "# TYPE mirrorset_db_pool_max_connections gauge");
        for (name, _, _, max) in &pools {
            let _ = writeln!(out, "mirrorset_db_pool_max_connections{{pool=\"{name}\"}} {max}");
        }
        out
    }

    /// The request counters and latency histograms (a part of `render`; also what
    /// `mirrorset-bench` reads them from in its tests).
    pub fn render_requests(&self, out: &mut String) {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<&RouteKey> = routes.keys().collect();
        keys.sort();
        let _ = writeln!(out, "# HELP mirrorset_http_requests_total HTTP requests answered, by method, route pattern and status class.");
        let _ = writeln!(out, "# TYPE mirrorset_http_requests_total counter");
        for key in &keys {
            let _ = writeln!(out, "mirrorset_http_requests_total{{{}}} {}", labels(key), routes[*key].count);
        }
        let _ = writeln!(out, "# HELP mirrorset_http_request_duration_seconds Time to the response head, by method, route pattern and status class.");
        let _ = writeln!(out, "# TYPE mirrorset_http_request_duration_seconds histogram");
        for key in &keys {
            let stats = &routes[*key];
            let l = labels(key);
            let mut cumulative = 0;
            for (le, n) in BUCKETS.iter().zip(stats.buckets) {
                cumulative += n;
                let _ = writeln!(out, "mirrorset_http_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {cumulative}");
            }
            let _ = writeln!(out, "mirrorset_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}", stats.count);
            let _ = writeln!(out, "mirrorset_http_request_duration_seconds_sum{{{l}}} {}", stats.sum_seconds);
            let _ = writeln!(out, "mirrorset_http_request_duration_seconds_count{{{l}}} {}", stats.count);
        }
    }
}

/// The group-commit writer's queue depth, group size histogram and time per phase
/// (`store::writer`), and the background checkpoints' WAL length and failures
/// (`store::checkpoint`).
fn render_group_commit(out: &mut String) {
    use crate::store::{checkpoint, writer};
    let _ = writeln!(out, "# HELP mirrorset_sqlite_writer_queue_depth Labeling writes waiting for the group-commit writer.");
    let _ = writeln!(out, "# TYPE mirrorset_sqlite_writer_queue_depth gauge");
    let _ = writeln!(out, "mirrorset_sqlite_writer_queue_depth {}", writer::QUEUE_DEPTH.load(Ordering::Relaxed).max(0));
    let _ = writeln!(out, "# HELP mirrorset_sqlite_commit_group_size Labeling writes committed per group transaction.");
    let _ = writeln!(out, "# TYPE mirrorset_sqlite_commit_group_size histogram");
    let mut cumulative = 0;
    for (le, n) in writer::GROUP_SIZE_BUCKETS.iter().zip(&writer::GROUP_SIZES) {
        cumulative += n.load(Ordering::Relaxed);
        let _ = writeln!(out, "mirrorset_sqlite_commit_group_size_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let groups = writer::GROUPS.load(Ordering::Relaxed);
    let _ = writeln!(out, "mirrorset_sqlite_commit_group_size_bucket{{le=\"+Inf\"}} {groups}");
    let _ = writeln!(out, "mirrorset_sqlite_commit_group_size_sum {}", writer::GROUPED_JOBS.load(Ordering::Relaxed));
    let _ = writeln!(out, "mirrorset_sqlite_commit_group_size_count {groups}");
    let _ = writeln!(out, "# HELP mirrorset_sqlite_writer_seconds_total Time the group-commit writer spent per phase of its groups (acquire the write connection, begin, run the jobs, commit).");
    let _ = writeln!(out, "# TYPE mirrorset_sqlite_writer_seconds_total counter");
    for (phase, micros) in writer::PHASES.iter().zip(&writer::PHASE_MICROS) {
        let _ = writeln!(out, "mirrorset_sqlite_writer_seconds_total{{phase=\"{phase}\"}} {}", micros.load(Ordering::Relaxed) as f64 / 1e6);
    }
    let _ = writeln!(out, "# HELP mirrorset_sqlite_writer_job_seconds_total Time the group-commit writer spent in the statements of each kind of labeling write.");
    let _ = writeln!(out, "# TYPE mirrorset_sqlite_writer_job_seconds_total counter");
    for (kind, micros) in writer::JOB_KINDS.iter().zip(&writer::JOB_MICROS) {
        let _ = writeln!(out, "mirrorset_sqlite_writer_job_seconds_total{{kind=\"{kind}\"}} {}", micros.load(Ordering::Relaxed) as f64 / 1e6);
    }
    let _ = writeln!(out, "# HELP mirrorset_sqlite_writer_jobs_total Labeling writes the group-commit writer ran, by kind.");
    let _ = writeln!(out, "# TYPE mirrorset_sqlite_writer_jobs_total counter");
    for (kind, n) in writer::JOB_KINDS.iter().zip(&writer::JOBS_RUN) {
        let _ = writeln!(out, "mirrorset_sqlite_writer_jobs_total{{kind=\"{kind}\"}} {}", n.load(Ordering::Relaxed));
    }
    let _ = writeln!(out, "# HELP mirrorset_sqlite_wal_frames Pages in the WAL at the last background checkpoint.");
    let _ = writeln!(out, "# TYPE mirrorset_sqlite_wal_frames gauge");
    let _ = writeln!(out, "mirrorset_sqlite_wal_frames {}", checkpoint::WAL_FRAMES.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP mirrorset_sqlite_wal_syncs_total Syncs of the WAL by its own thread, beside the checkpoints.");
    let _ = writeln!(out, "# TYPE mirrorset_sqlite_wal_syncs_total counter");
    let _ = writeln!(out, "mirrorset_sqlite_wal_syncs_total {}", checkpoint::WAL_SYNCS.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP mirrorset_sqlite_database_syncs_total Syncs of the database file by the thread that syncs the WAL, beside the checkpoints.");
    let _ = writeln!(out, "# TYPE mirrorset_sqlite_database_syncs_total counter");
    let _ = writeln!(out, "mirrorset_sqlite_database_syncs_total {}", checkpoint::DATABASE_SYNCS.load(Ordering::Relaxed));
    let _ = writeln!(out, "# HELP mirrorset_sqlite_checkpoint_failures_total Background WAL checkpoints that failed (a full disk, an unwritable file).");
    let _ = writeln!(out, "# TYPE mirrorset_sqlite_checkpoint_failures_total counter");
    let _ = writeln!(out, "mirrorset_sqlite_checkpoint_failures_total {}", checkpoint::CHECKPOINT_FAILURES.load(Ordering::Relaxed));
}

/// The method as a label: the standard ones by name, any other (a client may send any token
/// as a method) as `OTHER`, so the label set stays bounded.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn labels(key: &RouteKey) -> String {
    format!(
        "method=\"{}\",route=\"{}\",status=\"{}\"",
        escape(&key.method),
        escape(&key.route),
        key.status
    )
}

/// Label values escape `\`, `"` and newlines (the exposition format's rule).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The middleware: times each request up to its response head and counts it under its route
/// pattern. Installed with `Router::layer`, so it runs after routing and sees `MatchedPath`.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "(unmatched)".to_string());
    let method = method_label(request.method()).to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe_request(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_the_count() {
        let m = Metrics::default();
        for ms in [0.2, 3.0, 3.0, 40.0, 20_000.0] {
            m.observe_request("POST", "/api/projects/{pid}/next", 200, Duration::from_secs_f64(ms / 1000.0));
        }
        let mut out = String::new();
        m.render_requests(&mut out);
        let l = "method=\"POST\",route=\"/api/projects/{pid}/next\",status=\"2xx\"";
        for (le, n) in [("0.0005", 1), ("0.0025", 1), ("0.005", 3), ("0.025", 3), ("0.05", 4), ("10", 4), ("+Inf", 5)] {
            let line = format!("mirrorset_http_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {n}\n");
            assert!(out.contains(&line), "{line} missing from\n{out}");
        }
        assert!(out.contains(&format!("mirrorset_http_requests_total{{{l}}} 5\n")), "{out}");
        assert!(out.contains(&format!("mirrorset_http_request_duration_seconds_count{{{l}}} 5\n")), "{out}");
    }

    #[test]
    fn active_labelers_forget_the_idle_and_stay_bounded() {
        let m = Metrics::default();
        let t0 = Instant::now();
        m.labeler_seen_at(1, t0);
        m.labeler_seen_at(2, t0 + Duration::from_secs(200));
        m.labeler_seen_at(1, t0 + Duration::from_secs(250));
        assert_eq!(m.active_labelers_at(t0 + Duration::from_secs(260)), 2);
        // User 2 last asked 301 s before, user 1 251 s before.
        assert_eq!(m.active_labelers_at(t0 + Duration::from_secs(501)), 1);
        for user in 0..(MAX_TRACKED_LABELERS as i64 + 10) {
            m.labeler_seen_at(1000 + user, t0 + Duration::from_secs(600) + Duration::from_micros(user as u64));
        }
        assert_eq!(m.labelers.lock().unwrap().len(), MAX_TRACKED_LABELERS);
    }

    #[test]
    fn a_metrics_token_is_checked_exactly() {
        assert!(Metrics::new(None).may_scrape(None));
        assert!(Metrics::new(Some(String::new())).may_scrape(None));
        let m = Metrics::new(Some("s3cret".into()));
        assert!(m.may_scrape(Some(b"Bearer s3cret")));
        for bad in [&b"Bearer s3cre"[..], b"Bearer s3cret2", b"Bearer S3cret", b"s3cret", b"Basic s3cret", b""] {
            assert!(!m.may_scrape(Some(bad)), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(!m.may_scrape(None));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let custom = axum::http::Method::from_bytes(b"X-ANYTHING-123").unwrap();
        assert_eq!(method_label(&custom), "OTHER");
        assert_eq!(method_label(&axum::http::Method::TRACE), "OTHER");
        assert_eq!(method_label(&axum::http::Method::PATCH), "PATCH");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
