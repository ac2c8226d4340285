//! A directory of CSV files, one per symbol: `DIR/AAPL.csv` holds `date,open,high,low,close,volume`
//! (header required, ISO dates ascending). An optional `DIR/universe.csv` (`symbol,name,sector,industry`)
//! names and classifies symbols.
//!
//! Bad data is reported, never guessed: a malformed row, an unsorted date or a non-numeric field makes
//! that symbol fail with an [`Error::InvalidData`] naming the file and line, and the rest of a scan goes on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::NaiveDate;

use super::DataProvider;
use crate::error::{Error, Result};
use crate::model::{Bar, Bars, DateRange, Symbol, Universe, UniverseEntry};

const BARS_HEADER: [&str; 6] = ["date", "open", "high", "low", "close", "volume"];

/// The largest CSV or universe file read: 64 MiB (about 1.3 million daily bars). Larger files are refused
/// before anything is kept in memory, so a wrong path (a disk image, `/dev/zero`) cannot exhaust it.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads `path` whole if it holds at most `max` bytes; a larger file (or an endless one) is an error
/// naming it and the limit. Never reads more than `max + 1` bytes.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    read_bounded_until(path, max, &AtomicBool::new(false))
}

/// [`read_bounded`] in chunks of [`READ_CHUNK`] bytes, giving up with [`std::io::ErrorKind::Interrupted`]
/// as soon as `stop` is set: a cancelled scan does not keep a thread reading a large or slow file.
pub fn read_bounded_until(path: &Path, max: u64, stop: &AtomicBool) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    // Checked first where the size is known (regular files), so a large file is refused at once.
    let known = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    if known.is_some_and(|len| len > max) {
        return Err(too_large(max));
    }
    read_chunks(file, max, known.unwrap_or(0), stop)
}

/// Bytes read between two looks at the stop flag.
pub const READ_CHUNK: usize = 1 << 20;

fn read_chunks(
    reader: impl std::io::Read,
    max: u64,
    hint: u64,
    stop: &AtomicBool,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut reader = reader.take(max + 1);
    let mut buf = Vec::with_capacity(usize::try_from(hint.min(max)).unwrap_or(0));
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "reading stopped: the scan was cancelled",
            ));
        }
        let n = (&mut reader).take(READ_CHUNK as u64).read_to_end(&mut buf)?;
        if buf.len() as u64 > max {
            return Err(too_large(max));
        }
        if n == 0 {
            return Ok(buf);
        }
    }
}

/// [`read_bounded`] on the blocking pool, stopping (within one chunk) when the returned future is dropped,
/// as it is when a scan is cancelled or a request goes away.
pub async fn read_bounded_async(path: PathBuf, max: u64) -> std::io::Result<Vec<u8>> {
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(stop.clone());
    tokio::task::spawn_blocking(move || read_bounded_until(&path, max, &stop))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(format!("file reader panicked: {e}"))))
}

fn too_large(max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than the {} MiB limit", max >> 20),
    )
}
const UNIVERSE_FILE: &str = "universe.csv";

/// Reads bars from one CSV file per symbol in a directory.
#[derive(Debug, Clone)]
pub struct CsvDirProvider {
    dir: PathBuf,
    name: String,
}

