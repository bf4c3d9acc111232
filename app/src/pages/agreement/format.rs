//! How the dashboard writes its numbers: a statistic with its interval and n, or why it has
//! none; never 0 or NaN for an undefined value.
use crate::api_types::StatValue;

/// "0.812" (three decimals: alpha and kappa differences of 0.01 matter to a lead).
pub fn num(v: f64) -> String {
    format!("{v:.3}")
}

pub fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// "0.812 [0.741, 0.866]", or "–" when undefined.
pub fn stat_with_interval(s: &StatValue) -> String {
    match (s.value, s.interval) {
        (Some(v), Some(ci)) => format!("{} [{}, {}]", num(v), num(ci.lower), num(ci.upper)),
        (Some(v), None) => num(v),
        (None, _) => "–".into(),
    }
}

/// The interval alone: "95% CI 0.741 – 0.866".
pub fn interval_text(s: &StatValue) -> Option<String> {
    s.interval.map(|ci| format!("95% CI {} – {}", num(ci.lower), num(ci.upper)))
}

/// A proportion with its interval, as percentages: "80.0% [49.0, 94.3]".
pub fn proportion(s: &StatValue) -> String {
    match (s.value, s.interval) {
        (Some(v), Some(ci)) => format!("{} [{:.1}, {:.1}]", percent(v), ci.lower * 100.0, ci.upper * 100.0),
        (Some(v), None) => percent(v),
        (None, _) => "–".into(),
    }
}

/// "3 min ago" style age of a timestamp, from `now` (both ms).
pub fn age(computed_at: i64, now: i64) -> String {
    let s = ((now - computed_at) / 1000).max(0);
    match s {
        0..=9 => "just now".into(),
        10..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_types::Interval;

    #[test]
    fn statistics_show_value_interval_or_a_dash() {
        let s = StatValue { value: Some(0.8123), interval: Some(Interval { lower: 0.7, upper: 0.9 }), n: 12, reason: None };
        assert_eq!(stat_with_interval(&s), "0.812 [0.700, 0.900]");
        assert_eq!(interval_text(&s).unwrap(), "95% CI 0.700 – 0.900");
        assert_eq!(proportion(&s), "81.2% [70.0, 90.0]");
        let none = StatValue { reason: Some("one labeler only".into()), ..Default::default() };
        assert_eq!(stat_with_interval(&none), "–");
        assert_eq!(proportion(&none), "–");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(0, 5_000), "just now");
        assert_eq!(age(0, 42_000), "42 s ago");
        assert_eq!(age(0, 180_000), "3 min ago");
        assert_eq!(age(0, 7_200_000), "2 h ago");
    }
}
