//! The labeling requests' time inside the server, beside the bench's own figures: the
//! server's latency histogram (`mirrorset_http_request_duration_seconds` on `/metrics`, from
//! routing to the response head), read before and after the labeling step.
//!
//! The bench's figures run from sending a request to reading its answer. In a closed loop on
//! the 2-core host the difference is mostly the time a request waits for a core before the
//! server routes it and after it answers, with the bench's own labelers on the same cores:
//! the loop's queue, which Little's law ties to the throughput (docs/bench.md). The histogram
//! says how much of a request's time the server itself takes, to the precision of its buckets.
use anyhow::Result;
use reqwest::Client;
use serde_json::{json, Value};

const HISTOGRAM: &str = "mirrorset_http_request_duration_seconds";
pub const NEXT_ROUTE: &str = "/api/projects/{pid}/next";
pub const SUBMIT_ROUTE: &str = "/api/projects/{pid}/annotations";

/// One route's requests (every status), summed over the instances.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// (upper bound in seconds, requests at most that long), ascending; `+Inf` left out.
    pub bounds: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    /// The POST requests of `route` in one scrape of `/metrics`.
    pub fn parse(text: &str, route: &str) -> Histogram {
        let mut h = Histogram::default();
        for line in text.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else { continue };
            let Some((name, labels)) = series.split_once('{') else { continue };
            let Some(suffix) = name.strip_prefix(HISTOGRAM) else { continue };
            let labels = labels.strip_suffix('}').unwrap_or(labels);
            if label(labels, "method") != Some("POST") || label(labels, "route") != Some(route) {
                continue;
            }
            let Ok(value) = value.parse::<f64>() else { continue };
            match suffix {
                "_count" => h.count += value as u64,
                "_sum" => h.sum_seconds += value,
                "_bucket" => {
                    let le = label(labels, "le").and_then(|le| le.parse::<f64>().ok());
                    let Some(le) = le.filter(|le| le.is_finite()) else { continue };
                    h.add_at(le, value as u64);
                }
                _ => {}
            }
        }
        h
    }

    /// `n` more requests at most `le` seconds long (the bounds stay in order).
    fn add_at(&mut self, le: f64, n: u64) {
        match self.bounds.iter_mut().find(|(b, _)| *b == le) {
            Some((_, m)) => *m += n,
            None => {
                self.bounds.push((le, n));
                self.bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }

    fn add(&mut self, other: &Histogram) {
        for &(le, n) in &other.bounds {
            self.add_at(le, n);
        }
        self.count += other.count;
        self.sum_seconds += other.sum_seconds;
    }

    /// The requests counted after `earlier` (a scrape of the same servers).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let before = |le: f64| earlier.bounds.iter().find(|(b, _)| *b == le).map_or(0, |(_, n)| *n);
        Histogram {
            bounds: self.bounds.iter().map(|&(le, n)| (le, n.saturating_sub(before(le)))).collect(),
            count: self.count.saturating_sub(earlier.count),
            sum_seconds: self.sum_seconds - earlier.sum_seconds,
        }
    }

    /// The share of the requests that took at most `ms` (a bucket's bound).
    pub fn share_within(&self, ms: f64) -> Option<f64> {
        let n = self.bounds.iter().find(|(le, _)| (le * 1000.0 - ms).abs() < 1e-9)?.1;
        (self.count > 0).then(|| n as f64 / self.count as f64)
    }

    /// The smallest bucket bound (ms) that holds at least the fraction `q` of the requests:
    /// the `q` quantile is at most this. None when it lies beyond the last finite bound.
    pub fn quantile_bound_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let needed = (q * self.count as f64).ceil() as u64;
        self.bounds.iter().find(|(_, n)| *n >= needed).map(|(le, _)| le * 1000.0)
    }

    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            1000.0 * self.sum_seconds / self.count as f64
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "mean_ms": self.mean_ms(),
            "p50_at_most_ms": self.quantile_bound_ms(0.50),
            "p99_at_most_ms": self.quantile_bound_ms(0.99),
            "within_1_ms": self.share_within(1.0),
            "within_5_ms": self.share_within(5.0),
        })
    }
}

/// The value of `key` in a series' labels (`a="x",b="y"`; the server's label values hold no
/// quotes or commas).
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split("\",").find_map(|pair| {
        let (k, v) = pair.split_once("=\"")?;
        (k == key).then(|| v.strip_suffix('"').unwrap_or(v))
    })
}

/// One scrape of `/metrics` from each server at `bases` (None when one has no `/metrics` or
/// it cannot be read).
pub async fn scrape(client: &Client, bases: &[String]) -> Option<Vec<String>> {
    let mut texts = Vec::with_capacity(bases.len());
    for base in bases {
        texts.push(scrape_one(client, base).await.ok()?);
    }
    Some(texts)
}

async fn scrape_one(client: &Client, base: &str) -> Result<String> {
    Ok(client.get(format!("{base}/metrics")).send().await?.error_for_status()?.text().await?)
}

/// Next and submit as the servers counted them in `scrapes` (one per instance), summed.
pub fn next_and_submit(scrapes: &[String]) -> (Histogram, Histogram) {
    let mut next = Histogram::default();
    let mut submit = Histogram::default();
    for text in scrapes {
        next.add(&Histogram::parse(text, NEXT_ROUTE));
        submit.add(&Histogram::parse(text, SUBMIT_ROUTE));
    }
    (next, submit)
}

