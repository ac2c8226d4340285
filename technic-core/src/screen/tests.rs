//! The expression engine: parsing, checking, evaluation, and its properties.

use proptest::prelude::*;

use super::fields::numeric;
use super::parse::{MAX_DEPTH, MAX_TERMS};
use super::*;

/// Features with one session of the given values (others missing).
fn features(values: &[(&str, f64)]) -> Features {
    features_back(values, &[])
}

/// Features with the last session's and the previous session's values.
fn features_back(now: &[(&str, f64)], before: &[(&str, f64)]) -> Features {
    let mut f = Features::empty(2);
    for (k, vals) in [now, before].into_iter().enumerate() {
        for (name, v) in vals {
            f.set(numeric(name).unwrap(), k, *v);
        }
    }
    f
}

fn row<'a>(f: &'a Features, sector: &'a str) -> Row<'a> {
    Row {
        features: f,
        text: ["AAA", "Alpha Inc", sector, "Software", "Long"],
    }
}

fn eval(src: &str, f: &Features) -> bool {
    Screen::compile(src).unwrap().matches(&row(f, "Energy"))
}

#[test]
fn operators_and_precedence() {
    let f = features(&[
        ("rsi_14", 25.0),
        ("close", 110.0),
        ("sma_200", 100.0),
        ("volume", 2e6),
    ]);
    assert!(eval("rsi_14 < 30 and close > sma_200", &f));
    assert!(!eval("rsi_14 > 30 and close > sma_200", &f));
    assert!(eval("rsi_14 > 30 or close > sma_200", &f));
    assert!(eval("not rsi_14 > 30", &f));
    assert!(
        eval("rsi_14 < 30 or rsi_14 > 90 and close < 0", &f),
        "and binds tighter than or"
    );
    assert!(!eval("(rsi_14 < 30 or rsi_14 > 90) and close < 0", &f));
    assert!(eval("close - sma_200 * 2 < -80", &f), "* before -: 110 - 200");
    assert!(
        eval("(close - sma_200) / sma_200 == 0.1", &f)
            || eval("abs((close - sma_200) / sma_200 - 0.1) < 1e-12", &f)
    );
    assert!(eval("rsi_14 between 20 and 30", &f));
    assert!(
        eval("rsi_14 between 20 and 30 and close > 100", &f),
        "between's and is its own"
    );
    assert!(!eval("rsi_14 between 26 and 30", &f));
    assert!(eval("sector in (\"Energy\", 'Utilities')", &f));
    assert!(
        eval("sector in (\"energy\")", &f),
        "text compares case-insensitively"
    );
    assert!(eval("sector not in (\"Utilities\")", &f));
    assert!(eval("sector == \"Energy\" and industry != \"Banks\"", &f));
    assert!(eval("rsi_14 in (10, 25, -3)", &f));
    assert!(eval(
        "min(rsi_14, close) == 25 and max(rsi_14, close, 500) == 500",
        &f
    ));
    assert!(eval("-rsi_14 < 0 and abs(-rsi_14) == 25", &f));
    assert!(eval("volume >= 2e6", &f));
    assert!(
        eval("RSI_14 < 30 && close > 1", &f),
        "names are case-insensitive; && and || work"
    );
}

#[test]
fn missing_values_make_comparisons_false() {
    let f = features(&[("close", 10.0)]);
    for src in [
        "sma_200 < 1",
        "sma_200 >= 1",
        "sma_200 == sma_200",
        "sma_200 != 3",
        "sma_200 between 0 and 1e9",
        "sma_200 in (1)",
    ] {
        assert!(!eval(src, &f), "{src}");
        assert!(eval(&format!("not ({src})"), &f), "not ({src})");
    }
    assert!(!eval("close / 0 > 0", &f), "division by zero is missing");
    assert!(
        !eval("min(close, sma_200) < 100", &f),
        "min of a missing value is missing"
    );
}