impl CsvDirProvider {
    /// A provider over `dir`. Fails with a configuration error when `dir` is not a readable directory.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(Error::config(format!(
                "CSV directory {} does not exist or is not a directory; pass --provider csv:DIR with a \
                 folder of SYMBOL.csv files",
                dir.display()
            )));
        }
        let name = format!("csv:{}", dir.display());
        Ok(Self { dir, name })
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes every symbol of `provider` (over `range`) into `dir` as `SYMBOL.csv`, plus
    /// `universe.csv`, creating `dir` if needed. Returns the number of symbols written; a symbol the
    /// provider cannot serve is an error naming it.
    pub async fn export(provider: &dyn DataProvider, range: DateRange, dir: &Path) -> Result<usize> {
        let io = |what: &str, e: std::io::Error| Error::config(format!("cannot write {what}: {e}"));
        std::fs::create_dir_all(dir).map_err(|e| io(&dir.display().to_string(), e))?;
        let universe = provider.universe().await?;
        let mut index = String::from("symbol,name,sector,industry\n");
        for entry in &universe {
            let bars = provider.daily_bars(&entry.symbol, range).await?;
            let path = dir.join(format!("{}.csv", entry.symbol));
            std::fs::write(&path, format_bars(&bars)).map_err(|e| io(&path.display().to_string(), e))?;
            let fields = [entry.symbol.as_str(), &entry.name, &entry.sector, &entry.industry];
            let quoted: Vec<String> = fields.iter().map(|f| csv_quote(f)).collect();
            index.push_str(&quoted.join(","));
            index.push('\n');
        }
        let path = dir.join(UNIVERSE_FILE);
        std::fs::write(&path, index).map_err(|e| io(&path.display().to_string(), e))?;
        Ok(universe.len())
    }

    fn path_for(&self, symbol: &Symbol) -> Result<PathBuf> {
        let s = symbol.as_str();
        // Symbols become file names: refuse anything that could leave the directory.
        if s.is_empty()
            || s.starts_with('.')
            || !s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
        {
            return Err(Error::not_found(format!(
                "symbol `{s}` (not a valid file name in {})",
                self.dir.display()
            )));
        }
        Ok(self.dir.join(format!("{s}.csv")))
    }
}

/// Reads `universe.csv` text: `symbol,name,sector,industry` with a header. A row that cannot be read
/// (an invalid symbol, a broken quote) is left out and described (file and line) in the second list, so
/// one bad row never costs the whole universe; a missing header or `symbol` column is an error.
pub fn parse_universe(text: &str, file: &str) -> Result<(Universe, Vec<String>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| Error::invalid_data(file, format!("unreadable header: {e}")))?;
    let cols: Vec<String> = header.iter().map(str::to_ascii_lowercase).collect();
    let col = |name: &str| cols.iter().position(|c| c == name);
    let sym_col = col("symbol").ok_or_else(|| {
        Error::invalid_data(
            file,
            "line 1: header has no `symbol` column (expected symbol,name,sector,industry)",
        )
    })?;
    let (name_col, sector_col, industry_col) = (col("name"), col("sector"), col("industry"));
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                bad.push(format!("{file} line {line}: {e}; row skipped"));
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let raw = record.get(sym_col).unwrap_or("");
        let symbol = match Symbol::parse(raw) {
            Ok(s) => s,
            Err(e) => {
                bad.push(format!("{file} line {line}: {e}; row skipped"));
                continue;
            }
        };
        let field = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("").to_owned();
        out.push(UniverseEntry {
            symbol,
            name: field(name_col),
            sector: field(sector_col),
            industry: field(industry_col),
        });
    }
    Ok((out, bad))
}

/// Parses one symbol's CSV text. `file` names the file in errors.
///
/// The format is fixed (six plain fields, no quoting needed), so this is a direct byte-level parser rather
/// than a general CSV reader: about 2× faster end to end on 5000 files (docs/BENCHMARKS.md). It accepts
/// `\r\n` line ends, a UTF-8 byte-order mark, spaces around fields, double-quoted fields and blank lines;
/// anything else is an error naming the line.
pub fn parse_bars(text: &[u8], file: &str) -> Result<Bars> {
    let err = |line: usize, msg: String| Error::invalid_data(file, format!("line {line}: {msg}"));
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut lines = text
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)));
    let header = lines.by_ref().find(|(_, l)| !l.trim_ascii().is_empty());
    let Some((header_line, header)) = header else {
        return Err(err(
            1,
            "empty file; expected header date,open,high,low,close,volume".to_owned(),
        ));
    };
    let mut fields = [&b""[..]; 6];
    let header_ok = split_fields(header, &mut fields) == 6
        && fields
            .iter()
            .zip(BARS_HEADER)
            .all(|(got, want)| got.eq_ignore_ascii_case(want.as_bytes()));
    if !header_ok {
        let got = String::from_utf8_lossy(header);
        return Err(err(
            header_line,
            format!("header is `{got}`; expected date,open,high,low,close,volume"),
        ));
    }
    let capacity = text.len() / 40;
    let mut bars = Bars::with_capacity(capacity);
    let mut line_of = Vec::with_capacity(capacity);
    for (line, raw) in lines {
        let bar = match fast_bar(raw) {
            Some(bar) => bar,
            None if raw.trim_ascii().is_empty() => continue,
            None => general_bar(raw, &mut fields).map_err(|msg| err(line, msg))?,
        };
        bars.push(bar);
        line_of.push(line);
    }
    if let Err(bad) = bars.validate() {
        let line = line_of.get(bad.index).copied().unwrap_or(header_line);
        return Err(err(line, bad.reason));
    }
    Ok(bars)
}

