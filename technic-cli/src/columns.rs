//! The scan table's columns: their names for `--columns`, their cells, and the choice of a column set
//! that fits the terminal (least useful columns go first), so a 120-column terminal never wraps a row.

use std::io::IsTerminal;

use technic_core::ScanResult;

/// One column of the scan table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Rank,
    Symbol,
    Sector,
    Close,
    Rating,
    Signal,
    Rsi,
    Adx,
    MacdHist,
    Return21,
    VolumeRatio,
    Change,
    Entry,
    Stop,
    Target,
    Shares,
}

impl Column {
    /// Every column, in the order the full table shows them.
    pub const ALL: [Column; 16] = [
        Column::Rank,
        Column::Symbol,
        Column::Sector,
        Column::Close,
        Column::Rating,
        Column::Signal,
        Column::Rsi,
        Column::Adx,
        Column::MacdHist,
        Column::Return21,
        Column::VolumeRatio,
        Column::Change,
        Column::Entry,
        Column::Stop,
        Column::Target,
        Column::Shares,
    ];

    /// The name `--columns` takes: the CSV output's name of the same figure.
    pub fn name(self) -> &'static str {
        match self {
            Column::Rank => "rank",
            Column::Symbol => "symbol",
            Column::Sector => "sector",
            Column::Close => "close",
            Column::Rating => "tech_rating",
            Column::Signal => "signal",
            Column::Rsi => "rsi_14",
            Column::Adx => "adx_14",
            Column::MacdHist => "macd_hist",
            Column::Return21 => "return_21",
            Column::VolumeRatio => "volume_ratio_20",
            Column::Change => "change_pct",
            Column::Entry => "entry",
            Column::Stop => "stop",
            Column::Target => "target",
            Column::Shares => "shares",
        }
    }

    /// The column's heading in the table.
    pub fn header(self) -> &'static str {
        match self {
            Column::Rank => "#",
            Column::Symbol => "Symbol",
            Column::Sector => "Sector",
            Column::Close => "Close",
            Column::Rating => "Rating",
            Column::Signal => "Signal",
            Column::Rsi => "RSI",
            Column::Adx => "ADX",
            Column::MacdHist => "MACD hist",
            Column::Return21 => "21d",
            Column::VolumeRatio => "Vol×",
            Column::Change => "Chg%",
            Column::Entry => "Entry",
            Column::Stop => "Stop",
            Column::Target => "Target",
            Column::Shares => "Shares",
        }
    }

    /// Text columns are left-aligned, figures right-aligned.
    pub fn right_aligned(self) -> bool {
        !matches!(self, Column::Symbol | Column::Sector | Column::Signal)
    }

    /// The cell of this column for one result.
    pub fn cell(self, res: &ScanResult) -> String {
        let ind = &res.indicators;
        let plan = res.trade_plan.as_ref();
        match self {
            Column::Rank => res.rank.to_string(),
            Column::Symbol if res.stale => format!("{}*", res.symbol),
            Column::Symbol => res.symbol.to_string(),
            Column::Sector if res.sector.is_empty() => "—".to_owned(),
            Column::Sector => res.sector.clone(),
            Column::Close => format!("{:.2}", res.close),
            Column::Rating => format!("{:.1}", res.tech_rating),
            Column::Signal => res.signal.to_string(),
            Column::Rsi => fmt_opt(ind.rsi_14, 1),
            Column::Adx => fmt_opt(ind.adx_14, 1),
            Column::MacdHist => fmt_opt(ind.macd_hist, 3),
            Column::Return21 => ind
                .return_21
                .map_or_else(|| "—".to_owned(), |v| format!("{:+.1}%", v * 100.0)),
            Column::VolumeRatio => fmt_opt(ind.volume_ratio_20, 2),
            Column::Change => res.change_pct.map_or("—".to_owned(), |c| format!("{c:+.2}")),
            Column::Entry => fmt_opt(plan.map(|p| p.entry), 2),
            Column::Stop => fmt_opt(plan.map(|p| p.stop), 2),
            Column::Target => fmt_opt(plan.map(|p| p.target), 2),
            Column::Shares => plan.map_or("—".to_owned(), |p| p.shares.to_string()),
        }
    }

    /// The column `--columns` names by `text` (its name or its heading, in any case).
    pub fn parse(text: &str) -> Option<Column> {
        let text = text.trim();
        Column::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(text) || c.header().to_lowercase() == text.to_lowercase())
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The columns of `--columns a,b,c`, in the order given; an unknown name is an error listing the valid
/// ones.
pub fn parse_list(names: &[String]) -> Result<Vec<Column>, String> {
    let mut columns = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let column = Column::parse(name).ok_or_else(|| {
            let valid: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
            format!(
                "--columns: no column `{name}`; the columns are {}",
                valid.join(",")
            )
        })?;
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    if columns.is_empty() {
        let valid: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        return Err(format!(
            "--columns names no column; the columns are {}",
            valid.join(",")
        ));
    }
    Ok(columns)
}

