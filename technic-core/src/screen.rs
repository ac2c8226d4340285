//! Screens: filter expressions over a scan's fields, sorting, presets, trade plans, the market regime.
//!
//! An expression (`rsi_14 < 30 and close > sma_200`) is parsed once ([`parse()`]), type-checked and compiled
//! ([`Screen::compile`]) into a tree that evaluates per symbol without allocating. Fields are the numbers
//! and texts of [`fields`]; `x[k]` reads a numeric field `k ≤ 5` sessions back; functions are `abs`, `min`,
//! `max`, `crosses_above(a, b)` (`a[1] <= b[1] and a > b`), `crosses_below`, `rank_pct(x)` and
//! `sector_rank_pct(x)` (0–100 within the scanned universe, or its sector). A comparison with a missing
//! value (short history) is false, so `not (a)` holds exactly where `a` does not.

pub mod fields;
pub mod parse;
pub mod plan;
pub mod presets;
pub mod regime;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use fields::{Features, MAX_BACK, NUMERIC_FIELDS, Needs, TEXT_FIELDS};
pub use parse::{Expr, Span, parse};
pub use plan::{PlanSettings, TradePlan};
pub use presets::{PRESETS, Preset};
pub use regime::Regime;

use parse::{Arith, Cmp};

/// A screen expression that could not be parsed or checked: the message, where, and what to try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenError {
    /// What is wrong.
    pub message: String,
    /// The expression.
    pub source: String,
    /// Byte offset of the problem in `source` (0-based).
    pub position: usize,
    /// Bytes the problem covers (at least 1 for the caret).
    pub length: usize,
    /// Names close to an unknown one.
    pub suggestions: Vec<String>,
}

impl ScreenError {
    pub(crate) fn at(src: &str, span: Span, message: String) -> Self {
        Self {
            message,
            source: src.to_owned(),
            position: span.start.min(src.len()),
            length: span.end.saturating_sub(span.start).max(1),
            suggestions: Vec::new(),
        }
    }

    fn suggest(mut self, names: Vec<String>) -> Self {
        if !names.is_empty() {
            self.message
                .push_str(&format!("; did you mean {}?", names.join(", ")));
        }
        self.suggestions = names;
        self
    }

    /// The source line and a caret line under the problem.
    pub fn caret(&self) -> String {
        let before = self.source.get(..self.position).unwrap_or("");
        let pad = before.chars().count();
        let len = self
            .source
            .get(self.position..(self.position + self.length).min(self.source.len()))
            .map_or(1, |s| s.chars().count().max(1));
        format!("  {}\n  {}{}", self.source, " ".repeat(pad), "^".repeat(len))
    }
}

impl fmt::Display for ScreenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid screen expression at position {}: {}\n{}",
            self.position + 1,
            self.message,
            self.caret()
        )
    }
}

impl std::error::Error for ScreenError {}

/// Names within a small edit distance of `name` (or containing it), closest first, at most three.
pub fn close_names<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|c| {
            let d = edit_distance(name, c);
            let near = d <= (name.len() / 3).max(2) || (name.len() >= 3 && c.contains(name));
            near.then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, c)| c.to_owned()).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The functions, with their arity (minimum, maximum) and a description.
pub const FUNCTIONS: [(&str, usize, usize, &str); 7] = [
    ("abs", 1, 1, "absolute value"),
    ("min", 2, 8, "smallest of its arguments"),
    ("max", 2, 8, "largest of its arguments"),
    (
        "crosses_above",
        2,
        2,
        "a crossed above b on the last session: a[1] <= b[1] and a > b",
    ),
    (
        "crosses_below",
        2,
        2,
        "a crossed below b on the last session: a[1] >= b[1] and a < b",
    ),
    (
        "rank_pct",
        1,
        1,
        "percentile of x within the scanned universe, 0–100 (100: highest)",
    ),
    (
        "sector_rank_pct",
        1,
        1,
        "percentile of x within the symbol's sector, 0–100",
    ),
];