/// One line in the plain form this provider writes (`2024-11-22,67.71,67.78,61.11,62.58,10659673`: no
/// spaces, quotes, signs other than `-`, or exponents), read in one pass over its bytes; `None` for
/// anything else, which [`general_bar`] then reads or reports. For the lines it takes it gives exactly
/// what [`general_bar`] gives (a property test checks it).
fn fast_bar(line: &[u8]) -> Option<Bar> {
    let date = parse_iso_date(line.get(..10)?)?;
    let mut rest = &line[10..];
    let mut nums = [0.0; 5];
    for slot in &mut nums {
        rest = rest.strip_prefix(b",")?;
        let (value, used) = fast_number(rest)?;
        *slot = value;
        rest = &rest[used..];
    }
    rest.is_empty().then(|| bar(date, nums))
}

/// A bar from its date and its five numbers in file order.
fn bar(date: NaiveDate, [open, high, low, close, volume]: [f64; 5]) -> Bar {
    Bar {
        date,
        open,
        high,
        low,
        close,
        volume,
    }
}

/// A plain decimal at the start of `b` (`-`, digits, one `.`; at most 19 digits whose integer is below
/// 2^53), up to a comma or the end, and the bytes it used: Clinger's fast path (see [`parse_number`]).
fn fast_number(b: &[u8]) -> Option<(f64, usize)> {
    let negative = b.first() == Some(&b'-');
    let mut used = usize::from(negative);
    let mut mantissa: u64 = 0;
    let (mut n_digits, mut decimals, mut seen_point) = (0usize, 0usize, false);
    while let Some(&c) = b.get(used) {
        match c {
            b'0'..=b'9' if n_digits < 19 => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                n_digits += 1;
                decimals += usize::from(seen_point);
            }
            b'.' if !seen_point => seen_point = true,
            b',' => break,
            _ => return None,
        }
        used += 1;
    }
    if n_digits == 0 || mantissa >= 1 << 53 || decimals >= POW10.len() {
        return None;
    }
    let value = mantissa as f64 / POW10[decimals];
    Some((if negative { -value } else { value }, used))
}

/// One data line in any form this provider accepts (spaces, quotes, exponents), or what is wrong with it.
fn general_bar<'a>(raw: &'a [u8], fields: &mut [&'a [u8]; 6]) -> std::result::Result<Bar, String> {
    let n_fields = split_fields(raw, fields);
    if n_fields != 6 {
        return Err(format!(
            "{n_fields} fields; expected 6 (date,open,high,low,close,volume)"
        ));
    }
    let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let date = parse_iso_date(fields[0])
        .ok_or_else(|| format!("date `{}` is not an ISO date (YYYY-MM-DD)", shown(fields[0])))?;
    let mut nums = [0.0; 5];
    for (i, slot) in nums.iter_mut().enumerate() {
        let raw = fields[i + 1];
        *slot = parse_number(raw)
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{} `{}` is not a number", BARS_HEADER[i + 1], shown(raw)))?;
    }
    Ok(bar(date, nums))
}