/// The summary's lines: each request's bounds on p50 and p99, its share within 1 ms and 5 ms,
/// and its mean, in the server.
pub fn table(next: &Histogram, submit: &Histogram) -> String {
    let bound = |h: &Histogram, q: f64| match (h.quantile_bound_ms(q), h.bounds.last()) {
        (Some(ms), _) => format!("≤ {ms}"),
        (None, Some((last, _))) if h.count > 0 => format!("> {}", last * 1000.0),
        (None, _) => "–".to_string(),
    };
    let share = |s: Option<f64>| s.map_or_else(|| "–".to_string(), |f| format!("{:.2} %", 100.0 * f));
    let mut s = String::from("  in the server (routing to response head, /metrics buckets)\n");
    s.push_str("                          count     p50      p99    ≤ 1 ms    ≤ 5 ms     mean (ms)\n");
    for (name, h) in [("next", next), ("submit", submit)] {
        s.push_str(&format!(
            "  {name:<20} {:>8} {:>7} {:>8} {:>9} {:>9} {:>9.3}\n",
            h.count,
            bound(h, 0.50),
            bound(h, 0.99),
            share(h.share_within(1.0)),
            share(h.share_within(5.0)),
            h.mean_ms()
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use server::metrics::{Metrics, BUCKETS};

    use super::*;

    /// Hand-outs: (ms, how many), the last two refused.
    const NEXTS: [(f64, u64, u16); 4] = [(0.4, 90, 200), (0.9, 9, 200), (4.0, 1, 200), (30.0, 2, 409)];

    /// What a server renders after `NEXTS`, 7 GETs of the route and 5 submissions.
    fn scrape() -> String {
        let metrics = Metrics::new(None);
        let observe = |method, route, status, ms: f64, times| {
            for _ in 0..times {
                metrics.observe_request(method, route, status, Duration::from_secs_f64(ms / 1000.0));
            }
        };
        for (ms, n, status) in NEXTS {
            observe("POST", NEXT_ROUTE, status, ms, n);
        }
        observe("GET", NEXT_ROUTE, 200, 0.1, 7);
        observe("POST", SUBMIT_ROUTE, 200, 2.0, 5);
        let mut text = String::new();
        metrics.render_requests(&mut text);
        text
    }

    /// `NEXTS` `times` over, bucket by bucket.
    fn next_bounds(times: u64) -> Vec<(f64, u64)> {
        let within = |le: f64| NEXTS.iter().filter(|(ms, ..)| ms / 1000.0 <= le).map(|(_, n, _)| n * times).sum();
        BUCKETS.iter().map(|&le| (le, within(le))).collect()
    }

    #[test]
    fn a_route_sums_its_statuses_and_leaves_other_methods_and_routes_out() {
        let h = Histogram::parse(&scrape(), NEXT_ROUTE);
        assert_eq!(h.bounds, next_bounds(1));
        assert_eq!(h.count, 102);
        assert!((h.sum_seconds - 0.1081).abs() < 1e-9, "{}", h.sum_seconds);
        assert_eq!(Histogram::parse(&scrape(), SUBMIT_ROUTE).count, 5);
    }

    #[test]
    fn quantiles_are_bounded_by_the_first_bucket_that_holds_them() {
        let h = Histogram::parse(&scrape(), NEXT_ROUTE);
        assert_eq!(h.quantile_bound_ms(0.50), Some(0.5));
        // 98 % of 102 is 100 requests (rounded up): past the 1 ms bucket's 99.
        assert_eq!(h.quantile_bound_ms(0.98), Some(5.0));
        // 99 % is 101: one of the two slow refusals.
        assert_eq!(h.quantile_bound_ms(0.99), Some(50.0));
        assert_eq!(h.share_within(1.0), Some(99.0 / 102.0));
        assert_eq!(h.share_within(2.0), None, "no bucket ends at 2 ms");
        assert!((h.mean_ms() - 108.1 / 102.0).abs() < 1e-9);
        assert_eq!(Histogram::default().quantile_bound_ms(0.5), None);
    }

    #[test]
    fn the_table_gives_bounds_shares_and_means_and_a_dash_without_requests() {
        let next = Histogram::parse(&scrape(), NEXT_ROUTE);
        let text = table(&next, &Histogram::default());
        let rows: Vec<Vec<&str>> = text.lines().skip(2).map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[0], ["next", "102", "≤", "0.5", "≤", "50", "97.06", "%", "98.04", "%", "1.060"]);
        assert_eq!(rows[1], ["submit", "0", "–", "–", "–", "–", "0.000"]);
        let mut slow = Histogram::default();
        slow.add_at(0.0005, 0);
        slow.count = 3;
        let text = table(&slow, &slow);
        assert!(text.contains("> 0.5"), "beyond the last bucket: {text}");
    }

    #[test]
    fn a_run_is_the_difference_of_two_scrapes_summed_over_instances() {
        let (one, _) = next_and_submit(&[scrape()]);
        let (two, submits) = next_and_submit(&[scrape(), scrape()]);
        assert_eq!(two.bounds, next_bounds(2));
        assert_eq!(submits.count, 10);
        let run = two.since(&one);
        assert_eq!(run.bounds, next_bounds(1));
        assert_eq!(run.count, 102);
    }
}