/// A compiled numeric expression.
#[derive(Debug, Clone)]
enum Num {
    Const(f64),
    Field {
        idx: usize,
        back: usize,
    },
    Neg(Box<Num>),
    Arith(Arith, Box<Num>, Box<Num>),
    Abs(Box<Num>),
    Min(Box<[Num]>),
    Max(Box<[Num]>),
    /// The `i`-th rank computed before evaluation.
    Rank(usize),
}

/// A compiled text expression.
#[derive(Debug, Clone)]
enum Text {
    Const(String),
    Field(usize),
}

/// A compiled condition.
#[derive(Debug, Clone)]
enum Cond {
    Cmp(Cmp, Num, Num),
    TextEq(Text, Text, bool),
    Between(Num, Num, Num),
    InNum(Num, Box<[f64]>, bool),
    InText(Text, Box<[String]>, bool),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Cross { a: Num, b: Num, above: bool },
}

/// What a compiled expression yields.
#[derive(Debug, Clone)]
enum Typed {
    Num(Num),
    Text(Text),
    Cond(Cond),
}

impl Typed {
    fn kind(&self) -> &'static str {
        match self {
            Self::Num(_) => "a number",
            Self::Text(_) => "text",
            Self::Cond(_) => "a condition",
        }
    }
}

/// A rank to compute over the universe before evaluating: `rank_pct(arg)` or `sector_rank_pct(arg)`.
#[derive(Debug, Clone)]
struct RankSpec {
    arg: Num,
    by_sector: bool,
}

/// One symbol's values, as a screen reads them.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// Numeric fields over the last sessions.
    pub features: &'a Features,
    /// Text fields in [`TEXT_FIELDS`] order.
    pub text: [&'a str; 5],
}

/// A checked, compiled screen expression.
#[derive(Debug, Clone)]
pub struct Screen {
    source: String,
    expr: Expr,
    root: Cond,
    ranks: Vec<RankSpec>,
    depth: usize,
    needs: Needs,
    /// Text fields read (bit `i`: [`TEXT_FIELDS`]`[i]`).
    text_fields: u8,
}

impl fmt::Display for Screen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Screen {
    /// Parses and checks `src`: names must exist, types must fit, `x[k]` needs `k ≤ 5`, functions their
    /// arity; the whole must be a condition.
    pub fn compile(src: &str) -> Result<Self, ScreenError> {
        let expr = parse(src)?;
        let mut c = Compiler {
            src,
            ranks: Vec::new(),
            depth: 1,
            shift: 0,
            needs: Needs::none(),
            text_fields: 0,
        };
        let root = match c.compile(&expr)? {
            Typed::Cond(cond) => cond,
            other => {
                return Err(ScreenError::at(
                    src,
                    expr.span(),
                    format!(
                        "the expression is {}, not a condition: compare it, e.g. {} > 0",
                        other.kind(),
                        src.trim()
                    ),
                ));
            }
        };
        Ok(Self {
            source: src.to_owned(),
            expr,
            root,
            ranks: c.ranks,
            depth: c.depth,
            needs: c.needs,
            text_fields: c.text_fields,
        })
    }

    /// The fields it reads, per session back.
    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The parsed expression.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Sessions of values the screen reads (1 + its deepest look back).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Whether the screen needs ranks over the universe (`rank_pct`, `sector_rank_pct`).
    pub fn uses_ranks(&self) -> bool {
        !self.ranks.is_empty()
    }

