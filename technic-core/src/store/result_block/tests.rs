//! Result block tests: exact round trips (realistic, edge and random results), the size of a realistic
//! result, the layout pinned by a stored block, and malformed blocks refused.

use chrono::NaiveDate;
use proptest::prelude::*;

use super::*;
use crate::score::{ExplainInput, ExplainPart};

fn decode(block: &[u8]) -> Result<Vec<ScanResult>, String> {
    let mut out = Vec::new();
    decode_into(block, &mut out).map(|()| out)
}

/// A result with every optional part present and awkward values: non-finite and signed-zero floats, a
/// date far from today, an `as_of` that differs from the date, an explanation, non-ASCII text.
fn awkward() -> ScanResult {
    let mut r = crate::scan::score_symbol(
        &crate::model::UniverseEntry::bare(Symbol::new("BRK.B")),
        &crate::testing::sample_bars(300, 50.0),
    )
    .expect("scored");
    r.rank = 300_000;
    r.name = "Société Générale — «demo»".into();
    r.industry = String::new();
    r.as_of = NaiveDate::from_ymd_opt(1899, 12, 31);
    r.close = -0.0;
    r.change_pct = Some(f64::INFINITY);
    r.volume = Some(f64::MIN_POSITIVE / 2.0);
    r.indicators.adx_14 = None;
    r.stale = true;
    r.trade_plan = Some(TradePlan {
        side: Side::Short,
        entry: 1.0,
        stop: f64::NEG_INFINITY,
        target: 0.5,
        reward_risk: f64::MAX,
        shares: u64::MAX,
        position_value: 1e300,
        risk_amount: -1e-300,
        liquidity_limited: true,
    });
    r.explain.push(ExplainPart {
        component: "extra".into(),
        points: -0.0,
        weight: 0.0,
        score: None,
        inputs: vec![ExplainInput {
            name: "x".into(),
            value: None,
        }],
        rule: String::new(),
    });
    r
}

#[tokio::test]
async fn realistic_results_round_trip_in_about_430_bytes_each() {
    let results = crate::testing::demo_results(500).await;
    let mut out = Vec::new();
    let mut bytes = 0;
    for block in results.chunks(BLOCK_RESULTS) {
        let encoded = encode(block);
        bytes += encoded.len();
        decode_into(&encoded, &mut out).unwrap();
    }
    assert_eq!(out, results);
    let per_result = bytes / results.len();
    assert!((380..=480).contains(&per_result), "{per_result} bytes per result");
}

#[test]
fn awkward_values_round_trip_bit_for_bit() {
    let mut nan = awkward();
    nan.tech_rating = f64::from_bits(0x7ff8_dead_beef_0001);
    nan.as_of = Some(nan.date);
    let mut bare = awkward();
    bare.trade_plan = None;
    bare.as_of = None;
    bare.explain.clear();
    bare.sub_scores = SubScores::default();
    bare.indicators = Default::default();
    let results = vec![awkward(), nan, bare];
    let block = encode(&results);
    let back = decode(&block).unwrap();
    assert_eq!(back[0], results[0]);
    assert_eq!(back[2], results[2]);
    assert_eq!(back[1].tech_rating.to_bits(), 0x7ff8_dead_beef_0001);
    assert_eq!(encode(&back), block, "re-encoding changes nothing");
    assert_eq!(decode(&encode(&[])).unwrap(), []);
}

/// A block written by the first layout. Decoding it must keep working in every later build.
#[test]
fn a_version_1_block_stays_readable() {
    #[rustfmt::skip]
    let block = [
        1, 1, // version, one result
        7, 3, b'A', b'B', b'C', 3, b'A', b'B', b'C', // rank, symbol, name
        6, b'E', b'n', b'e', b'r', b'g', b'y', 0, // sector, industry
        0b11, 1, // stale, as_of (= date); Long
        0x9e, 0x9b, 0x5a, // day 739023 (2024-05-17), zigzag varint
        0b10, 0, 0, 0, 0, // volume present
        0, 0, 0, 0, 0, 0, 0x24, 0x40, // close 10
        0, 0, 0, 0, 0, 0, 0x4c, 0x40, // rating 56
        0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // volume 1
    ];
    let r = &decode(&block).unwrap()[0];
    assert_eq!((r.rank, r.symbol.as_str(), r.name.as_str()), (7, "ABC", "ABC"));
    assert_eq!((r.sector.as_str(), r.industry.as_str()), ("Energy", ""));
    assert_eq!(r.date, NaiveDate::from_ymd_opt(2024, 5, 17).unwrap());
    assert_eq!((r.as_of, r.stale), (Some(r.date), true));
    assert_eq!((r.close, r.tech_rating, r.signal), (10.0, 56.0, Signal::Long));
    assert_eq!((r.change_pct, r.volume), (None, Some(1.0)));
    assert_eq!((r.trade_plan, r.explain.len()), (None, 0));
}

