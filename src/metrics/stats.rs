//! The statistics of comparing two groups (issue 18, experiments): a
//! difference of proportions with Newcombe's hybrid score interval and the
//! pooled two-proportion z-test, a difference of means with Welch's t
//! interval and test, relative lift, and the sample-ratio-mismatch
//! chi-square test. Pure functions over counts and moments; the
//! distributions (normal, Student's t, chi-square) come from `statrs`,
//! never hand-written quantile code.
//!
//! References checked by the tests below:
//! - R. G. Newcombe, "Interval estimation for the difference between
//!   independent proportions: comparison of eleven methods", Statistics in
//!   Medicine 17 (1998) 873–890, Table II, method 10.
//! - R's `t.test(extra ~ group, data = sleep)` (Welch, the default), as
//!   printed in R's own documentation example.
//! - Chi-square critical values of any statistics table (5 % at 1 and 2
//!   degrees of freedom).

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// A two-sided interval and test of a difference, `treatment − control`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// The difference of the two estimates.
    pub diff: f64,
    /// The interval's lower end.
    pub ci_low: f64,
    /// The interval's upper end.
    pub ci_high: f64,
    /// The two-sided p-value of "no difference".
    pub p_value: f64,
    /// `diff ÷ control`, `None` when the control's estimate is 0.
    pub lift: Option<f64>,
}

fn standard_normal() -> Option<Normal> {
    Normal::new(0.0, 1.0).ok()
}

/// The two-sided critical value of the standard normal for `confidence`
/// (0.95 → 1.959964…).
pub fn z_critical(confidence: f64) -> f64 {
    standard_normal().map_or(f64::NAN, |n| n.inverse_cdf(1.0 - (1.0 - confidence) / 2.0))
}

/// Wilson's score interval of the proportion `x / n` at critical value `z`.
pub fn wilson(x: u64, n: u64, z: f64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (x, n) = (x as f64, n as f64);
    let p = x / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z2 / n;
    // exactly 0 and 1 at the extremes (the formula leaves rounding dust)
    let lo = if x == 0.0 {
        0.0
    } else {
        ((centre - half) / denom).max(0.0)
    };
    let hi = if x == n {
        1.0
    } else {
        ((centre + half) / denom).min(1.0)
    };
    (lo, hi)
}

/// `x1/n1 − x2/n2` (treatment minus control) with Newcombe's hybrid score
/// interval (his method 10, from the two Wilson intervals) and the p-value
/// of the pooled two-proportion z-test.
///
/// ```
/// use stickydb::metrics::stats::proportions;
/// let c = proportions(56, 70, 48, 80, 0.95);
/// assert!((c.ci_low - 0.0524).abs() < 5e-5 && (c.ci_high - 0.3339).abs() < 5e-5);
/// ```
pub fn proportions(x1: u64, n1: u64, x2: u64, n2: u64, confidence: f64) -> Comparison {
    let ratio = |x: u64, n: u64| if n == 0 { 0.0 } else { x as f64 / n as f64 };
    let (p1, p2) = (ratio(x1, n1), ratio(x2, n2));
    let z = z_critical(confidence);
    let (l1, u1) = wilson(x1, n1, z);
    let (l2, u2) = wilson(x2, n2, z);
    let diff = p1 - p2;
    let ci_low = diff - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let ci_high = diff + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Comparison {
        diff,
        ci_low,
        ci_high,
        p_value: pooled_z_test(x1, n1, x2, n2),
        lift: (p2 > 0.0).then(|| diff / p2),
    }
}

/// The two-sided p-value of the pooled two-proportion z-test (1 when
/// there is nothing to test: an empty group, or no variance at all).
pub fn pooled_z_test(x1: u64, n1: u64, x2: u64, n2: u64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    let z = (x1 as f64 / n1f - x2 as f64 / n2f) / se;
    standard_normal().map_or(f64::NAN, |n| 2.0 * n.sf(z.abs()))
}

/// A group's count, mean and sample variance (n − 1 denominator).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    /// Members.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Sample variance.
    pub variance: f64,
}

impl Moments {
    /// The moments of `values` (two passes: exact enough for sums of money).
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self::default();
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let variance = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Self {
            n: n as u64,
            mean,
            variance,
        }
    }
}

/// `mean(treatment) − mean(control)` with Welch's t interval and the
/// two-sided p-value of Welch's t-test (Welch–Satterthwaite degrees of
/// freedom). Returns the comparison and the degrees of freedom.
pub fn welch(treatment: Moments, control: Moments, confidence: f64) -> (Comparison, f64) {
    let diff = treatment.mean - control.mean;
    let lift = (control.mean != 0.0).then(|| diff / control.mean);
    if treatment.n < 2 || control.n < 2 {
        let c = Comparison {
            diff,
            ci_low: f64::NEG_INFINITY,
            ci_high: f64::INFINITY,
            p_value: 1.0,
            lift,
        };
        return (c, f64::NAN);
    }
    let a = treatment.variance / treatment.n as f64;
    let b = control.variance / control.n as f64;
    let se = (a + b).sqrt();
    let df =
        (a + b).powi(2) / (a * a / (treatment.n as f64 - 1.0) + b * b / (control.n as f64 - 1.0));
    if se == 0.0 || !df.is_finite() {
        let c = Comparison {
            diff,
            ci_low: diff,
            ci_high: diff,
            p_value: if diff == 0.0 { 1.0 } else { 0.0 },
            lift,
        };
        return (c, df);
    }
    let Ok(t_dist) = StudentsT::new(0.0, 1.0, df) else {
        let c = Comparison {
            diff,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            p_value: f64::NAN,
            lift,
        };
        return (c, df);
    };
    let crit = t_dist.inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    let t = diff / se;
    let c = Comparison {
        diff,
        ci_low: diff - crit * se,
        ci_high: diff + crit * se,
        p_value: 2.0 * t_dist.sf(t.abs()),
        lift,
    };
    (c, df)
}