    /// Which rows pass: the ranks are computed over all of `rows` first, then each row is evaluated.
    pub fn select(&self, rows: &[Row<'_>]) -> Vec<bool> {
        self.select_at(rows, |_| 0)
    }

    /// [`Screen::select`] with row `i` read `shift(i)` sessions before its last (a backtest's day): the
    /// ranks compare every row at its own shift.
    pub fn select_at(&self, rows: &[Row<'_>], shift: impl Fn(usize) -> usize) -> Vec<bool> {
        let ranks = self.ranks_at(rows, &shift);
        let width = self.ranks.len();
        rows.iter()
            .enumerate()
            .map(|(i, row)| {
                let r = Ctx {
                    row,
                    ranks: &ranks[i * width..(i + 1) * width],
                };
                r.cond(&self.root, shift(i))
            })
            .collect()
    }

    /// Whether the expression reads the text field `field` (`signal`, `sector`, …).
    pub fn uses_text(&self, field: &str) -> bool {
        fields::text(field).is_some_and(|i| self.text_fields & (1 << i) != 0)
    }

    /// Evaluates one row alone (ranks, if any, are over that row only: 100 when defined).
    pub fn matches(&self, row: &Row<'_>) -> bool {
        self.select(std::slice::from_ref(row))[0]
    }

    fn ranks_at(&self, rows: &[Row<'_>], shift: &impl Fn(usize) -> usize) -> Vec<f64> {
        let width = self.ranks.len();
        let mut out = vec![f64::NAN; rows.len() * width];
        for (j, spec) in self.ranks.iter().enumerate() {
            let values: Vec<f64> = rows
                .iter()
                .enumerate()
                .map(|(i, row)| Ctx { row, ranks: &[] }.num(&spec.arg, shift(i)))
                .collect();
            if spec.by_sector {
                let mut sectors: Vec<&str> = rows.iter().map(|r| r.text[2]).collect();
                sectors.sort_unstable();
                sectors.dedup();
                for sector in sectors {
                    let members: Vec<usize> =
                        (0..rows.len()).filter(|&i| rows[i].text[2] == sector).collect();
                    percentiles(&members, &values, |i, p| out[i * width + j] = p);
                }
            } else {
                let all: Vec<usize> = (0..rows.len()).collect();
                percentiles(&all, &values, |i, p| out[i * width + j] = p);
            }
        }
        out
    }
}

/// Percentile of each member's value among the members with a value: 100 × (members with a lower value)
/// ÷ (members with a value − 1); ties share the lower rank; a lone value is 100; missing stays NaN.
fn percentiles(members: &[usize], values: &[f64], mut put: impl FnMut(usize, f64)) {
    let mut defined: Vec<(f64, usize)> = members
        .iter()
        .filter(|&&i| !values[i].is_nan())
        .map(|&i| (values[i], i))
        .collect();
    defined.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = defined.len();
    let mut lower = 0;
    for (pos, &(v, i)) in defined.iter().enumerate() {
        if pos > 0 && defined[pos - 1].0 < v {
            lower = pos;
        }
        let p = if n <= 1 {
            100.0
        } else {
            100.0 * lower as f64 / (n - 1) as f64
        };
        put(i, p);
    }
}

struct Compiler<'a> {
    src: &'a str,
    ranks: Vec<RankSpec>,
    depth: usize,
    /// Sessions back the expression being compiled is evaluated at (inside `crosses_*`: 1 for `a[1]`).
    shift: usize,
    /// Fields read, per session back.
    needs: Needs,
    /// Text fields read.
    text_fields: u8,
}

impl Compiler<'_> {
    fn err(&self, span: Span, msg: String) -> ScreenError {
        ScreenError::at(self.src, span, msg)
    }

    fn num(&mut self, e: &Expr) -> Result<Num, ScreenError> {
        match self.compile(e)? {
            Typed::Num(n) => Ok(n),
            other => Err(self.err(
                e.span(),
                format!("expected a number here, found {}", other.kind()),
            )),
        }
    }

    fn cond(&mut self, e: &Expr) -> Result<Cond, ScreenError> {
        match self.compile(e)? {
            Typed::Cond(c) => Ok(c),
            other => Err(self.err(
                e.span(),
                format!(
                    "expected a condition here (such as rsi_14 < 30), found {}",
                    other.kind()
                ),
            )),
        }
    }

    fn compile(&mut self, e: &Expr) -> Result<Typed, ScreenError> {
        Ok(match e {
            Expr::Num(v, _) => Typed::Num(Num::Const(*v)),
            Expr::Str(s, _) => Typed::Text(Text::Const(s.clone())),
            Expr::Field { name, back, span } => {
                let back = *back as usize;
                if let Some(idx) = fields::numeric(name) {
                    if back > MAX_BACK {
                        return Err(self.err(
                            *span,
                            format!("{name}[{back}] looks back too far: at most {MAX_BACK} sessions"),
                        ));
                    }
                    self.depth = self.depth.max(back + self.shift + 1);
                    self.needs.add(idx, back);
                    if self.shift > 0 {
                        self.needs.add(idx, back + self.shift);
                    }
                    Typed::Num(Num::Field { idx, back })
                } else if let Some(idx) = fields::text(name) {
                    if back > 0 {
                        return Err(self.err(*span, format!("{name} is text and has no earlier values")));
                    }
                    self.text_fields |= 1 << idx;
                    Typed::Text(Text::Field(idx))
                } else if name == "true" || name == "false" {
                    // `not true` style constants are not part of the language; say so clearly.
                    return Err(self.err(
                        *span,
                        "true and false are not values here: write a comparison".to_owned(),
                    ));
                } else {
                    let names = NUMERIC_FIELDS.iter().chain(TEXT_FIELDS.iter()).map(|(n, _)| *n);
                    let msg = if FUNCTIONS.iter().any(|f| f.0 == name) {
                        format!("{name} is a function: call it as {name}(…)")
                    } else if let Some(p) = PRESETS.iter().find(|p| p.name == name) {
                        format!(
                            "{name} is a preset, not a field: use --preset {name} (it means {})",
                            p.expression
                        )
                    } else {
                        format!("unknown field \"{name}\"")
                    };
                    return Err(self.err(*span, msg).suggest(close_names(name, names)));
                }
            }
            Expr::Neg(x, _) => Typed::Num(Num::Neg(Box::new(self.num(x)?))),
            Expr::Arith(op, a, b, _) => {
                Typed::Num(Num::Arith(*op, Box::new(self.num(a)?), Box::new(self.num(b)?)))
            }
            Expr::Cmp(op, a, b, span) => {
                let (l, r) = (self.compile(a)?, self.compile(b)?);
                match (l, r) {
                    (Typed::Num(l), Typed::Num(r)) => Typed::Cond(Cond::Cmp(*op, l, r)),
                    (Typed::Text(l), Typed::Text(r)) if matches!(op, Cmp::Eq | Cmp::Ne) => {
                        Typed::Cond(Cond::TextEq(l, r, *op == Cmp::Ne))
                    }
                    (Typed::Text(_), Typed::Text(_)) => {
                        return Err(self.err(
                            *span,
                            "text can only be compared with == or != (or in (…))".to_owned(),
                        ));
                    }
                    (l, r) => {
                        return Err(self.err(*span, format!("cannot compare {} with {}", l.kind(), r.kind())));
                    }
                }
            }
            Expr::Between(x, lo, hi, _) => {
                Typed::Cond(Cond::Between(self.num(x)?, self.num(lo)?, self.num(hi)?))
            }
            Expr::In {
                x,
                list,
                negated,
                span,
            } => match self.compile(x)? {
                Typed::Num(n) => {
                    let mut vals = Vec::with_capacity(list.len());
                    for item in list {
                        match item {
                            Expr::Num(v, _) => vals.push(*v),
                            Expr::Neg(inner, _) if matches!(**inner, Expr::Num(..)) => {
                                if let Expr::Num(v, _) = **inner {
                                    vals.push(-v);
                                }
                            }
                            other => {
                                return Err(self.err(
                                    other.span(),
                                    "this list is for a number: every item must be a number".to_owned(),
                                ));
                            }
                        }
                    }
                    Typed::Cond(Cond::InNum(n, vals.into(), *negated))
                }
                Typed::Text(t) => {
                    let mut vals = Vec::with_capacity(list.len());
                    for item in list {
                        match item {
                            Expr::Str(s, _) => vals.push(s.to_lowercase()),
                            other => {
                                return Err(self.err(
                                    other.span(),
                                    "this list is for text: every item must be quoted, e.g. \"Energy\""
                                        .to_owned(),
                                ));
                            }
                        }
                    }
                    Typed::Cond(Cond::InText(t, vals.into(), *negated))
                }
                Typed::Cond(_) => {
                    return Err(self.err(*span, "a condition cannot be looked up in a list".to_owned()));
                }
            },
            Expr::And(a, b, _) => Typed::Cond(Cond::And(Box::new(self.cond(a)?), Box::new(self.cond(b)?))),
            Expr::Or(a, b, _) => Typed::Cond(Cond::Or(Box::new(self.cond(a)?), Box::new(self.cond(b)?))),
            Expr::Not(x, _) => Typed::Cond(Cond::Not(Box::new(self.cond(x)?))),
            Expr::Call { name, args, span } => self.call(name, args, *span)?,
        })
    }

    fn call(&mut self, name: &str, args: &[Expr], span: Span) -> Result<Typed, ScreenError> {
        let Some(&(_, lo, hi, _)) = FUNCTIONS.iter().find(|f| f.0 == name) else {
            let msg = if fields::numeric(name).is_some() || fields::text(name).is_some() {
                format!("{name} is a field, not a function")
            } else {
                format!("unknown function \"{name}\"")
            };
            return Err(self
                .err(span, msg)
                .suggest(close_names(name, FUNCTIONS.iter().map(|f| f.0))));
        };
        if args.len() < lo || args.len() > hi {
            let want = if lo == hi {
                format!("{lo}")
            } else {
                format!("{lo} to {hi}")
            };
            return Err(self.err(span, format!("{name} takes {want} arguments, not {}", args.len())));
        }
        Ok(match name {
            "abs" => Typed::Num(Num::Abs(Box::new(self.num(&args[0])?))),
            "min" | "max" => {
                let xs = args.iter().map(|a| self.num(a)).collect::<Result<Vec<_>, _>>()?;
                Typed::Num(if name == "min" {
                    Num::Min(xs.into())
                } else {
                    Num::Max(xs.into())
                })
            }
            "crosses_above" | "crosses_below" => {
                if self.shift > 0 {
                    return Err(self.err(span, format!("{name} cannot be nested inside another crossing")));
                }
                // Both sides are read now and one session earlier.
                self.shift = 1;
                let a = self.num(&args[0]);
                let b = a.and_then(|a| self.num(&args[1]).map(|b| (a, b)));
                self.shift = 0;
                let (a, b) = b?;
                Typed::Cond(Cond::Cross {
                    a,
                    b,
                    above: name == "crosses_above",
                })
            }
            _ => {
                if self.shift > 0 {
                    return Err(self.err(span, format!("{name} is computed for the last session only: it cannot be used inside a crossing")));
                }
                let before = self.ranks.len();
                let arg = self.num(&args[0])?;
                if self.ranks.len() > before {
                    return Err(self.err(span, format!("{name} cannot rank another rank")));
                }
                self.ranks.push(RankSpec {
                    arg,
                    by_sector: name == "sector_rank_pct",
                });
                Typed::Num(Num::Rank(self.ranks.len() - 1))
            }
        })
    }
}

struct Ctx<'a, 'r> {
    row: &'a Row<'r>,
    ranks: &'a [f64],
}

impl Ctx<'_, '_> {
    fn num(&self, n: &Num, shift: usize) -> f64 {
        match n {
            Num::Const(v) => *v,
            Num::Field { idx, back } => self.row.features.get(*idx, back + shift),
            Num::Neg(x) => -self.num(x, shift),
            Num::Arith(op, a, b) => {
                let (a, b) = (self.num(a, shift), self.num(b, shift));
                match op {
                    Arith::Add => a + b,
                    Arith::Sub => a - b,
                    Arith::Mul => a * b,
                    // Division by zero is missing, not infinite.
                    Arith::Div => {
                        if b == 0.0 {
                            f64::NAN
                        } else {
                            a / b
                        }
                    }
                }
            }
            Num::Abs(x) => self.num(x, shift).abs(),
            // Missing when any argument is missing (f64::min would skip a NaN).
            Num::Min(xs) => xs.iter().fold(f64::INFINITY, |m, x| {
                let v = self.num(x, shift);
                if v.is_nan() || m.is_nan() {
                    f64::NAN
                } else {
                    m.min(v)
                }
            }),
            Num::Max(xs) => xs.iter().fold(f64::NEG_INFINITY, |m, x| {
                let v = self.num(x, shift);
                if v.is_nan() || m.is_nan() {
                    f64::NAN
                } else {
                    m.max(v)
                }
            }),
            Num::Rank(i) => self.ranks.get(*i).copied().unwrap_or(f64::NAN),
        }
    }

