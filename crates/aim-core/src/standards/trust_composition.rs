//! AIP §6.1 trust-score composition: how per-factor scores become one published score.
//!
//! Given factors `{weight, score (0..1) or none, confidence (0..1)}`:
//! 1. **Exclusion**: a factor without data (no score, or confidence 0) is excluded; it neither
//!    contributes nor counts as a zero.
//! 2. **Included weight** `w_inc = Σ included weights / Σ all weights` (0..1).
//! 3. **Unscored state**: if `w_inc < 0.50` (strictly below; exactly 0.50 is measured) the
//!    result is `unscored` with reason `insufficient_data` and no score — a number built on less
//!    than half the evidence is withheld.
//! 4. **Proportional redistribution**: `renormalised = weighted_sum / w_inc`, where
//!    `weighted_sum = Σ (weight_i / Σ all weights) · score_i` over included factors.
//! 5. **Neutral-imputed ceiling** (anti-gaming): `ceiling = weighted_sum + (1 − w_inc) · 0.5`,
//!    i.e. the score the agent would get if every excluded factor were neutral (0.5).
//! 6. **Published score** `= min(renormalised, ceiling)`, so withholding data can never raise a
//!    score above what neutral data would give.
//!
//! Invariants: the published score lies in [0, 1] whenever inputs do; inputs outside their
//! ranges, non-finite numbers, negative weights or a zero total weight are errors, never NaN.
//! The confidence value gates inclusion only (zero vs non-zero); it does not scale the weight.

use serde::{Deserialize, Serialize};

/// The unscored threshold on included weight (strict: below it is unscored).
pub const MIN_INCLUDED_WEIGHT: f64 = 0.50;
/// The score imputed for excluded factors when computing the ceiling.
pub const NEUTRAL_SCORE: f64 = 0.5;
/// Tolerance for comparing the included weight with the threshold (sums of decimal weights).
const EPS: f64 = 1e-9;

/// One factor's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Factor {
    pub factor: String,
    /// Relative weight (points of 100 in §6.1; any non-negative scale works).
    pub weight: f64,
    /// Score in [0, 1], `None` when there is no data.
    pub score: Option<f64>,
    /// Data-availability confidence in [0, 1]; 0 means no data.
    pub confidence: f64,
}

/// Whether a score could be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreStatus {
    Measured,
    Unscored,
}

/// The result of [`compose`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Composition {
    pub score_status: ScoreStatus,
    /// The published score, `None` when unscored.
    pub score: Option<f64>,
    /// Fraction of total weight that carried data.
    pub included_weight: f64,
    /// `insufficient_data` when unscored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unscored_reason: Option<String>,
    /// Weighted sum over included factors (before redistribution).
    pub weighted_sum: f64,
    /// `weighted_sum / included_weight` (0 when nothing is included).
    pub renormalised: f64,
    /// `weighted_sum + (1 - included_weight) * 0.5`.
    pub ceiling: f64,
}

/// Composes factor scores under §6.1 (see the module docs).
pub fn compose(factors: &[Factor]) -> Result<Composition, String> {
    let mut total = 0.0;
    for f in factors {
        if !(f.weight.is_finite() && f.weight >= 0.0) {
            return Err(format!(
                "factor {:?} has an invalid weight {}",
                f.factor, f.weight
            ));
        }
        if !(f.confidence.is_finite() && (0.0..=1.0).contains(&f.confidence)) {
            return Err(format!(
                "factor {:?} has a confidence outside [0, 1]: {}",
                f.factor, f.confidence
            ));
        }
        if let Some(s) = f.score
            && !(s.is_finite() && (0.0..=1.0).contains(&s))
        {
            return Err(format!(
                "factor {:?} has a score outside [0, 1]: {s}",
                f.factor
            ));
        }
        total += f.weight;
    }
    if total <= 0.0 {
        return Err("the factors' total weight is zero".into());
    }
    let mut included = 0.0;
    let mut weighted_sum = 0.0;
    for f in factors {
        if let Some(s) = f.score
            && f.confidence > 0.0
        {
            included += f.weight / total;
            weighted_sum += f.weight / total * s;
        }
    }
    let renormalised = if included > 0.0 {
        weighted_sum / included
    } else {
        0.0
    };
    let ceiling = weighted_sum + (1.0 - included) * NEUTRAL_SCORE;
    if included < MIN_INCLUDED_WEIGHT - EPS {
        return Ok(Composition {
            score_status: ScoreStatus::Unscored,
            score: None,
            included_weight: included,
            unscored_reason: Some("insufficient_data".into()),
            weighted_sum,
            renormalised,
            ceiling,
        });
    }
    Ok(Composition {
        score_status: ScoreStatus::Measured,
        score: Some(renormalised.min(ceiling)),
        included_weight: included,
        unscored_reason: None,
        weighted_sum,
        renormalised,
        ceiling,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(weight: f64, score: Option<f64>) -> Factor {
        Factor {
            factor: "x".into(),
            weight,
            score,
            confidence: if score.is_some() { 1.0 } else { 0.0 },
        }
    }

    #[test]
    fn exact_threshold_is_measured_and_ceiling_binds() {
        let c = compose(&[
            f(25.0, Some(0.8)),
            f(15.0, Some(1.0)),
            f(10.0, Some(0.6)),
            f(50.0, None),
        ])
        .unwrap();
        assert_eq!(c.score_status, ScoreStatus::Measured);
        assert!((c.included_weight - 0.5).abs() < 1e-12);
        assert!((c.renormalised - 0.82).abs() < 1e-12);
        assert!((c.score.unwrap() - 0.66).abs() < 1e-12);
    }

    #[test]
    fn below_threshold_is_unscored() {
        let c = compose(&[f(30.0, Some(1.0)), f(70.0, None)]).unwrap();
        assert_eq!(c.score_status, ScoreStatus::Unscored);
        assert_eq!(c.score, None);
        assert_eq!(c.unscored_reason.as_deref(), Some("insufficient_data"));
    }

    #[test]
    fn full_data_is_the_plain_weighted_mean() {
        let c = compose(&[f(1.0, Some(0.2)), f(3.0, Some(1.0))]).unwrap();
        assert!((c.score.unwrap() - 0.8).abs() < 1e-12);
        assert!((c.ceiling - c.renormalised).abs() < 1e-12);
    }

    #[test]
    fn zero_confidence_excludes_even_with_a_score() {
        let mut g = f(50.0, Some(0.0));
        g.confidence = 0.0;
        let c = compose(&[f(50.0, Some(1.0)), g]).unwrap();
        assert!((c.included_weight - 0.5).abs() < 1e-12);
        assert!((c.score.unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(compose(&[]).is_err());
        assert!(compose(&[f(0.0, Some(1.0))]).is_err());
        assert!(compose(&[f(-1.0, Some(1.0))]).is_err());
        assert!(compose(&[f(1.0, Some(1.5))]).is_err());
        assert!(compose(&[f(f64::NAN, Some(0.5))]).is_err());
    }
}