#[test]
fn crossings_and_look_back() {
    let crossed = features_back(
        &[("close", 105.0), ("sma_20", 100.0)],
        &[("close", 99.0), ("sma_20", 100.0)],
    );
    let above = features_back(
        &[("close", 105.0), ("sma_20", 100.0)],
        &[("close", 101.0), ("sma_20", 100.0)],
    );
    let touch = features_back(
        &[("close", 105.0), ("sma_20", 100.0)],
        &[("close", 100.0), ("sma_20", 100.0)],
    );
    assert!(eval("crosses_above(close, sma_20)", &crossed));
    assert!(
        eval("crosses_above(close, sma_20)", &touch),
        "a[1] <= b[1] counts equality"
    );
    assert!(!eval("crosses_above(close, sma_20)", &above), "already above");
    assert!(!eval("crosses_below(close, sma_20)", &crossed));
    let down = features_back(
        &[("close", 95.0), ("sma_20", 100.0)],
        &[("close", 101.0), ("sma_20", 100.0)],
    );
    assert!(eval("crosses_below(close, sma_20)", &down));
    assert!(eval("close[1] == 99 and close > close[1] * 1.05", &crossed));
    assert!(
        !eval("close[1] > 0", &features(&[("close", 1.0)])),
        "no earlier session: missing"
    );
    let s = Screen::compile("close[3] > 0 or crosses_above(close[4], sma_20)").unwrap();
    assert_eq!(s.depth(), 6, "crossing of close[4] reads 5 back");
}

#[test]
fn ranks_over_the_universe_and_sectors() {
    let fs: Vec<Features> = (0..11)
        .map(|i| features(&[("return_63", f64::from(i))]))
        .collect();
    let sectors = ["A", "A", "A", "B", "B", "B", "B", "B", "B", "B", "B"];
    let rows: Vec<Row<'_>> = fs.iter().zip(sectors).map(|(f, s)| row(f, s)).collect();
    let top = Screen::compile("rank_pct(return_63) >= 90").unwrap();
    let picked: Vec<usize> = top
        .select(&rows)
        .iter()
        .enumerate()
        .filter(|(_, p)| **p)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(picked, [9, 10], "percentiles 90 and 100 of 0..=10");
    let bottom = Screen::compile("rank_pct(return_63) == 0").unwrap();
    assert_eq!(bottom.select(&rows).iter().filter(|p| **p).count(), 1);
    let sector_top = Screen::compile("sector_rank_pct(return_63) == 100").unwrap();
    let picked: Vec<usize> = sector_top
        .select(&rows)
        .iter()
        .enumerate()
        .filter(|(_, p)| **p)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(picked, [2, 10], "the best of each sector");
    // Ties share the lower percentile; missing values are not ranked.
    let tied: Vec<Features> = [1.0, 1.0, 2.0, f64::NAN]
        .iter()
        .map(|v| features(&[("return_63", *v)]))
        .collect();
    let rows: Vec<Row<'_>> = tied.iter().map(|f| row(f, "A")).collect();
    let zero = Screen::compile("rank_pct(return_63) == 0").unwrap().select(&rows);
    assert_eq!(zero, [true, true, false, false]);
}

