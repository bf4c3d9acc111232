//! The dashboard's two charts as inline SVG markup, built by pure functions (unit-tested, no
//! browser needed): the labeler-pair heat map and the alpha-over-time line. Colours are
//! presentation attributes (the Content-Security-Policy refuses inline styles), and every
//! cell and point also carries its number as text: colour is never the only carrier.
use crate::api_types::{AlphaPoint, PairCell};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Percent-encodes a query value (labeler names may hold anything but a comma).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Cell colour for a kappa: from pale (≤ 0) to the accent blue (1), in 5 steps so the
/// difference between neighbours stays visible in a screenshot.
pub fn kappa_fill(kappa: Option<f64>) -> &'static str {
    match kappa {
        None => "#f0f2f5",
        Some(k) if k < 0.2 => "#fdeceb",
        Some(k) if k < 0.4 => "#fbe3c6",
        Some(k) if k < 0.6 => "#e8effc",
        Some(k) if k < 0.8 => "#b9cdf3",
        Some(_) => "#7fa3ea",
    }
}

/// The labelers named in the pairs, in first-appearance order.
pub fn pair_names(pairs: &[PairCell]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in pairs {
        for n in [&p.a, &p.b] {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names
}

/// A square matrix of pairwise Cohen's kappa (lower triangle), each cell a link to the pair's
/// disagreement queue, with the kappa and n written in it.
pub fn heat_map_svg(pid: i64, pairs: &[PairCell]) -> String {
    let names = pair_names(pairs);
    let (label_w, cell, top) = (110.0, 58.0, 22.0);
    let n = names.len();
    let w = label_w + cell * n.saturating_sub(1).max(1) as f64 + 4.0;
    let h = top + cell * n.saturating_sub(1).max(1) as f64 + 4.0;
    let mut s = format!(
        r#"<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Cohen's kappa per labeler pair">"#
    );
    // Columns: names[0..n-1]; rows: names[1..n].
    for (c, name) in names.iter().take(n.saturating_sub(1)).enumerate() {
        let x = label_w + cell * c as f64 + cell / 2.0;
        s += &format!(r##"<text x="{x}" y="14" text-anchor="middle" font-size="11" fill="#636b75">{}</text>"##, esc(name));
    }
    for (r, row_name) in names.iter().enumerate().skip(1) {
        let y = top + cell * (r - 1) as f64;
        s += &format!(
            r##"<text x="{}" y="{}" text-anchor="end" font-size="11" fill="#636b75">{}</text>"##,
            label_w - 8.0,
            y + cell / 2.0 + 4.0,
            esc(row_name)
        );
        for (c, col_name) in names.iter().enumerate().take(r) {
            let x = label_w + cell * c as f64;
            let p = pairs.iter().find(|p| (&p.a == row_name && &p.b == col_name) || (&p.a == col_name && &p.b == row_name));
            let Some(p) = p else { continue };
            let value = p.kappa.map(|k| format!("{k:.2}")).unwrap_or_else(|| "–".into());
            let title = match (&p.kappa, &p.reason) {
                (Some(k), _) => format!("{} × {}: kappa {k:.3} over {} items", p.a, p.b, p.n),
                (None, Some(r)) => format!("{} × {}: {r}", p.a, p.b),
                (None, None) => format!("{} × {}", p.a, p.b),
            };
            let href = format!("/projects/{pid}/review/disagreement?pair={},{}", enc(&p.a), enc(&p.b));
            s += &format!(
                r##"<a href="{}" class="heat-cell"><title>{}</title><rect x="{}" y="{}" width="{}" height="{}" rx="3" fill="{}" stroke="#ffffff" stroke-width="2"/><text x="{}" y="{}" text-anchor="middle" font-size="13" font-weight="600" fill="#1d2125">{}</text><text x="{}" y="{}" text-anchor="middle" font-size="10" fill="#636b75">n={}</text></a>"##,
                esc(&href),
                esc(&title),
                x + 1.0,
                y + 1.0,
                cell - 2.0,
                cell - 2.0,
                kappa_fill(p.kappa),
                x + cell / 2.0,
                y + cell / 2.0 + 1.0,
                value,
                x + cell / 2.0,
                y + cell / 2.0 + 15.0,
                p.n
            );
        }
    }
    s + "</svg>"
}

/// Alpha per period as a line with a dot and its value per point, a dashed line at the
/// target; undefined periods are gaps.
pub fn alpha_line_svg(points: &[AlphaPoint], target: f64, label: impl Fn(i64) -> String) -> String {
    let (w, h, left, right, top, bottom) = (560.0, 150.0, 34.0, 10.0, 12.0, 24.0);
    let mut s = format!(
        r#"<svg class="alpha-line" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Krippendorff's alpha over time">"#
    );
    // Scale: alpha from min(0, lowest) to 1.
    let lowest = points.iter().filter_map(|p| p.alpha).fold(0.0f64, f64::min);
    let y_of = |a: f64| top + (1.0 - a) / (1.0 - lowest) * (h - top - bottom);
    for tick in [lowest, (lowest + 1.0) / 2.0, 1.0] {
        let y = y_of(tick);
        s += &format!(r##"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#dfe3e8"/>"##, w - right);
        s += &format!(r##"<text x="{}" y="{}" text-anchor="end" font-size="10" fill="#636b75">{tick:.1}</text>"##, left - 4.0, y + 3.0);
    }
    let yt = y_of(target);
    s += &format!(r##"<line x1="{left}" x2="{}" y1="{yt}" y2="{yt}" stroke="#9a5b00" stroke-dasharray="4 3"/>"##, w - right);
    s += &format!(r##"<text x="{}" y="{}" text-anchor="end" font-size="10" fill="#9a5b00">target {target}</text>"##, w - right, yt - 3.0);
    let n = points.len().max(1);
    let x_of = |i: usize| if n == 1 { (left + w - right) / 2.0 } else { left + 8.0 + (w - right - left - 16.0) * i as f64 / (n - 1) as f64 };
    let mut path = String::new();
    let mut pen_up = true;
    for (i, p) in points.iter().enumerate() {
        match p.alpha {
            Some(a) => {
                path += &format!("{}{:.1},{:.1} ", if pen_up { "M" } else { "L" }, x_of(i), y_of(a));
                pen_up = false;
            }
            None => pen_up = true,
        }
    }
    if !path.is_empty() {
        s += &format!(r##"<path d="{}" fill="none" stroke="#2457c5" stroke-width="2"/>"##, path.trim());
    }
    let every = (n / 8).max(1);
    for (i, p) in points.iter().enumerate() {
        let x = x_of(i);
        if let Some(a) = p.alpha {
            s += &format!(
                r##"<circle cx="{x}" cy="{}" r="3" fill="#2457c5"><title>{}: alpha {a:.3} over {} items</title></circle>"##,
                y_of(a),
                esc(&label(p.period_start)),
                p.n
            );
        }
        if i % every == 0 || i == n - 1 {
            s += &format!(r##"<text x="{x}" y="{}" text-anchor="middle" font-size="10" fill="#636b75">{}</text>"##, h - 6.0, esc(&label(p.period_start)));
        }
    }
    s + "</svg>"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str, kappa: Option<f64>, n: i64) -> PairCell {
        PairCell { a: a.into(), b: b.into(), n, kappa, reason: kappa.is_none().then(|| "no shared item".into()) }
    }

    #[test]
    fn heat_map_has_one_linked_cell_per_pair_with_kappa_and_n() {
        let pairs = [pair("ana", "ben", Some(0.81), 12), pair("ana", "c&d", None, 0), pair("ben", "c&d", Some(0.2), 5)];
        let svg = heat_map_svg(7, &pairs);
        assert_eq!(svg.matches("<a href=").count(), 3);
        assert!(svg.contains(r#"href="/projects/7/review/disagreement?pair=ana,ben""#), "{svg}");
        assert!(svg.contains("pair=ana,c%26d"), "names are encoded: {svg}");
        assert!(svg.contains(">0.81<") && svg.contains(">n=12<") && svg.contains(">–<"));
        assert!(svg.contains("c&amp;d") && !svg.contains("c&d<"));
        assert!(!svg.contains("style="), "the CSP refuses inline styles");
    }

    #[test]
    fn alpha_line_breaks_at_undefined_periods() {
        let p = |t, a: Option<f64>| AlphaPoint { period_start: t, n: 3, alpha: a, reason: None };
        let svg = alpha_line_svg(&[p(1, Some(0.5)), p(2, None), p(3, Some(0.9))], 0.8, |t| format!("d{t}"));
        assert_eq!(svg.matches("<circle").count(), 2);
        let d = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "two separate segments: {d}");
        assert!(svg.contains("target 0.8") && svg.contains(">d1<"));
    }
}