    fn text(&self, t: &Text) -> String {
        match t {
            Text::Const(s) => s.to_lowercase(),
            Text::Field(i) => self.row.text[*i].to_lowercase(),
        }
    }

    fn text_eq(&self, a: &Text, b: &Text) -> bool {
        match (a, b) {
            (Text::Field(i), Text::Const(s)) | (Text::Const(s), Text::Field(i)) => {
                self.row.text[*i].eq_ignore_ascii_case(s)
            }
            (Text::Field(i), Text::Field(j)) => self.row.text[*i].eq_ignore_ascii_case(self.row.text[*j]),
            (a, b) => self.text(a) == self.text(b),
        }
    }

    fn cond(&self, c: &Cond, shift: usize) -> bool {
        match c {
            Cond::Cmp(op, a, b) => compare(*op, self.num(a, shift), self.num(b, shift)),
            Cond::TextEq(a, b, negated) => self.text_eq(a, b) != *negated,
            Cond::Between(x, lo, hi) => {
                let (x, lo, hi) = (self.num(x, shift), self.num(lo, shift), self.num(hi, shift));
                lo <= x && x <= hi
            }
            Cond::InNum(x, vals, negated) => {
                let x = self.num(x, shift);
                !x.is_nan() && (vals.contains(&x) != *negated)
            }
            Cond::InText(t, vals, negated) => {
                let found = match t {
                    Text::Field(i) => vals.iter().any(|v| self.row.text[*i].eq_ignore_ascii_case(v)),
                    Text::Const(s) => vals.iter().any(|v| v.eq_ignore_ascii_case(s)),
                };
                found != *negated
            }
            Cond::And(a, b) => self.cond(a, shift) && self.cond(b, shift),
            Cond::Or(a, b) => self.cond(a, shift) || self.cond(b, shift),
            Cond::Not(a) => !self.cond(a, shift),
            Cond::Cross { a, b, above } => {
                let (a0, b0) = (self.num(a, shift), self.num(b, shift));
                let (a1, b1) = (self.num(a, shift + 1), self.num(b, shift + 1));
                if *above {
                    compare(Cmp::Le, a1, b1) && compare(Cmp::Gt, a0, b0)
                } else {
                    compare(Cmp::Ge, a1, b1) && compare(Cmp::Lt, a0, b0)
                }
            }
        }
    }
}

/// A comparison; false whenever a side is missing (NaN), `!=` included.
#[inline]
fn compare(op: Cmp, a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return false;
    }
    match op {
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
        Cmp::Eq => a == b,
        Cmp::Ne => a != b,
    }
}