#[test]
fn errors_point_at_the_problem() {
    let e = Screen::compile("rsi < 30").unwrap_err();
    assert_eq!((e.position, e.length), (0, 3));
    assert!(e.message.contains("unknown field \"rsi\""), "{e}");
    assert!(e.suggestions.contains(&"rsi_14".to_owned()), "{e:?}");
    assert!(e.to_string().contains("  rsi < 30\n  ^^^"), "{e}");

    let e = Screen::compile("close > sma_50 and rsi_14 <").unwrap_err();
    assert_eq!(e.position, 27, "{e}");
    assert!(e.message.contains("ends too early"), "{e}");

    let e = Screen::compile("close > \"Energy\"").unwrap_err();
    assert!(e.message.contains("cannot compare a number with text"), "{e}");
    let e = Screen::compile("sector < \"E\"").unwrap_err();
    assert!(e.message.contains("=="), "{e}");
    let e = Screen::compile("close + 1").unwrap_err();
    assert!(e.message.contains("not a condition"), "{e}");
    let e = Screen::compile("close[6] > 1").unwrap_err();
    assert!(e.message.contains("at most 5"), "{e}");
    assert_eq!(e.position, 0);
    let e = Screen::compile("crosses_above(close)").unwrap_err();
    assert!(e.message.contains("takes 2 arguments, not 1"), "{e}");
    let e = Screen::compile("crosess_above(close, sma_20)").unwrap_err();
    assert!(e.suggestions.contains(&"crosses_above".to_owned()), "{e:?}");
    let e = Screen::compile("1 < close < 2").unwrap_err();
    assert!(e.message.contains("do not chain"), "{e}");
    let e = Screen::compile("close > 1 $ 2").unwrap_err();
    assert_eq!((e.position, e.message.as_str()), (10, "unexpected character '$'"));
    let e = Screen::compile("sector == \"Energy").unwrap_err();
    assert!(e.message.contains("closing quote"), "{e}");
    let e = Screen::compile("").unwrap_err();
    assert!(e.message.contains("empty"), "{e}");
    let e = Screen::compile("rank_pct(rank_pct(close)) > 1").unwrap_err();
    assert!(e.message.contains("rank another rank"), "{e}");
    let e = Screen::compile(&"(".repeat(200)).unwrap_err();
    assert!(e.message.contains("levels deep"), "{e}");
    let e = Screen::compile(&format!("close > {}", "1 + ".repeat(2000))).unwrap_err();
    assert!(e.message.contains("longer than"), "{e}");
    // Positions count characters before the caret, not bytes, so the caret lines up under non-ASCII text.
    let e = Screen::compile("sector == \"é\" and rsi < 1").unwrap_err();
    assert!(e.caret().ends_with("\n                    ^^^"), "{}", e.caret());
}

#[test]
fn sort_keys() {
    assert_eq!(SortKey::parse("rsi_14").unwrap().to_string(), "rsi_14:desc");
    assert_eq!(
        SortKey::parse("change_pct:asc").unwrap().to_string(),
        "change_pct:asc"
    );
    let e = SortKey::parse("rsi:desc").unwrap_err();
    assert!(e.suggestions.contains(&"rsi_14".to_owned()), "{e:?}");
    assert!(
        SortKey::parse("close:up")
            .unwrap_err()
            .message
            .contains("neither asc nor desc")
    );
    assert!(SortKey::parse("sector").unwrap_err().message.contains("is text"));
}

// ---------------------------------------------------------------- properties

const NUM_NAMES: [&str; 5] = ["close", "rsi_14", "sma_50", "volume_ratio_20", "change_pct"];

fn arb_num() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(NUM_NAMES.to_vec()).prop_map(str::to_owned),
        (0u32..1000).prop_map(|v| format!("{}", f64::from(v) / 4.0)),
        (prop::sample::select(NUM_NAMES.to_vec()), 1u32..=3).prop_map(|(n, k)| format!("{n}[{k}]")),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*", "/"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("-({a})")),
            inner.clone().prop_map(|a| format!("abs({a})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("max({a}, {b})")),
        ]
    })
}

