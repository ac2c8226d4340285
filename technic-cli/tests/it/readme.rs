//! Every `technic` line of the README's usage block and of the user guide's command blocks runs as written
//! on the demo data, in order, in a scratch folder of its own: exit 0, and a scan with a screen shows
//! results. Lines that need a service or a file of the reader's (`serve`, a Polygon key, `my-list.csv`, a
//! CSV folder the guide did not make) are left out and named here.

use std::path::Path;

use crate::command;

/// Splits a command line into words, keeping double-quoted text whole.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    // A redirection (`> report.json`) is the shell's, not the command's.
    if let Some(at) = out.iter().position(|w| w == ">") {
        out.truncate(at);
    }
    out
}

/// The README's usage block, one command per entry (`a ; b` is two), without comments.
fn usage_commands(readme: &str) -> Vec<String> {
    let block = readme
        .split("## Usage")
        .nth(1)
        .and_then(|rest| rest.split("```sh").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("a usage block in README.md");
    block
        .lines()
        .flat_map(|l| l.split(" ; "))
        .map(|l| l.split(" # ").next().unwrap_or_default())
        .map(|l| l.trim().to_owned())
        .filter(|l| l.starts_with("technic "))
        .collect()
}

/// Every `technic` command of the guide's ```` ```sh ```` blocks, continuation lines joined.
fn guide_commands(guide: &str) -> Vec<String> {
    let mut out = Vec::new();
    for block in guide.split("```sh").skip(1) {
        let block = block.split("```").next().unwrap_or_default().replace("\\\n", " ");
        out.extend(
            block
                .lines()
                .flat_map(|l| l.split(" ; "))
                .map(|l| l.split(" # ").next().unwrap_or_default().trim().to_owned())
                .filter(|l| l.starts_with("technic ")),
        );
    }
    out
}

/// Runs `commands` in order in one scratch folder with its own data directory; returns how many ran.
fn run_on_the_demo(commands: &[String]) -> (usize, tempfile::TempDir) {
    let scratch = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for line in commands {
        // A server runs until stopped, a Polygon key, a reader's universe file or a CSV folder the text
        // did not make are not here, and a fleet needs Redis and PostgreSQL: their own tests cover those.
        let made_data = scratch.path().join("data").exists();
        if line.starts_with("technic serve")
            || line.contains("my-list.csv")
            || line.contains("polygon")
            || (line.contains("csv:") && !made_data)
        {
            continue;
        }
        let args = words(line);
        let o = command()
            .args(&args[1..])
            .current_dir(scratch.path())
            .env("XDG_DATA_HOME", scratch.path().join("xdg"))
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "`{line}` failed: {err}");
        if line.starts_with("technic scan")
            && ["--where", "--preset", "--screen"]
                .iter()
                .any(|f| line.contains(f))
        {
            assert!(
                !out.contains("No results."),
                "`{line}` shows no results on the demo: {out}"
            );
            assert!(
                !err.contains(" 0 of "),
                "`{line}` matched nothing on the demo: {err}"
            );
        }
        ran += 1;
    }
    (ran, scratch)
}

#[test]
fn every_readme_usage_line_runs_on_the_demo() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let commands = usage_commands(&readme);
    assert!(commands.len() >= 15, "{commands:?}");
    let (ran, scratch) = run_on_the_demo(&commands);
    assert!(ran >= 12, "ran {ran} of {commands:?}");
    assert!(
        scratch.path().join("data").join("universe.csv").exists(),
        "demo export ran first"
    );
}

#[test]
fn every_user_guide_command_runs_on_the_demo() {
    let guide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/USER_GUIDE.md")).unwrap();
    let commands = guide_commands(&guide);
    assert!(commands.len() >= 12, "{commands:?}");
    let (ran, _scratch) = run_on_the_demo(&commands);
    assert!(ran >= 8, "ran {ran} of {commands:?}");
}

#[test]
fn words_keep_quoted_text_whole() {
    assert_eq!(
        words(r#"technic scan --where "rsi_14 < 40 and close > sma_200" --top 5"#),
        [
            "technic",
            "scan",
            "--where",
            "rsi_14 < 40 and close > sma_200",
            "--top",
            "5"
        ]
    );
}