/// How results are ordered: by a numeric field, descending unless `:asc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// Index of the field in [`NUMERIC_FIELDS`].
    pub field: usize,
    /// Largest first.
    pub descending: bool,
}

impl SortKey {
    /// Parses `FIELD[:asc|desc]`; an unknown field names close ones.
    pub fn parse(spec: &str) -> Result<Self, ScreenError> {
        let spec = spec.trim();
        let (name, dir) = match spec.split_once(':') {
            Some((n, d)) => (n.trim(), Some(d.trim())),
            None => (spec, None),
        };
        let lower = name.to_ascii_lowercase();
        let descending = match dir.map(str::to_ascii_lowercase).as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(other) => {
                let at = spec.len() - other.len();
                return Err(ScreenError::at(
                    spec,
                    Span {
                        start: at,
                        end: spec.len(),
                    },
                    format!("sort direction \"{other}\" is neither asc nor desc"),
                ));
            }
        };
        let Some(field) = fields::numeric(&lower) else {
            let err = ScreenError::at(
                spec,
                Span {
                    start: 0,
                    end: name.len(),
                },
                if fields::text(&lower).is_some() {
                    format!("{name} is text: sort by a numeric field")
                } else {
                    format!("unknown sort field \"{name}\"")
                },
            );
            return Err(err.suggest(close_names(&lower, NUMERIC_FIELDS.iter().map(|(n, _)| *n))));
        };
        Ok(Self { field, descending })
    }

    /// The field's name.
    pub fn name(&self) -> &'static str {
        NUMERIC_FIELDS[self.field].0
    }
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.name(),
            if self.descending { "desc" } else { "asc" }
        )
    }
}