/// The p-value of the chi-square goodness-of-fit test of `observed` group
/// sizes against the intended split `weights` (any positive scale; equal
/// weights for an even split): a small p-value flags a sample-ratio
/// mismatch — a broken assignment — before anyone reads the lift. 1 when
/// there is nothing to test.
pub fn sample_ratio_mismatch(observed: &[u64], weights: &[f64]) -> f64 {
    let total: u64 = observed.iter().sum();
    let weight: f64 = weights.iter().sum();
    if observed.len() < 2 || observed.len() != weights.len() || total == 0 || weight <= 0.0 {
        return 1.0;
    }
    let mut chi2 = 0.0;
    for (o, w) in observed.iter().zip(weights) {
        let expected = total as f64 * w / weight;
        if expected <= 0.0 {
            return 0.0;
        }
        chi2 += (*o as f64 - expected).powi(2) / expected;
    }
    ChiSquared::new((observed.len() - 1) as f64).map_or(f64::NAN, |d| d.sf(chi2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Newcombe (1998), Table II, method 10 ("score, no continuity
    /// correction"), examples (a) and (b), to the paper's four decimals.
    #[test]
    fn newcombe_hybrid_score_matches_the_paper() {
        for (x1, n1, x2, n2, lo, hi) in [
            (56, 70, 48, 80, 0.0524, 0.3339),
            (9, 10, 3, 10, 0.1705, 0.8090),
        ] {
            let c = proportions(x1, n1, x2, n2, 0.95);
            assert!(
                close(c.ci_low, lo, 5e-5) && close(c.ci_high, hi, 5e-5),
                "{x1}/{n1} − {x2}/{n2}: {c:?}"
            );
        }
    }

    /// R: `t.test(extra ~ group, data = sleep)` prints t = -1.8608,
    /// df = 17.776, p-value = 0.07939, 95 % CI -3.3654832 0.2054832.
    #[test]
    fn welch_matches_r_on_the_sleep_data() {
        let g1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
        let g2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
        let (c, df) = welch(Moments::of(&g1), Moments::of(&g2), 0.95);
        assert!(close(df, 17.776, 5e-4), "df {df}");
        assert!(close(c.p_value, 0.07939, 5e-6), "p {}", c.p_value);
        assert!(close(c.ci_low, -3.3654832, 5e-7), "low {}", c.ci_low);
        assert!(close(c.ci_high, 0.2054832, 5e-7), "high {}", c.ci_high);
        assert!(close(c.diff, 0.75 - 2.33, 1e-12));
    }

    /// The pooled z-test is the 2×2 chi-square test without continuity
    /// correction: z² against chi-square with 1 degree of freedom gives
    /// the same p-value by a different distribution.
    #[test]
    fn pooled_z_equals_the_two_by_two_chi_square() {
        let (x1, n1, x2, n2) = (56u64, 70u64, 48u64, 80u64);
        let cells = [[x1 as f64, (n1 - x1) as f64], [x2 as f64, (n2 - x2) as f64]];
        let total = (n1 + n2) as f64;
        let cols = [cells[0][0] + cells[1][0], cells[0][1] + cells[1][1]];
        let rows = [n1 as f64, n2 as f64];
        let mut chi2 = 0.0;
        for r in 0..2 {
            for c in 0..2 {
                let e = rows[r] * cols[c] / total;
                chi2 += (cells[r][c] - e).powi(2) / e;
            }
        }
        let p_chi = ChiSquared::new(1.0).unwrap().sf(chi2);
        assert!(close(pooled_z_test(x1, n1, x2, n2), p_chi, 1e-12));
        assert!(close(pooled_z_test(10, 20, 10, 20), 1.0, 1e-12));
    }

    /// The 5 % critical values of a chi-square table: 3.841 (1 df) and
    /// 5.991 (2 df). A 50/50 split whose chi-square is exactly 3.841459
    /// has p = 0.05.
    #[test]
    fn sample_ratio_mismatch_meets_the_table() {
        // 2 groups, equal weights: chi2 = 2 (d²/e) with e = total/2.
        // Choose counts with chi2 = 3.84: total 10 000, d = 98 → 3.8416.
        let p = sample_ratio_mismatch(&[5_098, 4_902], &[1.0, 1.0]);
        assert!(close(p, 0.05, 1e-3), "p {p}");
        assert!(close(
            ChiSquared::new(2.0).unwrap().sf(5.991465),
            0.05,
            1e-6
        ));
        assert!(close(
            sample_ratio_mismatch(&[500, 500], &[1.0, 1.0]),
            1.0,
            1e-12
        ));
        // an intended 90/10 split observed as 90/10 is fine; as 50/50 not
        assert!(sample_ratio_mismatch(&[9_000, 1_000], &[9.0, 1.0]) > 0.99);
        assert!(sample_ratio_mismatch(&[5_000, 5_000], &[9.0, 1.0]) < 1e-12);
    }

    #[test]
    fn wilson_stays_inside_zero_and_one() {
        let z = z_critical(0.95);
        assert!(close(z, 1.959964, 1e-6));
        assert_eq!(wilson(0, 10, z).0, 0.0);
        assert_eq!(wilson(10, 10, z).1, 1.0);
        let (lo, hi) = wilson(0, 0, z);
        assert_eq!((lo, hi), (0.0, 1.0));
    }
}
