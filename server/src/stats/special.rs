//! Special functions the statistics need, written out because they are small and must be exact:
//! the standard normal quantile (for z from a confidence level) and the binomial probability
//! mass (for McNemar's exact test).

// The coefficients are printed as published (AS 241, Lanczos), beyond f64's precision.
#![allow(clippy::excessive_precision)]

/// The standard normal quantile Φ⁻¹(p) for 0 < p < 1, by Wichura's algorithm AS 241
/// (PPND16), accurate to about 1e-16 relative: the same precision as SciPy's `ndtri`.
pub(crate) fn normal_quantile(p: f64) -> f64 {
    debug_assert!(p > 0.0 && p < 1.0);
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q
            * (((((((2509.0809287301226727 * r + 33430.575583588128105) * r
                + 67265.770927008700853)
                * r
                + 45921.953931549871457)
                * r
                + 13731.693765509461125)
                * r
                + 1971.5909503065514427)
                * r
                + 133.14166789178437745)
                * r
                + 3.387132872796366608)
            / (((((((5226.495278852545925 * r + 28729.085735721942674) * r
                + 39307.89580009271061)
                * r
                + 21213.794301586595867)
                * r
                + 5394.1960214247511077)
                * r
                + 687.1870074920579083)
                * r
                + 42.313330701600911252)
                * r
                + 1.0);
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let value = if r <= 5.0 {
        let r = r - 1.6;
        (((((((7.7454501427834140764e-4 * r + 0.0227238449892691845833) * r
            + 0.24178072517745061177)
            * r
            + 1.27045825245236838258)
            * r
            + 3.64784832476320460504)
            * r
            + 5.7694972214606914055)
            * r
            + 4.6303378461565452959)
            * r
            + 1.42343711074968357734)
            / (((((((1.05075007164441684324e-9 * r + 5.475938084995344946e-4) * r
                + 0.0151986665636164571966)
                * r
                + 0.14810397642748007459)
                * r
                + 0.68976733498510000455)
                * r
                + 1.6763848301838038494)
                * r
                + 2.05319162663775882187)
                * r
                + 1.0)
    } else {
        let r = r - 5.0;
        (((((((2.01033439929228813265e-7 * r + 2.71155556874348757815e-5) * r
            + 0.0012426609473880784386)
            * r
            + 0.026532189526576123093)
            * r
            + 0.29656057182850489123)
            * r
            + 1.7848265399172913358)
            * r
            + 5.4637849111641143699)
            * r
            + 6.6579046435011037772)
            / (((((((2.04426310338993978564e-15 * r + 1.4215117583164458887e-7) * r
                + 1.8463183175100546818e-5)
                * r
                + 7.868691311456132591e-4)
                * r
                + 0.0148753612908506148525)
                * r
                + 0.13692988092273580531)
                * r
                + 0.59983220655588793769)
                * r
                + 1.0)
    };
    if q < 0.0 {
        -value
    } else {
        value
    }
}

/// The two-sided critical value z for a confidence level in (0, 1): Φ⁻¹(1 − (1 − c)/2).
pub(crate) fn z_for_confidence(confidence: f64) -> f64 {
    // Φ⁻¹(1 − a/2) = −Φ⁻¹(a/2); the second form keeps full precision for small a.
    -normal_quantile((1.0 - confidence) / 2.0)
}