/// What a scan screens for: an expression and an order, as a user or a saved screen gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenSpec {
    /// The filter expression (`None`: every symbol).
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
    /// `FIELD[:asc|desc]` (`None`: by rating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
}

impl ScreenSpec {
    /// A screen that keeps the symbols `expression` selects (`rsi_14 < 30 and close > sma_200`).
    pub fn filter(expression: impl Into<String>) -> Self {
        Self {
            where_: Some(expression.into()),
            sort: None,
        }
    }

    /// The same screen ordered by `key` (`FIELD[:asc|desc]`, e.g. `rsi_14:asc`).
    pub fn sorted_by(mut self, key: impl Into<String>) -> Self {
        self.sort = Some(key.into());
        self
    }

    /// True when it neither filters nor sorts.
    pub fn is_empty(&self) -> bool {
        self.where_.is_none() && self.sort.is_none()
    }

    /// The compiled expression and sort key.
    pub fn compile(&self) -> Result<(Option<Screen>, Option<SortKey>), ScreenError> {
        let screen = self.where_.as_deref().map(Screen::compile).transpose()?;
        let sort = self.sort.as_deref().map(SortKey::parse).transpose()?;
        Ok((screen, sort))
    }
}

/// A saved screen: a name for an expression and an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedScreen {
    /// Its name (letters, digits, `-`, `_`; at most 64).
    pub name: String,
    /// What it screens for.
    #[serde(flatten)]
    pub spec: ScreenSpec,
    /// When it was saved.
    pub saved_at: chrono::DateTime<chrono::Utc>,
}

