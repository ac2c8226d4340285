//! The trade plan of a result: entry, stop, target and position size from ATR and recent lows.
//!
//! Long (the default): ATR = `atr_14`; stop = min(lowest low of 10 sessions, close − 1.5·ATR), clamped to
//! [close − 3·ATR, close − 0.5·ATR]; entry = close + 0.1·ATR; target = entry + rr·(entry − stop);
//! shares = floor(account · risk% ÷ (entry − stop)), capped so shares · entry ≤ 5 % of the 20-session
//! average dollar volume (`liquidity_limited`). A short (only with `allow_shorts`, for results whose signal
//! is Avoid) mirrors it around the close with the highest high of 10 sessions.

use serde::{Deserialize, Serialize};

/// How plans are sized.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanSettings {
    /// Account value in currency units (default 100,000).
    pub account: f64,
    /// Risk per trade, percent of the account (default 1).
    pub risk_pct: f64,
    /// Target distance ÷ stop distance (default 2).
    pub reward_risk: f64,
    /// Plan shorts for Avoid results instead of nothing.
    pub allow_shorts: bool,
}

impl Default for PlanSettings {
    fn default() -> Self {
        Self {
            account: 100_000.0,
            risk_pct: 1.0,
            reward_risk: 2.0,
            allow_shorts: false,
        }
    }
}

/// Largest share of the 20-session average dollar volume a position may take.
pub const LIQUIDITY_CAP: f64 = 0.05;

impl PlanSettings {
    /// Checks the settings are usable; the message names the bad one and the valid range.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.account.is_finite() && self.account > 0.0 && self.account <= 1e12) {
            return Err(format!(
                "account {} must be a positive amount up to 1e12",
                self.account
            ));
        }
        if !(self.risk_pct.is_finite() && self.risk_pct > 0.0 && self.risk_pct <= 100.0) {
            return Err(format!(
                "risk_pct {} must be above 0 and at most 100 (percent of the account)",
                self.risk_pct
            ));
        }
        if !(self.reward_risk.is_finite() && self.reward_risk > 0.0 && self.reward_risk <= 100.0) {
            return Err(format!(
                "reward_risk {} must be above 0 and at most 100",
                self.reward_risk
            ));
        }
        Ok(())
    }
}

/// Long or short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Buy, stop below.
    Long,
    /// Sell short, stop above.
    Short,
}

/// Entry, stop, target and size for one result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TradePlan {
    /// Long or short.
    pub side: Side,
    /// Entry price: a stop order 0.1 ATR beyond the close.
    pub entry: f64,
    /// Protective stop.
    pub stop: f64,
    /// Profit target.
    pub target: f64,
    /// Target distance ÷ stop distance.
    pub reward_risk: f64,
    /// Shares to trade.
    pub shares: u64,
    /// shares × entry.
    pub position_value: f64,
    /// shares × |entry − stop|: what the stop loses.
    pub risk_amount: f64,
    /// True when the size was cut to 5 % of the 20-session average dollar volume.
    pub liquidity_limited: bool,
}

/// The inputs of a plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanInputs {
    /// Last close.
    pub close: f64,
    /// ATR(14).
    pub atr: f64,
    /// Lowest low of the last 10 sessions.
    pub low_10: f64,
    /// Highest high of the last 10 sessions.
    pub high_10: f64,
    /// Mean close × volume of 20 sessions (NaN when unknown: no liquidity cap).
    pub dollar_volume_20: f64,
}