/// ln Γ(x) for x > 0, Lanczos approximation (g = 7, 9 terms), about 1e-15 relative. Used only
/// where a little loss in the last digits is harmless (the Stirling correction for small n).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The Stirling-formula error ln(n!) − [ln √(2π) + (n + ½) ln n − n], as in Loader (2000),
/// "Fast and accurate computation of binomial probabilities".
fn stirling_error(n: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if n <= 15.0 {
        let ln_sqrt_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        return ln_gamma(n + 1.0) - (n + 0.5) * n.ln() + n - ln_sqrt_2pi;
    }
    let nn = n * n;
    if n > 500.0 {
        return (S0 - S1 / nn) / n;
    }
    if n > 80.0 {
        return (S0 - (S1 - S2 / nn) / nn) / n;
    }
    if n > 35.0 {
        return (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n;
    }
    (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
}

/// The deviance term x ln(x/np) + np − x, computed without cancellation (Loader 2000).
fn deviance(x: f64, np: f64) -> f64 {
    if (x - np).abs() < 0.1 * (x + np) {
        let v = (x - np) / (x + np);
        let mut s = (x - np) * v;
        let mut ej = 2.0 * x * v;
        let v2 = v * v;
        let mut j = 1.0;
        loop {
            ej *= v2;
            let s1 = s + ej / (2.0 * j + 1.0);
            if s1 == s {
                return s1;
            }
            s = s1;
            j += 1.0;
        }
    }
    x * (x / np).ln() + np - x
}

/// P(X = k) for X ~ Binomial(n, p), 0 < p < 1, to full double precision even for large n
/// (Loader's saddle-point form, the method R's `dbinom` uses).
pub(crate) fn binomial_pmf(k: u64, n: u64, p: f64) -> f64 {
    let q = 1.0 - p;
    let (kf, nf) = (k as f64, n as f64);
    // powf is exact where it can be (0.5^n), unlike exp(n ln q).
    if k == 0 {
        return q.powf(nf);
    }
    if k == n {
        return p.powf(nf);
    }
    let lc = stirling_error(nf)
        - stirling_error(kf)
        - stirling_error(nf - kf)
        - deviance(kf, nf * p)
        - deviance(nf - kf, nf * q);
    let lf = (2.0 * std::f64::consts::PI).ln() + kf.ln() + (-kf / nf).ln_1p();
    (lc - 0.5 * lf).exp()
}

/// P(X ≤ k) for X ~ Binomial(n, ½): the lower tail, summed from the largest term down with the
/// exact ratio between neighbouring terms, stopping once terms no longer change the sum.
pub(crate) fn binomial_half_cdf(k: u64, n: u64) -> f64 {
    if k >= n {
        return 1.0;
    }
    let top = binomial_pmf(k, n, 0.5);
    let mut sum = 0.0;
    let mut term = 1.0;
    let mut j = k;
    loop {
        sum += term;
        if j == 0 || term < sum * 1e-17 {
            break;
        }
        // P(j−1) / P(j) = j / (n − j + 1) when p = ½.
        term *= j as f64 / (n - j + 1) as f64;
        j -= 1;
    }
    (sum * top).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn normal_quantile_matches_known_values() {
        // Values from SciPy's norm.ppf.
        assert!(close(normal_quantile(0.975), 1.959963984540054, 1e-15));
        assert!(close(normal_quantile(0.995), 2.5758293035489004, 1e-15));
        assert!(close(normal_quantile(0.1), -1.2815515655446004, 1e-15));
        assert!(close(normal_quantile(1e-10), -6.361340902404056, 1e-14));
        assert_eq!(normal_quantile(0.5), 0.0);
        assert!(close(z_for_confidence(0.95), 1.959963984540054, 1e-15));
    }

    #[test]
    fn binomial_pmf_matches_direct_computation_for_small_n() {
        // C(10, 3) / 2^10 = 120 / 1024.
        assert!(close(binomial_pmf(3, 10, 0.5), 120.0 / 1024.0, 1e-14));
        assert!(close(binomial_pmf(0, 10, 0.5), 1.0 / 1024.0, 1e-14));
        assert!(close(binomial_pmf(10, 10, 0.5), 1.0 / 1024.0, 1e-14));
        // C(40, 17) p^17 q^23 with p = 0.3.
        let direct = 88732378800.0 * 0.3f64.powi(17) * 0.7f64.powi(23);
        assert!(close(binomial_pmf(17, 40, 0.3), direct, 1e-13));
    }

    #[test]
    fn binomial_half_cdf_sums_to_the_known_tail() {
        // P(X ≤ 2), n = 10: (1 + 10 + 45) / 1024.
        assert!(close(binomial_half_cdf(2, 10), 56.0 / 1024.0, 1e-14));
        assert_eq!(binomial_half_cdf(10, 10), 1.0);
        // Symmetry: P(X ≤ 4) + P(X ≥ 5) = 1 with n = 9, and P(X ≥ 5) = P(X ≤ 4).
        assert!(close(binomial_half_cdf(4, 9), 0.5, 1e-14));
        // Large n stays finite and in range.
        let p = binomial_half_cdf(499_000, 1_000_000);
        assert!(p > 0.0 && p < 0.5);
    }
}