/// Splits `line` at commas into `out` (trimmed, surrounding double quotes removed) and returns how many
/// fields the line has, even when there are more than `out` holds.
fn split_fields<'a>(line: &'a [u8], out: &mut [&'a [u8]; 6]) -> usize {
    let mut count = 0;
    for field in line.split(|&b| b == b',') {
        if count < out.len() {
            let f = field.trim_ascii();
            out[count] = f
                .strip_prefix(b"\"")
                .and_then(|f| f.strip_suffix(b"\""))
                .unwrap_or(f);
        }
        count += 1;
    }
    count
}

/// Exact powers of ten: every one up to 1e22 is an `f64` without rounding.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
    1e19, 1e20, 1e21, 1e22,
];

/// Parses a decimal number. Plain decimals such as `123.45` (at most 19 significant digits and 22
/// decimals, which covers prices and volumes) take Clinger's fast path ([`fast_number`]): the digits as an integer below
/// 2^53 divided by an exact power of ten, one correctly rounded operation, so the result is bit-identical
/// to `str::parse::<f64>`. Everything else (exponents, long digit strings) goes to `str::parse`.
fn parse_number(b: &[u8]) -> Option<f64> {
    match fast_number(b) {
        Some((value, used)) if used == b.len() => Some(value),
        _ => std::str::from_utf8(b).ok()?.parse().ok(),
    }
}

/// `YYYY-MM-DD` without going through a general date parser (which dominated CSV loading in profiles).
fn parse_iso_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)
}

/// Formats bars as this provider's CSV (header included).
pub fn format_bars(bars: &Bars) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bars.len() * 56 + 40);
    out.push_str("date,open,high,low,close,volume\n");
    for i in 0..bars.len() {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            bars.date[i], bars.open[i], bars.high[i], bars.low[i], bars.close[i], bars.volume[i]
        );
    }
    out
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[async_trait]
impl DataProvider for CsvDirProvider {
    fn name(&self) -> &str {
        &self.name
    }

    /// Everything in the files: a CSV directory is a fixed data set, often older than two years.
    fn default_range(&self, _expected: NaiveDate) -> DateRange {
        DateRange {
            from: NaiveDate::MIN,
            to: NaiveDate::MAX,
        }
    }

    /// Every `*.csv` file (except `universe.csv`) is a symbol; `universe.csv` adds names and sectors, and
    /// symbols it lists without a file are kept so a scan reports them as skipped rather than dropping them.
    async fn universe(&self) -> Result<Universe> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || read_universe(&dir))
            .await
            .map_err(|e| Error::internal(format!("universe reader panicked: {e}")))?
    }

    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        let path = self.path_for(symbol)?;
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let symbol = symbol.clone();
        let dir = self.dir.clone();
        // Read off the runtime; a dropped (cancelled) fetch stops the read within one chunk.
        let text = read_bounded_async(path.clone(), MAX_FILE_BYTES)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    Error::not_found(format!("symbol {symbol}: no file {file} in {}", dir.display()))
                }
                std::io::ErrorKind::Interrupted => Error::Cancelled,
                _ => Error::invalid_data(&file, format!("cannot read {}: {e}", path.display())),
            })?;
        // Parsing is bounded by the file cap; it runs on the blocking pool too.
        tokio::task::spawn_blocking(move || Ok(parse_bars(&text, &file)?.into_range(range)))
            .await
            .map_err(|e| Error::internal(format!("CSV parser panicked: {e}")))?
    }
}