#[test]
fn malformed_blocks_are_refused() {
    let block = encode(&[awkward()]);
    let mut newer = block.clone();
    newer[0] = 2;
    assert!(decode(&newer).unwrap_err().contains("version 2"));
    for cut in [1, 2, 10, block.len() / 2, block.len() - 1] {
        assert!(decode(&block[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = block.clone();
    longer.push(0);
    assert!(decode(&longer).unwrap_err().contains("after its last result"));
    assert!(decode(&[]).is_err());
    // A huge count in a tiny block fails on the missing bytes, without reserving memory for it.
    assert!(decode(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
}

fn any_option() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of(any::<f64>())
}

fn any_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(".{0,12}").expect("regex")
}

fn any_plan() -> impl Strategy<Value = TradePlan> {
    (
        any::<bool>(),
        proptest::array::uniform6(any::<f64>()),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(short, v, shares, liquidity_limited)| TradePlan {
            side: if short { Side::Short } else { Side::Long },
            entry: v[0],
            stop: v[1],
            target: v[2],
            reward_risk: v[3],
            shares,
            position_value: v[4],
            risk_amount: v[5],
            liquidity_limited,
        })
}

fn any_explain() -> impl Strategy<Value = Vec<ExplainPart>> {
    let input = (any_text(), any_option()).prop_map(|(name, value)| ExplainInput { name, value });
    let part = (
        any_text(),
        any::<f64>(),
        any::<f64>(),
        any_option(),
        proptest::collection::vec(input, 0..3),
        any_text(),
    )
        .prop_map(|(component, points, weight, score, inputs, rule)| ExplainPart {
            component,
            points,
            weight,
            score,
            inputs,
            rule,
        });
    proptest::collection::vec(part, 0..3)
}

fn any_result() -> impl Strategy<Value = ScanResult> {
    let day = || -3_000_000i64..3_000_000;
    (
        (any::<usize>(), [any_text(), any_text(), any_text(), any_text()]),
        (
            day(),
            proptest::option::of(day()),
            any::<f64>(),
            any::<f64>(),
            0u8..4,
            any::<bool>(),
        ),
        proptest::collection::vec(any_option(), OPTIONAL.len()),
        (proptest::option::of(any_plan()), any_explain()),
    )
        .prop_map(
            |((rank, [symbol, name, sector, industry]), scalars, values, (trade_plan, explain))| {
                let (date, as_of, close, tech_rating, signal, stale) = scalars;
                let mut r = ScanResult {
                    rank,
                    symbol: Symbol::new(symbol),
                    name,
                    sector,
                    industry,
                    date: self::date(date).expect("day in range"),
                    as_of: as_of.map(|d| self::date(d).expect("day in range")),
                    close,
                    change_pct: None,
                    volume: None,
                    dollar_volume_20: None,
                    atr_pct: None,
                    bb_width: None,
                    rs_21: None,
                    rs_63: None,
                    rs_126: None,
                    rs_252: None,
                    tech_rating,
                    signal: signal_of(signal).expect("code in range"),
                    sub_scores: SubScores::default(),
                    indicators: Default::default(),
                    stale,
                    trade_plan,
                    explain,
                };
                let values: [Option<f64>; OPTIONAL.len()] = values.try_into().expect("one per field");
                write_optional(&mut r, values);
                r
            },
        )
}

proptest! {
    /// Every field comes back as saved, floats bit for bit (NaN payloads included: the `Debug` text
    /// compares NaN fields, re-encoding compares their bits).
    #[test]
    fn any_results_round_trip(results in proptest::collection::vec(any_result(), 0..5)) {
        let block = encode(&results);
        let back = decode(&block).map_err(TestCaseError::fail)?;
        prop_assert_eq!(format!("{back:?}"), format!("{results:?}"));
        prop_assert_eq!(encode(&back), block);
    }

    /// Arbitrary bytes are refused or decoded, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut block = bytes;
        if let Some(b) = block.first_mut() {
            *b = VERSION;
        }
        let _ = decode(&block);
    }
}