/// Columns dropped first when the table must narrow, least telling first. Rank, symbol and rating are
/// never dropped.
const DROP_ORDER: [Column; 13] = [
    Column::MacdHist,
    Column::Adx,
    Column::VolumeRatio,
    Column::Sector,
    Column::Shares,
    Column::Return21,
    Column::Target,
    Column::Stop,
    Column::Entry,
    Column::Change,
    Column::Rsi,
    Column::Close,
    Column::Signal,
];

/// The width of a table (the `UTF8_FULL_CONDENSED` preset) whose columns hold at most `widths`
/// characters: one border before the first column, then each column with a space either side and the
/// border after it.
pub fn table_width(widths: impl IntoIterator<Item = usize>) -> usize {
    1 + widths.into_iter().map(|w| w + 3).sum::<usize>()
}

/// The widest cell (heading included) of `column` over `results`, in characters.
fn column_width(column: Column, results: &[ScanResult]) -> usize {
    results
        .iter()
        .map(|r| column.cell(r).chars().count())
        .chain([column.header().chars().count()])
        .max()
        .unwrap_or(0)
}

/// The columns of the full table, less the least telling ones, until the table is no wider than
/// `width`: the full table when it fits, at least rank, symbol and rating.
pub fn fitting(results: &[ScanResult], width: usize) -> Vec<Column> {
    let widths: Vec<(Column, usize)> = Column::ALL
        .into_iter()
        .map(|c| (c, column_width(c, results)))
        .collect();
    fit_widths(&widths, width)
}

/// [`fitting`] on measured column widths.
fn fit_widths(widths: &[(Column, usize)], width: usize) -> Vec<Column> {
    let mut kept: Vec<(Column, usize)> = widths.to_vec();
    for drop in DROP_ORDER {
        if table_width(kept.iter().map(|(_, w)| *w)) <= width {
            break;
        }
        kept.retain(|(c, _)| *c != drop);
    }
    kept.into_iter().map(|(c, _)| c).collect()
}

/// How the scan table is laid out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The columns asked for (`--columns`, or every one with `--wide`); `None` fits the terminal, or shows
    /// every column when the output is not a terminal.
    pub columns: Option<Vec<Column>>,
    /// The terminal's width when standard output is one: the table narrows to it and long summary lines
    /// wrap at it. `None` when the output goes to a file or a pipe.
    pub width: Option<usize>,
}

impl Layout {
    /// The layout for standard output: the terminal's width when it is one (`COLUMNS` when set, else the
    /// terminal's size), with the columns of `--wide` or `--columns`.
    pub fn for_stdout(columns: Option<Vec<Column>>) -> Layout {
        Layout {
            columns,
            width: std::io::stdout().is_terminal().then(terminal_width).flatten(),
        }
    }

    /// The columns to show for `results`.
    pub fn columns_for(&self, results: &[ScanResult]) -> Vec<Column> {
        match (&self.columns, self.width) {
            (Some(columns), _) => columns.clone(),
            (None, Some(width)) => fitting(results, width),
            (None, None) => Column::ALL.to_vec(),
        }
    }
}

/// The terminal's width: `COLUMNS` when it holds a positive number, else the size the terminal reports.
pub fn terminal_width() -> Option<usize> {
    columns_var().or_else(|| comfy_table::Table::new().width().map(usize::from))
}

/// `COLUMNS`, when it holds a positive number.
fn columns_var() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w > 0)
}

/// The terminal's width when standard error is one (`COLUMNS` when set, else the terminal's size).
pub fn stderr_width() -> Option<usize> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    columns_var().or_else(|| {
        let mut t = comfy_table::Table::new();
        t.use_stderr();
        t.width().map(usize::from)
    })
}

