//! The API key type and default URL of HTTP providers: always available (frontends read a key from the
//! environment whether or not the `http-provider` feature is built).

use std::fmt;

/// The public Polygon API.
pub const DEFAULT_BASE_URL: &str = "https://api.polygon.io";

/// An API key. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key (surrounding whitespace is trimmed).
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_owned())
    }

    /// True when no key was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[cfg_attr(not(feature = "http-provider"), allow(dead_code))]
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every spelling of the key replaced by `REDACTED`: raw, URL-encoded (`%2B`, either
    /// case of hex), form-encoded (`+` for a space), encoded twice (`%252B`), or any mix of these byte by
    /// byte, as a server echoing a request or a library quoting a URL may write it.
    pub fn scrub(&self, text: &str) -> String {
        let key = self.0.as_bytes();
        if key.is_empty() {
            return text.to_owned();
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let (mut at, mut copied) = (0, 0);
        while at < bytes.len() {
            match spelled_at(bytes, at, key) {
                Some(end) => {
                    // A match starts at an ASCII byte or at the key's own first byte, and ends after an
                    // ASCII byte or the key's last byte: both are character boundaries.
                    out.push_str(text.get(copied..at).unwrap_or_default());
                    out.push_str("REDACTED");
                    (at, copied) = (end, end);
                }
                None => at += 1,
            }
        }
        out.push_str(text.get(copied..).unwrap_or_default());
        out
    }
}

/// Where a spelling of `key` starting at `at` ends, if one does. Each byte may be spelled several ways
/// (`%` raw or as `%25`), so this searches depth first, with its own stack rather than recursion.
fn spelled_at(text: &[u8], at: usize, key: &[u8]) -> Option<usize> {
    // Most positions cannot start the key at all: answer those without allocating.
    if !matches!(text.get(at), Some(&c) if c == key[0] || c == b'%' || c == b'+') {
        return None;
    }
    let mut todo = vec![(0usize, at)];
    while let Some((k, at)) = todo.pop() {
        let Some(&b) = key.get(k) else {
            return Some(at);
        };
        todo.extend(byte_at(text, at, b).into_iter().flatten().map(|end| (k + 1, end)));
    }
    None
}

/// Where byte `b` can end when it starts at `at`: written raw, as `%HH` (either case), as `%25HH`
/// (encoded twice) or, a space, as `+`.
fn byte_at(text: &[u8], at: usize, b: u8) -> [Option<usize>; 3] {
    let hex = |i: usize| -> Option<u8> {
        let pair = std::str::from_utf8(text.get(i..i + 2)?).ok()?;
        u8::from_str_radix(pair, 16).ok()
    };
    let Some(&c) = text.get(at) else {
        return [None; 3];
    };
    let raw = (c == b || (b == b' ' && c == b'+')).then_some(at + 1);
    let (once, twice) = if c == b'%' {
        let first = hex(at + 1);
        (
            (first == Some(b)).then_some(at + 3),
            (first == Some(0x25) && hex(at + 3) == Some(b)).then_some(at + 5),
        )
    } else {
        (None, None)
    };
    [raw, once, twice]
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(REDACTED)")
    }
}

#[cfg(test)]
mod tests {
    use super::ApiKey;

    #[test]
    fn every_spelling_of_the_key_is_scrubbed() {
        let key = ApiKey::new("s3cr+t/K=y&x z%é");
        let spellings = [
            "s3cr+t/K=y&x z%é",
            // Form encoding (query strings): a space is `+`, reserved bytes are %HH.
            "s3cr%2Bt%2FK%3Dy%26x+z%25%C3%A9",
            // Percent encoding in lower-case hex, a space as %20.
            "s3cr%2bt%2fK%3dy%26x%20z%25%c3%a9",
            // Path-segment encoding leaves some reserved bytes raw.
            "s3cr+t%2FK=y&x%20z%25%C3%A9",
            // Encoded twice.
            "s3cr%252Bt%252FK%253Dy%2526x%2520z%2525%25C3%25A9",
        ];
        for spelled in spellings {
            let text = format!("GET /x?apiKey={spelled}&a=1 failed");
            assert_eq!(key.scrub(&text), "GET /x?apiKey=REDACTED&a=1 failed", "{spelled}");
        }
        assert_eq!(key.scrub("nothing here, é"), "nothing here, é");
        assert_eq!(ApiKey::new("").scrub("abc"), "abc");
        assert_eq!(ApiKey::new("ab").scrub("aabab"), "aREDACTEDREDACTED");
    }
}