fn arb_cond() -> impl Strategy<Value = String> {
    let cmp = prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]);
    let leaf = prop_oneof![
        (arb_num(), cmp, arb_num()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (arb_num(), arb_num(), arb_num()).prop_map(|(x, a, b)| format!("{x} between {a} and {b}")),
        (
            prop::sample::select(NUM_NAMES.to_vec()),
            prop::sample::select(NUM_NAMES.to_vec())
        )
            .prop_map(|(a, b)| format!("crosses_above({a}, {b})")),
        prop::sample::select(vec![
            "sector == \"Energy\"",
            "sector in (\"Utilities\", \"Energy\")"
        ])
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

fn arb_rows() -> impl Strategy<Value = Vec<(Features, bool)>> {
    let value = prop_oneof![1 => Just(f64::NAN), 6 => -50.0f64..150.0, 1 => Just(0.0)];
    let one =
        (prop::collection::vec(value, NUM_NAMES.len() * 4), any::<bool>()).prop_map(|(vals, energy)| {
            let mut f = Features::empty(4);
            for k in 0..4 {
                for (j, name) in NUM_NAMES.iter().enumerate() {
                    f.set(numeric(name).unwrap(), k, vals[k * NUM_NAMES.len() + j]);
                }
            }
            (f, energy)
        });
    prop::collection::vec(one, 1..30)
}

fn selected(src: &str, rows: &[(Features, bool)]) -> Vec<bool> {
    let screen = Screen::compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let rows: Vec<Row<'_>> = rows
        .iter()
        .map(|(f, energy)| row(f, if *energy { "Energy" } else { "Utilities" }))
        .collect();
    screen.select(&rows)
}

proptest! {
    /// `not (a)` selects exactly the symbols `a` does not.
    #[test]
    fn not_is_the_complement(a in arb_cond(), rows in arb_rows()) {
        let yes = selected(&a, &rows);
        let no = selected(&format!("not ({a})"), &rows);
        for (y, n) in yes.iter().zip(&no) {
            prop_assert_ne!(y, n, "{}", a);
        }
    }

    /// `a and b` selects a subset of `a` (and of `b`); `a or b` a superset.
    #[test]
    fn and_narrows_or_widens(a in arb_cond(), b in arb_cond(), rows in arb_rows()) {
        let (sa, sb) = (selected(&a, &rows), selected(&b, &rows));
        let and = selected(&format!("({a}) and ({b})"), &rows);
        let or = selected(&format!("({a}) or ({b})"), &rows);
        for i in 0..rows.len() {
            prop_assert!(!and[i] || (sa[i] && sb[i]));
            prop_assert_eq!(and[i], sa[i] && sb[i]);
            prop_assert_eq!(or[i], sa[i] || sb[i]);
        }
    }

    /// Printing a parsed expression and parsing it again gives the same expression.
    #[test]
    fn parse_print_parse_is_the_identity(src in arb_cond()) {
        let once = parse(&src).unwrap();
        let printed = once.to_string();
        let twice = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        prop_assert!(once.same(&twice), "{} printed as {}", src, printed);
        prop_assert_eq!(printed.clone(), twice.to_string());
    }

    /// No input makes the parser or checker panic; every error points inside the input.
    #[test]
    fn any_input_is_an_answer_not_a_panic(src in "[a-z_0-9 ()<>=!.,\"'\\[\\]+*/-]{0,60}") {
        if let Err(e) = Screen::compile(&src) {
            prop_assert!(e.position <= src.len());
            prop_assert!(!e.message.is_empty());
        }
    }
}

#[test]
fn resolve_combines_saved_preset_and_where() {
    let saved = SavedScreen {
        name: "mine".into(),
        spec: ScreenSpec {
            where_: Some("close > 5".into()),
            sort: Some("rsi_14:asc".into()),
        },
        saved_at: chrono::DateTime::UNIX_EPOCH,
    };
    let spec = resolve(Some("volume > 1"), Some("Golden-Cross"), Some(&saved), None).unwrap();
    assert_eq!(
        spec.where_.as_deref(),
        Some("(close > 5) and (crosses_above(sma_50, sma_200)) and (volume > 1)")
    );
    assert_eq!(
        spec.sort.as_deref(),
        Some("rsi_14:asc"),
        "the saved sort unless one is given"
    );
    assert!(Screen::compile(spec.where_.as_deref().unwrap()).is_ok());
    let e = resolve(Some("rsi < 3"), None, None, None).unwrap_err();
    assert_eq!(e.source, "rsi < 3", "errors point into what the user wrote");
    let e = resolve(None, Some("golden_cros"), None, None).unwrap_err();
    assert!(e.suggestions.contains(&"golden_cross".to_owned()), "{e:?}");
    assert!(resolve(None, None, None, Some("nope")).is_err());
    assert!(resolve(None, None, None, None).unwrap().is_empty());
}

/// The stack the adversarial tests run on: half of what a tokio worker or blocking thread has (2 MiB),
/// in an unoptimised build whose frames are several times larger than a release build's.
const STACK: usize = 1024 * 1024;

/// Runs `f` on a thread with a small stack: a recursion the input can drive past the parse limits
/// would overflow it and abort the test binary.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic")
}

/// Parses, checks, evaluates, prints and drops `src` however it ends: an error is fine, a crash is not.
fn survive(src: String) -> Option<String> {
    on_small_stack(move || {
        let f = features(&[("close", 10.0), ("rsi_14", 50.0), ("sma_200", 9.0)]);
        match Screen::compile(&src) {
            Ok(screen) => {
                let _ = screen.matches(&row(&f, "Energy"));
                let _ = screen.expr().to_string();
                let _ = screen.expr().same(screen.expr());
                None
            }
            Err(e) => {
                assert!(e.position <= src.len());
                Some(e.message)
            }
        }
    })
}

#[test]
fn long_chains_of_every_operator_are_refused_not_a_crash() {
    // Each of these is under the 4,096-byte limit; a left-deep chain once overflowed a worker's stack.
    let chains = [
        format!("close > 1{}", "+1".repeat(1500)),
        format!("close > 1{}", "*1".repeat(1500)),
        format!("close > 1{}", "-1".repeat(1500)),
        format!("close > 1{}", "/1".repeat(1500)),
        format!("close > 0{}", " or close > 0".repeat(300)),
        format!("close > 0{}", " and close > 0".repeat(290)),
        format!("close > {}1", "-".repeat(2000)),
        format!("{}close > 1", "not ".repeat(1000)),
        format!("{}close > 1{}", "(".repeat(1000), ")".repeat(1000)),
        format!("close > {}1{}", "abs(".repeat(800), ")".repeat(800)),
        format!("close > 1{}", "+1*1".repeat(800)),
    ];
    for src in chains {
        let len = src.len();
        let message = survive(src).unwrap_or_else(|| panic!("a {len}-byte chain was accepted"));
        assert!(
            message.contains("levels deep") || message.contains("values") || message.contains("longer than"),
            "{message}"
        );
    }
    // The limits name themselves, so a user knows what to change.
    let e = Screen::compile(&format!("close > 1{}", "+1".repeat(100))).unwrap_err();
    assert!(e.message.contains(&format!("{MAX_DEPTH} levels deep")), "{e}");
    let list = (0..300).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let e = Screen::compile(&format!("close in ({list})")).unwrap_err();
    assert!(
        e.message.contains(&format!("more than {MAX_TERMS} values")),
        "{e}"
    );
}

#[test]
fn expressions_at_the_limits_still_work() {
    // A chain just inside the depth limit parses and evaluates: 10 + 1 × 62 = 72 > 70.
    let src = format!("close{} > 70", " + 1".repeat(MAX_DEPTH - 2));
    assert_eq!(survive(src.clone()), None, "{src}");
    let f = features(&[("close", 10.0)]);
    assert!(eval(&src, &f));
    // Balanced trees hold many more values than a chain at the same depth.
    let mut sum = "close".to_owned();
    for _ in 0..6 {
        sum = format!("({sum} + {sum})");
    }
    assert!(eval(&format!("{sum} == 640"), &f), "64 closes of 10");
}

/// Random pieces that make long and deep expressions: operators of every kind, prefixes, calls, huge numbers.
fn arb_hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("+1".to_owned()),
        Just("*2".to_owned()),
        Just("-".to_owned()),
        Just("/close".to_owned()),
        Just(" and ".to_owned()),
        Just(" or ".to_owned()),
        Just("not ".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("abs(".to_owned()),
        Just("max(close,".to_owned()),
        Just(" < ".to_owned()),
        Just(" between 1 and ".to_owned()),
        Just(" in (1,2,3)".to_owned()),
        Just("1e308".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("close".to_owned()),
        Just("rsi_14[5]".to_owned()),
    ];
    (prop::collection::vec(piece, 1..40), 1usize..200).prop_map(|(pieces, times)| {
        let unit: String = pieces.concat();
        let mut s = "close > 0 and ".to_owned();
        while s.len() + unit.len() <= super::parse::MAX_SOURCE && times > 0 {
            s.push_str(&unit);
            if s.len() > 64 * times {
                break;
            }
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Random long and deep expressions, up to the source limit, never crash the parser, checker,
    /// evaluator, printer or drop on a small stack.
    #[test]
    fn hostile_expressions_never_crash(src in arb_hostile()) {
        let _ = survive(src);
    }
}