/// What a user asked a scan to screen for, combined: a saved screen's expression, a preset's and their own
/// `where`, each checked on its own (an error points into the text they wrote) and joined with `and`. The
/// sort is theirs, else the saved screen's. Unknown presets name close ones.
pub fn resolve(
    where_: Option<&str>,
    preset: Option<&str>,
    saved: Option<&SavedScreen>,
    sort: Option<&str>,
) -> Result<ScreenSpec, ScreenError> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(s) = saved.and_then(|s| s.spec.where_.as_deref()) {
        Screen::compile(s)?;
        parts.push(s.to_owned());
    }
    if let Some(name) = preset {
        let p = presets::find(name).map_err(|msg| {
            let near = close_names(&name.to_ascii_lowercase(), PRESETS.iter().map(|p| p.name));
            ScreenError {
                message: msg,
                source: name.to_owned(),
                position: 0,
                length: name.len().max(1),
                suggestions: near,
            }
        })?;
        parts.push(p.expression.to_owned());
    }
    if let Some(w) = where_ {
        Screen::compile(w)?;
        parts.push(w.to_owned());
    }
    let sort = match sort {
        Some(s) => Some(s.to_owned()),
        None => saved.and_then(|s| s.spec.sort.clone()),
    };
    if let Some(s) = &sort {
        SortKey::parse(s)?;
    }
    let where_ = match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(
            parts
                .iter()
                .map(|p| format!("({p})"))
                .collect::<Vec<_>>()
                .join(" and "),
        ),
    };
    Ok(ScreenSpec { where_, sort })
}

/// Checks a screen or preset name: 1–64 letters, digits, `-` or `_`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "screen name \"{name}\" must be 1–64 letters, digits, '-' or '_'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
