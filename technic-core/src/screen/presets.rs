//! Named screens: the setups traders ask scanners for, each with the reference it follows.

use super::{Screen, ScreenError};

/// A named screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Its name (`--preset NAME`).
    pub name: &'static str,
    /// What it finds.
    pub description: &'static str,
    /// The expression.
    pub expression: &'static str,
    /// Where the rule comes from.
    pub reference: &'static str,
}

impl Preset {
    /// The compiled expression (every preset compiles: a test checks it).
    pub fn screen(&self) -> Result<Screen, ScreenError> {
        Screen::compile(self.expression)
    }
}

/// Every preset, in the order `technic presets` lists them.
pub const PRESETS: [Preset; 17] = [
    Preset {
        name: "oversold_bounce",
        description: "RSI under 30 while price holds above its 200-day average: a dip in a long-term uptrend",
        expression: "rsi_14 < 30 and close > sma_200",
        reference: "Wilder (1978) RSI oversold level; Finviz 'RSI (14): Oversold (30)' + 'Price above SMA200'",
    },
    Preset {
        name: "overbought",
        description: "RSI above 70: stretched after a strong run",
        expression: "rsi_14 > 70",
        reference: "Wilder (1978) RSI overbought level; Finviz 'RSI (14): Overbought (70)'",
    },
    Preset {
        name: "golden_cross",
        description: "50-day average crossed above the 200-day on the last session",
        expression: "crosses_above(sma_50, sma_200)",
        reference: "Finviz 'SMA50 crossed SMA200 above'",
    },
    Preset {
        name: "death_cross",
        description: "50-day average crossed below the 200-day on the last session",
        expression: "crosses_below(sma_50, sma_200)",
        reference: "Finviz 'SMA50 crossed SMA200 below'",
    },
    Preset {
        name: "new_52w_high",
        description: "The last session's high is the highest of 252 sessions",
        expression: "high >= high_252",
        reference: "Finviz '52-Week High/Low: New High'",
    },
    Preset {
        name: "near_52w_low",
        description: "Close within 5 % of the 52-week low",
        expression: "low_252_dist <= 0.05",
        reference: "Finviz '52-Week High/Low: 0-5% above Low'",
    },
    Preset {
        name: "unusual_volume",
        description: "Volume at least twice its 20-session average",
        expression: "volume_ratio_20 >= 2",
        reference: "Finviz 'Relative Volume: Over 2'",
    },
    Preset {
        name: "macd_bullish_cross",
        description: "MACD line crossed above its signal line on the last session",
        expression: "crosses_above(macd, macd_signal)",
        reference: "Appel's MACD signal-line crossover; TradingView 'MACD Level crosses above Signal'",
    },
    Preset {
        name: "macd_bearish_cross",
        description: "MACD line crossed below its signal line on the last session",
        expression: "crosses_below(macd, macd_signal)",
        reference: "Appel's MACD signal-line crossover; TradingView 'MACD Level crosses below Signal'",
    },
    Preset {
        name: "bollinger_squeeze",
        description: "Bollinger Bands inside the 1.5-ATR Keltner channel: volatility compressed, a move may follow",
        expression: "bb_upper < bb_middle + 1.5 * atr_14 and bb_lower > bb_middle - 1.5 * atr_14",
        reference: "John Carter's TTM Squeeze (Mastering the Trade, ch. 11)",
    },
    Preset {
        name: "bollinger_breakout",
        description: "Close crossed above the upper Bollinger Band on the last session",
        expression: "crosses_above(close, bb_upper)",
        reference: "Bollinger on Bollinger Bands (2001): a close outside the band on expanding volatility",
    },
    Preset {
        name: "strong_trend",
        description: "ADX of 25 or more with price above a rising 50-day over the 200-day: a strong uptrend",
        expression: "adx_14 >= 25 and close > sma_50 and sma_50 > sma_200",
        reference: "Wilder (1978) ADX above 25 marks a trending market",
    },
    Preset {
        name: "pullback_uptrend",
        description: "Uptrend (50-day over 200-day, price over the 200-day) pulled back under the 20-day with RSI 30–45",
        expression: "sma_50 > sma_200 and close > sma_200 and close < sma_20 and rsi_14 between 30 and 45",
        reference: "Buy-the-dip in an uptrend, as in PKScreener's pullback scan and Connors & Alvarez (2009)",
    },
    Preset {
        name: "momentum_leaders",
        description: "Top decile of the universe by 63-session (3-month) return",
        expression: "rank_pct(return_63) >= 90",
        reference: "Jegadeesh & Titman (1993) cross-sectional momentum",
    },
    Preset {
        name: "rs_leaders",
        description: "Beating the benchmark over 63 sessions, in the top decile of the universe by that margin",
        expression: "rs_63 > 0 and rank_pct(rs_63) >= 90",
        reference: "IBD Relative Strength rating (top decile versus the market)",
    },
    Preset {
        name: "gap_up",
        description: "Opened at least 2 % above the previous close",
        expression: "gap_pct >= 2",
        reference: "Finviz 'Gap: Up 2%'",
    },
    Preset {
        name: "strong_long",
        description: "Composite rating of 70 or more (the Strong Long signal)",
        expression: "tech_rating >= 70",
        reference: "This scanner's tech_rating (see the explanation of any result)",
    },
];

/// The preset called `name` (case-insensitive), or an error listing close names.
pub fn find(name: &str) -> Result<&'static Preset, String> {
    let lower = name.trim().to_ascii_lowercase().replace('-', "_");
    PRESETS.iter().find(|p| p.name == lower).ok_or_else(|| {
        let near = super::close_names(&lower, PRESETS.iter().map(|p| p.name));
        let hint = if near.is_empty() {
            "run `technic presets` for the list".to_owned()
        } else {
            format!("did you mean {}?", near.join(", "))
        };
        format!("unknown preset \"{name}\": {hint}")
    })
}

#[cfg(test)]
mod tests;