fn read_universe(dir: &Path) -> Result<Universe> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::config(format!("cannot list CSV directory {}: {e}", dir.display())))?;
    let mut by_symbol: BTreeMap<Symbol, UniverseEntry> = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if !is_csv || path.file_name().is_some_and(|f| f == UNIVERSE_FILE) || stem.is_empty() {
            continue;
        }
        let symbol = Symbol::new(stem);
        by_symbol.insert(symbol.clone(), UniverseEntry::bare(symbol));
    }
    let universe_path = dir.join(UNIVERSE_FILE);
    if universe_path.is_file() {
        let bytes = read_bounded(&universe_path, MAX_FILE_BYTES)
            .map_err(|e| Error::invalid_data(UNIVERSE_FILE, format!("cannot read: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        let (entries, bad_rows) = parse_universe(&text, UNIVERSE_FILE)?;
        for why in bad_rows {
            tracing::warn!("{why}");
        }
        for entry in entries {
            by_symbol.insert(entry.symbol.clone(), entry);
        }
    }
    Ok(by_symbol.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "date,open,high,low,close,volume\n2024-01-02,10,11,9,10.5,1000\n2024-01-03,10.5,12,10,11,2000\n";

    #[tokio::test]
    async fn export_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let synthetic = crate::provider::SyntheticProvider::new(crate::provider::SyntheticConfig {
            n_symbols: 12,
            n_bars: 260,
            ..Default::default()
        });
        assert_eq!(
            CsvDirProvider::export(&synthetic, synthetic.data_range(), dir.path())
                .await
                .unwrap(),
            12
        );
        let csv = CsvDirProvider::new(dir.path()).unwrap();
        let (u1, u2) = (synthetic.universe().await.unwrap(), csv.universe().await.unwrap());
        let mut sorted = u1.clone();
        sorted.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        assert_eq!(sorted, u2);
        for e in &u1 {
            let range = synthetic.data_range();
            assert_eq!(
                synthetic.daily_bars(&e.symbol, range).await.unwrap(),
                csv.daily_bars(&e.symbol, range).await.unwrap()
            );
        }
    }

    #[test]
    fn parses_good_file() {
        let bars = parse_bars(GOOD.as_bytes(), "A.csv").unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars.close, vec![10.5, 11.0]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "date,open,high,low,close,volume\n2024-01-02,10,11,9,abc,1000\n",
                "line 2",
                "close `abc`",
            ),
            (
                "date,open,high,low,close,volume\n2024-01-02,10,11,9,10,1\n2024-01-01,10,11,9,10,1\n",
                "line 3",
                "not ascending",
            ),
            (
                "date,open,high,low,close,volume\n2024-01-02,10,11,9,10,1\n2024-13-01,10,11,9,10,1\n",
                "line 3",
                "ISO date",
            ),
            (
                "date,open,high,low,close,volume\n2024-01-02,10,11,9\n",
                "line 2",
                "4 fields",
            ),
            ("date,close\n2024-01-02,10\n", "line 1", "header"),
            ("", "line 1", "empty file"),
            (
                "date,open,high,low,close,volume\n2024-01-02,10,9,11,10,1\n",
                "line 2",
                "below low",
            ),
            ("date,open,high,low,close,volume\n", "line 1", "no bars"),
        ];
        for (text, line, what) in cases {
            let e = parse_bars(text.as_bytes(), "BAD.csv").unwrap_err().to_string();
            assert!(
                e.contains("BAD.csv") && e.contains(line) && e.contains(what),
                "{e}"
            );
        }
    }

    #[test]
    fn tolerates_crlf_bom_quotes_spaces_and_blank_lines() {
        let text = "\u{FEFF}Date, Open,High,Low,Close,Volume\r\n\r\n\"2024-01-02\", 10 ,11,9,10.5,1e3\r\n\n2024-01-03,10.5,12,10,11,2000\r\n";
        let bars = parse_bars(text.as_bytes(), "A.csv").unwrap();
        assert_eq!(bars.close, vec![10.5, 11.0]);
        assert_eq!(bars.volume[0], 1000.0);
        let e = parse_bars(
            b"date,open,high,low,close,volume\n\n2024-01-02,1,1,1,1,1,7\n",
            "A.csv",
        )
        .unwrap_err();
        assert!(e.to_string().contains("line 3: 7 fields"), "{e}");
        let e = parse_bars(
            b"date,open,high,low,close,volume\n2024-02-30,1,1,1,1,1\n",
            "A.csv",
        )
        .unwrap_err();
        assert!(e.to_string().contains("2024-02-30"), "{e}");
        let e = parse_bars(
            b"date,open,high,low,close,volume\n2024-01-02,1,1,1,NaN,1\n",
            "A.csv",
        )
        .unwrap_err();
        assert!(e.to_string().contains("close `NaN`"), "{e}");
    }

    proptest::proptest! {
        /// The fast number path gives exactly what `str::parse` gives.
        #[test]
        fn number_parsing_matches_std(int in 0u64..10_000_000_000, frac in 0u32..1_000_000, places in 0usize..7, neg: bool) {
            let mut text = format!("{}{int}", if neg { "-" } else { "" });
            if places > 0 {
                text += &format!(".{:0width$}", frac % 10u32.pow(places as u32), width = places);
            }
            proptest::prop_assert_eq!(parse_number(text.as_bytes()), text.parse::<f64>().ok());
        }

        /// A line the one-pass reader takes reads exactly as the general reader reads it, whatever the
        /// form of its fields (plain, signed, spaced, quoted, exponents, long digit strings, `.5`, `5.`).
        #[test]
        fn the_fast_line_reader_agrees_with_the_general_one(
            day in 1u32..29,
            fields in proptest::collection::vec((proptest::prelude::any::<f64>(), 0u64..100_000_000, 0u32..10_000, 0usize..9), 5),
            tail in proptest::option::of(proptest::sample::select(vec![" ", ",", "x", "\""])),
        ) {
            let shapes: Vec<String> = fields
                .iter()
                .map(|&(x, int, frac, shape)| match shape {
                    0 => format!("{int}.{frac}"),
                    1 => format!("-{int}.{frac:04}"),
                    2 => format!("{int}"),
                    3 => format!("+{int}"),
                    4 => format!(" {int}.{frac} "),
                    5 => format!("\"{int}\""),
                    6 => format!("{}", x.abs()),
                    7 => format!("{int}."),
                    _ => format!(".{frac}"),
                })
                .collect();
            let mut line = format!("2025-03-{day:02},{}", shapes.join(","));
            if let Some(t) = tail {
                line.push_str(t);
            }
            let mut fields = [&b""[..]; 6];
            let general = general_bar(line.as_bytes(), &mut fields);
            if let Some(fast) = fast_bar(line.as_bytes()) {
                let general = general.expect("the general reader refused a line the fast one took");
                let bits = |b: &Bar| [b.open, b.high, b.low, b.close, b.volume].map(f64::to_bits);
                proptest::prop_assert_eq!(fast.date, general.date);
                proptest::prop_assert_eq!(bits(&fast), bits(&general), "{}", line);
            }
        }

        #[test]
        fn number_parsing_matches_std_for_any_float(x: f64) {
            let text = x.to_string();
            let got = parse_number(text.as_bytes());
            proptest::prop_assert_eq!(got.map(f64::to_bits), text.parse::<f64>().ok().map(f64::to_bits));
        }
    }

    #[test]
    fn number_edge_cases() {
        for t in [
            "1e3",
            "1.5E-2",
            "-0",
            "+7",
            ".5",
            "5.",
            "123456789012345678901234",
            "0.1234567890123456789012345",
        ] {
            assert_eq!(parse_number(t.as_bytes()), t.parse::<f64>().ok(), "{t}");
        }
        for t in ["", "-", ".", "1.2.3", "abc", "1,5", "--1"] {
            assert_eq!(parse_number(t.as_bytes()), t.parse::<f64>().ok(), "{t}");
        }
    }

    #[test]
    fn universe_file() {
        let (u, bad) = parse_universe(
            "symbol,name,sector,industry\naapl,Apple,Information Technology,Hardware\n",
            "u.csv",
        )
        .unwrap();
        assert!(bad.is_empty());
        assert_eq!(u[0].symbol.as_str(), "AAPL");
        assert_eq!(u[0].sector, "Information Technology");
        let e = parse_universe("ticker\nAAPL\n", "u.csv").unwrap_err().to_string();
        assert!(e.contains("symbol"), "{e}");
        // A bad row is skipped with its line; the good rows around it are kept.
        let (u, bad) = parse_universe("symbol\nAAA\nA B\nCCC\n", "u.csv").unwrap();
        let names: Vec<&str> = u.iter().map(|e| e.symbol.as_str()).collect();
        assert_eq!(names, ["AAA", "CCC"]);
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].contains("u.csv line 3") && bad[0].contains("skipped"),
            "{bad:?}"
        );
    }

    #[test]
    fn oversized_and_endless_files_are_refused_before_reading_them_whole() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("BIG.csv");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        let e = read_bounded(&big, 1024).unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
        assert_eq!(read_bounded(&big, 4096).unwrap().len(), 2048);
        // A device that never ends is read at most to the limit.
        if std::path::Path::new("/dev/zero").exists() {
            let e = read_bounded(std::path::Path::new("/dev/zero"), 1024).unwrap_err();
            assert!(e.to_string().contains("limit"), "{e}");
        }
    }

    /// A reader that sets the stop flag after its third chunk, as a cancelled scan would mid-read.
    struct Endless<'a> {
        reads: usize,
        bytes: usize,
        stop: &'a AtomicBool,
    }

    impl std::io::Read for Endless<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            if self.bytes >= 3 * READ_CHUNK {
                self.stop.store(true, Ordering::Relaxed);
            }
            let n = buf.len().min(READ_CHUNK / 16);
            buf[..n].fill(b'x');
            self.bytes += n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_stops_within_one_chunk_of_the_stop_flag() {
        let stop = AtomicBool::new(false);
        let mut reader = Endless {
            reads: 0,
            bytes: 0,
            stop: &stop,
        };
        let e = read_chunks(&mut reader, u64::MAX - 1, 0, &stop).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "{e}");
        assert!(e.to_string().contains("cancelled"), "{e}");
        assert!(
            reader.bytes <= 4 * READ_CHUNK,
            "read {} bytes, more than one chunk after the flag was set",
            reader.bytes
        );
        // Set before the first chunk: nothing is read.
        let mut reader = Endless {
            reads: 0,
            bytes: 0,
            stop: &stop,
        };
        assert!(read_chunks(&mut reader, 1024, 0, &stop).is_err());
        assert_eq!(reader.reads, 0);
    }

    #[tokio::test]
    async fn dropping_an_async_read_stops_it() {
        // /dev/zero never ends: with a 1 TiB cap only the stop flag ends the read, and the blocking pool
        // thread is back (the runtime shuts down below without waiting on a reader).
        if !std::path::Path::new("/dev/zero").exists() {
            return;
        }
        let read = read_bounded_async(PathBuf::from("/dev/zero"), 1 << 40);
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), read).await;
        assert!(timed_out.is_err(), "an endless read cannot finish");
        let small = read_bounded_async(PathBuf::from("/dev/zero"), 10)
            .await
            .unwrap_err();
        assert!(small.to_string().contains("limit"), "{small}");
    }

    #[tokio::test]
    async fn directory_provider() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("GOOD.csv"), GOOD).unwrap();
        std::fs::write(
            dir.path().join("BAD.csv"),
            "date,open,high,low,close,volume\nx,1,1,1,1,1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("universe.csv"),
            "symbol,name,sector,industry\nGOOD,Good Co,Energy,Oil\nGONE,Gone,Energy,Oil\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let p = CsvDirProvider::new(dir.path()).unwrap();
        let u = p.universe().await.unwrap();
        let names: Vec<_> = u.iter().map(|e| e.symbol.as_str()).collect();
        assert_eq!(names, ["BAD", "GONE", "GOOD"]);
        assert_eq!(u[2].name, "Good Co");
        let range = DateRange::new(NaiveDate::MIN, NaiveDate::MAX).unwrap();
        assert_eq!(p.daily_bars(&Symbol::new("GOOD"), range).await.unwrap().len(), 2);
        let bad = p
            .daily_bars(&Symbol::new("BAD"), range)
            .await
            .unwrap_err()
            .to_string();
        assert!(bad.contains("BAD.csv") && bad.contains("line 2"), "{bad}");
        assert!(matches!(
            p.daily_bars(&Symbol::new("GONE"), range).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            p.daily_bars(&Symbol::new("../x"), range).await,
            Err(Error::NotFound { .. })
        ));
        assert!(CsvDirProvider::new(dir.path().join("missing")).is_err());
    }
}