/// `text` with every line longer than `width` characters broken at spaces, the continuation indented
/// four spaces past the line's own indent. A word longer than the line is left whole.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        if body.chars().count() <= width {
            out.push_str(line);
            continue;
        }
        let indent = body.len() - body.trim_start().len();
        let follow = " ".repeat((indent + 4).min(width / 2));
        let mut current = body[..indent].to_owned();
        let mut current_len = indent;
        let mut first_word = true;
        for word in body[indent..].split(' ') {
            let len = word.chars().count();
            if !first_word && current_len + 1 + len > width {
                out.push_str(current.trim_end());
                out.push('\n');
                current = follow.clone();
                current_len = follow.len();
                first_word = true;
            }
            if !first_word {
                current.push(' ');
                current_len += 1;
            }
            current.push_str(word);
            current_len += len;
            first_word = false;
        }
        out.push_str(&current);
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widths of the demo table's columns at 500 symbols (measured on `technic scan`): 158 wide.
    fn demo_widths() -> Vec<(Column, usize)> {
        let w = [2, 6, 22, 6, 6, 11, 4, 4, 9, 6, 4, 5, 6, 6, 6, 6];
        Column::ALL.into_iter().zip(w).collect()
    }

    #[test]
    fn the_full_demo_table_is_158_wide() {
        assert_eq!(table_width(demo_widths().iter().map(|(_, w)| *w)), 158);
    }

    #[test]
    fn a_wide_terminal_gets_every_column() {
        assert_eq!(fit_widths(&demo_widths(), 158), Column::ALL.to_vec());
        assert_eq!(fit_widths(&demo_widths(), 300), Column::ALL.to_vec());
    }

    #[test]
    fn narrower_terminals_lose_the_least_telling_columns_first() {
        let at_120 = fit_widths(&demo_widths(), 120);
        let width = |cols: &[Column]| {
            table_width(
                demo_widths()
                    .iter()
                    .filter(|(c, _)| cols.contains(c))
                    .map(|(_, w)| *w),
            )
        };
        assert!(width(&at_120) <= 120, "{at_120:?}");
        for gone in [Column::MacdHist, Column::Adx, Column::VolumeRatio] {
            assert!(!at_120.contains(&gone), "{gone:?} kept at 120: {at_120:?}");
        }
        for kept in [
            Column::Rank,
            Column::Symbol,
            Column::Rating,
            Column::Signal,
            Column::Entry,
        ] {
            assert!(at_120.contains(&kept), "{kept:?} dropped at 120: {at_120:?}");
        }
        // Order stays the full table's.
        let mut sorted = at_120.clone();
        sorted.sort_by_key(|c| Column::ALL.iter().position(|a| a == c));
        assert_eq!(sorted, at_120);
        let at_80 = fit_widths(&demo_widths(), 80);
        assert!(width(&at_80) <= 80, "{at_80:?}");
        assert!(at_80.len() < at_120.len());
        // However narrow, rank, symbol and rating stay.
        assert_eq!(
            fit_widths(&demo_widths(), 10),
            vec![Column::Rank, Column::Symbol, Column::Rating]
        );
    }

    #[test]
    fn columns_are_named_as_in_the_csv_or_by_heading() {
        let names: Vec<String> = ["symbol", "Rating", " rsi_14 ", "CHG%", "symbol"]
            .map(str::to_owned)
            .to_vec();
        assert_eq!(
            parse_list(&names).unwrap(),
            vec![Column::Symbol, Column::Rating, Column::Rsi, Column::Change]
        );
        let err = parse_list(&["symbol".to_owned(), "price".to_owned()]).unwrap_err();
        assert!(
            err.contains("`price`") && err.contains("tech_rating") && err.contains("shares"),
            "{err}"
        );
        assert!(parse_list(&[String::new()]).is_err());
    }

    #[test]
    fn piped_output_shows_every_column() {
        assert_eq!(Layout::default().columns_for(&[]), Column::ALL.to_vec());
    }

    /// The measured widths agree with the table as drawn: every line of a narrowed demo table, banner
    /// and summary included, fits the width asked for.
    #[tokio::test]
    async fn the_drawn_table_fits_the_width() {
        let results = technic_core::testing::demo_results(500).await;
        let report = technic_core::testing::sample_report("fit", results[..20].to_vec());
        for width in [158, 120, 100, 80, 60] {
            let layout = Layout {
                columns: None,
                width: Some(width),
            };
            let mut out = Vec::new();
            crate::render::table(&mut out, &report, &layout).unwrap();
            let text = String::from_utf8(out).unwrap();
            let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
            assert!(widest <= width, "{widest} > {width}:\n{text}");
            let shown = layout.columns_for(&report.results);
            let drawn = text.lines().find(|l| l.contains("Symbol")).unwrap();
            assert_eq!(drawn.matches('┆').count() + 1, shown.len(), "{drawn}");
        }
    }

    #[test]
    fn long_lines_wrap_at_spaces_with_an_indent() {
        let text = "short\n  stale: one two three four five six\nlast";
        let wrapped = wrap(text, 16);
        assert_eq!(
            wrapped,
            "short\n  stale: one two\n      three four\n      five six\nlast"
        );
        assert!(wrapped.lines().all(|l| l.chars().count() <= 16));
        assert_eq!(wrap("abc\n", 2), "abc\n", "a long word stays whole");
    }
}