impl TradePlan {
    /// The plan for `inputs` on `side`; `None` without a usable ATR or price.
    pub fn compute(side: Side, i: &PlanInputs, s: &PlanSettings) -> Option<Self> {
        let (close, atr) = (i.close, i.atr);
        if !(close.is_finite() && close > 0.0 && atr.is_finite() && atr > 0.0) {
            return None;
        }
        let (entry, stop) = match side {
            Side::Long => {
                let reference = if i.low_10.is_finite() {
                    i.low_10
                } else {
                    close - 1.5 * atr
                };
                let stop = reference
                    .min(close - 1.5 * atr)
                    .clamp(close - 3.0 * atr, close - 0.5 * atr);
                (close + 0.1 * atr, stop)
            }
            Side::Short => {
                let reference = if i.high_10.is_finite() {
                    i.high_10
                } else {
                    close + 1.5 * atr
                };
                let stop = reference
                    .max(close + 1.5 * atr)
                    .clamp(close + 0.5 * atr, close + 3.0 * atr);
                (close - 0.1 * atr, stop)
            }
        };
        let per_share = (entry - stop).abs();
        if per_share.is_nan() || per_share <= 0.0 || (side == Side::Long && stop <= 0.0) {
            return None;
        }
        let target = match side {
            Side::Long => entry + s.reward_risk * per_share,
            Side::Short => (entry - s.reward_risk * per_share).max(0.0),
        };
        let risk_budget = s.account * s.risk_pct / 100.0;
        let mut shares = (risk_budget / per_share).floor().max(0.0);
        let mut liquidity_limited = false;
        if i.dollar_volume_20.is_finite() && i.dollar_volume_20 >= 0.0 {
            let cap = (LIQUIDITY_CAP * i.dollar_volume_20 / entry).floor().max(0.0);
            if cap < shares {
                shares = cap;
                liquidity_limited = true;
            }
        }
        let shares = shares.min(u64::MAX as f64 / 2.0) as u64;
        Some(Self {
            side,
            entry,
            stop,
            target,
            reward_risk: s.reward_risk,
            shares,
            position_value: shares as f64 * entry,
            risk_amount: shares as f64 * per_share,
            liquidity_limited,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_design_formulas() {
        let i = PlanInputs {
            close: 100.0,
            atr: 2.0,
            low_10: 96.0,
            high_10: 104.0,
            dollar_volume_20: 1e9,
        };
        let p = TradePlan::compute(Side::Long, &i, &PlanSettings::default()).unwrap();
        // stop = min(96, 97) = 96, inside [94, 99]; entry 100.2; risk 4.2 a share; target 100.2 + 8.4.
        assert!((p.stop - 96.0).abs() < 1e-12);
        assert!((p.entry - 100.2).abs() < 1e-12);
        assert!((p.target - 108.6).abs() < 1e-9);
        assert_eq!(p.shares, (1000.0f64 / 4.2).floor() as u64);
        assert!(!p.liquidity_limited);
        // A low far below is clamped to 3 ATR.
        let deep = TradePlan::compute(
            Side::Long,
            &PlanInputs { low_10: 50.0, ..i },
            &PlanSettings::default(),
        )
        .unwrap();
        assert!((deep.stop - 94.0).abs() < 1e-12);
        // Thin trading caps the size.
        let thin = TradePlan::compute(
            Side::Long,
            &PlanInputs {
                dollar_volume_20: 100_000.0,
                ..i
            },
            &PlanSettings::default(),
        )
        .unwrap();
        assert!(thin.liquidity_limited);
        assert_eq!(thin.shares, (5_000.0f64 / 100.2).floor() as u64);
        let short = TradePlan::compute(Side::Short, &i, &PlanSettings::default()).unwrap();
        assert!(
            short.target < short.entry && short.entry < short.stop,
            "{short:?}"
        );
        assert!(
            TradePlan::compute(
                Side::Long,
                &PlanInputs { atr: f64::NAN, ..i },
                &PlanSettings::default()
            )
            .is_none()
        );
    }

    proptest! {
        #[test]
        fn plans_keep_their_invariants(
            close in 0.5f64..5000.0,
            atr_frac in 0.001f64..0.2,
            low_frac in 0.0f64..0.5,
            dv in prop_oneof![Just(f64::NAN), 0.0f64..1e10],
            account in 1_000.0f64..1e8,
            risk_pct in 0.01f64..10.0,
            rr in 0.5f64..5.0,
        ) {
            let atr = close * atr_frac;
            let i = PlanInputs { close, atr, low_10: close * (1.0 - low_frac), high_10: close * (1.0 + low_frac), dollar_volume_20: dv };
            let s = PlanSettings { account, risk_pct, reward_risk: rr, allow_shorts: true };
            if let Some(p) = TradePlan::compute(Side::Long, &i, &s) {
                prop_assert!(p.stop < p.entry && p.entry < p.target, "{:?}", p);
                prop_assert!(p.risk_amount <= account * risk_pct / 100.0 * (1.0 + 1e-12), "{:?}", p);
                if dv.is_finite() {
                    prop_assert!(p.position_value <= LIQUIDITY_CAP * dv * (1.0 + 1e-12) + 1e-9, "{:?}", p);
                }
                prop_assert!(p.stop >= close - 3.0 * atr - 1e-9 && p.stop <= close - 0.5 * atr + 1e-9);
            }
            if let Some(p) = TradePlan::compute(Side::Short, &i, &s) {
                prop_assert!(p.target <= p.entry && p.entry < p.stop, "{:?}", p);
                prop_assert!(p.risk_amount <= account * risk_pct / 100.0 * (1.0 + 1e-12));
            }
        }
    }
}
